"""What one ALU eval question produced (alu.md §9.2): an :class:`Outcome` per (item, attack), enough for every
metric, read from a run's recorded ``alu`` output; and :func:`run_items`, which asks the items through
:func:`~agentmesh.systems.alu.pipeline.run_alu` directly (scripted agents, notebooks) rather than as stored runs.

Apart from the summary because the outcomes are what the runs left, and the summary only reads them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentmesh.systems.alu.attacks import Attack, apply_attack, parse_attack
from agentmesh.systems.alu.items import QAItem, Split, target_of
from agentmesh.systems.alu.judge import JudgeVerdict
from agentmesh.systems.alu.pipeline import AluAgents, AluConfig, AluResult, run_alu
from agentmesh.systems.alu.semantic import SemanticScorer
from agentmesh.systems.alu.targets import Target, TargetSnapshot

__all__ = ["AgentsFactory", "Outcome", "outcome_from_alu", "run_items"]


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
    judge: JudgeVerdict | None = None
    """The leak judge's verdict on the answer; ``None``: not judged (no ``--judge``, not a forget QA item, or the
    judge's run failed)."""
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
        target = target_of(item, snapshot)
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
