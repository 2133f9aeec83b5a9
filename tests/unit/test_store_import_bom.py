"""``agentmesh import`` of an export that a Windows editor saved with a byte-order mark: imported as the same run,
as ``run --input-file`` reads such files. It was refused with Python's "Unexpected UTF-8 BOM (decode using
utf-8-sig)"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentmesh.store import Store, event_row
from tests._cli import run_cli


def test_an_export_saved_with_a_bom_is_imported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTMESH_CONFIG", raising=False)
    source, target = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    with Store(source) as store:
        run_id = store.create_run("debate", {"question": "שלום \U0001f389 What is 6*7?"})
        store.record_events(run_id, [event_row("model_call", node="debate", agent="debater", round=1)])
        store.finish_run(run_id, "succeeded", stop_reason="completed")
    exported = tmp_path / "run.json"
    code, _, err = run_cli(["export", run_id, "--db", source, "-o", str(exported)], capsys, monkeypatch)
    assert code == 0, err
    exported.write_bytes(b"\xef\xbb\xbf" + exported.read_bytes())  # as Notepad saves UTF-8

    code, out, err = run_cli(["import", str(exported), "--db", target], capsys, monkeypatch)
    assert code == 0, err
    assert f"imported run {run_id}" in out
    with Store(target) as store:
        imported = store.get_run(run_id)
        assert imported.inputs == {"question": "שלום \U0001f389 What is 6*7?"}
        assert [e.kind for e in store.events(run_id)] == ["model_call"]
    assert json.loads(exported.read_text(encoding="utf-8-sig"))["run"]["id"] == run_id
