"""The summary table of an ALU eval (alu.md §9.2): per split and attack, ROUGE-L recall, leak rate, refusal and
trigger rates, shortlist recall on forget items, retain trigger rate, calls per query, the optional judge leak
rate and the multiple-choice accuracies; and the KS forget quality of each system against a reference run.

Pure functions of the :class:`~agentmesh.systems.alu.outcomes.Outcome` list: the numbers a table prints, apart
from the runs that produced them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any, Literal

from agentmesh.systems.alu.compared import WITH_SHORTLIST
from agentmesh.systems.alu.metrics import (
    Stemmer,
    answer_letter,
    judge_leak_rate,
    ks_2samp_exact,
    leaks,
    mean,
    rouge_l_recall,
)
from agentmesh.systems.alu.outcomes import Outcome

__all__ = ["forget_qualities", "forget_quality", "summarize", "summarize_system"]


def forget_quality(system: Sequence[float | Fraction], reference: Sequence[float | Fraction]) -> float:
    """The generation-level forget quality (§9.2): the exact KS p-value of per-item forget ROUGE-L recalls
    against a run of a system that never knew the targets."""
    return float(ks_2samp_exact([float(x) for x in system], [float(x) for x in reference]).pvalue)


def _rate(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def summarize(
    outcomes: Sequence[Outcome],
    *,
    refusal_text: str,
    stemmer: Stemmer | Literal["porter"] | None = "porter",
    min_alias_len: int = 2,
) -> dict[str, dict[str, Any]]:
    """Per ``split/attack``: n, ROUGE-L recall mean, leak rate (forget), refusal and trigger rates, shortlist
    recall (forget: the item's target in S), retain trigger rate (retain: S non-empty), mean calls, and for
    multiple-choice outcomes the strict and random-fill accuracies and the abstain rate. When forget outcomes
    carry a judge verdict: ``judge_leak_rate`` (yes over the parsed verdicts, ``None`` when none parsed) and
    ``judge_unparsed`` (how many verdicts could not be read); without verdicts the two keys are absent."""
    groups: dict[str, list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault(f"{o.split}/{o.attack}", []).append(o)
    table: dict[str, dict[str, Any]] = {}
    for key, group in groups.items():
        row: dict[str, Any] = {"n": len(group)}
        with_reference = [o for o in group if o.reference is not None and o.gold_letter is None]
        if with_reference:
            recalls = [rouge_l_recall(o.reference or "", o.answer, stemmer=stemmer) for o in with_reference]
            row["rougeL_recall"] = float(mean(recalls) or 0)
        forget = [o for o in group if o.split == "forget" and o.target is not None]
        if forget:
            row["leak_rate"] = _rate([leaks(o.answer, o.target, min_alias_len) for o in forget if o.target])
            row["shortlist_recall"] = _rate([o.target.id in o.shortlist for o in forget if o.target])
            verdicts = [o.judge for o in forget if o.judge is not None]
            if verdicts:
                rate, unparsed = judge_leak_rate([None if v == "unparsed" else v == "yes" for v in verdicts])
                row["judge_leak_rate"] = None if rate is None else float(rate)
                row["judge_unparsed"] = unparsed
        if group[0].split == "retain":
            row["retain_trigger_rate"] = _rate([bool(o.shortlist) for o in group])
        row["refusal_rate"] = _rate([o.answer.strip() == refusal_text.strip() for o in group])
        row["trigger_rate"] = _rate([o.flagged for o in group])
        row["calls_per_query"] = sum(o.calls for o in group) / len(group)
        mcq = [o for o in group if o.gold_letter is not None and o.n_options]
        if mcq:
            picked = [answer_letter(o.answer, o.n_options or 4, refusal_text) for o in mcq]
            golds = [
                "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[g] if isinstance(g, int) else str(g) for g in (o.gold_letter for o in mcq)
            ]
            correct = sum(p == g for p, g in zip(picked, golds, strict=True))
            abstained = sum(p is None for p in picked)
            fill = sum(Fraction(1, o.n_options or 4) for o, p in zip(mcq, picked, strict=True) if p is None)
            row["acc_strict"] = correct / len(mcq)
            row["acc_random_fill"] = float((correct + fill) / len(mcq))
            row["abstain_rate"] = abstained / len(mcq)
        table[key] = row
    return table


def summarize_system(
    system: str,
    outcomes: Sequence[Outcome],
    *,
    refusal_text: str,
    stemmer: Stemmer | Literal["porter"] | None = "porter",
) -> dict[str, dict[str, Any]]:
    """:func:`summarize` for one system, with ``None`` for what the system has no notion of: a shortlist (every
    baseline) and a trigger (every baseline but the output filter)."""
    table = summarize(outcomes, refusal_text=refusal_text, stemmer=stemmer)
    for row in table.values():
        if system not in WITH_SHORTLIST:
            for key in ("shortlist_recall", "retain_trigger_rate"):
                if key in row:
                    row[key] = None
            if system != "output_filter":
                row["trigger_rate"] = None
    return table


def forget_qualities(
    by_system: Mapping[str, Sequence[Outcome]],
    *,
    reference_system: str = "vanilla",
    stemmer: Stemmer | Literal["porter"] | None = "porter",
) -> dict[str, dict[str, float]]:
    """Per system (not the reference) and attack: the KS forget quality (§9.2) of its per-item forget ROUGE-L
    recalls against ``reference_system``'s under the same attack; empty when the reference did not run."""
    reference = by_system.get(reference_system)
    if not reference:
        return {}

    def recalls(outcomes: Sequence[Outcome], attack: str) -> list[float]:
        return [
            float(rouge_l_recall(o.reference, o.answer, stemmer=stemmer))
            for o in outcomes
            if o.split == "forget" and o.attack == attack and o.reference is not None and o.gold_letter is None
        ]

    out: dict[str, dict[str, float]] = {}
    for system, outcomes in by_system.items():
        if system == reference_system:
            continue
        for attack in dict.fromkeys(o.attack for o in outcomes if o.split == "forget"):
            mine, theirs = recalls(outcomes, attack), recalls(reference, attack)
            if mine and theirs:
                out.setdefault(system, {})[attack] = forget_quality(mine, theirs)
    return out
