"""The questions an ALU eval asks (alu.md §9.3): one :class:`EvalCase` per (item, attack), forget QA items under
each attack (§7), retain and multiple-choice items plain once.

Apart from the data files because a case is what is asked, attack applied, with what its metrics will need;
every system compared (:mod:`~agentmesh.systems.alu.compared`) is asked the same cases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agentmesh.systems.alu.attacks import Attack, apply_attack, parse_attack
from agentmesh.systems.alu.items import McqItem, QAItem, Split, mcq_question, target_of
from agentmesh.systems.alu.targets import Target, TargetSnapshot

__all__ = ["EvalCase", "eval_cases"]


@dataclass(frozen=True)
class EvalCase:
    """One question an eval asks every system: an item under one attack, with what its metrics need."""

    item_id: str
    split: Split
    attack: str
    query: str
    reference: str | None = None
    target: Target | None = None
    gold_letter: str | int | None = None
    n_options: int | None = None
    question: str | None = None
    """A QA item's question as the data gives it, before the attack (what the leak judge is shown)."""
    line: int | None = None
    """The item's line in the data file (``None``: items not read from one), what ``eval alu --json`` traces a run
    to. Not part of what is asked: a run is reused whatever line its item moved to."""


def eval_cases(
    items: Sequence[QAItem | McqItem],
    targets: Sequence[Target],
    attacks: Sequence[str] = ("none",),
    *,
    seed: int = 0,
    translations: Mapping[str, Mapping[str, str]] | None = None,
    source: str = "data",
    lines: Sequence[int] | None = None,
) -> list[EvalCase]:
    """Every (item, attack) case: forget QA items under each attack, retain items plain once, multiple-choice
    items plain (their questions name no target to attack). Everything that can be wrong with the data (an
    unknown attack, a forget item whose target is in no target record, a missing translation) raises
    ``ValueError`` here, naming the item, so a bad file costs no model call.

    The many-shot pool is the retain items' question-answer pairs (§7); the seed of an item's draw is ``seed``
    plus its position, as in :func:`run_items`, so a case's query is the same every time (and so is its stored
    run, which a second eval reuses). ``lines``, given, are the items' lines in the data file, each case's
    :attr:`EvalCase.line`."""
    if lines is not None and len(lines) != len(items):
        raise ValueError(f"{source}: {len(lines)} lines given for {len(items)} items")
    parsed = [parse_attack(a) for a in attacks] or [Attack("none")]
    snapshot = TargetSnapshot("eval", 1, tuple(targets))
    qa = [i for i in items if isinstance(i, QAItem)]
    shots = [(i.question, i.answer) for i in qa if i.split == "retain"]
    many = [a.label for a in parsed if a.kind == "many_shot" and a.shots > 0]
    if many and not shots and any(i.split == "forget" for i in qa):
        raise ValueError(
            f"{source}: attack {many[0]} draws its shots from the retain items' questions and answers, and there "
            "are none (add retain items, or leave many_shot out)"
        )
    out: list[EvalCase] = []
    for position, item in enumerate(items):
        line = None if lines is None else lines[position]
        if isinstance(item, McqItem):
            out.append(
                EvalCase(
                    item.id,
                    item.split,
                    "none",
                    mcq_question(item),
                    gold_letter=item.answer,
                    n_options=len(item.choices),
                    line=line,
                )
            )
            continue
        target = target_of(item, snapshot)
        if target is not None and target.id == 0:
            raise ValueError(f"{source}: forget item {item.id!r} names target {item.target!r}, in no target record")
        for attack in parsed if item.split == "forget" else [Attack("none")]:
            question = item.question
            if target is not None:
                try:
                    question = apply_attack(
                        attack, item.question, target, pool=shots, seed=seed + position, translations=translations
                    )
                except (KeyError, ValueError) as exc:
                    raise ValueError(f"{source}: item {item.id!r}, attack {attack.label}: {exc.args[0]}") from None
            out.append(
                EvalCase(
                    item.id, item.split, attack.label, question, item.answer, target, question=item.question, line=line
                )
            )
    return out
