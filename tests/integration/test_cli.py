"""The ``agentmesh`` command line, through its real entry point (``main``) and, once, as a real subprocess."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agentmesh.store import Store
from tests._cli import run_cli


@pytest.fixture
def db(store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTMESH_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return store_url


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "script.yaml"
    path.write_text(
        "rules:\n"
        "  - prompt: 'What is (\\d+)\\*(\\d+)'\n"
        "    template: 'The answer is {{ match[1]|int * match[2]|int }}.'\n"
    )
    return path


def test_ask_is_stored_and_shown(db: str, script: Path, capsys, monkeypatch) -> None:
    code, out, err = run_cli(["ask", "What is 17*3?", "-m", f"scripted:{script}", "--db", db], capsys, monkeypatch)
    assert code == 0, err
    assert "The answer is 51." in out

    with Store(db) as store:
        (run,) = store.list_runs()
        events = store.events(run.id)
    assert run.graph == "ask" and run.status == "succeeded"
    assert run.inputs["prompt"] == "What is 17*3?"
    assert [e.kind for e in events] == ["model_call"]
    assert events[0].response is not None and events[0].response["choices"][0]["text"] == "The answer is 51."
    assert events[0].request_hash and events[0].attempt == 1
    assert run.totals["calls"] == 1

    code, out, _ = run_cli(["runs", "--db", db], capsys, monkeypatch)
    assert code == 0 and run.id[:12] in out and "succeeded" in out
    assert f"scripted:{script}"[:20] in out and "$0.000000" in out  # a wide terminal: every column

    monkeypatch.setenv("COLUMNS", "80")  # a narrow one: a run per line, the stop reason's kind
    code, out, _ = run_cli(["runs", "--db", db], capsys, monkeypatch)
    row = next(line for line in out.splitlines() if run.id[:12] in line)
    assert "succeeded" in row and "│ completed │" in row and "│     1 │" in row
    assert "scripted:" not in out and "full stop reasons, model, cost, dates: --json or a wider terminal" in out
    monkeypatch.setenv("COLUMNS", "200")

    code, out, _ = run_cli(["runs", "--db", db, "--graph", "nothing-like-this"], capsys, monkeypatch)
    assert code == 0 and "no runs matching" in out

    code, out, _ = run_cli(["show", run.id[:8], "--db", db], capsys, monkeypatch)
    assert code == 0
    for expected in (run.id, "succeeded", "completed: single call", "1 call ", "The answer is 51."):
        assert expected in out

    code, out, _ = run_cli(["show", run.id, "--db", db, "--json"], capsys, monkeypatch)
    data = json.loads(out)
    assert data["run"]["id"] == run.id
    assert data["events"][0]["response"]["choices"][0]["text"] == "The answer is 51."


def test_an_asks_recorded_reply_is_served_by_replay(db: str, script: Path, capsys, monkeypatch) -> None:
    """``ask`` records its call outside any graph (no node, no agent): ``replay:<its run>`` serves it to the same
    prompt all the same, and still refuses another prompt."""
    code, _, err = run_cli(["ask", "What is 17*3?", "-m", f"scripted:{script}", "--db", db], capsys, monkeypatch)
    assert code == 0, err
    with Store(db) as store:
        (asked,) = store.list_runs()
    code, out, err = run_cli(["ask", "What is 17*3?", "-m", f"replay:{asked.id}", "--db", db], capsys, monkeypatch)
    assert code == 0 and "The answer is 51." in out, out + err
    code, out, err = run_cli(["ask", "What is 2*3?", "-m", f"replay:{asked.id}", "--db", db], capsys, monkeypatch)
    assert code != 0 and "never sent this prompt (1 recorded call)" in err, out + err


def test_ask_with_unknown_provider_fails_cleanly_and_stores_nothing(db: str, capsys, monkeypatch) -> None:
    code, _, err = run_cli(["ask", "hi", "-m", "nosuch:model", "--db", db], capsys, monkeypatch)
    assert code == 2
    assert "unknown model provider 'nosuch'" in err and "Traceback" not in err
    with Store(db) as store:
        assert store.list_runs() == []


def test_ask_against_unreachable_server_records_a_failed_run(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    url = "http://127.0.0.1:9/v1"  # discard port: nothing listens there
    config = tmp_path / "config.yaml"
    config.write_text(f"endpoints:\n  {url}: {{max_retries: 1, backoff_initial_s: 0.01, timeout_s: 5}}\n")
    code, _, err = run_cli(
        ["ask", "hi", "-m", f"openai:m@{url}", "--db", db, "--config", str(config)], capsys, monkeypatch
    )
    assert code == 1  # the call was made and failed: a failure of the work, not of the command
    assert "cannot reach the model server at http://127.0.0.1:9/v1" in err
    with Store(db) as store:
        (run,) = store.list_runs()
        events = store.events(run.id)
    assert run.status == "failed" and run.error and "127.0.0.1:9" in run.error
    assert [e.attempt for e in events] == [1, 2] and all(e.error for e in events)


def test_delete_asks_then_deletes_and_vacuum_gives_space_back(db: str, script: Path, capsys, monkeypatch) -> None:
    for question in ("What is 2*3?", "What is 4*5?"):
        code, _, err = run_cli(["ask", question, "-m", f"scripted:{script}", "--db", db], capsys, monkeypatch)
        assert code == 0, err
    with Store(db) as store:
        doomed, kept = (r.id for r in store.list_runs())

    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))  # answering no deletes nothing
    code, out, _ = run_cli(["delete", doomed[:8], "--db", db], capsys, monkeypatch)
    assert code == 1 and doomed[:12] in out and "Delete them?" in out and "nothing deleted" in out
    code, _, err = run_cli(["delete", doomed[:8], "nosuchrun", "-y", "--db", db], capsys, monkeypatch)
    assert code == 2 and "no run 'nosuchrun'" in err  # one unknown id: nothing deleted
    with Store(db) as store:
        assert len(store.list_runs()) == 2

    code, out, err = run_cli(["delete", doomed[:8], "-y", "--db", db], capsys, monkeypatch)
    assert code == 0, err
    assert "deleted 1 run(s) and 1 event(s)" in out
    with Store(db) as store:
        assert [r.id for r in store.list_runs()] == [kept]
    with Store(db) as store:
        running = store.create_run("g", {})  # as a run another process is writing looks
    code, _, err = run_cli(["delete", running[:8], "--db", db], capsys, monkeypatch)
    assert code == 2 and "is running; nothing deleted (--force" in err  # said before asking
    code, out, err = run_cli(["delete", running[:8], "--force", "-y", "--db", db], capsys, monkeypatch)
    assert code == 0 and "deleted 1 run(s) and 0 event(s)" in out, err

    code, out, err = run_cli(["db", "vacuum", "--db", db], capsys, monkeypatch)
    assert code == 0 and "vacuumed" in out, err
    with Store(db) as store:
        assert [r.id for r in store.list_runs()] == [kept]


def test_show_unknown_run_names_it(db: str, capsys, monkeypatch) -> None:
    Store(db).close()  # a store without that run (a store that is not there is named as such: see below)
    code, _, err = run_cli(["show", "doesnotexist", "--db", db], capsys, monkeypatch)
    assert code == 2 and "doesnotexist" in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "debate", "--bogus"], "No such option: --bogus"),
        (["report", "abc", "--file", "x.html"], "No such option: --file"),
        # (a number out of range is an agentmesh error saying the range, as a budget's: tests/unit/test_cli_options.py)
        (["run", "debate", "-e", "bogus", "-i", "question=q"], "Invalid value for '--executor'"),
        (["show"], "Missing argument"),
    ],
)
def test_usage_errors_print_usage_and_exit_2_without_a_traceback(
    args: list[str], expected: str, db: str, capsys, monkeypatch
) -> None:
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == 2
    assert expected in err and "Usage: agentmesh" in err
    assert "Traceback" not in err


def test_python_dash_m_agentmesh_is_the_same_command() -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "agentmesh", "graph", "validate", "debate"], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert "graph debate" in ok.stdout
    usage = subprocess.run([sys.executable, "-m", "agentmesh", "run", "--bogus"], capture_output=True, text=True)
    assert usage.returncode == 2 and "Usage: python -m agentmesh run" in usage.stderr


def test_models_explains_references_without_revealing_keys(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code, out, _ = run_cli(["models", "openai:gpt-4o-mini", "--json"], capsys, monkeypatch)
    assert code == 0
    (row,) = json.loads(out)  # described without its key: which variable it reads, that it is not set
    assert "error" not in row and row["api_key"] == "$OPENAI_API_KEY (not set)"
    assert row["endpoint"] == "https://api.openai.com/v1" and row["price"].startswith("$0.15/M in")

    secret = "sk-test-" + "x" * 40
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    code, out, _ = run_cli(["models", "openai:gpt-4o-mini", "--json"], capsys, monkeypatch)
    (row,) = json.loads(out)
    assert row["provider"] == "openai" and row["api_key"] == "$OPENAI_API_KEY (set)"
    assert row["price"].startswith("$0.15/M in")
    assert secret not in out

    code, out, _ = run_cli(["models", "openai:m@http://127.0.0.1:8000/v1"], capsys, monkeypatch)
    assert code == 0 and "http://127.0.0.1:8000/v1" in out and secret not in out


def test_models_resolves_aliases_from_config(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".agentmesh").mkdir()
    (tmp_path / ".agentmesh" / "config.yaml").write_text(
        "aliases:\n  lab: openai:qwen@http://127.0.0.1:8000/v1\n"
        "endpoints:\n  http://127.0.0.1:8000/v1: {max_concurrency: 3}\n"
    )
    code, out, _ = run_cli(["models", "lab", "--json"], capsys, monkeypatch)
    assert code == 0
    (row,) = json.loads(out)
    assert row["alias"] == "lab" and row["endpoint"] == "http://127.0.0.1:8000/v1"
    assert row["limits"]["max_concurrency"] == 3


def test_db_upgrade_reports_revision(db: str, capsys, monkeypatch) -> None:
    code, out, _ = run_cli(["db", "upgrade", "--db", db], capsys, monkeypatch)
    assert code == 0 and "schema revision" in out
    code, out2, _ = run_cli(["db", "upgrade", "--db", db], capsys, monkeypatch)
    assert code == 0 and out2.split()[-1] == out.split()[-1]


@pytest.mark.integration
def test_readme_main_job_on_the_embedded_model(tmp_path: Path) -> None:
    """The README's first command, minus the install: a debate on the embedded model, stored, then shown."""
    pytest.importorskip("llama_cpp", reason="the embedded model needs agentmesh[local]")
    exe = shutil.which("agentmesh") or str(Path(sys.executable).parent / "agentmesh")
    env = {k: v for k, v in os.environ.items() if k not in {"AGENTMESH_DB", "AGENTMESH_CONFIG"}}
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [exe, "run", "debate", "-i", "question=What is 17*3?"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "stop reason" in done.stdout and "agentmesh show" in done.stdout
    assert (tmp_path / ".agentmesh" / "agentmesh.db").exists()

    shown = subprocess.run(
        [exe, "show", "--json", _only_run_id(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    calls = [e for e in data["events"] if e["kind"] == "model_call"]
    assert len(calls) >= 3 and all(c["response"]["choices"][0]["text"].strip() for c in calls)
    assert all(c["usage_estimated"] is False and c["completion_tokens"] > 0 for c in calls)
    assert data["run"]["status"] == "succeeded" and data["run"]["totals"]["cost_usd"] == 0.0
    assert data["run"]["graph"] == "debate" and data["run"]["model"] == "local"


def test_ask_on_the_embedded_model_really_answers(tmp_path: Path, capsys, monkeypatch) -> None:
    """One prompt through the in-process llama.cpp build: it must not crash (AMX builds do) and must answer."""
    pytest.importorskip("llama_cpp", reason="the embedded model needs agentmesh[local]")
    db = f"sqlite:///{tmp_path / 'x.db'}"
    code, out, err = run_cli(["ask", "What is 17*3?", "--db", db, "--max-tokens", "32"], capsys, monkeypatch)
    assert out.strip(), "the answer is printed"
    assert code == 0, err
    with Store(db) as store:
        (run,) = store.list_runs()
        (call,) = store.events(run.id)
    assert call.response is not None and call.response["choices"][0]["text"].strip()
    assert call.usage_estimated is False and (call.completion_tokens or 0) > 0


def _only_run_id(cwd: Path) -> str:
    with Store(f"sqlite:///{cwd / '.agentmesh' / 'agentmesh.db'}") as store:
        (run,) = store.list_runs()
        return run.id


PLUGIN = """
from typing import Any

from pydantic import Field

import agentmesh
from agentmesh.spec.operators import OperatorParams


@agentmesh.register_function("plugin_test_longest")
def longest(outputs: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    best = max(outputs["solve"]["answers"], key=lambda a: len(a["text"]))
    return {"answer": best["key"], "text": best["text"]}


class ShoutParams(OperatorParams):
    source: str = Field(alias="from")
    outputs = frozenset({"answer", "text"})


@agentmesh.operator("plugin_test_shout", params=ShoutParams)
async def shout(run: Any) -> dict[str, Any]:
    text = str(run.outputs[run.params.source].get("text") or "").upper()
    return {"answer": text, "text": text}
"""

PLUGGED_GRAPH = """
name: plugged
inputs:
  question: {type: string}
agents:
  a: {prompt: "{{ question }}"}
nodes:
  solve: {op: team, agents: [a, a]}
  pick: {op: function, function: plugin_test_longest}
  loud: {op: plugin_test_shout, from: pick}
edges: [[solve, pick], [pick, loud]]
"""


def test_import_loads_the_users_operators_and_functions_for_any_command(tmp_path: Path, capsys, monkeypatch) -> None:
    # (one store only: what the plugin registers stays registered for the rest of this process)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    (tmp_path / "my_plugin.py").write_text(PLUGIN)
    graph = tmp_path / "plugged.yaml"
    graph.write_text(PLUGGED_GRAPH)
    model = tmp_path / "m.yaml"
    model.write_text("rules:\n  - {responses: ['short', 'the longer one'], cycle: true}\n")

    code, _, err = run_cli(["graph", "validate", str(graph)], capsys, monkeypatch)
    flat = " ".join(err.split())
    assert code == 2 and "unknown operator 'plugin_test_shout'" in flat and "agentmesh --import" in flat

    code, out, err = run_cli(["--import", "my_plugin.py", "graph", "validate", str(graph)], capsys, monkeypatch)
    assert code == 0, err
    args = ["run", str(graph), "-i", "question=q", "-m", f"scripted:{model}", "--db", db, "--quiet"]
    code, out, err = run_cli(["-I", "my_plugin", *args], capsys, monkeypatch)  # a module name, from the cwd
    assert code == 0, err
    assert out.strip() == "THE LONGER ONE"
    monkeypatch.setenv("AGENTMESH_IMPORT", "my_plugin.py")
    code, out, err = run_cli(["runs", "--db", db, "--json"], capsys, monkeypatch)
    assert code == 0 and json.loads(out)[0]["graph"] == "plugged"

    for bad, expected in (("no_such_module_here", "ModuleNotFoundError"), ("missing.py", "no such file")):
        code, _, err = run_cli(["--import", bad, "runs", "--db", db], capsys, monkeypatch)
        assert code == 2 and f"--import {bad}: " in err and expected in err


def _commands() -> list[tuple[list[str], str]]:
    """Every command's words and docstring, the groups' (``db``, ``graph``) included."""
    import typer

    from agentmesh.cli.app import COMMANDS

    out: list[tuple[list[str], str]] = []
    for name, lazy in COMMANDS.items():  # every top-level command, its module imported here
        target = lazy.target()
        if isinstance(target, typer.Typer):
            out += [([name, c.name or ""], c.callback.__doc__ or "") for c in target.registered_commands if c.callback]
        else:
            out.append(([name], target.__doc__ or ""))
    assert len(out) > len(COMMANDS)  # the groups' commands too
    return out


@pytest.mark.parametrize(("command", "doc"), _commands(), ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_help_paragraphs_are_whole(command: list[str], doc: str, capsys, monkeypatch) -> None:
    """A command's help reads as its docstring's sentences, not cut where the source wrapped them."""
    from agentmesh.cli.app import _reflowed

    monkeypatch.setenv("COLUMNS", "400")
    code, out, _ = run_cli([*command, "--help"], capsys, monkeypatch)
    assert code == 0 and doc
    lines = [" ".join(line.strip("│ ").split()) for line in out.splitlines()]
    for paragraph in _reflowed(doc).split("\n\n"):
        assert " ".join(paragraph.split()) in lines, (paragraph, out)
    assert "``" not in out


def test_version(capsys, monkeypatch) -> None:
    import agentmesh

    code, out, _ = run_cli(["--version"], capsys, monkeypatch)
    assert code == 0 and out == f"agentmesh {agentmesh.__version__}\n"


@pytest.mark.parametrize(
    "command",
    [
        ["runs"],
        ["show", "abc"],
        ["export", "abc"],
        ["diff", "a", "b"],
        ["report", "abc", "-o", "r.html"],
        ["replay", "abc"],
        ["resume", "abc"],
        ["delete", "abc", "-y"],
        ["db", "vacuum"],
    ],
    ids=lambda c: c[0] if c[0] != "db" else "vacuum",
)
def test_a_command_that_reads_the_store_refuses_a_sqlite_file_that_is_not_there(
    command: list[str], tmp_path: Path, capsys, monkeypatch
) -> None:
    """A typo in --db made a new empty database: `runs` said "no runs yet", `show` "no run 'abc'", and the new file
    (its folders too) stayed behind. The error now names the file and where its URL came from, and creates
    nothing."""
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "typo" / "runz.db"
    code, _, err = run_cli([*command, "--db", f"sqlite:///{missing}"], capsys, monkeypatch)
    said = " ".join(err.split())
    assert code == 2 and f"no agentmesh database at {missing} (--db)" in said, said
    assert not missing.parent.exists()
    monkeypatch.setenv("AGENTMESH_DB", f"sqlite:///{missing}")
    code, _, err = run_cli(command, capsys, monkeypatch)
    assert code == 2 and "($AGENTMESH_DB)" in err and not missing.parent.exists()


def test_a_command_that_reads_the_store_leaves_another_applications_database_alone(
    store_url: str, capsys, monkeypatch
) -> None:
    """A wrong --db naming another application's database: `runs` created agentmesh's eleven tables in it beside
    the application's own (and switched a SQLite file to WAL), then said "no runs yet"."""
    import sqlite3

    import sqlalchemy as sa

    from agentmesh.store.engine import make_engine

    if store_url.startswith("sqlite"):
        path = Path(store_url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as plain:
            plain.execute("CREATE TABLE users (id INTEGER)")
    else:
        engine = make_engine(store_url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE users (id INTEGER)"))
        engine.dispose()
    for command in (["runs"], ["show", "abc"], ["export", "abc"], ["db", "vacuum"]):
        code, _, err = run_cli([*command, "--db", store_url], capsys, monkeypatch)
        said = " ".join(err.split())
        assert (
            code == 2
            and "is not an agentmesh database: it has no agentmesh schema, and tables of its own (users)" in said
        )
    if store_url.startswith("sqlite"):
        with sqlite3.connect(path) as plain:
            assert [r[0] for r in plain.execute("SELECT name FROM sqlite_master")] == ["users"]
            assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    else:
        engine = make_engine(store_url)
        with engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == ["users"]
        engine.dispose()


def test_delete_without_an_answer_on_stdin_deletes_nothing_and_says_how_not_to_be_asked(
    db: str, script: Path, capsys, monkeypatch
) -> None:
    """In a script or cron job (stdin at its end) the question got no answer: "aborted" and exit 130, as for
    Ctrl-C, with nothing saying that -y was wanted."""
    code, _, err = run_cli(["ask", "What is 2*3?", "-m", f"scripted:{script}", "--db", db], capsys, monkeypatch)
    assert code == 0, err
    with Store(db) as store:
        (run,) = store.list_runs()
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, out, err = run_cli(["delete", run.id[:8], "--db", db], capsys, monkeypatch)
    assert code == 1 and "nothing deleted" in out
    assert "no answer (stdin is closed): -y (--yes) deletes without asking" in err
    with Store(db) as store:
        assert store.count_runs() == 1
