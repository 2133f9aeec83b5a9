"""A run still marked running (a batch in progress in another process, or a run a SIGKILL left so) is listed and
shown with the calls it has made so far: its stored totals are summed only when it ends, and ``agentmesh runs`` and
``show`` said "0 calls, 0 tokens" beside a timeline of its calls. Runs on SQLite and, with ``$AGENTMESH_TEST_PG``,
Postgres."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentmesh.store import Store, event_row
from tests._cli import run_cli


def _call(index: int, *, cost: float | None = 0.001, error: str | None = None) -> dict[str, object]:
    return event_row(
        "model_call",
        node="debate",
        agent="debater",
        round=1,
        call_index=index,
        attempt=1,
        prompt_tokens=None if error else 60,
        completion_tokens=None if error else 7,
        total_tokens=None if error else 67,
        cost_usd=None if error else cost,
        error=error,
    )


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTMESH_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def test_a_running_run_is_listed_and_shown_with_its_calls_so_far(
    store_url: str, cli_env: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store(store_url) as store:
        running = store.create_run("debate", {"question": "What is 6*7?"})
        store.record_events(running, [_call(0), _call(1), _call(2, error="server said 500")])
        idle = store.create_run("debate", {"question": "What is 1*1?"})  # running, no call yet
        finished = store.create_run("debate", {"question": "What is 2*2?"})
        store.record_events(finished, [_call(0)])
        store.finish_run(finished, "failed", error="stopped")
        stored_totals = store.get_run(running).totals

    code, out, err = run_cli(["runs", "--db", store_url, "--json"], capsys, monkeypatch)
    assert code == 0, err
    listed = {r["id"]: r for r in json.loads(out)}
    assert listed[running]["status"] == "running"
    assert listed[running]["totals"] == {
        "calls": 3,
        "prompt_tokens": 120,
        "completion_tokens": 14,
        "total_tokens": 134,
        "cost_usd": pytest.approx(0.002),
        "estimated_tokens": False,
        "errors": 1,
    }
    assert listed[idle]["totals"]["calls"] == 0
    assert listed[finished]["totals"]["calls"] == 1  # finished runs: their stored totals, as ever

    code, out, err = run_cli(["runs", "--db", store_url], capsys, monkeypatch)
    cells = [c.strip() for c in next(line for line in out.splitlines() if running[:12] in line).split("│")]
    assert cells[-5:-2] == ["3", "134", "$0.002000"]  # calls, tokens, cost (then created)

    code, out, err = run_cli(["show", running, "--db", store_url], capsys, monkeypatch)
    assert code == 0, err
    assert "calls 3   tokens 120 in + 14 out" in " ".join(out.split("│"))
    assert "errors 1" in out

    # the run's page and a diff read the same figures (they said 0 calls, 0 tokens and no cost)
    page = Path("running.html")
    code, out, err = run_cli(["report", running, "--db", store_url, "-o", str(page)], capsys, monkeypatch)
    assert code == 0, err
    html = page.read_text(encoding="utf-8")
    assert "<td>calls</td><td>3 (1 failed)</td>" in html and "<td>tokens</td><td>120 in + 14 out</td>" in html
    code, out, err = run_cli(["diff", running, finished, "--db", store_url], capsys, monkeypatch)
    assert code == 0, err
    calls_row = next(line for line in out.splitlines() if line.startswith("│ calls"))
    assert [c.strip() for c in calls_row.split("│")][2:4] == ["3", "1"]

    with Store(store_url) as store:  # what is stored is left as it was: summed when the run ends
        assert store.get_run(running).totals == stored_totals


def test_a_batch_in_progress_has_its_calls_so_far_on_its_page(
    tmp_path: Path, cli_env: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    with Store(db) as store:
        batch = {"batch": {"id": "b0b0b0b0b0b0", "line": 1, "file": "items.jsonl"}}
        running = store.create_run("debate", {"question": "What is 6*7?"}, meta=batch)
        store.record_events(running, [_call(0), _call(1)])
    code, _, err = run_cli(["report", "--batch", "b0b0", "--db", db, "-o", "batch.html"], capsys, monkeypatch)
    assert code == 0, err
    assert "<td>calls</td><td>2</td>" in Path("batch.html").read_text(encoding="utf-8")
