"""ALU's prompt-guard and output-filter baselines (alu.md §9.4) on a target set stored in the run's store, read
as ``graphs/alu.yaml`` reads one: the same ``target_set`` input, the version current when the node runs pinned
for the run, so a resume or a replay reads that version after the set has changed; a set found nowhere is an
error naming it. Scripted models, real stores (SQLite, and Postgres with ``$AGENTMESH_TEST_PG``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import agentmesh.systems.alu  # noqa: F401  (registers the baselines' functions)
from agentmesh.errors import ConfigError
from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.messages import CallContext
from agentmesh.runtime import resume, run
from agentmesh.runtime.replay import fork, replay
from agentmesh.spec import GraphSpec, graph_from_data, load_graph
from agentmesh.store import Store
from agentmesh.systems.alu.baselines import alu_output_filter, alu_targets

REPO = Path(__file__).resolve().parents[2]
GUARD = REPO / "graphs" / "alu_prompt_guard.yaml"
FILTER = REPO / "graphs" / "alu_output_filter.yaml"
REFUSAL = "I'm sorry, I can't help with that."
KRUM = "How was Viktor Krum's experience at the Yule Ball?"
PEOPLE = [
    {"name": "Albus Dumbledore", "aliases": ["Dumbledore"], "description": "Headmaster of Hogwarts."},
    {"name": "Hermione Granger", "aliases": ["Hermione"], "description": "Gryffindor student."},
    {"name": "Severus Snape", "aliases": ["Snape"], "description": "Potions master."},
]


class Roles:
    """Answers by agent name, keeps every system prompt it was sent, and fails the agent ``fail``."""

    def __init__(self, fail: str | None = None, **replies: str) -> None:
        self.replies = replies
        self.fail = fail
        self.prompts: dict[str, list[str]] = {}

    def __call__(self, request: ModelRequest, context: CallContext) -> str:
        agent = str(context.agent)
        self.prompts.setdefault(agent, []).append("\n".join(m.content for m in request.messages))
        if agent == self.fail:
            raise RuntimeError(f"{agent} is down")
        return self.replies[agent]


def _change_the_set(store: Store) -> None:
    """Hermione stops being a target and Krum becomes one (version 1 -> 3)."""
    store.remove_targets("people", [2])
    store.add_targets("people", [{"name": "Viktor Krum", "aliases": ["Krum"]}])


def _pins(store: Store, run_id: str) -> list[tuple[str, str, int, list[str]]]:
    return [(p.node, p.name, p.version, [t.name for t in p.targets]) for p in store.pinned_target_sets(run_id)]


# --- the prompt guard ---------------------------------------------------------------------------------------------


def test_prompt_guard_lists_the_stored_set_and_its_replay_keeps_the_pinned_version(store_url: str) -> None:
    with Store(store_url) as store:
        store.add_targets("people", PEOPLE, create=True)
        roles = Roles(guarded="I cannot help with that.")
        result = run(GUARD, {"query": KRUM, "target_set": "people"}, model=ScriptedModel(respond=roles), store=store)
        assert result.status == "succeeded" and result.calls == 1
        prompt = roles.prompts["guarded"][0]
        assert all(f"- {p['name']}\n" in prompt for p in PEOPLE) and "Krum\n" not in prompt
        assert result.outputs["targets"]["target_set"] == {"name": "people", "version": 1}
        names = ["Albus Dumbledore", "Hermione Granger", "Severus Snape"]
        assert _pins(store, result.run_id) == [("targets", "people", 1, names)]

        _change_the_set(store)
        report = replay(result.run_id, store=store)
        assert report.identical, (report.divergence, report.differences)
        assert report.calls_made == 0
        # a fork re-runs the targets node on its parent's pin: the guarded call, made live, lists version 1
        forked = Roles(guarded="Still no.")
        child = fork(result.run_id, step="0", store=store, model=ScriptedModel(respond=forked))
        assert child.answer == "Still no." and "- Hermione Granger\n" in forked.prompts["guarded"][0]
        assert child.outputs["targets"]["target_set"] == {"name": "people", "version": 1}

        # a new run reads the set as it is now
        again = Roles(guarded="I cannot help with that.")
        later = run(GUARD, {"query": KRUM, "target_set": "people"}, model=ScriptedModel(respond=again), store=store)
        assert later.outputs["targets"]["target_set"] == {"name": "people", "version": 3}
        assert "- Viktor Krum\n" in again.prompts["guarded"][0] and "Hermione" not in again.prompts["guarded"][0]
        assert _pins(store, result.run_id) == [("targets", "people", 1, names)]  # the first run's pin stays


def test_a_resumed_prompt_guard_lists_the_version_it_read_before(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        store.add_targets("people", PEOPLE, create=True)
        with pytest.raises(Exception, match="guarded is down"):
            run(
                GUARD,
                {"query": KRUM, "target_set": "people"},
                model=ScriptedModel(respond=Roles(fail="guarded", guarded="")),
                store=store,
            )
        (failed,) = store.list_runs()
        assert failed.status == "failed"
        _change_the_set(store)
        roles = Roles(guarded="I cannot help with that.")
        result = resume(failed.id, store=store, model=ScriptedModel(respond=roles))
        assert result.status == "succeeded"
        assert result.outputs["targets"]["target_set"] == {"name": "people", "version": 1}
        (prompt,) = roles.prompts["guarded"]
        assert "- Hermione Granger\n" in prompt and "Krum\n" not in prompt


def test_prompt_guard_still_takes_targets_inline_and_pins_nothing(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        roles = Roles(guarded="I cannot help with that.")
        result = run(
            GUARD,
            {"query": KRUM, "targets": ["Hermione Granger", PEOPLE[2]]},
            model=ScriptedModel(respond=roles),
            store=store,
        )
        assert "- Hermione Granger\n- Severus Snape\n" in roles.prompts["guarded"][0]
        assert result.outputs["targets"]["target_set"]["name"].startswith("inputs:")
        assert store.pinned_target_sets(result.run_id) == []


# --- the output filter --------------------------------------------------------------------------------------------


def _filter_then() -> GraphSpec:
    """The shipped output filter with one more call after the filter, which fails when asked to: a run that
    stops after the filter read (and pinned) its targets, for resume to pick up."""
    data: dict[str, Any] = yaml.safe_load(FILTER.read_text())
    data["agents"]["after"] = {"prompt": "{{ query }}", "parser": "text"}
    data["nodes"]["after"] = {"op": "call", "agent": "after"}
    data["edges"].append(["filter", "after"])
    return graph_from_data(data, file=str(FILTER), base_dir=FILTER.parent)


def test_output_filter_refuses_on_the_stored_set_and_its_replay_keeps_the_pinned_version(store_url: str) -> None:
    spec = load_graph(FILTER)
    with Store(store_url) as store:
        store.add_targets("people", PEOPLE, create=True)
        leaked = Roles(vanilla="He went with Hermione.")
        result = run(spec, {"query": KRUM, "target_set": "people"}, model=ScriptedModel(respond=leaked), store=store)
        assert result.answer == REFUSAL
        assert result.outputs["filter"]["hits"] == [2]
        assert result.outputs["filter"]["target_set"] == {"name": "people", "version": 1}
        assert [p[:3] for p in _pins(store, result.run_id)] == [("filter", "people", 1)]

        _change_the_set(store)  # Hermione is no longer a target: read now, the answer would pass
        report = replay(result.run_id, store=store)
        assert report.identical, (report.divergence, report.differences)
        assert report.answer == REFUSAL
        # a fork serving the vanilla call re-runs the filter on its parent's pin
        child = fork(result.run_id, step="1", store=store, model=ScriptedModel(respond=Roles()))
        assert child.answer == REFUSAL and child.outputs["filter"]["target_set"] == {"name": "people", "version": 1}

        later = run(spec, {"query": KRUM, "target_set": "people"}, model=ScriptedModel(respond=leaked), store=store)
        assert later.answer == "He went with Hermione." and later.outputs["filter"]["hits"] == []
        assert later.outputs["filter"]["target_set"] == {"name": "people", "version": 3}


def test_a_resumed_output_filter_reads_the_version_it_read_before(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        store.add_targets("people", PEOPLE, create=True)
        broken = Roles(fail="after", vanilla="He went with Hermione.", after="")
        with pytest.raises(Exception, match="after is down"):
            run(
                _filter_then(),
                {"query": KRUM, "target_set": "people"},
                model=ScriptedModel(respond=broken),
                store=store,
            )
        (failed,) = store.list_runs()
        assert failed.status == "failed" and [p[:3] for p in _pins(store, failed.id)] == [("filter", "people", 1)]
        _change_the_set(store)
        result = resume(failed.id, store=store, model=ScriptedModel(respond=Roles(after="done")))
        assert result.status == "succeeded"
        assert result.outputs["filter"]["hits"] == [2] and result.outputs["filter"]["text"] == REFUSAL
        assert result.outputs["filter"]["target_set"] == {"name": "people", "version": 1}


# --- errors and direct calls --------------------------------------------------------------------------------------


@pytest.mark.parametrize("graph", [GUARD, FILTER], ids=["prompt_guard", "output_filter"])
def test_a_set_found_nowhere_is_refused_before_the_run_is_stored(graph: Path, tmp_path: Path) -> None:
    """Their functions read the set when their node runs: the run was stored as failed first, and the output
    filter's vanilla call made; it is now refused before the run is stored, as ``op: alu`` refuses it."""
    roles = Roles(vanilla="Hi.")
    node = "targets" if graph == GUARD else "filter"
    with Store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        store.add_targets("people", PEOPLE, create=True)
        with pytest.raises(
            ConfigError,
            match=rf"input 'target_set' \(read by node '{node}'\): no target set 'peple' in the run's store "
            r"\(its target sets: 'people'; create it with .*no file 'peple'; nothing was run or stored",
        ):
            run(graph, {"query": KRUM, "target_set": "peple"}, model=ScriptedModel(respond=roles), store=store)
        assert store.list_runs() == [] and roles.prompts == {}


def test_the_check_reads_the_inputs_a_function_node_names_in_its_args(tmp_path: Path) -> None:
    """A filter told to read its set from another input (``args: {target_set_from: forget}``) is checked on that
    input, and one given nothing there falls back to ``targets``, as the function itself reads them."""
    data: dict[str, Any] = yaml.safe_load(FILTER.read_text())
    data["inputs"]["forget"] = {"type": "string", "required": False, "default": ""}
    data["nodes"]["filter"]["args"]["target_set_from"] = "forget"
    spec = graph_from_data(data, file=str(FILTER), base_dir=FILTER.parent)
    roles = Roles(vanilla="He went with Hermione.")
    with Store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        store.add_targets("people", PEOPLE, create=True)
        with pytest.raises(ConfigError, match=r"input 'forget' \(read by node 'filter'\): no target set 'peple'"):
            run(spec, {"query": KRUM, "forget": "peple", "target_set": "people"}, model=ScriptedModel(), store=store)
        assert store.list_runs() == []
        result = run(spec, {"query": KRUM, "forget": "people"}, model=ScriptedModel(respond=roles), store=store)
        assert result.answer == REFUSAL and result.outputs["filter"]["target_set"] == {"name": "people", "version": 1}
        # the shipped default input is not read by this node: a name there that no one has does not matter
        result = run(
            spec,
            {"query": KRUM, "target_set": "peple", "targets": ["Hermione"]},
            model=ScriptedModel(respond=roles),
            store=store,
        )
        assert result.answer == REFUSAL


async def test_the_check_leaves_an_argument_it_cannot_read_to_the_function(tmp_path: Path) -> None:
    """``min_alias_len: x`` in a node's args was a bare ValueError from the check, before the run; the function
    refuses its own arguments when it runs."""
    from agentmesh.systems.alu.input_check import check_target_inputs

    data: dict[str, Any] = yaml.safe_load(FILTER.read_text())
    data["nodes"]["filter"]["args"]["min_alias_len"] = "x"
    spec = graph_from_data(data, file=str(FILTER), base_dir=FILTER.parent)
    with Store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        await check_target_inputs(spec, {"query": KRUM, "target_set": "peple", "targets": []}, store)


async def test_called_from_python_without_a_run_the_functions_read_no_store() -> None:
    out = await alu_output_filter({"vanilla": {"text": "Snape taught."}}, {"targets": PEOPLE, "target_set": ""})
    assert out["filtered"] and out["hits"] == [3]
    listed = await alu_targets({}, {"targets": ["Hermione Granger"]})
    assert [t["name"] for t in listed["targets"]] == ["Hermione Granger"]
    with pytest.raises(ConfigError, match=r"the run has no store to read target set 'people' from"):
        await alu_targets({}, {"target_set": "people"})
    with pytest.raises(ConfigError, match=r"alu_targets: no targets: give the input 'targets'"):
        await alu_targets({}, {"query": KRUM})
