"""The check that a multiple-choice run gives no more options than its agents can answer with, before the run is
stored (an input check: see :func:`~agentmesh.runtime.arguments.register_input_check`).

Why: ``dylan_mmlu``'s prompt letters the options of its ``choices`` input A-J and its parser reads those letters,
so an eleventh option has no letter. The run was stored, then failed at its first call with the template's
"str object has no element 10", and the advice printed with it (fix the graph, replay it) pointed at the graph
rather than at the input. The number of options is known before any call: it is refused here, the way a missing
input is, naming the input, the agent, its letters and the count, and nothing is stored.

The rule is the parser's, not DyLAN's: a card whose parser is ``choice_letter`` and whose prompt reads a list
input can answer at most as many options as its parser has letters. A graph of the user's built the same way is
checked alike; MAgICoRe's cards read their options inline in the question (its node checks their number).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agentmesh.errors import ConfigError
from agentmesh.parsers.choice import ChoiceLetterParams
from agentmesh.runtime.arguments import register_input_check
from agentmesh.spec.graph import GraphSpec

if TYPE_CHECKING:  # (a check is given the run's store; this one does not read it)
    from agentmesh.store import Store

__all__ = ["check_choice_count"]


@register_input_check("choice_letters")
def check_choice_count(spec: GraphSpec, inputs: Mapping[str, Any], store: Store) -> None:
    """Refuse a list input that a ``choice_letter`` agent's prompt reads when it holds more items than the agent's
    parser has letters (they could be neither lettered in the prompt nor read back from a reply)."""
    for agent, card in spec.agents.items():
        if card.parser.name != "choice_letter":
            continue
        letters = ChoiceLetterParams.model_validate(card.parser.params).letters
        read = card.template_variables()
        for name, ispec in spec.inputs.items():
            given = inputs.get(name)
            if ispec.type != "list" or name not in read or not isinstance(given, list) or len(given) <= len(letters):
                continue
            raise ConfigError(
                f"graph {spec.name!r}: input {name!r} has {len(given)} options, but agent {agent!r} answers with "
                f"the letters {letters[0]}-{letters[-1]} ({len(letters)} options at most); give at most "
                f"{len(letters)} options; nothing was run or stored",
                graph=spec.name,
                agent=agent,
            )
