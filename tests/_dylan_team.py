"""A scripted DyLAN MMLU team whose Agent Importance Scores are known exactly, as a model provider.

Imported by the optimisation tests, and by file (``--import tests/_dylan_team.py``) in the Ray workers that run a
job's items: it registers the ``dylanteam`` provider, so ``dylanteam:x`` resolves to this team in any process.

On every item the scripted agents answer A, B, C, D in layer 1; in layer 2 the mathematician and the historian
answer C, the others A and B (no consensus: 3 of 4 needed); everybody rates the mathematician's answer 5 and every
other 1; the ranker keeps the mathematician and the historian, who agree on C in layer 3 (2 of 2: consensus). By
dylan.md §4 (paper semantics) the per-item importance is exactly mathematician 1/2 + 5/6 + 5/8, historian
1/2 + 1/6 + 1/8, economist 1/8, doctor 1/8.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.messages import CallContext
from agentmesh.models.registry import register_provider

TEAM = ["economist", "doctor", "mathematician", "historian"]
LAYER1 = {"economist": "A", "doctor": "B", "mathematician": "C", "historian": "D"}
LAYER2 = {"economist": "A", "doctor": "B", "mathematician": "C", "historian": "C"}
EXPECTED = {
    "economist": Fraction(1, 8),
    "doctor": Fraction(1, 8),
    "mathematician": Fraction(1, 2) + Fraction(5, 6) + Fraction(5, 8),
    "historian": Fraction(1, 2) + Fraction(1, 6) + Fraction(1, 8),
}
_WHO = re.compile(r"<<(\w+)>>")


class Team:
    """The scripted team; ``fail_on`` makes the first call whose prompt contains it fail once (a crash)."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on

    def __call__(self, request: ModelRequest, context: CallContext) -> str:
        prompt = request.messages[-1].content
        if self.fail_on and self.fail_on in prompt and context.round == 2:
            self.fail_on = None
            raise RuntimeError("the model server went away")
        shown = _WHO.findall(prompt)
        if context.agent == "ranker":
            picks = [shown.index("mathematician") + 1, shown.index("historian") + 1]
            return f"The best are [{picks[0]},{picks[1]}]"
        agent = str(context.agent)
        letter = {1: LAYER1, 2: LAYER2}.get(int(context.round or 1), {"mathematician": "C", "historian": "C"})[agent]
        ratings = ", ".join("5" if who == "mathematician" else "1" for who in shown)
        return f"<<{agent}>> I think ({letter})" + (f" Scores: [[{ratings}]]" if shown else "")


@register_provider("dylanteam")
def _dylanteam(ref: Any, limits: Any, options: Any) -> ScriptedModel:
    return ScriptedModel(respond=Team())


@register_provider("slowteam")
def _slowteam(ref: Any, limits: Any, options: Any) -> ScriptedModel:
    """The same team, 0.3 s per call: a job to stop while its items run."""
    return ScriptedModel(respond=Team(), delay_s=0.3)
