"""The Python API as a script uses it: the mistakes a user makes from Python (inputs that are not a mapping, a model
that is not one, a graph node that cannot run, a function called with the wrong args, items given as dicts) are
refused before anything runs, with what was wrong and what was expected, not a traceback from deep inside."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest

import agentmesh
from agentmesh.datasets import Item
from agentmesh.errors import ConfigError, SpecError
from agentmesh.models import ScriptedModel, get_model
from agentmesh.optimize import optimize
from agentmesh.optimize.items import as_items
from agentmesh.runtime import RunError, register_function
from agentmesh.runtime.operators import NodeOutput, NodeRun, gather_answers
from agentmesh.runtime.replay import fork, replay
from agentmesh.spec import NodeSpec, graph_from_data
from agentmesh.spec.operators import OperatorParams
from agentmesh.store import Store
from agentmesh.systems.magicore import use_reward_functions


def _spec(nodes: dict[str, Any], edges: list[list[str]] | None = None) -> Any:
    return graph_from_data(
        {
            "name": "qa",
            "inputs": {"question": {"type": "string"}},
            "agents": {"a": {"prompt": "{{ question }}", "parser": "boxed_math"}},
            "nodes": nodes,
            "edges": edges or [],
        },
        file="<qa>",
    )


def _db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


def test_inputs_that_are_not_a_mapping_are_refused_naming_the_graph_and_its_inputs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"graph 'debate': inputs must be a mapping .* got str .*takes question"):
        agentmesh.run("debate", "What is 17*3?", model=ScriptedModel(default="1"), store=_db(tmp_path))  # type: ignore[arg-type]


def test_a_model_that_is_neither_a_reference_nor_a_provider_nor_a_client_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"model: expected a reference string .* got int 42"):
        get_model(42)  # type: ignore[arg-type]


def test_a_score_or_rank_node_without_judge_ranker_or_function_fails_at_load() -> None:
    team = {"t": {"op": "team", "agents": ["a", "a"]}}
    with pytest.raises(SpecError, match=r"nodes\.s: needs 'judge' .* or 'function'"):
        _spec({**team, "s": {"op": "score", "from": "t"}}, [["t", "s"]])
    with pytest.raises(SpecError, match=r"nodes\.s: has both 'ranker' \('a'\) and 'function' \('f'\)"):
        _spec({**team, "s": {"op": "rank", "from": "t", "keep": 1, "ranker": "a", "function": "f"}}, [["t", "s"]])
    rounds = {"op": "rounds", "agents": ["a", "a", "a"], "rounds": 3, "rank": {"before_round": 2, "keep": 2}}
    with pytest.raises(SpecError, match=r"needs 'ranker'"):
        _spec({"r": rounds})


def test_an_async_ranking_function_is_awaited_and_a_bad_result_is_named(tmp_path: Path) -> None:
    @register_function("test_pyapi_async_rank")
    async def async_rank(answers: list[dict[str, Any]], keep: int) -> list[int]:
        return [1, 0][:keep]

    @register_function("test_pyapi_bad_rank")
    def bad_rank(answers: list[dict[str, Any]], keep: int) -> Any:
        return "0"

    model = ScriptedModel([{"agent": "a", "responses": [r"\boxed{1}", r"\boxed{2}", r"\boxed{1}", r"\boxed{2}"]}])
    team = {"t": {"op": "team", "agents": ["a", "a"]}}
    spec = _spec(
        {**team, "s": {"op": "rank", "from": "t", "keep": 1, "function": "test_pyapi_async_rank"}}, [["t", "s"]]
    )
    result = agentmesh.run(spec, {"question": "q"}, model=model, store=_db(tmp_path))
    assert result.outputs["s"]["kept"] == [1] and result.answer == "2"
    spec = _spec({**team, "s": {"op": "rank", "from": "t", "keep": 1, "function": "test_pyapi_bad_rank"}}, [["t", "s"]])
    with pytest.raises(RunError, match=r"node 's': ranking function 'test_pyapi_bad_rank' returned str"):
        agentmesh.run(spec, {"question": "q"}, model=model, store=_db(tmp_path))


def test_a_score_function_that_returns_no_number_is_named(tmp_path: Path) -> None:
    @register_function("test_pyapi_none_score")
    def none_score(answer: dict[str, Any], inputs: dict[str, Any]) -> Any:
        return None

    spec = _spec(
        {"t": {"op": "team", "agents": ["a"]}, "s": {"op": "score", "from": "t", "function": "test_pyapi_none_score"}},
        [["t", "s"]],
    )
    with pytest.raises(RunError, match=r"score function 'test_pyapi_none_score' returned NoneType .*expected a number"):
        agentmesh.run(spec, {"question": "q"}, model=ScriptedModel(default="1"), store=_db(tmp_path))


def test_function_args_its_function_cannot_take_are_refused_before_the_run_is_stored(tmp_path: Path) -> None:
    @register_function("test_pyapi_factor")
    def factor(outputs: Any, inputs: Any, *, factor: int, ctx: Any = None) -> dict[str, Any]:
        return {"answer": factor}

    model = ScriptedModel(default=r"\boxed{1}")
    nodes = {"c": {"op": "call", "agent": "a"}, "f": {"op": "function", "function": "test_pyapi_factor"}}
    with Store(_db(tmp_path)) as store:
        for args, why in (({}, r"missing argument\(s\) factor"), ({"facter": 2}, r"unknown argument\(s\) facter")):
            spec = _spec({**nodes, "f": {**nodes["f"], "args": args}}, [["c", "f"]])
            with pytest.raises(ConfigError, match=rf"nodes\.f\.args: function 'test_pyapi_factor': .*{why}.*factor"):
                agentmesh.run(spec, {"question": "q"}, model=model, store=store)
        assert store.list_runs() == [] and model.calls == []  # nothing stored, no call made
        spec = _spec({**nodes, "f": {**nodes["f"], "args": {"factor": 3}}}, [["c", "f"]])
        assert agentmesh.run(spec, {"question": "q"}, model=model, store=store).answer == 3


def test_a_fork_of_a_run_given_a_model_object_says_to_pass_model_again(tmp_path: Path) -> None:
    with Store(_db(tmp_path)) as store:
        done = agentmesh.run("debate", {"question": "q"}, model=ScriptedModel(default=r"\boxed{5}"), store=store)
        with pytest.raises(ConfigError, match=r"the model it ran with, 'scripted:scripted', does not resolve .*model="):
            fork(done.run_id, step="1", store=store)
        forked = fork(done.run_id, step="1", store=store, model=ScriptedModel(default=r"\boxed{5}"))
        assert forked.answer == "5" and forked.served_from_record == 1


def test_optimize_takes_items_as_dicts_and_refuses_none(tmp_path: Path) -> None:
    model = ScriptedModel(
        [{"agent": "ranker", "template": "[1, 2]", "optional": True}],
        respond=lambda request, context: "The answer is (B). [[5, 4, 3, 2, 1, 3, 4]]",
    )
    rows = [{"question": f"Q{i}", "choices": ["a", "b"], "answer": "B"} for i in range(2)]
    result = optimize("dylan_mmlu", rows, top_k=2, model=model, store=_db(tmp_path))
    assert [(i.line, i.gold, i.correct) for i in result.items] == [(1, "B", True), (2, "B", True)]
    with pytest.raises(ConfigError, match=r"optimize of dylan_mmlu: no items"):
        optimize("dylan_mmlu", [], top_k=2, model=model, store=_db(tmp_path))


def test_as_items_names_every_bad_item_by_index() -> None:
    spec = agentmesh.resolve_graph("debate")
    with pytest.raises(
        ConfigError, match=r"(?s)2 bad item\(s\).*items\[1\]: expected an Item .*got str.*items\[2\]: .*questoin"
    ):
        as_items([{"question": "ok"}, "What is 1+1?", {"questoin": "x"}], spec)  # type: ignore[list-item]
    kept = Item(7, {"question": "x"})
    assert as_items([kept], spec) == [kept]


def test_a_budget_may_be_a_mapping_and_a_bad_one_is_named(tmp_path: Path) -> None:
    model = ScriptedModel(default=r"\boxed{1}")
    result = agentmesh.run("self_consistency", {"question": "q"}, model=model, store=_db(tmp_path), budget={"calls": 2})
    assert result.calls == 2 and result.stop_reason is not None and result.stop_reason.startswith("budget: 2 model")
    with pytest.raises(ConfigError, match=r"budget \{'tokns': 3\}: tokns: Extra inputs .*a budget has calls, tokens"):
        agentmesh.run("self_consistency", {"question": "q"}, model=model, store=_db(tmp_path), budget={"tokns": 3})
    with pytest.raises(ConfigError, match=r"budget: expected a Budget .* got int 5"):
        agentmesh.run("self_consistency", {"question": "q"}, model=model, store=_db(tmp_path), budget=5)  # type: ignore[arg-type]


class _OneAgent(OperatorParams):
    agent: str


def test_a_user_operator_that_is_not_async_returns_no_dict_or_asks_an_unknown_agent_is_named(tmp_path: Path) -> None:
    def plain(run: NodeRun) -> Any:  # (a plain def: the mistake)
        return {"answer": 1}

    # refused at the decorator; a wrapper (it may return a coroutine) passes, and what it returns is checked at the node
    with pytest.raises(ConfigError, match=r"operator 'test_pyapi_plain_op': .*plain must be an async function"):
        agentmesh.operator("test_pyapi_plain_op", params=_OneAgent)(plain)

    @agentmesh.operator("test_pyapi_sync_op", params=_OneAgent)
    @functools.wraps(plain)
    def sync_op(run: NodeRun) -> Any:
        return plain(run)

    @agentmesh.operator("test_pyapi_list_op", params=_OneAgent)
    async def list_op(run: NodeRun) -> Any:
        return [1]

    @agentmesh.operator("test_pyapi_asks_op", params=_OneAgent)
    async def asks_op(run: NodeRun) -> NodeOutput:
        assert isinstance(run.params, _OneAgent)
        return await gather_answers(run, [(run.params.agent, 0, {})])

    model = ScriptedModel(default="x")
    for op, agent, message in (
        ("test_pyapi_sync_op", "a", r"operator 'test_pyapi_sync_op' returned dict, not an awaitable: .*async def"),
        ("test_pyapi_list_op", "a", r"operator 'test_pyapi_list_op' returned list \[1\]; expected the node's output"),
        ("test_pyapi_asks_op", "zz", r"node 'n': asks agent 'zz', which the graph does not have \(its agents: a\)"),
    ):
        with pytest.raises(RunError, match=message):
            agentmesh.run(_spec({"n": {"op": op, "agent": agent}}), {"question": "q"}, model=model, store=_db(tmp_path))


def test_magicore_reward_functions_are_checked_by_name_and_by_what_they_return(tmp_path: Path) -> None:
    @register_function("test_pyapi_orm_logit")
    def orm_logit(question: str, solutions: list[str]) -> list[float]:
        return [3.2 for _ in solutions]  # a raw reward-model score, not yet through a sigmoid

    @register_function("test_pyapi_orm")
    def orm(question: str, solutions: list[str]) -> list[float]:
        return [0.9 for _ in solutions]

    @register_function("test_pyapi_prm_odds")
    async def prm_odds(question: str, steps: list[str]) -> list[float]:
        return [0.9, 1.1][: len(steps)]  # a step's probability above 1

    model = ScriptedModel(respond=lambda request, context: "Step 1: 17*3 = 51.\nStep 2: so \\boxed{51}")
    magicore = agentmesh.resolve_graph("magicore")
    with Store(_db(tmp_path)) as store:
        spec = use_reward_functions(magicore, orm="test_pyapi_no_such_orm", prm="test_pyapi_prm_odds")
        with pytest.raises(ConfigError, match=r"nodes\.magicore\.orm_function: unknown function 'test_pyapi_no_such"):
            agentmesh.run(spec, {"question": "What is 17*3?"}, model=model, store=store)
        assert store.list_runs() == [] and model.calls == []  # refused before the run, not after the Solver's calls
        spec = use_reward_functions(magicore, orm="test_pyapi_orm_logit", prm="test_pyapi_prm_odds")
        with pytest.raises(
            RunError, match=r"ORM function 'test_pyapi_orm_logit' returned 3\.2 for solution 0; .*\[0, 1\]"
        ):
            agentmesh.run(spec, {"question": "What is 17*3?"}, model=model, store=store)
        spec = use_reward_functions(magicore, orm="test_pyapi_orm", prm="test_pyapi_prm_odds")
        with pytest.raises(
            RunError, match=r"PRM function 'test_pyapi_prm_odds' returned 1\.1 for step 1; expected a probability"
        ):
            agentmesh.run(spec, {"question": "What is 17*3?"}, model=model, store=store)


def test_listeners_may_be_one_callable_and_a_bad_one_is_refused_before_the_run_is_stored(tmp_path: Path) -> None:
    seen: list[str] = []
    model = ScriptedModel(default=r"\boxed{1}")
    with Store(_db(tmp_path)) as store:
        agentmesh.run(
            "debate", {"question": "q"}, model=model, store=store, listeners=lambda kind, data: seen.append(kind)
        )
        assert seen[0] == "start" and seen[-1] == "stop" and "call" in seen
        with pytest.raises(ConfigError, match=r"listeners: each must be a callable taking \(kind, data\), got str"):
            agentmesh.run("debate", {"question": "q"}, model=model, store=store, listeners=["print"])  # type: ignore[list-item]
        assert len(store.list_runs()) == 1  # the refused run was not stored (it would have stayed "running")


def test_a_fork_checks_the_graphs_functions_before_it_is_stored(tmp_path: Path) -> None:
    calls = {"n": 0}

    @register_function("test_pyapi_fork_fn")
    def counted(outputs: Any, inputs: Any) -> dict[str, Any]:
        calls["n"] += 1
        return {"answer": 1}

    spec = _spec(
        {"c": {"op": "call", "agent": "a"}, "f": {"op": "function", "function": "test_pyapi_fork_fn"}}, [["c", "f"]]
    )
    with Store(_db(tmp_path)) as store:
        done = agentmesh.run(spec, {"question": "q"}, model=ScriptedModel(default="x"), store=store)
        changed = _spec(
            {
                "c": {"op": "call", "agent": "a"},
                "f": {"op": "function", "function": "test_pyapi_fork_fn", "args": {"x": 1}},
            },
            [["c", "f"]],
        )
        with pytest.raises(
            ConfigError, match=r"nodes\.f\.args: function 'test_pyapi_fork_fn': unknown argument\(s\) x"
        ):
            fork(done.run_id, step="1", store=store, graph=changed, model=ScriptedModel(default="x"))
        assert [r.id for r in store.list_runs()] == [done.run_id] and calls["n"] == 1


def test_a_replay_checks_the_graphs_functions_before_it_replays(tmp_path: Path) -> None:
    """A replay was the one way into a graph whose functions nobody had checked, so the function operator checked
    its args at every call; a replay now checks them first, as a run, resume and fork do, in the same words."""
    calls = {"n": 0}

    @register_function("test_pyapi_replay_fn")
    def counted(outputs: Any, inputs: Any, *, k: int = 1) -> dict[str, Any]:
        calls["n"] += 1
        return {"answer": k}

    def spec(args: dict[str, Any]) -> Any:
        return _spec(
            {
                "c": {"op": "call", "agent": "a"},
                "f": {"op": "function", "function": "test_pyapi_replay_fn", "args": args},
            },
            [["c", "f"]],
        )

    with Store(_db(tmp_path)) as store:
        done = agentmesh.run(spec({"k": 2}), {"question": "q"}, model=ScriptedModel(default="x"), store=store)
        assert replay(done.run_id, store=store).identical and calls["n"] == 2
        for args, why in (
            ({"kk": 2}, r"unknown argument\(s\) kk"),
            ({"ctx": 1, "k": 2}, "got an unexpected keyword argument 'ctx'"),
        ):
            with pytest.raises(ConfigError, match=rf"nodes\.f\.args: function 'test_pyapi_replay_fn': {why}"):
                replay(done.run_id, store=store, graph=spec(args))
        assert calls["n"] == 2


def test_a_run_stopped_by_its_call_budget_in_a_parallel_team_replays_identically(tmp_path: Path) -> None:
    with Store(_db(tmp_path)) as store:
        done = agentmesh.run(
            "self_consistency",
            {"question": "q"},
            model=ScriptedModel(default=r"\boxed{3}"),
            store=store,
            budget={"calls": 2},
        )
        assert done.calls == 2  # of the team's five
        report = replay(done.run_id, store=store)
        assert report.divergence is None and report.identical and report.served == 2 and report.answer == "3"


def test_a_graph_that_is_not_a_name_path_or_spec_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"graph: expected a shipped graph's name .* got NoneType None"):
        agentmesh.resolve_graph(None)  # type: ignore[arg-type]


def test_a_spec_derived_with_model_copy_is_checked_before_the_run_is_stored(tmp_path: Path) -> None:
    debate = agentmesh.resolve_graph("debate")
    # model_copy(update=...) skips pydantic's validation: the unknown agent would fail only at its node
    broken = debate.model_copy(
        update={"nodes": {**debate.nodes, "check": NodeSpec(op="call", agent="judge")}, "edges": [("vote", "check")]}
    )
    model = ScriptedModel(default=r"\boxed{1}")
    with Store(_db(tmp_path)) as store:
        with pytest.raises(SpecError, match=r"graph 'debate': nodes\.check\.agent: unknown agent 'judge'"):
            agentmesh.run(broken, {"question": "q"}, model=model, store=store)
        assert store.list_runs() == [] and model.calls == []


def test_a_template_that_guards_a_variable_is_not_refused_for_it_and_renders(tmp_path: Path) -> None:
    prompt = "{{ question }}{% if index is defined %} (voice {{ index }}){% endif %}{{ round | default('') }}"
    spec = graph_from_data(
        {
            "name": "guarded",
            "inputs": {"question": {"type": "string"}},
            "agents": {"a": {"prompt": prompt}},
            "nodes": {"first": {"op": "call", "agent": "a"}, "team": {"op": "team", "agents": ["a", "a"]}},
            "edges": [["first", "team"]],
        }
    )
    model = ScriptedModel(respond=lambda request, context: request.prompt_text)
    result = agentmesh.run(spec, {"question": "q"}, model=model, store=_db(tmp_path))
    assert [a["text"] for a in result.outputs["team"]["answers"]] == ["q (voice 0)", "q (voice 1)"]
    assert result.outputs["first"]["text"] == "q"
    with pytest.raises(SpecError, match=r"undefined variable 'indx'"):  # an unguarded slip is still caught
        graph_from_data({**spec.model_dump(mode="json"), "agents": {"a": {"prompt": "{{ indx }}"}}})


def test_a_fork_takes_its_step_as_an_int_and_names_a_bad_one(tmp_path: Path) -> None:
    with Store(_db(tmp_path)) as store:
        done = agentmesh.run(
            "self_consistency", {"question": "q"}, model=ScriptedModel(default=r"\boxed{3}"), store=store
        )
        forked = fork(done.run_id, step=2, store=store, model=ScriptedModel(default=r"\boxed{4}"))
        assert forked.served_from_record == 2 and store.get_run(forked.run_id).meta["fork"]["from"] == "2"
        for bad in (-1, "", 2.5):
            with pytest.raises(ConfigError, match=r"step .*expected N"):
                fork(done.run_id, step=bad, store=store, model=ScriptedModel(default="x"))  # type: ignore[arg-type]


def test_a_store_given_as_a_path_is_refused_saying_to_give_a_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"store: expected a Store, a database URL .* \(a SQLite file: 'sqlite:///"):
        agentmesh.run("debate", {"question": "q"}, model=ScriptedModel(default="1"), store=tmp_path / "runs.db")  # type: ignore[arg-type]


def test_a_run_id_that_is_not_a_string_is_refused_before_the_run_is_stored(tmp_path: Path) -> None:
    model = ScriptedModel(default="1")
    with Store(_db(tmp_path)) as store:
        for bad in (123, "", " padded"):
            with pytest.raises(ConfigError, match=r"run_id: expected a non-empty string"):
                agentmesh.run("debate", {"question": "q"}, model=model, store=store, run_id=bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match=r"meta: expected a mapping"):
            agentmesh.run("debate", {"question": "q"}, model=model, store=store, meta="x")  # type: ignore[arg-type]
        assert store.list_runs() == [] and model.calls == []
        assert agentmesh.run("debate", {"question": "q"}, model=model, store=store, run_id="mine-1").run_id == "mine-1"


def test_a_scripted_model_built_wrong_in_python_says_so_where_it_is_built(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"rules must be a list of rules .* got dict \(one rule: put it in a list\)"):
        ScriptedModel({"agent": "a", "responses": ["x"]})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"rules\[0\]: unknown field\(s\) respones; a rule has"):
        ScriptedModel([{"agent": "a", "respones": ["x"]}])
    with pytest.raises(ConfigError, match=r"default must be a string \(the reply\), got int"):
        ScriptedModel(default=51)  # type: ignore[arg-type]
    model = ScriptedModel(respond=lambda request, context: 5)  # type: ignore[arg-type,return-value]
    with pytest.raises(
        ConfigError, match=r"respond returned int 5 for the call agent='debater'.*must return the reply"
    ):
        agentmesh.run("debate", {"question": "q"}, model=model, store=_db(tmp_path))


async def test_the_awaitable_every_blocking_form_names_inside_a_running_loop_exists() -> None:
    """Called in a notebook cell, a blocking form says which awaitable to use instead; each name it gives must
    resolve (agentmesh.systems.sejury.acalibrate did not: it lived in .jury only)."""
    import importlib

    from agentmesh.systems import magicore, sejury

    attempts = [
        lambda: agentmesh.run("debate", {"question": "q"}),
        lambda: optimize("dylan_mmlu", [{"question": "q"}], top_k=2),
        lambda: sejury.calibrate("sejury", []),
        lambda: magicore.calibrate("magicore", []),
        lambda: replay("x"),
        lambda: fork("x", step="1"),
    ]
    for attempt in attempts:
        with pytest.raises(ConfigError, match=r"use `await ([\w.]+)\(") as raised:
            attempt()
        found = re.search(r"use `await ([\w.]+)\(", str(raised.value))
        assert found is not None
        module, _, name = found.group(1).rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), found.group(1)


def test_an_empty_model_reference_is_refused_rather_than_running_the_default(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model: an empty reference"):
        agentmesh.run("debate", {"question": "q"}, model=" ", store=_db(tmp_path))


def test_a_job_concurrency_that_is_not_an_integer_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"concurrency must be an integer, at least 1, got '4'"):
        optimize("dylan_mmlu", [{"question": "q"}], top_k=2, model=ScriptedModel(default="x"), concurrency="4")  # type: ignore[arg-type]


def test_a_fork_onto_a_spec_derived_with_model_copy_is_checked_before_it_is_stored(tmp_path: Path) -> None:
    debate = agentmesh.resolve_graph("debate")
    broken = debate.model_copy(update={"output": "nowhere"})  # (model_copy skips validation)
    with Store(_db(tmp_path)) as store:
        done = agentmesh.run(debate, {"question": "q"}, model=ScriptedModel(default=r"\boxed{1}"), store=store)
        with pytest.raises(SpecError, match=r"graph 'debate': output: unknown node 'nowhere'"):
            fork(done.run_id, step="1", store=store, graph=broken, model=ScriptedModel(default="x"))
        assert [r.id for r in store.list_runs()] == [done.run_id]


def test_a_specs_yaml_text_given_as_the_graph_says_how_to_load_it() -> None:
    text = "name: mine\ninputs: {question: {type: string}}\n" + "# a long comment\n" * 30
    with pytest.raises(ConfigError, match=r"looks like a spec's YAML text.*graph_from_data\(yaml\.safe_load\(text\)\)"):
        agentmesh.resolve_graph(text)


def test_a_graph_name_too_long_for_a_file_is_no_graph_not_an_oserror() -> None:
    with pytest.raises(ConfigError, match=r"no graph 'xxx.*not a file, and no built-in of that name"):
        agentmesh.resolve_graph("x" * 300)


def test_magicore_graph_helpers_take_a_graph_name_and_refuse_what_cannot_work() -> None:
    from agentmesh.systems.magicore import use_reward_functions as use
    from agentmesh.systems.magicore import with_calibration

    spec = use("magicore", orm="my_orm", prm="my_prm")  # a shipped graph's name, as run takes it
    params = spec.nodes["magicore"].params
    assert (getattr(params, "orm_function"), getattr(params, "prm_function")) == ("my_orm", "my_prm")  # noqa: B009
    with pytest.raises(ConfigError, match=r"graph 'debate' has no magicore node \(op: magicore\), which use_reward"):
        use("debate", orm="a", prm="b")
    with pytest.raises(ConfigError, match=r"orm must be the name a function was registered under"):
        use("magicore", orm=print, prm="b")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"with_calibration: mu must be a finite number, got nan"):
        with_calibration("magicore", mu=float("nan"), sigma=0.5)
    with pytest.raises(ConfigError, match=r"with_calibration: sigma must be above 0"):
        with_calibration("magicore", mu=1.0, sigma=0.0)
    assert getattr(with_calibration("magicore", mu=0.2, sigma=0.1).nodes["magicore"].params, "sigma") == 0.1  # noqa: B009


def test_optimizing_a_team_whose_rounds_ask_for_no_ratings_is_refused(tmp_path: Path) -> None:
    """Importance flows back through the ratings: without them every agent scored the same and the "top k" was the
    first k by slot."""
    data = {
        "name": "myteam",
        "inputs": {"question": {"type": "string"}},
        "agents": {"a": {"prompt": "{{ question }}", "parser": "boxed_math"}},
        "nodes": {
            "r": {"op": "rounds", "agents": ["a", "a", "a"], "rounds": 2},
            "v": {"op": "vote", "from": "r"},
            "imp": {"op": "function", "function": "dylan_importance", "args": {"source": "r", "answer_from": "v"}},
        },
        "edges": [["r", "v"], ["v", "imp"]],
    }
    model = ScriptedModel(default=r"\boxed{1}")
    with pytest.raises(ConfigError, match=r"'r', which asks them for no ratings.*add 'ratings: \{\}' to node 'r'"):
        optimize(graph_from_data(data), [{"question": "q"}], top_k=1, model=model, store=_db(tmp_path))
    assert model.calls == []
    rated = {**data, "nodes": {**data["nodes"], "r": {**data["nodes"]["r"], "ratings": {}}}}
    result = optimize(graph_from_data(rated), [{"question": "q"}], top_k=1, model=model, store=_db(tmp_path))
    assert len(result.team) == 1


def test_read_items_takes_a_path_as_text(tmp_path: Path) -> None:
    """``read_items("q.jsonl", spec)``, as a script writes it, failed with AttributeError ('str' has no is_dir)."""
    from agentmesh.datasets import read_items

    spec = agentmesh.resolve_graph("debate")
    data = tmp_path / "q.jsonl"
    data.write_text('{"question": "What is 2+2?"}\n{"question": "What is 3+3?"}\n', encoding="utf-8")
    items = read_items(str(data), spec)
    assert [item.inputs["question"] for item in items] == ["What is 2+2?", "What is 3+3?"]
    assert [item.inputs for item in read_items(data, spec)] == [item.inputs for item in items]
    with pytest.raises(ConfigError, match="does not exist"):
        read_items(str(tmp_path / "missing.jsonl"), spec)


def test_text_that_is_not_unicode_is_refused_as_input_and_mended_in_a_reply(tmp_path: Path) -> None:
    """A lone surrogate (a shell's non-UTF-8 byte as Python reads it, half an emoji a server cut at max_tokens)
    can be encoded by no database: the run failed with a UnicodeEncodeError traceback while storing it."""
    spec = agentmesh.resolve_graph("debate")
    with pytest.raises(
        ConfigError, match=r"input 'question': not Unicode text \(a lone surrogate U\+DCE9 at character 3"
    ):
        agentmesh.run(spec, {"question": "caf\udce9?"}, model=ScriptedModel(default="x"), store=_db(tmp_path))
    listed = graph_from_data(
        {
            "name": "listed",
            "inputs": {"question": {"type": "string"}, "notes": {"type": "list", "required": False}},
            "agents": {"a": {"prompt": "{{ question }}"}},
            "nodes": {"n": {"op": "call", "agent": "a"}},
        }
    )
    with pytest.raises(ConfigError, match=r"input 'notes': not Unicode text \(a lone surrogate U\+DCFF at character 1"):
        agentmesh.run(
            listed, {"question": "q", "notes": ["ok", "x\udcff"]}, model=ScriptedModel(default="x"), store=_db(tmp_path)
        )
    with Store(_db(tmp_path)) as store:
        assert store.list_runs() == []
    cut = ScriptedModel(default="\\boxed{7} \ud83d")  # a cut emoji: the high half alone
    result = agentmesh.run(spec, {"question": "What is 3+4?"}, model=cut, store=_db(tmp_path))
    assert result.status == "succeeded" and result.answer == "7"
    assert result.outputs["debate"]["answers"][0]["text"] == "\\boxed{7} \ufffd"
    with Store(_db(tmp_path)) as store:
        calls = store.events(result.run_id, kind="model_call")
        assert calls and all(e.response["choices"][0]["text"] == "\\boxed{7} \ufffd" for e in calls)
