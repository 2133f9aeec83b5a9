"""``agentmesh show | replay | diff | report | export | import`` on stored DyLAN runs (scripted model, real store):
the timeline, a zero-call replay, a fork and its diff, the HTML report rendered by headless Chromium (the Debian
``chromium`` package), and moving a run between stores (SQLite and, with ``AGENTMESH_TEST_PG``, Postgres) with
no secret in the export."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.messages import CallContext
from agentmesh.runtime import run
from agentmesh.spec import GraphSpec, load_graph
from agentmesh.spec.operators import RankStep, RoundsParams
from agentmesh.store import Store
from tests._cli import run_cli

REPO = Path(__file__).resolve().parents[2]
FOUR = ["economist", "doctor", "mathematician", "historian"]
SECRET = "sk-proj-" + "Zq3" * 12
_WHO = re.compile(r"<<(\w+)>>")


def team_graph() -> GraphSpec:
    spec = load_graph(REPO / "graphs" / "dylan_mmlu.yaml")
    node = spec.nodes["dylan"]
    assert isinstance(node.params, RoundsParams)
    rank = RankStep(before_round=3, keep=2, ranker="ranker", min_active=4, shuffle=False)
    params = node.params.model_copy(update={"agents": FOUR, "rank": rank, "activation_order": "fixed"})
    agents = {k: v for k, v in spec.agents.items() if k in {*FOUR, "ranker"}}
    return spec.model_copy(
        update={"nodes": {**spec.nodes, "dylan": node.model_copy(update={"params": params})}, "agents": agents}
    )


def respond(request: ModelRequest, context: CallContext) -> str:
    shown = _WHO.findall(request.messages[-1].content)
    if context.agent == "ranker":
        return f"[{shown.index('mathematician') + 1}, {shown.index('historian') + 1}]"
    letter = {1: "ABCD", 2: "ABCC"}.get(int(context.round or 0), "CCCC")[FOUR.index(str(context.agent))]
    scores = ", ".join("5" if s == "mathematician" else "1" for s in shown)
    return f"<<{context.agent}>> ({letter})" + (f" [[{scores}]]" if shown else "")


@pytest.fixture
def stored(tmp_path: Path) -> tuple[str, str]:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    inputs = {"question": "Which is right?", "choices": ["w", "x", "y", "z"]}
    result = run(team_graph(), inputs, model=ScriptedModel(respond=respond), store=db)
    assert result.status == "succeeded" and result.answer == "C"
    return db, result.run_id


def test_show_prints_the_timeline_with_the_network(stored: tuple[str, str], capsys, monkeypatch) -> None:
    db, run_id = stored
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_cli(["show", run_id[:10], "--db", db], capsys, monkeypatch)
    assert code == 0, err
    assert "1. dylan (rounds) round 1" in out and "4 calls" in out
    assert "mathematician[2] → <<mathematician>> (C)" in out
    assert "ranker kept ['mathematician', 'historian']" in out
    assert "round 3: " in out and "economist: -" in out  # pruned agents do not run in round 3
    assert "rated [5, 1, 1, 1]" in out or "rated [1, 1, 5, 1]" in out
    # the two agents of round 3, its last, agree: the policy held, but only once the node had run its course
    flat = " ".join(out.split())
    assert "importance: mathematician" in out and "stop reason completed: every node ran; node 'dylan'" in flat
    assert "consensus (> 0.667 of active agents agree), held only at round 3, its last" in flat
    code, out, _ = run_cli(["show", run_id, "--db", db, "--full"], capsys, monkeypatch)
    assert "Can you answer the following question" in out and "system:" in out
    code, out, _ = run_cli(["show", run_id, "--db", db, "--events"], capsys, monkeypatch)
    assert "model_call" in out and "node_result" in out


def test_replay_fork_and_diff(stored: tuple[str, str], tmp_path: Path, capsys, monkeypatch) -> None:
    db, run_id = stored
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_cli(["replay", run_id, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    assert "identical: 11 calls served, 0 made; answer C (recorded C)" in " ".join(out.split())

    script = tmp_path / "all_b.yaml"
    script.write_text("rules:\n  - responses: ['I say (B)']\n    cycle: true\n")
    code, out, err = run_cli(
        ["replay", run_id, "--from", "dylan@2", "--model", f"scripted:{script}", "--db", db], capsys, monkeypatch
    )
    assert code == 0, err
    fork_id = re.search(r"forked run (\w+)", out).group(1)  # type: ignore[union-attr]
    assert "4 calls served from the parent" in " ".join(out.split())
    with Store(db) as store:
        assert store.get_run(fork_id).parent_run_id == run_id

    code, out, err = run_cli(["diff", run_id, fork_id, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    flat = " ".join(out.split())
    assert "first divergence: node 'dylan', agent 'economist', round 2, call 0" in flat
    assert "answer of vote" in flat


def test_report_draws_the_graph_the_run_ran_and_its_network(
    stored: tuple[str, str], tmp_path: Path, capsys, monkeypatch
) -> None:
    db, run_id = stored
    page = tmp_path / "report.html"
    code, out, err = run_cli(["report", run_id[:8], "-o", str(page), "--db", db], capsys, monkeypatch)
    assert code == 0, err
    assert f"written to {page}" in " ".join(out.split())
    text = page.read_text()
    graph = text.split("<h2>Graph</h2>", 1)[1].split("<h2>", 1)[0]
    assert (
        graph.lstrip().startswith('<div class="figure"><svg') and ">dylan<" in graph and ">vote<" in graph
    )  # the graph's two nodes
    assert "Agent network of <code>dylan</code>" in text
    assert "<script" not in text and "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
def test_html_report_renders_in_headless_chromium(stored: tuple[str, str], tmp_path: Path, capsys, monkeypatch) -> None:
    db, run_id = stored
    page = tmp_path / "report.html"
    code, _, err = run_cli(["report", run_id, "--html", str(page), "--db", db], capsys, monkeypatch)
    assert code == 0, err
    text = page.read_text()
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "") and "<script" not in text
    browser = _chromium()
    assert browser is not None
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "stop reason:" in dom and "consensus" in dom
    assert dom.count('class="pruned"') == 2  # economist and doctor, cut by the ranker before round 3
    assert dom.count('class="idle"') == 2  # ... so they never ran in round 3
    assert dom.count('class="ran"') == 4 + 2 + 2
    assert "Agent network of" in dom and "<td>mathematician</td>" in dom
    shot = tmp_path / "report.png"
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", "--window-size=1100,1400", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("AGENTMESH_KEEP_SCREENSHOT")  # to look at it: AGENTMESH_KEEP_SCREENSHOT=/tmp/report.png
    if keep:
        shutil.copy(shot, keep)


def test_export_import_between_stores_without_secrets(
    stored: tuple[str, str], store_url: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    db, run_id = stored
    leaky = {"question": f"Which is right? (my key is {SECRET})", "choices": ["w", "x", "y", "z"]}
    secret_run = run(team_graph(), leaky, model=ScriptedModel(respond=respond), store=db).run_id
    secret_file = tmp_path / "secret.json"
    code, _, err = run_cli(["export", secret_run, "-o", str(secret_file), "--db", db], capsys, monkeypatch)
    assert code == 0, err
    assert SECRET not in secret_file.read_text() and "Which is right? (my key is" in secret_file.read_text()

    out_file = tmp_path / "run.json"
    code, _, err = run_cli(["export", run_id, "--json", "-o", str(out_file), "--db", db], capsys, monkeypatch)
    assert code == 0, err
    text = out_file.read_text()
    document = json.loads(text)
    assert document["format"] == "agentmesh-run" and document["version"] == 1 and document["outputs"]["vote"]

    code, out, err = run_cli(["import", str(out_file), "--db", store_url], capsys, monkeypatch)
    assert code == 0, err
    with Store(store_url) as target:
        record = target.get_run(run_id)
        assert record.totals["calls"] == 11 and record.stop_reason and record.meta["imported_from"]["run_id"]
    code, out, err = run_cli(["replay", run_id, "--db", store_url], capsys, monkeypatch)
    assert code == 0, err
    assert "identical" in out
    code, _, err = run_cli(["import", str(out_file), "--db", store_url], capsys, monkeypatch)
    assert code == 2 and "already in" in err and "--new-id" in err
    code, out, err = run_cli(["import", str(out_file), "--db", store_url, "--new-id"], capsys, monkeypatch)
    assert code == 0, err
    copy_id = out.split()[-1]
    assert copy_id != run_id
    with Store(store_url) as target:
        copy = target.get_run(copy_id)
        assert copy.totals == target.get_run(run_id).totals and copy.meta["imported_from"]["run_id"] == run_id
        assert len(target.events(copy_id, kind="model_call")) == 11

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "agentmesh-run", "version": 99, "run": {}, "events": []}))
    code, _, err = run_cli(["import", str(bad), "--db", store_url], capsys, monkeypatch)
    assert code == 2 and "version 99" in err
