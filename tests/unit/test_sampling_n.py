"""An agent card's ``sampling.n`` above 1: refused wherever it can be set, never a silent loss of samples.

Every operator takes one answer per model call (a vote counts one per agent slot), so a card asking the model for
five samples got one answer and paid for five. Such a card now fails when it loads (its file, line and field, and
what to write instead), ``RunContext.ask`` refuses it before any call, and Python code that wants every sample of
one call asks for them with ``RunContext.ask_samples``, recorded and replayed like any call.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agentmesh import operator
from agentmesh.errors import SpecError
from agentmesh.models import ModelClient, ScriptedModel
from agentmesh.models.messages import Sampling
from agentmesh.runtime import run
from agentmesh.runtime.budget import BudgetTracker
from agentmesh.runtime.context import RunContext, RunError
from agentmesh.runtime.operators.registry import NodeOutput, NodeRun
from agentmesh.runtime.replay import replay
from agentmesh.spec import GraphSpec, graph_from_data
from agentmesh.spec.agent import AgentCard
from agentmesh.spec.loader import load_agent, load_graph
from agentmesh.spec.operators import OperatorParams
from agentmesh.store import Store
from tests._cli import run_cli

CARD = """\
name: solver
prompt: "Solve {{ question }}"
parser: boxed_math
sampling:
  temperature: 0.7
  n: 5
"""

#: What the refusal says, whichever way the card came in.
WHY = (
    "n: 5 asks the model for 5 samples per call, but every operator takes one answer per call (a vote counts one "
    "per agent slot), so 4 of them would be paid for and dropped; for 5 independent answers leave n at 1 and list "
    "the agent 5 times in a team or rounds node (agents: [solver, solver, solver, ...], as "
    "graphs/self_consistency.yaml does), or use a method's own sample count (magicore's k); Python code that wants "
    "every sample of one call passes n to RunContext.ask_samples"
)


def _graph(agents: str) -> str:
    return textwrap.dedent(
        """\
        name: sc
        inputs:
          question: {type: string}
        agents:
        %s
        nodes:
          sample: {op: team, agents: [solver, solver]}
          vote: {op: vote, from: sample}
        edges:
          - [sample, vote]
        """
    ) % textwrap.indent(agents, "  ")


def _db(tmp_path: Path) -> str:
    """A store of the test's own: a run given none is stored in the default database of the working directory."""
    return f"sqlite:///{tmp_path / 'runs.db'}"


def test_a_card_file_with_n_above_one_fails_at_its_n_line(tmp_path: Path) -> None:
    card = tmp_path / "solver.yaml"
    card.write_text(CARD)
    with pytest.raises(SpecError) as caught:
        load_agent(card)
    assert str(caught.value) == f"{card}:6: sampling.n: {WHY}"
    assert caught.value.context["line"] == 6 and caught.value.context["field"] == "sampling.n"


def test_a_graph_using_that_card_by_path_names_the_card_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "solver.yaml").write_text(CARD)
    graph = tmp_path / "sc.yaml"
    graph.write_text(_graph("solver: solver.yaml"))
    with pytest.raises(SpecError) as caught:
        load_graph(graph)
    assert str(caught.value) == f"{graph}:5: agents.solver: in card solver.yaml: {tmp_path / 'solver.yaml'}:6: " + (
        f"sampling.n: {WHY}"
    )


def test_an_inline_card_with_n_above_one_fails_at_its_n_line_in_the_graph(tmp_path: Path) -> None:
    graph = tmp_path / "sc.yaml"
    graph.write_text(_graph("solver:\n" + textwrap.indent(CARD.removeprefix("name: solver\n"), "  ")))
    with pytest.raises(SpecError) as caught:
        load_graph(graph)
    assert str(caught.value) == f"{graph}:10: agents.solver.sampling.n: {WHY}"


def test_n_one_said_out_loud_still_loads(tmp_path: Path) -> None:
    card = tmp_path / "solver.yaml"
    card.write_text(CARD.replace("n: 5", "n: 1"))
    assert load_agent(card).sampling.n == 1


def test_a_graph_built_in_python_refuses_the_card_too() -> None:
    card = AgentCard(name="solver", prompt="Solve {{ question }}", sampling=Sampling(n=5))
    with pytest.raises(ValidationError, match=r"agents\.solver\.sampling\.n: n: 5 asks the model for 5 samples"):
        GraphSpec.model_validate(
            {
                "name": "sc",
                "inputs": {"question": {"type": "string"}},
                "agents": {"solver": card},
                "nodes": {"sample": {"op": "team", "agents": ["solver"]}},
            }
        )


def test_the_cli_validate_command_prints_the_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "solver.yaml").write_text(CARD)
    graph = tmp_path / "sc.yaml"
    graph.write_text(_graph("solver: solver.yaml"))
    monkeypatch.setenv("COLUMNS", "1000")
    code, _, err = run_cli(["graph", "validate", str(graph)], capsys, monkeypatch)
    assert code == 2
    assert "solver.yaml:6: sampling.n: n: 5 asks the model for 5 samples per call" in " ".join(err.split())


# --- the Python path: RunContext.ask and ask_samples ----------------------------------------------------------


class _AskParams(OperatorParams):
    agent: str
    n: int | None = None  # None: ask; a number: ask_samples with it

    def agents_used(self) -> list[tuple[str, str]]:
        return [("agent", self.agent)]


@operator("test_sampling_n_asks", params=_AskParams)
async def _asks(run: NodeRun) -> NodeOutput:
    """A user's operator: one ``ask``, or one ``ask_samples`` when its node gives ``n``."""
    p = run.params
    assert isinstance(p, _AskParams)
    card = run.ctx.spec.agents[p.agent]
    variables = run.ctx.variables(run.outputs, card, {})
    if p.n is None:
        answer = await run.ctx.ask(node=run.call_node, agent=p.agent, slot=0, round=0, variables=variables)
        return {"answers": [answer.model_dump()]}
    answers = await run.ctx.ask_samples(node=run.call_node, agent=p.agent, slot=0, round=0, variables=variables, n=p.n)
    return {"answers": [a.model_dump() for a in answers], "keys": [a.key for a in answers]}


def _asking_spec(n: int | None = None) -> GraphSpec:
    node: dict[str, Any] = {"op": "test_sampling_n_asks", "agent": "solver", **({"n": n} if n is not None else {})}
    return graph_from_data(
        {
            "name": "asks",
            "inputs": {"question": {"type": "string"}},
            "agents": {"solver": {"prompt": "Solve {{ question }}", "parser": "boxed_math"}},
            "nodes": {"only": node},
        }
    )


def test_a_spec_derived_with_model_copy_is_refused_before_the_run_calls_anything(tmp_path: Path) -> None:
    """``model_copy`` skips validation; the run checks the spec it is given as its file would be."""
    spec = _asking_spec()
    several = spec.agents["solver"].model_copy(update={"sampling": Sampling(n=3)})
    spec = spec.model_copy(update={"agents": {"solver": several}})
    model = ScriptedModel(default=r"\boxed{1}")
    with pytest.raises(SpecError, match=r"agents\.solver\.sampling\.n: n: 3 asks the model for 3 samples per call"):
        run(spec, {"question": "1+1?"}, model=model, store=_db(tmp_path))
    assert model.calls == []


async def test_ask_refuses_a_card_with_n_above_one_before_calling_the_model() -> None:
    """A user's operator driving a RunContext whose spec was never checked: ``ask`` itself refuses the card."""
    spec = _asking_spec()
    several = spec.agents["solver"].model_copy(update={"sampling": Sampling(n=3)})
    model = ScriptedModel(default=r"\boxed{1}")
    ctx = RunContext(
        run_id="r",
        spec=spec.model_copy(update={"agents": {"solver": several}}),
        model=ModelClient(model),
        store=None,
        budget=BudgetTracker([]),
        inputs={"question": "1+1?"},
    )
    with pytest.raises(RunError) as caught:
        await ctx.ask(node="only", agent="solver", slot=0, round=0, variables={"question": "1+1?"})
    assert str(caught.value) == (
        "node 'only': agent 'solver': its sampling.n is 3, but ask returns one answer per call, so 2 samples would "
        "be paid for and dropped; give the card n: 1 and ask the agent once per answer (a slot each), or call "
        "RunContext.ask_samples(..., n=3) for every sample of one call"
    )
    assert model.calls == [] and ctx.calls_made == 0  # nothing paid for
    # every sample of that call is there for whoever asks for them
    answers = await ctx.ask_samples(node="only", agent="solver", slot=0, round=0, variables={"question": "?"}, n=3)
    assert [a.text for a in answers] == [r"\boxed{1}"] * 3 and ctx.calls_made == 1


def test_ask_samples_returns_every_sample_recorded_and_replayed(tmp_path: Path) -> None:
    model = ScriptedModel([{"agent": "solver", "responses": [r"\boxed{4}", r"\boxed{5}", r"\boxed{4}"]}])
    with Store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        result = run(_asking_spec(3), {"question": "2+2?"}, model=model, store=store)
        assert result.outputs["only"]["keys"] == ["4", "5", "4"]
        assert [a["slot"] for a in result.outputs["only"]["answers"]] == [0, 0, 0]
        assert result.calls == 1 and len(model.calls) == 3  # one call; the scripted model lists each sample
        (event,) = [e for e in store.events(result.run_id) if e.kind == "model_call"]
        assert event.request is not None and event.request["sampling"]["n"] == 3
        assert [c["text"] for c in (event.response or {})["choices"]] == [r"\boxed{4}", r"\boxed{5}", r"\boxed{4}"]
        report = replay(result.run_id, store=store)
    assert report.identical and report.calls_made == 0 and report.served == 1


def test_ask_samples_refuses_a_model_that_returns_fewer_samples_than_asked(tmp_path: Path) -> None:
    """A server that ignores ``n`` answers once: said, not passed on as fewer answers."""
    model = ScriptedModel(respond=lambda request, context: r"\boxed{1}")
    original = model.complete

    async def one_choice(request: Any, context: Any = None, **kwargs: Any) -> Any:
        response = await original(request, context, **kwargs)
        return response.model_copy(update={"choices": response.choices[:1]})

    model.complete = one_choice  # type: ignore[method-assign]
    with pytest.raises(RunError, match=r"asked the model for 2 samples and it returned 1 \(some servers ignore n"):
        run(_asking_spec(2), {"question": "1?"}, model=model, store=_db(tmp_path))


@pytest.mark.parametrize("n", [0, 129])
def test_ask_samples_needs_a_sample_count_in_range(n: int, tmp_path: Path) -> None:
    model = ScriptedModel(default=r"\boxed{1}")
    with pytest.raises(RunError, match=rf"ask_samples needs n, a whole number from 1 to 128; got {n}\n"):
        run(_asking_spec(n), {"question": "1?"}, model=model, store=_db(tmp_path))
    assert model.calls == []


def test_an_n_inherited_through_extends_says_where_it_comes_from(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(CARD)
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\nname: checker\nrole: checks\n")
    with pytest.raises(SpecError, match=r"RunContext\.ask_samples \(n is set in a card this one extends\)$"):
        load_agent(child)


def test_a_run_an_earlier_agentmesh_stored_with_n_above_one_stays_readable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs stored before cards were refused ``n`` > 1 keep their record: ``show``, ``export`` and the stored
    outputs read their spec as it was (the run kept each call's first sample); asking a model again -- a replay --
    is refused at its call, saying why. They used to fail at the spec, even for ``export``."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    stored, _ = _asking_spec().canonical()
    stored["agents"]["solver"]["sampling"] = {"n": 3}  # what a run of an earlier agentmesh could store
    with Store(url) as store:
        old = store.create_run("asks", {"question": "1+1?"}, meta={"spec": stored}, model="scripted")
        store.finish_run(old, "succeeded", stop_reason="completed: every node ran")
    code, out, err = run_cli(["show", old, "--db", url], capsys, monkeypatch)
    assert code == 0 and "stored spec" not in err, err
    code, out, err = run_cli(["export", old, "--db", url], capsys, monkeypatch)
    assert code == 0 and '"n": 3' in out, err
    with pytest.raises(RunError, match=r"agent 'solver': its sampling.n is 3, but ask returns one answer per call"):
        replay(old, store=url)
    with pytest.raises(SpecError, match=r"sampling\.n: n: 3 asks the model for 3 samples per call"):
        graph_from_data(stored)  # a new run of that spec is refused as before


@pytest.mark.parametrize("field", ["n", "max_tokens", "seed", "top_logprobs"])
def test_a_boolean_for_a_whole_number_of_sampling_is_refused(field: str, tmp_path: Path) -> None:
    """pydantic reads ``true`` as 1 for an int: ``n: true`` loaded as one sample, ``max_tokens: yes`` as one
    token. Budgets refused booleans already; sampling does too, at the card's line."""
    card = tmp_path / "solver.yaml"
    card.write_text(f"name: solver\nprompt: Solve {{{{ question }}}}\nsampling:\n  {field}: true\n")
    with pytest.raises(SpecError, match=rf"solver\.yaml:4: sampling\.{field}: .*expected a whole number, got true"):
        load_agent(card)
