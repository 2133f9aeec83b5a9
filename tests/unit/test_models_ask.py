"""An ``agentmesh ask`` that failed is stored as a failed run; resuming it says there is nothing to resume."""

from __future__ import annotations

from pathlib import Path

import pytest

import agentmesh
from agentmesh.errors import ConfigError
from agentmesh.runtime.replay import fork, replay
from agentmesh.store import Store
from tests._cli import run_cli


def test_resuming_a_failed_ask_says_it_is_one_call_not_a_graph_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said "run ... (stored spec): expected a mapping (name, inputs, agents, nodes, edges, ...)", as if the
    store were damaged."""
    script = tmp_path / "s.yaml"
    script.write_text("rules:\n  - {prompt: never matches, responses: [x]}\n")  # no default: the call is an error
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    code, _, err = run_cli(["ask", "What is 17*3?", "-m", f"scripted:{script}", "--db", db], capsys, monkeypatch)
    assert code != 0, err
    with Store(db) as store:
        (failed,) = store.list_runs()
    assert (failed.graph, failed.status) == ("ask", "failed")
    with pytest.raises(ConfigError, match=r"is one 'agentmesh ask' call, not a graph run: there is nothing to resume"):
        agentmesh.resume(failed.id, store=db)
    # the command line says the same, for one run or among others, and replay and fork say it too
    code, _, err = run_cli(["resume", failed.id, "--db", db], capsys, monkeypatch)
    said = " ".join(err.split())  # (rich wraps it)
    assert code != 0 and "is one 'agentmesh ask' call, not a graph run: there is nothing to resume" in said, err
    assert "expected a mapping" not in err
    with pytest.raises(ConfigError, match=r"is one 'agentmesh ask' call, not a graph run: there is nothing to replay"):
        replay(failed.id, store=db)
    with pytest.raises(ConfigError, match=r"is one 'agentmesh ask' call, not a graph run: there is nothing to replay"):
        fork(failed.id, step=1, store=db)
    with Store(db) as store:
        assert store.get_run(failed.id).status == "failed" and len(store.list_runs()) == 1  # nothing was started


def test_an_asks_page_opens_with_its_reply_as_runs_lists_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`agentmesh runs` lists an ask's reply as its answer; `report` of it said "answer -"."""
    monkeypatch.setenv("COLUMNS", "200")
    script = tmp_path / "s.yaml"
    script.write_text("default: 'It is <b>51</b>.'\n")
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    code, _, err = run_cli(["ask", "What is 17*3?", "-m", f"scripted:{script}", "--db", db], capsys, monkeypatch)
    assert code == 0, err
    with Store(db) as store:
        (asked,) = store.list_runs()
    page = tmp_path / "ask.html"
    code, _, err = run_cli(["report", asked.id, "--db", db, "-o", str(page)], capsys, monkeypatch)
    assert code == 0, err
    assert "<td>answer</td><td>It is &lt;b&gt;51&lt;/b&gt;.</td>" in page.read_text(encoding="utf-8")
