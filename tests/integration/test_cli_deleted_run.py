"""``agentmesh run`` whose run another shell deletes (``agentmesh delete --force``) while it runs: the command says
the run was deleted and nothing of it is stored -- not "it is stored: continue it with agentmesh resume", advice
for a run that is no longer there."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from agentmesh.store import Store

_AGENTMESH = str(Path(sys.executable).parent / "agentmesh")


def _running_run(url: str, deadline: float) -> str:
    while time.monotonic() < deadline:
        with Store(url) as store:
            found = [r for r in store.list_runs() if r.status == "running"]
        if found:
            return found[0].id
        time.sleep(0.2)
    raise AssertionError("the run was never stored as running")


def test_a_run_deleted_while_the_command_runs_it_is_reported_as_deleted(tmp_path: Path) -> None:
    script = tmp_path / "slow.yaml"
    answers = ", ".join(f'"\\\\boxed{{{i}}}"' for i in range(40))  # never agreeing: the debate goes on
    script.write_text(f"delay_s: 1.0\nrules:\n  - responses: [{answers}]\n")
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    Store(url).close()  # the database exists before the command opens it
    command = [_AGENTMESH, "run", "debate", "-i", "question=Q?", "-m", f"scripted:{script}", "--db", url, "--json"]
    child = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run_id = _running_run(url, time.monotonic() + 120)
        deleted = subprocess.run(
            [_AGENTMESH, "delete", "--force", "-y", "--db", url, run_id],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert deleted.returncode == 0, deleted.stderr
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    said = " ".join(err.split())
    assert child.returncode != 0
    assert (
        f"run {run_id} failed: it was deleted while it ran (agentmesh delete --force), so nothing of it is stored"
        in (said)
    ), err
    assert "it is stored:" not in said and "agentmesh resume" not in said, err  # (the advice for a stored run)
    assert json.loads(out)["status"] == "deleted"
    with Store(url) as store:
        assert store.list_runs() == []
