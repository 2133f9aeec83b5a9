"""``examples/compare_models.py`` when no model can answer (every reference mistyped, no key, no server): found
following the README as a new user, it printed a table of errors, stored the run as succeeded and exited 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from agentmesh.store import Store

REPO = Path(__file__).resolve().parents[2]


def test_a_comparison_where_no_model_answered_fails_and_is_stored_as_failed(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    env = {**{k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}, "COLUMNS": "200"}
    command = [
        sys.executable,
        str(REPO / "examples" / "compare_models.py"),
        *("lcoal", "openai:gpt-4o-mini", "-q", "What is 17*3?", "--db", db),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "no model answered any question" in done.stderr
    flat = " ".join(done.stdout.split())
    assert "has no provider prefix" in flat and "OPENAI_API_KEY is not set" in flat  # the table still says why
    with Store(db) as store:
        (run,) = store.list_runs()
    assert run.graph == "compare" and run.status == "failed"
    assert run.error == "no model answered any question (see the table)"
