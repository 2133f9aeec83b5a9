"""``agentmesh export`` / ``import`` documents (:mod:`agentmesh.store.transfer`): what an import refuses, whole,
and what it stores."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentmesh.errors import StoreError
from agentmesh.store import SCHEMA_VERSION, Store, event_row
from agentmesh.store.transfer import export_run, import_run
from tests._cli import run_cli


def _exported(store: Store) -> dict[str, Any]:
    run_id = store.create_run("g", {"question": "q"}, model="scripted:s.yaml")
    store.record_events(run_id, [event_row("model_call", node="n", agent="a", round=1, call_index=0, attempt=1)])
    store.finish_run(run_id, "succeeded", stop_reason="completed")
    record = store.get_run(run_id)
    return copy.deepcopy(export_run(record, store.events(run_id), None))


def _set(part: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        (document["run"] if part == "run" else document["events"][0])[key] = value

    return change


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (_set("run", "status", "bogus"), "the run: status: Input should be 'running'"),
        (_set("run", "created_at", "yesterday"), "the run: created_at:"),
        (_set("run", "inputs", [1, 2]), "the run: inputs: Input should be a valid dictionary (got [1, 2])"),
        (_set("run", "totals", "lots"), "the run: totals:"),
        (_set("run", "meta", "m"), "the run: meta:"),
        (_set("run", "id", ""), "the run: id: String should have at least 1 character"),
        (_set("event", "round", "x"), "event 0: round: Input should be a valid integer"),
        (_set("event", "created_at", "soon"), "event 0: created_at:"),
        (_set("event", "response", "garbage"), "event 0 (model_call): response should be an object, got str"),
        (_set("event", "request", [1, 2]), "event 0 (model_call): request should be an object, got list [1, 2]"),
        (_set("run", "graph", "g"), None),  # unchanged: the outputs below are at fault
    ],
    ids=[
        "status",
        "date",
        "inputs",
        "totals",
        "meta",
        "empty-id",
        "round",
        "event-date",
        "response",
        "request",
        "outputs",
    ],
)
def test_an_export_with_a_field_of_the_wrong_type_is_refused_by_name_and_nothing_is_stored(
    store_url: str, change: Callable[[dict[str, Any]], None], said: str | None
) -> None:
    """Such a document was stored as it was: a status that is not one made every later `agentmesh runs` of the
    store fail on reading it back, a date that is not one was a traceback, a round that is not a number failed on
    Postgres (and was kept on SQLite)."""
    with Store(store_url) as target:
        document = _exported(target)
        change(document)
        if said is None:  # outputs that are not one object per node broke `agentmesh runs` of the whole store
            document["outputs"] = {"vote": "notadict"}
            said = "'outputs' should map each node to an object, got 'vote': str 'notadict'"
        before = target.count_runs()
        with pytest.raises(StoreError) as caught:
            import_run(target, document, where="run.json", new_id="imported-copy")
        assert str(caught.value).startswith("run.json: ") and said in str(caught.value)
        assert str(caught.value).endswith("nothing imported")
        assert target.count_runs() == before
        target.list_runs()  # the store still reads back


def test_a_run_exported_while_it_ran_is_imported_as_interrupted(store_url: str) -> None:
    """Imported "running", nobody would ever finish it there: `resume` and `delete` refused it (without --force)."""
    with Store(store_url) as store:
        run_id = store.create_run("g", {"question": "q"})
        document = copy.deepcopy(export_run(store.get_run(run_id), store.events(run_id), None))
        copy_id = import_run(store, document, new_id="copy-of-a-running-run")
        imported = store.get_run(copy_id)
        assert (imported.status, imported.stop_reason) == ("interrupted", "interrupted: exported while it was running")
        assert imported.meta["imported_from"] == {
            "run_id": run_id,
            "schema_version": SCHEMA_VERSION,
            "status": "running",
        }
        store.delete_runs([copy_id])  # no --force needed


def test_a_run_exported_while_it_ran_is_imported_with_the_totals_of_its_calls(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A running run's stored totals are summed when it ends: its export carried zeros, and the run imported as
    interrupted was listed and shown with "0 calls, 0 tokens, $0" beside the calls it had made."""
    call = {"node": "n", "agent": "a", "round": 1, "attempt": 1, "prompt_tokens": 100, "completion_tokens": 10}
    with Store(store_url) as store:
        run_id = store.create_run("g", {"question": "q"})
        store.record_events(
            run_id,
            [
                event_row("model_call", call_index=0, total_tokens=110, cost_usd=0.25, **call),
                event_row("model_call", call_index=1, total_tokens=110, cost_usd=0.5, **call),
            ],
        )
        document = copy.deepcopy(export_run(store.get_run(run_id), store.events(run_id), None))  # an older export
        assert document["run"]["totals"]["calls"] == 0
        imported = store.get_run(import_run(store, document, new_id="copy-of-a-running-run"))
        assert imported.status == "interrupted"
        assert {k: imported.totals[k] for k in ("calls", "prompt_tokens", "completion_tokens", "cost_usd")} == {
            "calls": 2,
            "prompt_tokens": 200,
            "completion_tokens": 20,
            "cost_usd": 0.75,
        }
    out = tmp_path / "running.json"
    code, _, err = run_cli(["export", run_id, "-o", str(out), "--db", store_url], capsys, monkeypatch)
    assert code == 0, err
    assert json.loads(out.read_text())["run"]["totals"]["calls"] == 2  # agentmesh export says what it made so far


def test_a_run_moved_back_and_forth_keeps_one_copy_of_its_outputs(store_url: str) -> None:
    """An imported run's outputs are an event of its own; exported again, that event went out beside the document's
    "outputs", and the next import stored both: one more outputs event per round trip."""
    with Store(store_url) as store:
        run_id = store.create_run("g", {"question": "q"})
        store.finish_run(run_id, "succeeded", stop_reason="completed")
        document = export_run(store.get_run(run_id), store.events(run_id), {"vote": {"answer": "4"}})
        for trip in range(3):
            copy_id = import_run(store, copy.deepcopy(document), new_id=f"trip-{trip}")
            assert [e.kind for e in store.events(copy_id)] == ["final_outputs"]
            document = export_run(store.get_run(copy_id), store.events(copy_id), {"vote": {"answer": "4"}})
            assert document["events"] == []
        older = {**document, "events": [{"kind": "final_outputs", "data": {"vote": {"answer": "4"}}}]}
        copy_id = import_run(store, older, new_id="from-an-older-export")  # it carried the outputs twice
        assert [e.kind for e in store.events(copy_id)] == ["final_outputs"]


def test_a_node_result_that_is_not_an_object_does_not_break_the_timeline(tmp_path: Path) -> None:
    """A run imported by an agentmesh that did not check its events: `show` and `report` of it were a TypeError."""
    from agentmesh.timeline import load_timeline

    with Store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        run_id = store.create_run("g", {})
        store.record_events(run_id, [event_row("node_result", node="vote", data=[1])])
        store.finish_run(run_id, "succeeded", stop_reason="completed")
        (step,) = load_timeline(store, run_id).steps
        assert step.node == "vote" and step.summary == {}
