"""``agentmesh import`` of an export written by a newer agentmesh: its run, events and target sets were read with
``extra="ignore"``, so the fields this version does not know were dropped without a word, and the copy stored was
less than the run. Such an export is now refused, naming the file, the fields and both versions, unless
``--drop-unknown-fields`` (``drop_unknown_fields=True``) asks for what this version knows, and then says what was
dropped. A refused import stores nothing."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from agentmesh.errors import StoreError
from agentmesh.store import SCHEMA_VERSION, Store, event_row
from agentmesh.store.transfer import export_run, import_run, unknown_fields
from tests._cli import run_cli


def _exported(store: Store) -> dict[str, Any]:
    run_id = store.create_run("g", {"question": "q"}, model="scripted:s.yaml")
    store.record_events(
        run_id,
        [event_row("model_call", node="n", agent="a", round=1, call_index=i, attempt=1) for i in range(3)],
    )
    store.finish_run(run_id, "succeeded", stop_reason="completed")
    return copy.deepcopy(export_run(store.get_run(run_id), store.events(run_id), None))


def _from_the_future(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` as a newer agentmesh might write it: a higher schema version and fields this one lacks."""
    document["store_schema_version"] = SCHEMA_VERSION + 1
    document["run"]["priority"] = "high"
    document["events"][0]["sandbox_id"] = "sb-1"
    document["events"][2]["sandbox_id"] = "sb-2"
    document["signature"] = "abc"
    return document


def test_the_unknown_fields_of_a_document_are_named_by_where_they_are(store_url: str) -> None:
    with Store(store_url) as store:
        document = _exported(store)
    assert unknown_fields(document) == []
    assert unknown_fields(_from_the_future(document)) == [
        "signature",
        "run.priority",
        "events[].sandbox_id (2 of 3 events)",
    ]


def test_an_export_by_a_newer_agentmesh_with_unknown_fields_is_refused_and_nothing_is_stored(
    store_url: str,
) -> None:
    with Store(store_url) as store:
        document = _from_the_future(_exported(store))
        before = [(r.id, r.status) for r in store.list_runs()]
        with pytest.raises(StoreError) as caught:
            import_run(store, document, where="run.json", new_id="copy")
        said = str(caught.value)
        assert said.startswith(f"run.json: written by a newer agentmesh (store schema version {SCHEMA_VERSION + 1}; ")
        assert f"this agentmesh's is {SCHEMA_VERSION}" in said
        assert "signature, run.priority, events[].sandbox_id (2 of 3 events)" in said
        assert "nothing imported" in said and "--drop-unknown-fields" in said
        assert caught.value.context["fields"] == unknown_fields(document)
        assert [(r.id, r.status) for r in store.list_runs()] == before  # nothing added, nothing changed

        # asked for: what this version knows is imported
        assert import_run(store, document, where="run.json", new_id="copy", drop_unknown_fields=True) == "copy"
        assert [e.kind for e in store.events("copy")] == ["model_call"] * 3


def test_an_export_of_this_or_an_older_version_is_imported_as_before(store_url: str) -> None:
    """A field this version lacks in an export of its own version or an older one is one it no longer has."""
    with Store(store_url) as store:
        document = _from_the_future(_exported(store))
        document["store_schema_version"] = SCHEMA_VERSION
        assert import_run(store, document, new_id="same") == "same"
        document["store_schema_version"] = SCHEMA_VERSION + 1
        for name in ("signature",):
            del document[name]
        del document["run"]["priority"]
        for event in document["events"]:
            event.pop("sandbox_id", None)
        # newer, but nothing unknown in it: nothing would be lost
        assert import_run(store, document, new_id="newer") == "newer"


def test_import_on_the_command_line_refuses_or_drops_and_says_what(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTMESH_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    source, target = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    with Store(source) as store:
        document = _from_the_future(_exported(store))
    with Store(target) as store:
        kept = store.create_run("kept", {"question": "already here"})
    path = tmp_path / "newer.json"
    path.write_text(json.dumps(document))

    code, out, err = run_cli(["import", str(path), "--db", target], capsys, monkeypatch)
    said = " ".join(err.split())
    assert code == 2 and out == "", said
    assert f"error: {path}: written by a newer agentmesh (store schema version {SCHEMA_VERSION + 1};" in said
    assert "signature, run.priority, events[].sandbox_id (2 of 3 events)" in said
    with Store(target) as store:
        assert [r.id for r in store.list_runs()] == [kept]

    code, out, err = run_cli(["import", str(path), "--db", target, "--drop-unknown-fields"], capsys, monkeypatch)
    said = " ".join(err.split())
    assert code == 0, said
    assert f"imported run {document['run']['id']}" in out
    assert (
        f"dropped 3 fields this agentmesh does not know (export's store schema version {SCHEMA_VERSION + 1}, this "
        f"agentmesh's {SCHEMA_VERSION}): signature, run.priority, events[].sandbox_id (2 of 3 events)" in said
    )
    with Store(target) as store:
        assert {r.id for r in store.list_runs()} == {kept, document["run"]["id"]}
