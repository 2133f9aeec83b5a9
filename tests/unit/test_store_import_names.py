"""An export whose names hold a NUL character (a document changed or damaged after its export, or one a SQLite
store exported after keeping such a name): refused by field on every backend, nothing imported. It was a driver's
error naming no field on Postgres ("text fields cannot contain NUL") and was stored as it was on SQLite, whose
export of it then could not go to Postgres. Runs on SQLite and, with ``$AGENTMESH_TEST_PG``, Postgres."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agentmesh.errors import StoreError
from agentmesh.store import Store, event_row
from agentmesh.store.transfer import export_run, import_run


def _exported(store: Store) -> dict[str, Any]:
    run_id = store.create_run("debate", {"question": "What is 6*7? \U0001f389 \u05e9\u05dc\u05d5\u05dd"})
    store.record_events(run_id, [event_row("model_call", node="debate", agent="debater", round=1, call_index=0)])
    store.finish_run(run_id, "succeeded", stop_reason="completed")
    return copy.deepcopy(export_run(store.get_run(run_id), store.events(run_id), None))


@pytest.mark.parametrize(
    ("part", "field"),
    [
        ("run", "id"),
        ("run", "graph"),
        ("run", "spec_hash"),
        ("run", "parent_run_id"),
        ("event", "kind"),
        ("event", "node"),
        ("event", "agent"),
        ("event", "request_hash"),
    ],
)
def test_a_name_holding_a_nul_is_refused_by_field_and_nothing_is_stored(store_url: str, part: str, field: str) -> None:
    with Store(store_url) as store:
        document = _exported(store)
        holder = document["run"] if part == "run" else document["events"][0]
        holder[field] = "de\x00bate"
        before = store.count_runs()
        with pytest.raises(StoreError) as caught:
            import_run(store, document, where="run.json", new_id=None if field == "id" else "a-copy")
        said = str(caught.value)
        where = "the run" if part == "run" else "event 0"
        assert said.startswith(f"run.json: {where}: {field}: Value error, a NUL character (\\u0000) at character 2")
        assert said.endswith("nothing imported")
        assert store.count_runs() == before
        store.list_runs()  # the store still reads back


def test_free_text_holding_a_nul_is_still_imported_cleaned(store_url: str) -> None:
    """What is no name (a stop reason, an error, an input) is cleaned as the store cleans what a run writes: the
    check above refuses names only."""
    with Store(store_url) as store:
        document = _exported(store)
        document["run"]["stop_reason"] = "completed\x00 early"
        document["run"]["inputs"]["question"] = "nul\x00 inside"
        copy_id = import_run(store, document, new_id="a-cleaned-copy")
        imported = store.get_run(copy_id)
        assert imported.stop_reason == "completed\ufffd early"
        assert imported.inputs["question"] == "nul\ufffd inside"


@pytest.mark.parametrize("field", ["round", "call_index", "attempt", "prompt_tokens", "completion_tokens"])
def test_an_event_number_beyond_the_columns_range_is_refused_by_field(store_url: str, field: str) -> None:
    """Postgres refused it half-way with the driver's "integer out of range"; SQLite stored it."""
    with Store(store_url) as store:
        document = _exported(store)
        document["events"][0][field] = 2**40
        before = store.count_runs()
        with pytest.raises(StoreError) as caught:
            import_run(store, document, where="run.json", new_id="a-copy")
        said = str(caught.value)
        assert said.startswith(f"run.json: event 0: {field}: Input should be less than or equal to 2147483647")
        assert said.endswith("nothing imported")
        assert store.count_runs() == before
