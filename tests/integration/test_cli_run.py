"""``agentmesh run`` and ``agentmesh resume`` through the real entry point, on scripted models and SQLite files.

The shipped ``debate`` graph is used where the point is "the graph a user would run" (three ``debater`` agents in
node ``debate``, rounds, consensus stop); the scripts match on agent and round only, never on prompt wording, so
the graph's prompts may evolve. Input typing uses a small graph written by the test.
"""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import TypeVar

import pytest
from rich.console import Console

import agentmesh
from agentmesh.errors import ConfigError
from agentmesh.runtime.replay import replay
from agentmesh.store import Store
from tests._cli import run_cli, start_cli, wait_until

T = TypeVar("T")


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTMESH_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return f"sqlite:///{tmp_path / 'runs.db'}"


def script(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return f"scripted:{path}"


# Round 1 disagrees (no consensus), round 2 all agree on 51: the debate stops after round 2.
AGREE_IN_ROUND_2 = r"""
rules:
  - {agent: debater, round: 1, responses: ['\boxed{50}', '\boxed{51}', '\boxed{52}']}
  - {agent: debater, round: 2, template: '\boxed{51}'}
"""

# By question: "What is a*b?" is answered (all agree at once); anything else has no rule.
MULTIPLY = r"""
rules:
  - prompt: 'What is (\d+)\*(\d+)'
    template: '\boxed{ {{- match[1]|int * match[2]|int -}} }'
"""

TYPED_GRAPH = """
name: typed
inputs:
  name: {type: string}
  n: {type: integer}
  x: {type: number}
  flag: {type: boolean}
  tags: {type: list}
  opts: {type: object}
agents:
  echo:
    prompt: "name={{ name }} n+1={{ n + 1 }} x*2={{ x * 2 }} flag={{ flag }} tags={{ tags|join('|') }} k={{ opts.k }}"
nodes:
  say: {op: call, agent: echo}
"""


def test_run_prints_the_answer_and_stop_reason_and_stores_the_run(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    model = script(tmp_path, "agree.yaml", AGREE_IN_ROUND_2)
    code, out, err = run_cli(
        ["run", "debate", "-i", "question=What is 17*3?", "-m", model, "--db", db], capsys, monkeypatch
    )
    assert code == 0, err

    with Store(db) as store:
        (run,) = store.list_runs()
        calls = store.events(run.id, kind="model_call")
        nodes = store.events(run.id, kind="node_result")
    assert run.graph == "debate" and run.status == "succeeded"
    assert run.inputs == {"question": "What is 17*3?"}
    assert sorted((e.round, e.call_index) for e in calls) == [(r, s) for r in (1, 2) for s in range(3)]
    assert [(e.node, e.round) for e in nodes] == [("debate", 1), ("debate", 2), ("vote", None)]

    # The transcript of the live view (printed round by round when stdout is not a terminal), then the final panel.
    assert "debate · round 1" in out and "debate · round 2" in out
    assert "continues" in out and "stop: consensus" in out and "vote (vote): answer 51" in out
    panel = out[out.index("debate · succeeded") :]
    assert "answer       51" in panel
    assert f"stop reason  {run.stop_reason}" in panel and "consensus" in (run.stop_reason or "")
    assert run.id in panel and f"agentmesh show {run.id[:12]}" in panel
    assert "calls        6" in panel

    code, out, err = run_cli(
        ["run", "debate", "-i", "question=What is 17*3?", "-m", model, "--db", db, "--quiet"], capsys, monkeypatch
    )
    assert code == 0, err
    assert out == "51\n"


def test_show_tells_a_reply_without_an_answer_from_an_answer(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    model = script(
        tmp_path,
        "unparsed.yaml",
        r"""
rules:
  - {agent: debater, round: 1, responses: ['\boxed{50}', 'I do not know.', '\boxed{52}']}
  - {agent: debater, round: 2, template: '\boxed{51}'}
""",
    )
    code, _, err = run_cli(["run", "debate", "-i", "question=q", "-m", model, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    with Store(db) as store:
        (run,) = store.list_runs()
    code, out, err = run_cli(["show", run.id, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    assert "round 1: debater#0: 50; debater#1: no answer; debater#2: 52" in out
    assert "round 2: debater#0: 51; debater#1: 51; debater#2: 51" in out


def test_text_that_looks_like_markup_is_printed_as_text(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    """Inputs, answers and errors are data: "[/x]" or "[bold]" in them is printed as it is, never parsed as rich
    markup (a closing tag that matches nothing made every command that printed it crash with a traceback)."""
    question = "Tell [/x] me [bold]why[/bold]"
    model = script(tmp_path, "brackets.yaml", "rules:\n  - {agent: debater, template: '[1, 2] \\\\boxed{[/x]}'}\n")
    code, out, err = run_cli(
        ["run", "debate", "-i", f"question={question}", "-m", model, "--db", db], capsys, monkeypatch
    )
    assert code == 0, err
    assert "answer       [/x]" in out and "[1, 2]" in out
    empty = script(tmp_path, "none.yaml", "rules: []\n")
    code, _, err = run_cli(
        ["run", "debate", "-i", f"question={question}", "-m", empty, "--db", db], capsys, monkeypatch
    )
    assert code == 1 and "Traceback" not in err  # (the run failed: no rule)
    assert "error:" in err and "Tell [/x] me [bold]why[/bold]" in " ".join(err.split()).replace("\\n", " ")

    with Store(db) as store:
        failed, succeeded = store.list_runs()
    for args in (["show", failed.id], ["show", succeeded.id], ["show", failed.id, "--events"], ["runs"]):
        code, out, err = run_cli([*args, "--db", db], capsys, monkeypatch)
        assert code == 0, (args, err)
    code, out, _ = run_cli(["show", failed.id, "--db", db], capsys, monkeypatch)
    assert json.dumps(question) in out and "no rule left" in out
    code, out, err = run_cli(["diff", succeeded.id, failed.id, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    assert "[/x]" in out


def test_run_json_prints_the_result(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    model = script(tmp_path, "agree.yaml", AGREE_IN_ROUND_2)
    code, out, err = run_cli(
        ["run", "debate", "-i", "question=q", "-m", model, "--db", db, "--json"], capsys, monkeypatch
    )
    assert code == 0, err
    data = json.loads(out)
    with Store(db) as store:
        (run,) = store.list_runs()
    assert data["run_id"] == run.id and data["status"] == "succeeded"
    assert data["answer"] == "51" and data["calls"] == 6
    assert data["stop_reason"] == run.stop_reason
    assert [a["key"] for a in data["outputs"]["debate"]["answers"]] == ["51", "51", "51"]

    code, _, err = run_cli(["run", "debate", "-i", "question=q", "--json", "--quiet", "--db", db], capsys, monkeypatch)
    assert code == 2 and "--json and --quiet" in err


def test_inputs_are_typed_from_the_graph(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    graph = tmp_path / "typed.yaml"
    graph.write_text(TYPED_GRAPH)
    model = script(tmp_path, "echo.yaml", "rules:\n  - {agent: echo, template: '{{ prompt }}'}\n")
    args = ["run", str(graph), "-m", model, "--db", db, "--quiet"]
    inputs = ["name=a=b", "n=41", "x=1.25", "flag=yes", 'tags=["u", "v"]', 'opts={"k": 7}']
    code, out, err = run_cli([*args, *(a for i in inputs for a in ("-i", i))], capsys, monkeypatch)
    assert code == 0, err
    assert out.strip() == "name=a=b n+1=42 x*2=2.5 flag=True tags=u|v k=7"
    with Store(db) as store:
        (run,) = store.list_runs()
    assert run.inputs == {"name": "a=b", "n": 41, "x": 1.25, "flag": True, "tags": ["u", "v"], "opts": {"k": 7}}

    def given(**values: str) -> list[str]:
        merged = {"name": "a", "n": "1", "x": "1", "flag": "false", "tags": "[]", "opts": "{}", **values}
        return [*args, *(a for k, v in merged.items() for a in ("-i", f"{k}={v}"))]

    code, _, err = run_cli(given(n="forty"), capsys, monkeypatch)
    assert code == 2
    assert "-i n='forty': input 'n' of graph 'typed' is of type integer; expected an integer like 3" in err
    assert "Traceback" not in err
    for name, raw, expected in [
        ("x", "abc", "number; expected a number"),
        ("flag", "maybe", "boolean; expected true or false"),
        ("tags", "u,v", "list; expected a JSON list"),
        ("opts", "[1]", "object; expected a JSON object"),
    ]:
        code, _, err = run_cli(given(**{name: raw}), capsys, monkeypatch)
        assert code == 2 and f"input {name!r} of graph 'typed' is of type {expected}" in err, err

    code, _, err = run_cli([*given(), "-i", "n=2"], capsys, monkeypatch)
    assert code == 2 and "given more than once" in err
    code, _, err = run_cli([*args, "-i", "n"], capsys, monkeypatch)
    assert code == 2 and "expected key=value" in err
    code, _, err = run_cli(given(name="@missing.txt"), capsys, monkeypatch)
    assert code == 2 and "-i name=@missing.txt: cannot read missing.txt (No such file or directory)" in err

    with Store(db) as store:
        assert len(store.list_runs()) == 1  # none of the bad invocations stored anything

    # key=@file: the file's text (then typed as the input is); a value starting with @ is written \@
    (tmp_path / "name.txt").write_text("from a\nfile")
    (tmp_path / "opts.json").write_text('{"k": 8}\n')
    code, out, err = run_cli(given(name="@name.txt", opts="@opts.json"), capsys, monkeypatch)
    assert code == 0, err
    assert out.startswith("name=from a\nfile n+1=2") and out.strip().endswith("k=8")
    code, out, err = run_cli(given(name="\\@home", opts='{"k": 1}'), capsys, monkeypatch)
    assert code == 0 and out.startswith("name=@home "), err


def test_missing_input_fails_before_anything_is_stored(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    model = script(tmp_path, "agree.yaml", AGREE_IN_ROUND_2)
    code, _, err = run_cli(["run", "debate", "-m", model, "--db", db], capsys, monkeypatch)
    assert code == 2
    assert "missing input 'question'" in err and "Traceback" not in err
    code, _, err = run_cli(["run", "debate", "-i", "question=q", "-i", "qestion=x", "--db", db], capsys, monkeypatch)
    assert code == 2 and "unknown input(s) qestion; graph 'debate' takes question" in err
    code, _, err = run_cli(["run", "no-such-graph", "--db", db], capsys, monkeypatch)
    assert code == 2 and "no graph 'no-such-graph'" in err and "debate" in err
    with Store(db) as store:
        assert store.list_runs() == []


def test_input_file_runs_items_concurrently_and_a_failure_exits_1(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    model = script(tmp_path, "multiply.yaml", MULTIPLY)
    items = tmp_path / "items.jsonl"
    items.write_text('{"question": "What is 17*3?"}\n{"question": "Tell me a joke."}\n\n{"question": "What is 6*7?"}\n')
    code, out, err = run_cli(
        ["run", "debate", "--input-file", str(items), "-m", model, "--db", db, "--concurrency", "2"],
        capsys,
        monkeypatch,
    )
    assert code == 1, err

    with Store(db) as store:
        runs = {r.inputs["question"]: r for r in store.list_runs()}
    assert len(runs) == 3
    assert [runs[q].status for q in ("What is 17*3?", "Tell me a joke.", "What is 6*7?")] == [
        "succeeded",
        "failed",
        "succeeded",
    ]
    assert "no rule left" in (runs["Tell me a joke."].error or "")

    # The summary table: one row per item (by line), its run, status, answer or error.
    assert "3 items: 2 succeeded, 1 failed" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│ line")}
    assert set(rows) == {"line 1", "line 2", "line 4"}
    assert runs["What is 17*3?"].id[:12] in rows["line 1"] and " 51 " in rows["line 1"]
    assert "succeeded" in rows["line 1"] and "consensus" in rows["line 1"]
    assert runs["Tell me a joke."].id[:12] in rows["line 2"] and "failed" in rows["line 2"]
    assert "no rule left" in rows["line 2"]
    assert " 42 " in rows["line 4"]

    # --json: the same outcomes, machine-readable (and the same exit code).
    code, out, _ = run_cli(
        ["run", "debate", "--input-file", str(items), "-m", model, "--db", db, "--json"], capsys, monkeypatch
    )
    assert code == 1
    data = json.loads(out)
    assert [(d["line"], d["status"]) for d in data] == [(1, "succeeded"), (2, "failed"), (4, "succeeded")]
    assert data[0]["result"]["answer"] == "51" and data[1]["run_id"] and "no rule left" in data[1]["error"]
    assert len({d["batch"] for d in data}) == 1 and data[0]["batch"]  # one batch id, on every item
    assert set(data[0]["result"]["outputs"]) == {"debate", "vote"}  # per-node outputs: --json keeps them

    # A narrow terminal: tokens and cost left out (said in a caption); run ids and statuses whole, one line each.
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run_cli(["run", "debate", "--input-file", str(items), "-m", model, "--db", db], capsys, monkeypatch)
    assert code == 1
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│ line")}
    assert "succeeded" in rows["line 1"] and " 51 " in rows["line 1"] and "failed" in rows["line 2"]
    assert all(re.search(r"│ [0-9a-f]{12} │", row) for row in rows.values())
    assert "$0.000000" not in out and "tokens, cost: --json" in out


def test_a_batch_of_one_call_says_1_call(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    """The batch's progress note counted "1 calls"."""
    graph = tmp_path / "one.yaml"
    graph.write_text(
        "name: one\ninputs:\n  question: {}\nagents:\n  a: {prompt: '{{ question }}'}\n"
        "nodes:\n  ask: {op: call, agent: a}\n"
    )
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"question": "What is 2*3?"}) + "\n")
    model = script(tmp_path, "multiply.yaml", MULTIPLY)
    code, _, err = run_cli(
        ["run", str(graph), "--input-file", str(items), "-m", model, "--db", db], capsys, monkeypatch
    )
    flat = " ".join(err.split())
    assert code == 0 and "0 failed · 1 call" in flat and "1 calls" not in flat, err


def test_a_large_batch_logs_progress_and_sums_up_how_its_runs_ended(
    db: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    """Off a terminal (a log file, a batch scheduler) a batch says how far it got at every tenth, on stderr; past
    SUMMARY_ROWS items the summary is a row per way the runs ended, then each run that did not succeed."""
    model = script(tmp_path, "multiply.yaml", MULTIPLY)
    items = tmp_path / "items.jsonl"
    jokes = {5, 17, 29}  # lines without a rule: those runs fail
    items.write_text(
        "".join(
            json.dumps({"question": "Tell me a joke." if n in jokes else f"What is {n}*3?"}) + "\n"
            for n in range(1, 31)
        )
    )
    code, out, err = run_cli(
        ["run", "debate", "--input-file", str(items), "-m", model, "--db", db], capsys, monkeypatch
    )
    assert code == 1

    progress = [line for line in err.splitlines() if line.startswith("debate: ")]
    assert [int(re.match(r"debate: (\d+)/30 items", line)[1]) for line in progress] == list(range(3, 31, 3)), err
    assert progress[-1].startswith("debate: 30/30 items · 3 failed · ")

    with Store(db) as store:
        runs = store.list_runs()
    failed = sorted(r.id[:12] for r in runs if r.status == "failed")
    assert len(runs) == 30 and len(failed) == 3
    groups = {
        cells[0]: cells
        for line in out.splitlines()
        if line.startswith("│ ") and (cells := [c.strip() for c in line.strip("│").split("│")])[0]
    }
    assert groups["succeeded"][2] == "27" and groups["succeeded"][1].startswith("consensus")
    assert groups["failed"][2] == "3" and "no rule left" in groups["failed"][1]
    assert groups["total"][2] == "30"
    # then only the runs that did not succeed, by line
    listed = {cells[0]: cells[1] for cells in groups.values() if cells[0].startswith("line ")}
    assert sorted(listed) == ["line 17", "line 29", "line 5"] and sorted(listed.values()) == failed
    assert "not succeeded: 3 items" in out and "30 items: 27 succeeded, 3 failed" in out


def test_resume_batch_also_starts_the_lines_an_interruption_kept_from_starting(
    db: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    """Lines that never started have no run, so resuming the batch's runs left the batch short of them for good.
    ``resume --batch`` reads the batch's file again as the batch read it (its -i values, --limit) and starts them,
    tagged with the batch and their lines -- unless the file has changed since (its lines could have moved)."""
    model = script(tmp_path, "multiply.yaml", MULTIPLY)
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"question": f"What is {n}*3?"}) + "\n" for n in (1, 2, 3, 4, 5)))
    args = ["run", "debate", "--input-file", str(items), "--limit", "4", "-m", model, "--db", db, "-q"]
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == 0, err
    with Store(db) as store:
        runs = store.list_runs()
        batch = runs[0].meta["batch"]["id"]
        # as if an interruption had come before lines 2 and 4 started: no run of theirs
        store.delete_runs([r.id for r in runs if r.meta["batch"]["line"] in (2, 4)])
    code, out, err = run_cli(["resume", "--batch", batch, "--db", db, "--json"], capsys, monkeypatch)
    assert code == 0, err
    started = json.loads(out)
    assert [(d["line"], d["status"], d["result"]["answer"]) for d in started] == [
        (2, "succeeded", "6"),
        (4, "succeeded", "12"),
    ]
    with Store(db) as store:
        lines = sorted(r.meta["batch"]["line"] for r in store.list_runs(batch=batch))
        assert lines == [1, 2, 3, 4]  # line 5 was never part of the batch (--limit 4)
        assert {r.model for r in store.list_runs(batch=batch)} == {runs[0].model}
    code, _, err = run_cli(["resume", "--batch", batch, "--db", db], capsys, monkeypatch)
    assert code == 2 and "nothing to resume (4 succeeded)" in " ".join(err.split())

    with Store(db) as store:
        store.delete_runs([r.id for r in store.list_runs(batch=batch) if r.meta["batch"]["line"] == 3])
    items.write_text(items.read_text() + json.dumps({"question": "What is 9*3?"}) + "\n")
    code, _, err = run_cli(["resume", "--batch", batch, "--db", db], capsys, monkeypatch)
    said = " ".join(err.split())
    assert code == 2 and f"batch {batch}: 1 of its 4 lines never started, and {items.resolve()} has changed" in said

    # with a failed run to resume as well, that run is resumed; the lines that cannot be read again are named, and
    # the command fails for them (exit 1, as for a failed item)
    with Store(db) as store:
        line_1 = next(r for r in store.list_runs(batch=batch) if r.meta["batch"]["line"] == 1)
        store.mark_running(line_1.id)
        store.finish_run(line_1.id, "failed", stop_reason="error", error="as if it had failed")
    code, _, err = run_cli(["resume", "--batch", batch, "--db", db, "-q"], capsys, monkeypatch)
    said = " ".join(err.split())
    assert code == 1 and "not run (no run stored)" in said and "has changed since" in said, said
    assert "they are the lines of its first 4 items other than lines 1-2, 4, which have runs" in said, said
    with Store(db) as store:
        assert store.get_run(line_1.id).status == "succeeded"


def test_resume_batch_whose_file_is_gone_resumes_its_runs_and_fails_for_the_lines_it_cannot_run(
    db: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    """The batch's file deleted, its lines that never started cannot be run: ``resume --batch`` resumed the failed
    runs, printed the reason before its progress and summary, and exited 0 -- the batch left short, said to have
    succeeded. The stored runs are still resumed; the lines not run, the file and why are said after the summary,
    and the exit is 1, as for a failed item."""
    model = script(tmp_path, "multiply.yaml", MULTIPLY)
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"question": f"What is {n}*3?"}) + "\n" for n in (1, 2, 3, 4)))
    code, _, err = run_cli(
        ["run", "debate", "--input-file", str(items), "-m", model, "--db", db, "-q"], capsys, monkeypatch
    )
    assert code == 0, err
    with Store(db) as store:
        runs = store.list_runs()
        batch = runs[0].meta["batch"]["id"]
        # lines 2 and 4 never started (an interruption); line 3's run failed
        store.delete_runs([r.id for r in runs if r.meta["batch"]["line"] in (2, 4)])
        line_3 = next(r for r in runs if r.meta["batch"]["line"] == 3)
        store.mark_running(line_3.id)
        store.finish_run(line_3.id, "failed", stop_reason="error", error="as if it had failed")
    items.unlink()
    code, out, err = run_cli(["resume", "--batch", batch, "--db", db, "--json"], capsys, monkeypatch)
    said = " ".join(err.split())
    assert code == 1, said
    assert [(d["line"], d["status"]) for d in json.loads(out)] == [(3, "succeeded")]  # the run that could resume
    assert (
        f"not run (no run stored): batch {batch}: 2 of its 4 lines never started, and {items.resolve()} is gone" in said
    )
    assert "they are the lines of its items other than lines 1, 3, which have runs" in said, said
    with Store(db) as store:
        assert store.get_run(line_3.id).status == "succeeded"
        assert sorted(r.meta["batch"]["line"] for r in store.list_runs(batch=batch)) == [1, 3]


@pytest.mark.parametrize("given", [False, True], ids=["batch-model", "--model"])
def test_resume_batch_closes_the_client_of_the_lines_that_never_started(
    db: str, tmp_path: Path, capsys, monkeypatch, given: bool
) -> None:
    """The lines that never started run on one client (``--model``'s, else the batch's model): it must be closed
    with the batch (an HTTP provider's connections), once; it was built per call of a helper and never closed."""
    import yaml

    from agentmesh.models import ScriptedModel
    from agentmesh.models.registry import register_provider

    made: list[str] = []
    closed: list[str] = []

    class Closing(ScriptedModel):
        def __init__(self, target: str) -> None:
            super().__init__(rules=yaml.safe_load(MULTIPLY)["rules"])
            self.target = target
            made.append(target)

        async def aclose(self) -> None:
            closed.append(self.target)
            await super().aclose()

    register_provider("closing")(lambda ref, limits, options: Closing(ref.target))
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"question": f"What is {n}*3?"}) + "\n" for n in (1, 2, 3)))
    code, _, err = run_cli(
        ["run", "debate", "--input-file", str(items), "-m", "closing:a", "--db", db, "-q"], capsys, monkeypatch
    )
    assert code == 0, err
    with Store(db) as store:
        runs = store.list_runs()
        batch = runs[0].meta["batch"]["id"]
        store.delete_runs([r.id for r in runs if r.meta["batch"]["line"] == 2])  # as if it never started
    made.clear()
    closed.clear()

    args = ["resume", "--batch", batch, "--db", db, "--json", *(["-m", "closing:b"] if given else [])]
    code, out, err = run_cli(args, capsys, monkeypatch)
    assert code == 0, err
    assert [(d["line"], d["result"]["answer"]) for d in json.loads(out)] == [(2, "6")]
    model = "b" if given else "a"  # without --model: the batch's own
    assert made == [model] and closed == [model]
    with Store(db) as store:
        (line_2,) = [r for r in store.list_runs(batch=batch) if r.meta["batch"]["line"] == 2]
        assert line_2.model == f"closing:{model}"


def test_a_run_failing_on_its_inputs_does_not_advise_a_resume(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    """A resume runs a run with its stored inputs: after an input the graph refuses once running (here a function
    of the user's that raises ConfigError on it), "continue it with agentmesh resume" would fail alike; the advice
    is to fix and run again. (ALU's unknown target set used to be the example; it is now refused before the run is
    stored.)"""

    @agentmesh.register_function("cli_test_positive_limit", replace=True)
    def positive_limit(outputs: dict[str, object], inputs: dict[str, object]) -> dict[str, object]:
        if int(str(inputs["limit"])) <= 0:
            raise ConfigError(f"input 'limit' must be a positive number, got {inputs['limit']}")
        return {"answer": inputs["limit"]}

    graph = tmp_path / "limited.yaml"
    graph.write_text(
        "name: limited\ninputs:\n  question: {}\n  limit: {}\nagents:\n  a: {prompt: '{{ question }}'}\n"
        "nodes:\n  ask: {op: call, agent: a}\n  check: {op: function, function: cli_test_positive_limit}\n"
        "edges: [[ask, check]]\n"
    )
    model = script(tmp_path, "any.yaml", "rules: []\ndefault: x\n")
    args = ["run", str(graph), "-i", "question=Who?", "-i", "limit=-1", "-m", model, "--db", db]
    code, _, err = run_cli(args, capsys, monkeypatch)
    said = " ".join(err.split())
    with Store(db) as store:
        (failed,) = store.list_runs()
    assert code == 2 and failed.status == "failed" and "'limit' must be a positive number" in said, said
    assert "a resume would run it with the same inputs and settings and fail alike: fix them and run it again" in said
    assert f"agentmesh delete {failed.id[:12]}" in said and "continue it with" not in said


def test_a_batch_is_tagged_listed_and_resumed_by_its_id(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    """``run --input-file`` tags its runs with one batch id (file, line): ``runs --batch`` lists them, ``show`` says
    where a run came from, and ``resume --batch`` continues the batch's failed runs only."""
    model = script(tmp_path, "multiply.yaml", MULTIPLY)
    items = tmp_path / "items.jsonl"
    items.write_text('{"question": "What is 17*3?"}\n{"question": "Tell me a joke."}\n{"question": "What is 6*7?"}\n')
    code, out, _ = run_cli(["run", "debate", "--input-file", str(items), "-m", model, "--db", db], capsys, monkeypatch)
    assert code == 1
    code, _, _ = run_cli(["run", "debate", "-i", "question=What is 2*2?", "-m", model, "--db", db], capsys, monkeypatch)
    assert code == 0  # a run of no batch

    with Store(db) as store:
        tagged = [r for r in store.list_runs() if r.meta.get("batch")]
    assert len(tagged) == 3 and len({r.meta["batch"]["id"] for r in tagged}) == 1
    batch = tagged[0].meta["batch"]["id"]
    assert {(r.meta["batch"]["line"], r.inputs["question"]) for r in tagged} == {
        (1, "What is 17*3?"),
        (2, "Tell me a joke."),
        (3, "What is 6*7?"),
    }
    assert all(r.meta["batch"]["file"] == str(items.resolve()) and r.meta["batch"]["items"] == 3 for r in tagged)
    assert f"batch {batch} (agentmesh runs --batch {batch})" in " ".join(out.split())

    code, out, _ = run_cli(["runs", "--batch", batch, "--db", db], capsys, monkeypatch)
    assert code == 0 and "runs (3)" in out and all(r.id[:12] in out for r in tagged)
    code, out, _ = run_cli(["runs", "--batch", batch, "--db", db, "--json"], capsys, monkeypatch)
    listed = {r["inputs"]["question"]: r["answer"] for r in json.loads(out)}  # the answer each run ended with
    assert listed == {"What is 17*3?": "51", "Tell me a joke.": None, "What is 6*7?": "42"}
    code, out, _ = run_cli(["runs", "--batch", batch, "-n", "2", "--db", db], capsys, monkeypatch)
    assert "runs: the 2 newest of 3 (--limit)" in out
    joke = next(r for r in tagged if r.meta["batch"]["line"] == 2)
    code, out, _ = run_cli(["show", joke.id, "--db", db], capsys, monkeypatch)
    assert f"batch {batch}   item {items.resolve()} line 2" in out

    # the batch's failed run, and only it, is resumed by the batch's id; the others are left as they are
    answers = script(tmp_path, "joke.yaml", "rules:\n  - {agent: debater, template: '\\\\boxed{42}'}\n")
    code, out, err = run_cli(["resume", "--batch", batch, "-m", answers, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    with Store(db) as store:
        assert store.get_run(joke.id).status == "succeeded"
        assert {r.id: r.finished_at for r in tagged if r.id != joke.id} == {
            r.id: store.get_run(r.id).finished_at for r in tagged if r.id != joke.id
        }
    code, _, err = run_cli(["resume", "--batch", batch, "--db", db], capsys, monkeypatch)
    assert code == 2 and "nothing to resume (3 succeeded)" in " ".join(err.split())
    code, _, err = run_cli(["resume", joke.id, "--batch", batch, "--db", db], capsys, monkeypatch)
    assert code == 2 and "not both" in err

    # and the batch goes, whole, leaving the other run
    code, out, err = run_cli(["delete", "--batch", batch, "-y", "--db", db], capsys, monkeypatch)
    assert code == 0, err
    assert "deleted 3 run(s)" in out
    assert "batch still running" not in out  # (said only when one of its runs was running)
    with Store(db) as store:
        assert [r.inputs["question"] for r in store.list_runs()] == ["What is 2*2?"]
    code, _, err = run_cli(["delete", "--batch", batch, "-y", "--db", db], capsys, monkeypatch)
    assert code == 2 and f"no batch {batch!r} in " in err and "nothing deleted" in err


def test_every_command_taking_a_batch_takes_a_unique_prefix_of_its_id(
    db: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    """``show 3f2a`` found a run by a prefix of its id; ``--batch`` took only a batch's whole id. ``runs``,
    ``report``, ``resume`` and ``delete`` now take a unique prefix of it, and refuse an ambiguous or unknown one in
    the words a run's prefix is refused in, the candidates named."""
    model = script(tmp_path, "multiply.yaml", MULTIPLY)
    items = tmp_path / "items.jsonl"
    items.write_text('{"question": "What is 17*3?"}\n{"question": "Tell me a joke."}\n')
    code, _, _ = run_cli(["run", "debate", "--input-file", str(items), "-m", model, "--db", db], capsys, monkeypatch)
    assert code == 1  # the joke has no rule: a failed run to resume
    with Store(db) as store:
        batch = store.list_runs()[0].meta["batch"]["id"]
        # another batch whose id starts alike (a batch id is hex: "z" tells them apart at the 5th character)
        other = batch[:4] + "zzzzzzzz"
        store.create_run("debate", {"question": "q"}, meta={"batch": {"id": other, "line": 1}})
    prefix = batch[:5]

    code, out, err = run_cli(["runs", "--batch", prefix, "--db", db, "--json"], capsys, monkeypatch)
    assert code == 0 and {r["meta"]["batch"]["id"] for r in json.loads(out)} == {batch}, err
    page = tmp_path / "batch.html"
    code, out, err = run_cli(["report", "--batch", prefix, "-o", str(page), "--db", db], capsys, monkeypatch)
    assert code == 0 and f"report of batch {batch} (2 runs)" in " ".join(out.split()), err

    for command in (["runs"], ["report", "-o", str(page)], ["resume"], ["delete", "-y"]):
        code, _, err = run_cli([*command, "--batch", batch[:4], "--db", db], capsys, monkeypatch)
        said = " ".join(err.split())
        assert code == 2 and f"batch id prefix {batch[:4]!r} is ambiguous: it matches " in said, (command, said)
        assert batch in said and other in said and "give more characters" in said, said
        code, _, err = run_cli([*command, "--batch", "f00dz", "--db", db], capsys, monkeypatch)
        assert code == 2 and "no batch 'f00dz' in " in " ".join(err.split()), (command, err)

    answers = script(tmp_path, "joke.yaml", "rules:\n  - {agent: debater, template: '\\\\boxed{42}'}\n")
    code, out, err = run_cli(["resume", "--batch", prefix, "-m", answers, "--db", db], capsys, monkeypatch)
    assert code == 0 and f"batch {batch} (agentmesh runs --batch {batch})" in " ".join(out.split()), err
    code, out, err = run_cli(["delete", "--batch", prefix, "-y", "--db", db], capsys, monkeypatch)
    assert code == 0 and "deleted 2 run(s)" in out, err
    with Store(db) as store:
        assert [r.meta["batch"]["id"] for r in store.list_runs()] == [other]


def test_a_labelled_batch_says_its_accuracy(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    """Lines with a reference answer (GSM8K's "#### n", a plain "answer") are scored: each item's gold answer,
    ticked or crossed, and the batch's accuracy, a failed run counting as wrong; resume --batch keeps the gold."""
    model = script(tmp_path, "multiply.yaml", MULTIPLY)
    items = tmp_path / "items.jsonl"
    lines = [
        {"question": "What is 17*3?", "answer": "17*3 = <<17*3=51>>51\n#### 51"},
        {"question": "What is 6*7?", "answer": "41"},
        {"question": "Tell me a joke.", "answer": "42"},
        {"question": "What is 2*2?"},
    ]
    items.write_text("".join(json.dumps(line) + "\n" for line in lines))
    code, out, _ = run_cli(["run", "debate", "--input-file", str(items), "-m", model, "--db", db], capsys, monkeypatch)
    assert code == 1
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")]
        for line in out.splitlines()
        if "│ line" in line
    }
    assert (rows["line 1"][4], rows["line 1"][5]) == ("51", "51 ✓")
    assert (rows["line 2"][4], rows["line 2"][5]) == ("42", "41 ✗")
    assert (rows["line 3"][4], rows["line 3"][5]) == ("-", "42")
    assert rows["line 4"][5] == "-"
    assert (
        "accuracy: 1 of 3 labelled items right (33.3%); 1 failed, counted as wrong (1 of the 2 that ended: 50.0%)"
        in (" ".join(out.split()))
    )
    code, out, _ = run_cli(
        ["run", "debate", "--input-file", str(items), "-m", model, "--db", db, "--json"], capsys, monkeypatch
    )
    data = json.loads(out)
    assert [(d["gold"], d["correct"]) for d in data] == [("51", True), ("41", False), ("42", None), (None, None)]

    with Store(db) as store:
        batch = store.list_runs(limit=1)[0].meta["batch"]["id"]
    joke = script(tmp_path, "joke.yaml", "rules:\n  - {agent: debater, template: '\\\\boxed{42}'}\n")
    code, out, err = run_cli(["resume", "--batch", batch, "-m", joke, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    assert "accuracy: 1 of 1 labelled resumed run right (100.0%)" in out and "42 ✓" in out

    # the batch's page, from the store alone: its accuracy now, calls per item, a row per item
    page = tmp_path / "batch.html"
    code, out, err = run_cli(["report", "--batch", batch, "-o", str(page), "--db", db], capsys, monkeypatch)
    assert code == 0, err
    text = page.read_text()
    assert "2 of 3 labelled items right (66.7%)" in text and "4 from " in text
    assert text.count('class="bar"') == 2 and "3 items made 3 calls" in text  # they agreed at once
    assert "1 item made 6 calls" in text  # the resumed one: 3 failed calls, then 3 that answered
    rows = re.findall(r"<tr><td>(\d+)</td><td><code>[0-9a-f]{12}</code></td><td>(\w+)</td><td>([^<]*)</td>", text)
    assert rows == [
        ("1", "succeeded", "51"),
        ("2", "succeeded", "42"),
        ("3", "succeeded", "42"),
        ("4", "succeeded", "4"),
    ]
    assert text.count('<span class="ok">✓</span>') == 2 and text.count('<span class="err">✗</span>') == 1
    code, _, err = run_cli(["report", "--batch", "nope", "-o", str(page), "--db", db], capsys, monkeypatch)
    assert code == 2 and "no batch 'nope' in " in err


def test_limit_runs_the_first_items_only(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    model = script(tmp_path, "multiply.yaml", MULTIPLY)
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"question": f"What is {n}*2?"}) + "\n" for n in range(1, 6)))
    args = ["run", "debate", "--input-file", str(items), "-m", model, "--db", db, "--json"]
    code, out, err = run_cli([*args, "--limit", "2"], capsys, monkeypatch)
    assert code == 0, err
    assert [(d["line"], d["result"]["answer"]) for d in json.loads(out)] == [(1, "2"), (2, "4")]
    with Store(db) as store:
        assert len(store.list_runs()) == 2
    code, _, err = run_cli(
        ["run", "debate", "-i", "question=q", "-m", model, "--db", db, "-n", "2"], capsys, monkeypatch
    )
    assert code == 2 and "--limit takes the first items of an --input-file" in err
    code, _, err = run_cli(
        ["run", "debate", "-i", "question=q", "-m", model, "--db", db, "-c", "8"], capsys, monkeypatch
    )
    assert code == 2 and "--concurrency is how many items of an --input-file run at once" in err  # not ignored


def test_input_file_with_a_bad_line_fails_before_any_run(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    model = script(tmp_path, "multiply.yaml", MULTIPLY)
    items = tmp_path / "items.jsonl"
    for content, message in [
        ('{"question": "What is 1*1?"}\n{"question": "What is 2*2?"\n', "items.jsonl:2: not valid JSON"),
        ('{"question": "What is 1*1?"}\n\n["What is 2*2?"]\n', "items.jsonl:3: expected a JSON object of inputs"),
        ('{"question": "What is 1*1?"}\n{"question": 4}\n', "items.jsonl:2: graph 'debate': input 'question' should"),
        ("\n\n", "no items"),
    ]:
        items.write_text(content)
        code, _, err = run_cli(
            ["run", "debate", "--input-file", str(items), "-m", model, "--db", db], capsys, monkeypatch
        )
        assert code == 2, content
        assert message in " ".join(err.split()), err
    code, _, err = run_cli(["run", "debate", "--input-file", "nope.jsonl", "--db", db], capsys, monkeypatch)
    assert code == 2 and "nope.jsonl does not exist" in err
    with Store(db) as store:
        assert store.list_runs() == []


def test_max_calls_caps_the_debate(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    model = script(tmp_path, "any.yaml", "rules:\n  - {agent: debater, template: '\\boxed{ {{- call_index -}} }'}\n")
    code, out, err = run_cli(
        ["run", "debate", "-i", "question=q", "-m", model, "--db", db, "--max-calls", "2"], capsys, monkeypatch
    )
    assert code == 0, err
    with Store(db) as store:
        (run,) = store.list_runs()
        calls = store.events(run.id, kind="model_call")
    assert len(calls) <= 2 and run.totals["calls"] <= 2
    assert run.status == "succeeded" and (run.stop_reason or "").startswith("budget: 2 model calls")
    assert "stop: budget: 2 model calls" in out  # the node's note in the transcript
    assert "not called" in out  # the third debater's row


@pytest.mark.parametrize(
    ("flag", "value", "reason"),
    [("--max-tokens", "150", "budget: 150 tokens (spent "), ("--max-seconds", "1", "budget: 1 s wall time")],
)
def test_token_and_wall_time_budgets_from_the_command_line(
    flag: str, value: str, reason: str, db: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    """The agents never agree; round 1 alone spends ~200 tokens and 1.5 s (three parallel calls of 1.5 s), so
    either budget stops the run before round 2, with the best answer so far and the budget as its reason. (The
    wall budget is 1 s, not less: round 1 must start within it however busy the machine.)"""
    model = script(
        tmp_path,
        "slow.yaml",
        "delay_s: 1.5\nrules:\n  - {agent: debater, template: '\\boxed{ {{- call_index -}} }'}\n",
    )
    code, _, err = run_cli(
        ["run", "debate", "-i", "question=q", "-m", model, "--db", db, flag, value], capsys, monkeypatch
    )
    assert code == 0, err
    with Store(db) as store:
        (run,) = store.list_runs()
        calls = store.events(run.id, kind="model_call")
    assert len(calls) == 3 and {c.round for c in calls} == {1}
    assert run.status == "succeeded" and reason in (run.stop_reason or ""), run.stop_reason
    stored = {k: v for k, v in run.meta["budget"].items() if k != "kind"}
    assert stored == ({"tokens": 150} if flag == "--max-tokens" else {"wall_s": 1.0})


@pytest.mark.parametrize(
    ("flag", "field", "value", "expected"),
    [
        ("--max-calls", "calls", "0", "must be a positive whole number (got 0)"),
        ("--max-calls", "calls", "1.5", "must be a positive whole number (got 1.5)"),
        ("--max-tokens", "tokens", "0", "must be a positive whole number (got 0)"),
        ("--max-tokens", "tokens", "-3", "must be a positive whole number (got -3)"),
        ("--max-cost", "cost_usd", "0", "must be a positive number (got 0)"),
        ("--max-cost", "cost_usd", "nan", "must be a positive number (got nan)"),
        ("--max-seconds", "wall_s", "0", "must be a positive number (got 0)"),
        ("--max-seconds", "wall_s", "inf", "must be a positive number (got inf)"),
    ],
)
def test_a_budget_limit_is_refused_in_the_same_words_wherever_it_is_given(
    db: str, tmp_path: Path, capsys, monkeypatch, flag: str, field: str, value: str, expected: str
) -> None:
    """A budget of 0 was refused in four forms: typer's "0 is not in the range x>=1" (--max-calls, --max-tokens), a
    callback's "0 is not a positive number" (--max-cost, --max-seconds), pydantic's "Input should be greater than
    or equal to 1" in a graph's stop or a Python Budget. Each now says where, then the same words: what was
    expected and what was given. (Infinity was taken as a limit, and stored as JSON null, which a resume refused.)"""
    from agentmesh.runtime.arguments import as_budget
    from agentmesh.spec import Budget
    from agentmesh.spec.loader import load_graph

    code, _, err = run_cli(["run", "debate", "-i", "question=q", "--db", db, flag, value], capsys, monkeypatch)
    assert code == 2 and f"error: {flag} {expected}" in " ".join(err.split()), err
    with Store(db) as store:
        assert store.list_runs() == []  # refused before any run

    number = int(value) if value.lstrip("-").isdigit() else float(value)  # as the command line reads it
    with pytest.raises(ValueError, match=re.escape(f"{field}\n  {expected} [type=budget_limit")):
        Budget(**{field: number})
    with pytest.raises(ConfigError, match=re.escape(f"{field}: {expected} (a budget has calls")):
        as_budget({field: number})  # a Python run's budget={...}
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "name: g\nagents:\n  a: {prompt: hi}\nnodes:\n  ask: {op: call, agent: a}\n"
        f"stop:\n  budget: {{{field}: {value if value not in ('nan', 'inf') else '.' + value}}}\n"
    )
    with pytest.raises(ConfigError, match=re.escape(f"g.yaml:7: stop.budget.{field}: {expected}")):
        load_graph(graph)


def test_resume_continues_a_failed_run_without_repeating_calls(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    # Round 1 completes (three different answers: no consensus); round 2 has one response for three calls, so one
    # round-2 call succeeds and the other two fail: the run fails mid-round.
    failing = script(
        tmp_path,
        "failing.yaml",
        r"""
rules:
  - {agent: debater, round: 1, responses: ['\boxed{1}', '\boxed{2}', '\boxed{3}']}
  - {agent: debater, round: 2, responses: ['\boxed{9}']}
""",
    )
    code, out, err = run_cli(["run", "debate", "-i", "question=q", "-m", failing, "--db", db], capsys, monkeypatch)
    assert code == 1  # the run failed at run time
    with Store(db) as store:
        (failed,) = store.list_runs()
    assert failed.status == "failed" and "no rule left" in (failed.error or "")
    assert f"agentmesh resume {failed.id[:12]}" in err and "no rule left" in err
    assert "debate · round 1" in out  # how far it got

    complete = script(tmp_path, "complete.yaml", "rules:\n  - {agent: debater, template: '\\boxed{9}'}\n")
    code, out, err = run_cli(["resume", failed.id[:10], "-m", complete, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    with Store(db) as store:
        resumed = store.get_run(failed.id)
        calls = store.events(failed.id, kind="model_call")
    assert resumed.status == "succeeded" and resumed.stop_reason and "consensus" in resumed.stop_reason
    assert "answer       9" in out and "(resumed)" in out
    assert "served from the record" in out  # the round-2 call that had succeeded before the failure

    done = Counter((e.node, e.agent, e.round, e.call_index) for e in calls if e.response is not None)
    assert all(n == 1 for n in done.values()), f"a finished call was made again: {done}"
    assert {k[2:] for k in done} == {(r, s) for r in (1, 2) for s in range(3)}
    assert len([e for e in calls if e.error is not None]) == 2  # the two failed round-2 attempts, kept

    code, _, err = run_cli(["resume", failed.id, "-m", complete, "--db", db], capsys, monkeypatch)
    assert code == 2 and "already succeeded" in err


def test_several_runs_resume_as_a_batch(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    """Two runs fail mid-round 2 (as an interrupted batch would leave them); one command resumes both, each from
    its own checkpoint, no finished call made again. A succeeded run among the ids resumes nothing."""
    failing = script(
        tmp_path,
        "failing.yaml",
        r"""
rules:
  - agent: debater
    round: 1
    responses: ['\boxed{1}', '\boxed{2}', '\boxed{3}', '\boxed{1}', '\boxed{2}', '\boxed{3}']
  - {agent: debater, round: 2, responses: ['\boxed{9}']}
""",
    )
    items = tmp_path / "items.jsonl"
    items.write_text('{"question": "first"}\n{"question": "second"}\n')
    code, _, _ = run_cli(
        ["run", "debate", "--input-file", str(items), "-c", "1", "-m", failing, "--db", db], capsys, monkeypatch
    )
    assert code == 1
    with Store(db) as store:
        failed = store.list_runs()
    assert [r.status for r in failed] == ["failed", "failed"]
    ids = [r.id[:10] for r in failed]

    complete = script(tmp_path, "complete.yaml", "rules:\n  - {agent: debater, template: '\\boxed{9}'}\n")
    code, out, err = run_cli(["resume", *ids, "-m", complete, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    assert "2 runs: 2 succeeded, 0 failed" in out and all(i in out for i in ids)
    with Store(db) as store:
        for run in failed:
            assert store.get_run(run.id).status == "succeeded"
            made = Counter((e.round, e.call_index) for e in store.events(run.id, kind="model_call") if e.response)
            assert set(made.values()) == {1}, f"a finished call was made again: {made}"

    others = script(tmp_path, "again.yaml", "rules:\n  - {agent: debater, template: '\\boxed{1}'}\n")
    code, _, _ = run_cli(["run", "debate", "-i", "question=q", "-m", failing, "--db", db], capsys, monkeypatch)
    with Store(db) as store:
        newest = store.list_runs()[0]
    assert newest.status == "failed"
    code, _, err = run_cli(["resume", newest.id, ids[0], "-m", others, "--db", db], capsys, monkeypatch)
    assert code == 2 and "already succeeded; nothing to resume (nothing was resumed)" in " ".join(err.split())
    with Store(db) as store:
        assert store.get_run(newest.id).status == "failed"


def test_live_view_on_a_terminal(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    """On a terminal the view is drawn live (and cleared); the transcript and final panel are printed after it."""
    from agentmesh.cli import run as run_module

    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=160, height=40, color_system=None)
    monkeypatch.setattr(run_module, "console", terminal)
    model = script(tmp_path, "slow.yaml", AGREE_IN_ROUND_2.replace("rules:", "delay_s: 0.2\nrules:"))
    code, _, err = run_cli(["run", "debate", "-i", "question=q", "-m", model, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    text = screen.getvalue()
    assert "…" in text  # pending agents were drawn while their calls were in flight
    assert "debate · succeeded" in text and "answer       51" in text


def test_a_mistyped_model_leaves_no_database_behind(tmp_path: Path, capsys, monkeypatch) -> None:
    """A --model with no provider was refused only once the run began, after its store was opened: a new --db was
    left behind, an empty database that `agentmesh runs` then listed."""
    path = tmp_path / "new.db"
    code, _, err = run_cli(
        ["run", "debate", "-i", "question=x", "-m", "lcoal", "--db", f"sqlite:///{path}"], capsys, monkeypatch
    )
    assert code == 2 and "model reference 'lcoal' has no provider prefix" in " ".join(err.split())
    assert not path.exists()


def test_model_clients_built_from_a_reference_are_closed(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    """A run that builds its client from ``--model`` closes it (an HTTP provider's connections) when it ends."""
    from agentmesh.models.client import ModelClient

    closed: list[str] = []
    original = ModelClient.aclose

    async def counting_aclose(self: ModelClient) -> None:
        closed.append(self.reference)
        await original(self)

    monkeypatch.setattr(ModelClient, "aclose", counting_aclose)
    model = script(tmp_path, "multiply.yaml", MULTIPLY)
    code, _, err = run_cli(
        ["run", "debate", "-i", "question=What is 2*2?", "-m", model, "--db", db], capsys, monkeypatch
    )
    assert code == 0, err
    assert closed == [model, model]  # the client that checked --model before the store opened, then the run's

    closed.clear()
    items = tmp_path / "items.jsonl"
    items.write_text('{"question": "What is 1*1?"}\n{"question": "What is 2*3?"}\n')
    code, _, err = run_cli(["run", "debate", "--input-file", str(items), "-m", model, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    assert closed == [model]  # one client shared by every item, closed once at the end


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signalled_run_is_stored_as_interrupted_and_resumes(
    sig: signal.Signals, db: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    # Round 1 answers at once; round 2's calls wait a minute: the signal arrives while they are in flight. SIGTERM
    # is what `kill`, `timeout`, schedulers and container stops send; it must stop the run as Ctrl-C does, and the
    # exit status says which signal it was (128 + its number: 143 for SIGTERM, 130 for Ctrl-C; it was 130 for both)
    slow = script(
        tmp_path,
        "slow.yaml",
        r"""
rules:
  - {agent: debater, round: 1, responses: ['\boxed{1}', '\boxed{2}', '\boxed{3}']}
  - {agent: debater, round: 2, template: '\boxed{9}', delay_s: 60}
""",
    )
    child = start_cli(["run", "debate", "-i", "question=q", "-m", slow, "--db", db], tmp_path)
    try:
        run_id = _wait_for_calls(db, 3, child)
        child.send_signal(sig)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 128 + sig, err.decode()
    assert f"was interrupted; it is stored: continue it with agentmesh resume {run_id[:12]}" in " ".join(
        err.decode().split()
    )
    # what it printed: round 1's answers, and round 2's calls as cut short (not "calling")
    printed = out.decode()
    assert "debate · round 1" in printed and "│ 2    │ debater │ 3 " in printed
    assert printed.count("no answer: the run was interrupted") == 3 and "calling" not in printed, printed
    with Store(db) as store:
        stopped = store.get_run(run_id)
        calls = store.events(run_id, kind="model_call")
    assert (stopped.status, stopped.stop_reason) == ("interrupted", "interrupted")
    assert sorted((e.round, e.call_index) for e in calls if e.response is not None) == [(1, 0), (1, 1), (1, 2)]

    fast = script(tmp_path, "fast.yaml", "rules:\n  - {agent: debater, template: '\\boxed{9}'}\n")
    code, _, err_text = run_cli(["resume", run_id[:12], "-m", fast, "--db", db], capsys, monkeypatch)
    assert code == 0, err_text
    with Store(db) as store:
        assert store.get_run(run_id).status == "succeeded"
        done = Counter((e.round, e.call_index) for e in store.events(run_id, kind="model_call") if e.response)
    assert done == Counter({(r, s): 1 for r in (1, 2) for s in range(3)}), "a finished call was made again"


def test_an_interrupted_batch_says_which_runs_to_resume(db: str, tmp_path: Path) -> None:
    """Two items at a time: the first finishes at once, the two others hang on their model when Ctrl-C comes. The
    batch exits 130 and names the two runs it cut short (stored as interrupted, resumable)."""
    model = script(
        tmp_path,
        "items.yaml",
        r"""
rules:
  - {prompt: fast-item, template: '\boxed{1}'}
  - {prompt: slow-item, template: '\boxed{2}', delay_s: 60}
""",
    )
    items = tmp_path / "items.jsonl"
    items.write_text('{"question": "fast-item"}\n{"question": "slow-item one"}\n{"question": "slow-item two"}\n')
    child = start_cli(["run", "debate", "-c", "2", "--input-file", str(items), "-m", model, "--db", db], tmp_path)
    try:

        def fast_one_done(store: Store) -> bool | None:  # all three runs exist, the fast one has finished
            runs = store.list_runs()
            return (len(runs) == 3 and sum(r.status == "succeeded" for r in runs) == 1) or None

        wait_until(db, child, fast_one_done, "three runs, one of them finished")
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    message = " ".join(err.decode().split())
    assert child.returncode == 130, message
    with Store(db) as store:
        runs = {r.inputs["question"]: r for r in store.list_runs()}
    assert [runs[q].status for q in ("fast-item", "slow-item one", "slow-item two")] == [
        "succeeded",
        "interrupted",
        "interrupted",
    ]
    assert "interrupted: 1 of 3 items had finished, 2 runs were cut short and 0 never started" in message
    assert "agentmesh resume RUN" in message
    assert runs["slow-item one"].id[:12] in message and runs["slow-item two"].id[:12] in message
    batch = runs["fast-item"].meta["batch"]["id"]
    assert f"or the whole batch at once, the lines that never started too: agentmesh resume --batch {batch}" in message


def test_an_interrupted_resume_of_several_runs_lists_every_one_left_unfinished(
    db: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    """Two failed runs resumed one at a time on a model that hangs: Ctrl-C comes while the first is resumed. Both
    are still to be resumed, the one that had not started again included, and the message names both."""
    # round 1 disagrees (answers 0, 1, 2), round 2 has no rule: each run fails after its first round
    failing = script(
        tmp_path, "failing.yaml", "rules:\n  - {agent: debater, round: 1, template: '\\boxed{ {{- call_index -}} }'}\n"
    )
    for question in ("first", "second"):
        args = ["run", "debate", "-i", f"question={question}", "-m", failing, "--db", db]
        code, _, err = run_cli(args, capsys, monkeypatch)
        assert code == 1 and "no rule left" in err
    with Store(db) as store:
        ids = [r.id for r in store.list_runs()]
    assert len(ids) == 2

    hanging = script(tmp_path, "hanging.yaml", "rules:\n  - {agent: debater, template: '\\boxed{1}', delay_s: 60}\n")
    child = start_cli(["resume", *ids, "-c", "1", "-m", hanging, "--db", db], tmp_path)
    try:
        wait_until(
            db, child, lambda store: any(r.status == "running" for r in store.list_runs()) or None, "a run resumed"
        )
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    message = " ".join(err.decode().split())
    assert child.returncode == 130, message
    assert "interrupted: 0 of 2 runs had finished, 2 runs were cut short and 0 never started" in message
    assert all(run_id[:12] in message for run_id in ids)


def _wait_for_calls(db: str, n: int, child: subprocess.Popen[bytes]) -> str:
    """The id of the run the child started, once ``n`` of its model calls are stored."""

    def stored(store: Store) -> str | None:
        runs = store.list_runs()
        return runs[0].id if runs and len(store.events(runs[0].id, kind="model_call")) >= n else None

    return wait_until(db, child, stored, f"the run stores {n} model calls")


def test_a_replay_model_reruns_a_stored_run_from_the_db_it_is_given(
    db: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    model = script(tmp_path, "agree.yaml", AGREE_IN_ROUND_2)
    code, _, err = run_cli(["run", "debate", "-i", "question=q", "-m", model, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    with Store(db) as store:
        (first,) = store.list_runs()
    args = ["run", "debate", "-i", "question=q", "-m", f"replay:{first.id[:8]}", "--db", db, "--json"]
    code, out, err = run_cli(args, capsys, monkeypatch)
    assert code == 0, err
    result = json.loads(out)
    assert result["answer"] == "51" and result["calls"] == first.totals["calls"] == 6 and result["cost_usd"] == 0.0

    # a prompt the recorded run never sent: the run fails, and a resume with the same replay: model would fail
    # alike, so the advice names another model for what the record lacks
    args = ["run", "debate", "-i", "question=another", "-m", f"replay:{first.id[:8]}", "--db", db]
    code, _, err = run_cli(args, capsys, monkeypatch)
    said = " ".join(err.split())
    assert code == 1 and "the run never sent this one" in said, said  # the replayed run failed
    assert "-m MODEL, a model that answers the calls the replayed run never made" in said


def test_a_replay_of_a_command_line_run_checks_todays_graph_file(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    """The command line resolved the graph itself and passed the spec on, so its runs stored no source: a replay
    ran the stored spec, and an edit to the file went unnoticed (README: "a replay uses the run's graph as it is
    now")."""
    graph = tmp_path / "echo.yaml"
    graph.write_text(TYPED_GRAPH.replace("n: {type: integer}", "n: {type: integer, required: false, default: 1}"))
    model = script(tmp_path, "any.yaml", "rules:\n  - template: 'ok'\n")
    args = ["-i", "name=a", "-i", "x=1", "-i", "flag=true", "-i", "tags=[]", "-i", 'opts={"k": 1}', "-m", model]
    code, out, err = run_cli(["run", str(graph), *args, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    with Store(db) as store:
        (run,) = store.list_runs()
    assert run.meta["source"] == str(graph.resolve())
    code, out, err = run_cli(["replay", run.id, "--db", db], capsys, monkeypatch)
    assert code == 0 and f"graph from {graph.resolve()}" in out and "identical" in out, out + err
    graph.write_text(graph.read_text().replace("name={{ name }}", "NAME={{ name }}"))
    code, out, err = run_cli(["replay", run.id, "--db", db], capsys, monkeypatch)
    assert code == 1 and "diverged" in out, out + err


BRANCHED = """
name: branched
inputs:
  hard: {type: boolean}
agents:
  solver: {prompt: "solve"}
nodes:
  first: {op: call, agent: solver}
  gate: {op: branch, condition: hard, then: again, else: done}
  again: {op: call, agent: solver}
  done: {op: vote, from: first}
edges: [[first, gate]]
output: done
"""


def test_show_says_which_way_a_branch_went(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    """The live view said "took then"; the stored timeline showed the branch with nothing after it."""
    graph = tmp_path / "branched.yaml"
    graph.write_text(BRANCHED)
    model = script(tmp_path, "any.yaml", "rules:\n  - template: 'ok'\n")
    code, out, err = run_cli(["run", str(graph), "-i", "hard=no", "-m", model, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    with Store(db) as store:
        (run,) = store.list_runs()
    code, out, err = run_cli(["show", run.id, "--db", db], capsys, monkeypatch)
    assert code == 0 and re.search(r"gate \(branch\)\s+took else", out), out + err


def test_a_batch_with_an_unknown_function_fails_once_before_any_run(
    db: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    graph = tmp_path / "pick.yaml"
    graph.write_text(
        "name: pick\ninputs:\n  question: {}\nagents:\n  a: {prompt: '{{ question }}'}\n"
        "nodes:\n  ask: {op: call, agent: a}\n  choose: {op: function, function: longst}\nedges: [[ask, choose]]\n"
    )
    items = tmp_path / "items.jsonl"
    items.write_text('{"question": "a"}\n{"question": "b"}\n')
    model = script(tmp_path, "any.yaml", "rules:\n  - template: 'ok'\n")
    code, out, err = run_cli(
        ["run", str(graph), "--input-file", str(items), "-m", model, "--db", db], capsys, monkeypatch
    )
    assert code == 2 and "nodes.choose.function: unknown function 'longst'" in err and out == "", out + err
    with Store(db) as store:
        assert store.list_runs() == []


def test_show_full_keeps_a_prompts_lines_under_it(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    graph = tmp_path / "two_lines.yaml"
    graph.write_text(
        'name: two_lines\nagents:\n  a: {prompt: "first line\\nsecond line"}\nnodes:\n  ask: {op: call, agent: a}\n'
    )
    model = script(tmp_path, "any.yaml", 'rules:\n  - template: "reply one\\nreply two"\n')
    code, _, err = run_cli(["run", str(graph), "-m", model, "--db", db, "-q"], capsys, monkeypatch)
    assert code == 0, err
    with Store(db) as store:
        (run,) = store.list_runs()
    code, out, err = run_cli(["show", run.id, "--db", db, "--full"], capsys, monkeypatch)
    assert code == 0, err
    assert "user: first line\n          second line\n" in out and "reply: reply one\n          reply two\n" in out


def test_diff_shows_inputs_that_differ(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    """A fork with --set diverged at its first prompt, and the table did not say the inputs differ."""
    model = script(tmp_path, "multiply.yaml", MULTIPLY)
    for question in ("What is 2*3?", "What is 2*4?"):
        code, _, err = run_cli(
            ["run", "debate", "-i", f"question={question}", "-m", model, "--db", db, "-q"], capsys, monkeypatch
        )
        assert code == 0, err
    with Store(db) as store:
        ids = [r.id for r in store.list_runs()]
    code, out, err = run_cli(["diff", *ids, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    assert re.search(
        r"inputs\s+│ \{\"question\": \"What is 2\*(4|3)\?\"\}\s+│ \{\"question\": \"What is 2\*(3|4)\?\"\}", out
    ), out
    same = run_cli(["diff", ids[0], ids[0], "--db", db], capsys, monkeypatch)[1]
    assert "│ inputs" not in same


def test_resume_refuses_a_run_still_marked_running_unless_forced(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    """Resumed while its process was still at work, a run made its calls twice (both processes writing to it)."""
    model = script(tmp_path, "multiply.yaml", MULTIPLY)
    code, _, err = run_cli(
        ["run", "debate", "-i", "question=What is 2*3?", "-m", model, "--db", db, "-q"], capsys, monkeypatch
    )
    assert code == 0, err
    with Store(db) as store:
        (run,) = store.list_runs()
        store.mark_running(run.id)  # as a process killed with SIGKILL leaves it, or one still at work
    code, out, err = run_cli(["resume", run.id, "-m", model, "--db", db], capsys, monkeypatch)
    assert code == 2 and "is still marked running" in err and "--force" in err, out + err
    code, out, err = run_cli(["resume", run.id, "-m", model, "--db", db, "--force", "-q"], capsys, monkeypatch)
    assert code == 0 and out == "6\n", out + err
    with Store(db) as store:
        assert store.get_run(run.id).status == "succeeded"


def test_a_graph_that_fails_says_how_to_rerun_it_once_fixed(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    """A resume runs the graph stored with the run, so after a template error "continue it with agentmesh resume"
    failed alike once the file was fixed: the message also gives the fork that runs today's file."""
    graph = tmp_path / "judged.yaml"
    broken = (
        "name: judged\nagents:\n  a: {prompt: 'answer'}\n  j: {prompt: 'judge {{ nodes.ask.text.missing }}'}\n"
        "nodes:\n  ask: {op: call, agent: a}\n  check: {op: call, agent: j}\nedges: [[ask, check]]\n"
    )
    graph.write_text(broken)
    model = script(tmp_path, "any.yaml", "rules:\n  - template: 'ok'\n")
    code, _, err = run_cli(["run", str(graph), "-m", model, "--db", db, "-q"], capsys, monkeypatch)
    flat = " ".join(err.split())
    assert code == 1 and "prompt template failed" in flat, flat  # a RunError: the run ran, and failed
    step = re.search(r"agentmesh replay (\w+) --from (\d+): today's graph, its 1 recorded call served", flat)
    assert step is not None and step.group(2) == "1", flat
    graph.write_text(broken.replace(".missing", ""))
    code, out, err = run_cli(["replay", step.group(1), "--from", "1", "--db", db], capsys, monkeypatch)
    assert code == 0 and "1 call served from the parent, 1 made" in " ".join(out.split()), out + err


def test_runs_lists_the_reply_of_an_ask(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    """An ask has no graph, so its row showed "-" for an answer."""
    model = script(tmp_path, "multiply.yaml", MULTIPLY)
    code, _, err = run_cli(["ask", "What is 6*7?", "-m", model, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    code, out, err = run_cli(["runs", "--db", db], capsys, monkeypatch)
    assert code == 0 and re.search(r"│ ask\s+│ succeeded │ \\boxed\{42\}", out), out + err


def test_report_and_export_write_into_new_folders_and_name_a_path_they_cannot_write(
    db: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    """``report -o reports/run.html`` was a traceback when ``reports/`` did not exist (graph show made it)."""
    model = script(tmp_path, "multiply.yaml", MULTIPLY)
    code, _, err = run_cli(
        ["run", "debate", "-i", "question=What is 2*3?", "-m", model, "--db", db, "-q"], capsys, monkeypatch
    )
    assert code == 0, err
    with Store(db) as store:
        (run,) = store.list_runs()
    page = tmp_path / "reports" / "run.html"
    code, _, err = run_cli(["report", run.id, "-o", str(page), "--db", db], capsys, monkeypatch)
    assert code == 0 and page.read_text().startswith("<!DOCTYPE html>"), err
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code, _, err = run_cli(["export", run.id, "-o", str(blocker / "run.json"), "--db", db], capsys, monkeypatch)
    assert code == 2 and f"cannot write {blocker / 'run.json'}: " in " ".join(err.split()), err
    assert "Traceback" not in err


def test_a_run_whose_process_was_killed_resumes_without_force(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    """SIGKILL leaves a run marked running; its recorded owner is a dead process, so resume needs no --force."""
    slow = script(
        tmp_path,
        "slow.yaml",
        r"""
rules:
  - {agent: debater, round: 1, responses: ['\boxed{1}', '\boxed{2}', '\boxed{3}']}
  - {agent: debater, round: 2, template: '\boxed{9}', delay_s: 60}
""",
    )
    child = start_cli(["run", "debate", "-i", "question=q", "-m", slow, "--db", db], tmp_path)
    try:
        run_id = _wait_for_calls(db, 3, child)
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=60)
    finally:
        child.kill()
    with Store(db) as store:
        assert store.get_run(run_id).status == "running"
    model = script(tmp_path, "nine.yaml", r"rules: [{agent: debater, template: '\boxed{9}'}]")
    code, out, err = run_cli(["resume", run_id, "-m", model, "--db", db, "-q"], capsys, monkeypatch)
    assert code == 0 and out == "9\n", out + err


def test_a_resume_of_a_batch_beside_another_leaves_it_the_lines_it_started(
    db: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    """Two ``resume --batch`` at once each started every line that never started: each such line ran twice, two
    runs in the batch. A line's run now has the same id in every process, so the second start is refused by the
    store and the line skipped (not failed) by the resume that came second."""
    fast = script(tmp_path, "multiply.yaml", MULTIPLY)
    slow = script(tmp_path, "slow.yaml", "delay_s: 2\n" + MULTIPLY)
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"question": f"What is {n}*3?"}) + "\n" for n in range(1, 6)))
    code, _, err = run_cli(
        ["run", "debate", "--input-file", str(items), "-m", fast, "--db", db, "-q"], capsys, monkeypatch
    )
    assert code == 0, err
    with Store(db) as store:
        batch = store.list_runs()[0].meta["batch"]["id"]
        store.delete_runs([r.id for r in store.list_runs(batch=batch) if r.meta["batch"]["line"] > 1])
    child = start_cli(["resume", "--batch", batch, "-c", "1", "-m", slow, "--db", db, "--json"], tmp_path)
    try:
        wait_until(db, child, lambda store: store.count_runs(batch=batch) > 1 or None, "the child starts line 2")
        code, out, err = run_cli(["resume", "--batch", batch, "-m", fast, "--db", db, "--json"], capsys, monkeypatch)
        assert code == 0, err
        child_out, child_err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 0, child_err.decode()
    theirs = {d["line"]: d["status"] for d in json.loads(child_out)}
    ours = {d["line"]: d["status"] for d in json.loads(out)}
    assert theirs[2] == "succeeded" and 2 not in ours  # running under the child: not this resume's
    assert all(ours[n] == "succeeded" and theirs[n] == "skipped" for n in (3, 4, 5)), (ours, theirs)
    with Store(db) as store:
        lines = Counter(r.meta["batch"]["line"] for r in store.list_runs(batch=batch))
        assert lines == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
        assert {r.status for r in store.list_runs(batch=batch)} == {"succeeded"}


def test_a_replay_or_diff_of_a_run_that_never_finished_says_so(db: str, tmp_path: Path, capsys, monkeypatch) -> None:
    """A run cut short has no call past where it stopped, so its replay diverges there: the divergence blamed a
    changed graph or inputs, and nothing said that the run had simply not finished. Its diff showed its answer as
    "None", as if it had answered that."""
    model = script(tmp_path, "agree.yaml", AGREE_IN_ROUND_2)
    code, _, err = run_cli(["run", "debate", "-i", "question=q", "-m", model, "--db", db, "-q"], capsys, monkeypatch)
    assert code == 0, err
    with Store(db) as store:
        (done,) = store.list_runs()
        cut = store.create_run("debate", done.inputs, model=done.model, meta={"spec": done.meta["spec"]})
        store.finish_run(cut, "interrupted", stop_reason="interrupted")
    code, out, err = run_cli(["replay", cut, "--db", db], capsys, monkeypatch)
    said = " ".join(out.split())
    # (it said "diverged ... the graph or its inputs changed" first: nothing had; it reached where the run stopped)
    assert code == 1 and "stopped where the run stopped: 0 calls served as recorded, none diverged" in said, out + err
    assert "diverged after" not in said and "changed since the run" not in said
    assert f"note: run {cut[:12]} is interrupted (interrupted) after 0 calls" in said
    assert f"agentmesh resume {cut[:12]} continues it" in said
    report = replay(cut, store=db)  # the Python API says it too
    assert report.note is not None and report.note.startswith(f"run {cut[:12]} is interrupted (interrupted) after 0")
    assert replay(done.id, store=db).note is None
    code, out, err = run_cli(["replay", done.id, "--db", db], capsys, monkeypatch)
    assert code == 0 and "identical" in out and "note:" not in out
    code, out, err = run_cli(["diff", done.id, cut, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    row = next(line for line in out.splitlines() if "answer of vote" in line)
    assert "None" not in row and "│ -" in row
