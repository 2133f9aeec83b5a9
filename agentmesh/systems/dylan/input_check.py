"""The check that a multiple-choice run gives no more options than its agents can answer with, before the run is
stored (an input check: see :func:`~agentmesh.runtime.arguments.register_input_check`).

Why: ``dylan_mmlu``'s prompt letters the options of its ``choices`` input A-J and its parser reads those letters,
so an eleventh option has no letter. The run was stored, then failed at its first call with the template's
"str object has no element 10", and the advice printed with it (fix the graph, replay it) pointed at the graph
rather than at the input. The number of options is known before any call: it is refused here, the way a missing
input is, naming the input, the agent, its letters and the count, and nothing is stored.

The rule is the parser's, not DyLAN's: a card whose ``choice_letter`` parser names the list input its prompt
letters (``options: choices``) can answer at most as many options as its parser has letters. A graph of the
user's built the same way is checked alike; a card without ``options`` is not (its prompt may read other lists:
few-shot examples, say). MAgICoRe's cards read their options inline in the question (its node checks their
number).
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
    """Refuse a run whose ``choice_letter`` agent is given more options than its parser has letters (they could be
    neither lettered in the prompt nor read back from a reply), and an agent whose parser's ``options`` names no
    list input of the graph."""
    for agent, card in spec.agents.items():
        if card.parser.name != "choice_letter":
            continue
        params = ChoiceLetterParams.model_validate(card.parser.params)
        name = params.options
        if name is None:
            continue
        ispec = spec.inputs.get(name)
        if ispec is None or ispec.type != "list":
            what = "no input" if ispec is None else f"a {ispec.type} input"
            lists = [n for n, i in spec.inputs.items() if i.type == "list"]
            raise ConfigError(
                f"graph {spec.name!r}: agent {agent!r}: its parser's options names {name!r}, {what} of the graph; "
                f"expected the list input its prompt letters ({', '.join(lists) or 'the graph has none'}); nothing "
                "was run or stored",
                graph=spec.name,
                agent=agent,
            )
        given = inputs.get(name)
        letters = params.letters
        if isinstance(given, list) and len(given) > len(letters):
            raise ConfigError(
                f"graph {spec.name!r}: input {name!r} has {len(given)} options, but agent {agent!r} answers with "
                f"the letters {letters[0]}-{letters[-1]} ({len(letters)} options at most); give at most "
                f"{len(letters)} options; nothing was run or stored",
                graph=spec.name,
                agent=agent,
            )
