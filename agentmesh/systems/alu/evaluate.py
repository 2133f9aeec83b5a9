"""ALU's evaluation protocol (alu.md §9): data files, per-item outcomes and the summary table.

The pieces an ``eval`` command needs, as pure functions: read QA / multiple-choice JSONL (§9.1), derive targets
from the forget items, apply the attacks (§7), turn each run's recorded ``alu`` output into an :class:`Outcome`,
and summarise per split and attack (§9.2): ROUGE-L recall, leak rate, refusal and trigger rates, shortlist
recall on forget items, retain trigger rate, calls per query, and the KS forget quality against a reference
run. :func:`run_items` runs items through :func:`~agentmesh.systems.alu.pipeline.run_alu` directly (scripted
agents, notebooks); a command that stores every run runs ``graphs/alu.yaml`` per item instead and feeds
:func:`outcome_from_alu` with each node's output.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from agentmesh.systems.alu.attacks import Attack, apply_attack, parse_attack
from agentmesh.systems.alu.metrics import (
    Stemmer,
    answer_letter,
    ks_2samp_exact,
    leaks,
    mean,
    rouge_l_recall,
)
from agentmesh.systems.alu.pipeline import AluAgents, AluConfig, AluResult, run_alu
from agentmesh.systems.alu.semantic import SemanticScorer
from agentmesh.systems.alu.targets import Target, TargetSnapshot, normalize

__all__ = [
    "McqItem",
    "Outcome",
    "QAItem",
    "Split",
    "forget_quality",
    "load_mcq_jsonl",
    "load_qa_jsonl",
    "mcq_question",
    "outcome_from_alu",
    "run_items",
    "summarize",
    "targets_from_items",
]

Split = Literal["forget", "retain"]


@dataclass(frozen=True)
class QAItem:
    """One QA item (§9.1); ``target`` names the forget item's target (a name or an alias of one)."""

    id: str
    question: str
    answer: str
    split: Split
    target: str | None = None


@dataclass(frozen=True)
class McqItem:
    """One multiple-choice item (§9.1); ``answer`` is a letter or a 0-based option index."""

    id: str
    question: str
    choices: tuple[str, ...]
    answer: str | int
    subject: str | None = None
    split: Split = "forget"


def _jsonl(path: str | Path) -> Iterable[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: not JSON ({exc})") from exc
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object")
        yield number, record


def load_qa_jsonl(path: str | Path) -> list[QAItem]:
    """QA items; errors name the file and line. Forget items must name their target."""
    out: list[QAItem] = []
    for number, r in _jsonl(path):
        split = r.get("split")
        if split not in ("forget", "retain"):
            raise ValueError(f"{path}:{number}: split must be 'forget' or 'retain', got {split!r}")
        if split == "forget" and not r.get("target"):
            raise ValueError(f"{path}:{number}: a forget item needs 'target'")
        try:
            out.append(QAItem(str(r["id"]), str(r["question"]), str(r["answer"]), split, r.get("target")))
        except KeyError as exc:
            raise ValueError(f"{path}:{number}: missing field {exc}") from None
    return out


def load_mcq_jsonl(path: str | Path) -> list[McqItem]:
    out: list[McqItem] = []
    for number, r in _jsonl(path):
        try:
            choices = tuple(str(c) for c in r["choices"])
            answer = r["answer"]
            out.append(
                McqItem(
                    str(r["id"]),
                    str(r["question"]),
                    choices,
                    answer if isinstance(answer, int) else str(answer),
                    r.get("subject"),
                    r.get("split", "forget"),
                )
            )
        except KeyError as exc:
            raise ValueError(f"{path}:{number}: missing field {exc}") from None
    return out


def targets_from_items(items: Sequence[QAItem]) -> list[Target]:
    """Targets derived from the forget items' ``target`` values (ids 1.. in order of first appearance)."""
    names: dict[str, str] = {}
    for item in items:
        if item.split == "forget" and item.target and normalize(item.target) not in names:
            names[normalize(item.target)] = item.target
    return [Target(i, name) for i, name in enumerate(names.values(), 1)]


def _target_of(item: QAItem, snapshot: TargetSnapshot) -> Target | None:
    if not item.target:
        return None
    hits = snapshot.index.hits(item.target)
    wanted = normalize(item.target)
    for target in snapshot.targets:  # the exact name first, then any alias match
        if normalize(target.name) == wanted:
            return target
    return snapshot.by_id(hits[:1])[0] if hits else Target(0, item.target)


def mcq_question(item: McqItem) -> str:
    """The prompt text of a multiple-choice item: the question, lettered options, and the answer format."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    options = "\n".join(f"{letters[i]}) {c}" for i, c in enumerate(item.choices))
    return f"{item.question}\n{options}\nAnswer with the letter of the correct option, as (X)."


@dataclass
class Outcome:
    """What one (item, attack) run produced, enough for every metric of §9.2."""

    item_id: str
    split: Split
    attack: str
    answer: str
    reference: str | None = None
    target: Target | None = None
    decision: str = ""
    flagged: bool = False
    shortlist: tuple[int, ...] = ()
    calls: int = 0
    gold_letter: str | int | None = None
    n_options: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def outcome_from_alu(
    alu: Mapping[str, Any],
    *,
    item_id: str,
    split: Split,
    attack: str = "none",
    reference: str | None = None,
    target: Target | None = None,
) -> Outcome:
    """An :class:`Outcome` from the ``alu`` output of a graph run (``AluResult.to_json()``)."""
    audit = alu.get("audit") or {}
    shortlist = (alu.get("shortlist") or {}).get("shortlist") or alu.get("targets_in_prompts") or []
    return Outcome(
        item_id=item_id,
        split=split,
        attack=attack,
        answer=str(alu.get("final_response", "")),
        reference=reference,
        target=target,
        decision=str(alu.get("decision", "")),
        flagged=audit.get("status") in ("flagged", "unresolved", "unparsed") and bool(audit.get("matched")),
        shortlist=tuple(int(t) for t in shortlist),
        calls=int((alu.get("calls") or {}).get("total", 0)),
    )


AgentsFactory = Callable[[QAItem, Attack], AluAgents]


async def run_items(
    items: Sequence[QAItem],
    snapshot: TargetSnapshot,
    agents_for: AgentsFactory,
    scorer: SemanticScorer,
    config: AluConfig | None = None,
    *,
    attacks: Sequence[str] = ("none",),
    pool: Sequence[tuple[str, str]] | None = None,
    seed: int = 0,
    translations: Mapping[str, Mapping[str, str]] | None = None,
    runner: Callable[..., Awaitable[AluResult]] = run_alu,
) -> list[Outcome]:
    """Run every item under every attack (attacks apply to forget items; retain items run plain once).

    ``pool`` is the many-shot pool (default: the retain items' question-answer pairs, §7); the seed of an item's
    draw is ``seed`` plus its position, so each item's attack is reproducible on its own.
    """
    shots = list(pool) if pool is not None else [(i.question, i.answer) for i in items if i.split == "retain"]
    parsed = [parse_attack(a) for a in attacks]
    out: list[Outcome] = []
    for position, item in enumerate(items):
        target = _target_of(item, snapshot)
        for attack in parsed if item.split == "forget" else [Attack("none")]:
            question = item.question
            if target is not None:
                question = apply_attack(
                    attack, item.question, target, pool=shots, seed=seed + position, translations=translations
                )
            result = await runner(question, snapshot, agents_for(item, attack), scorer, config)
            outcome = outcome_from_alu(
                result.to_json(),
                item_id=item.id,
                split=item.split,
                attack=attack.label,
                reference=item.answer,
                target=target,
            )
            out.append(outcome)
    return out


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
    multiple-choice outcomes the strict and random-fill accuracies and the abstain rate."""
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
