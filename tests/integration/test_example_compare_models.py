"""``examples/compare_models.py`` as a user runs it: a real subprocess, two scripted models, a SQLite store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from agentmesh.store import Store

REPO = Path(__file__).resolve().parents[2]


def test_compare_models_asks_every_model_every_question_and_stores_one_run(tmp_path: Path) -> None:
    one = tmp_path / "one.yaml"
    one.write_text("rules:\n  - {template: 'one says [b]{{ prompt[-5:] }}[/b]'}\n")  # brackets: text, not markup
    two = tmp_path / "two.yaml"
    two.write_text("rules:\n  - {prompt: 'never matches', responses: [x]}\n")  # every call fails: shown, not fatal
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    env = {**os.environ, "COLUMNS": "160"}
    models = [f"scripted:{one}", f"scripted:{two}"]
    questions = ["-q", "What is 17*3?", "-q", "Name a prime."]
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "compare_models.py"), *models, *questions, "--db", db],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "one says [b]17*3?[/b]" in done.stdout and "one says [b]rime.[/b]" in done.stdout
    assert done.stdout.count("no rule") >= 2  # the second model's failures, in its column
    with Store(db) as store:
        (run,) = store.list_runs()
        calls = store.events(run.id, kind="model_call")
    assert run.graph == "compare" and run.status == "succeeded"
    assert len(calls) == 4 and sum(e.error is None for e in calls) == 2
    # each stored call names its model and question, so `agentmesh show` tells the answers apart
    assert sorted((e.agent, e.call_index) for e in calls) == sorted((m, q) for m in models for q in (0, 1))
    assert {e.error is None for e in calls if e.agent == models[0]} == {True}


def test_a_model_that_cannot_be_used_is_a_column_of_errors_not_a_traceback(tmp_path: Path) -> None:
    """The docstring's hosted model without a key (or a reference with a typo): the others are still compared."""
    one = tmp_path / "one.yaml"
    one.write_text("rules:\n  - {template: '51'}\n")
    env = {**{k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}, "COLUMNS": "200"}
    command = [
        sys.executable,
        str(REPO / "examples" / "compare_models.py"),
        *(f"scripted:{one}", "openai:gpt-4o-mini", "-q", "What is 17*3?"),
        *("--db", f"sqlite:///{tmp_path / 'runs.db'}"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "51" in done.stdout and "OPENAI_API_KEY is not set" in " ".join(done.stdout.split())
