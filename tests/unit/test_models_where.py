"""A model error that ends a run names the call that met it: the node, the agent and the round."""

from __future__ import annotations

from pathlib import Path

import pytest

import agentmesh
from agentmesh.errors import ContextLengthError, ModelError
from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.client import ModelClient
from agentmesh.models.messages import CallContext
from agentmesh.spec import AgentCard, GraphSpec, NodeSpec
from agentmesh.store import Store


def _debate() -> GraphSpec:
    card = AgentCard(name="debater", prompt="{{ question }}{% if previous %} (again){% endif %}")
    return GraphSpec(
        name="small_debate",
        inputs={"question": {"type": "string"}},
        agents={"debater": card},
        nodes={"debate": NodeSpec(op="rounds", agents=["debater", "debater"], rounds=2)},
    )


def test_the_runs_error_names_the_node_agent_and_round_of_the_failed_call(tmp_path: Path) -> None:
    """It named the model and the problem only ("local: the prompt (4127 tokens) exceeds the context window ..."),
    so that a user of a graph with many agents and rounds could not tell whose prompt was too long."""

    def respond(request: ModelRequest, context: CallContext) -> str:
        if context.round == 2:  # what a provider raises knows its model, not where in the run it was called
            raise ContextLengthError("scripted: the prompt exceeds the context window of 16 tokens")
        return "\\boxed{1}"

    model = ScriptedModel(respond=respond)
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    with pytest.raises(ModelError) as caught:
        agentmesh.run(_debate(), {"question": "q"}, model=model, store=db)
    assert str(caught.value).startswith("node 'debate': agent 'debater', round 2: ")
    assert (caught.value.context["node"], caught.value.context["round"]) == ("debate", 2)
    with Store(db) as store:
        (run,) = store.list_runs()
    assert (run.error or "").startswith("node 'debate': agent 'debater', round 2: ")


async def test_a_call_outside_a_run_is_not_given_a_place() -> None:
    client = ModelClient(ScriptedModel([]))
    with pytest.raises(ModelError) as caught:
        await client.complete(ModelRequest.of("hi"))
    assert not str(caught.value).startswith("node ") and "node" not in caught.value.context
