"""``agentmesh run --json`` of a run that fails still prints JSON on stdout: its run id, status and error (a
script reading stdout got nothing, and had to parse the run id out of the message on stderr; a batch's ``--json``
has always listed its failed items)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentmesh.store import Store
from tests._cli import run_cli


def test_run_json_of_a_failed_run_prints_its_id_status_and_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTMESH_CONFIG", raising=False)
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    script = tmp_path / "none.yaml"
    script.write_text("rules:\n  - {agent: nobody, template: x}\n")  # no rule for the debaters: the run fails

    code, out, err = run_cli(
        ["run", "debate", "-i", "question=hi", "-m", f"scripted:{script}", "--db", db, "--json"], capsys, monkeypatch
    )
    assert code == 1  # the run failed at run time (its model had no rule): a failure of the work
    assert "no rule left" in err  # the error and the advice stay on stderr
    printed = json.loads(out)
    with Store(db) as store:
        (run,) = store.list_runs()
    assert printed["run_id"] == run.id and printed["status"] == "failed" == run.status
    assert printed["answer"] is None and printed["graph"] == "debate"
    assert "no rule left" in printed["error"] and printed["error"] == run.error
