"""A job's progress moves with its model calls, not only when an item ends.

``agentmesh optimize`` (and ``calibrate``, ``eval alu``) advanced the bar only when an item finished. On the embedded
model an item of ``dylan_mmlu`` takes minutes, so the bar sat at 0/2 and, off a terminal (a log file, ``nohup``,
CI), not one line was printed until the first item ended: 16 minutes of silence on two items. Now every model call
made here counts in the bar's note, which off a terminal is logged at least once a minute (here: at once, the
interval set to 0 so that every change is a line).
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from agentmesh.cli import _job, _progress
from agentmesh.cli._common import Executor
from agentmesh.cli._job import JobOptions
from agentmesh.cli._progress import item_note
from agentmesh.datasets import read_items
from agentmesh.models import ScriptedModel
from agentmesh.optimize import optimize
from agentmesh.optimize.items import ItemRun
from agentmesh.spec.loader import dump_graph
from agentmesh.store import Store
from tests._cli import run_cli
from tests._dylan_team import Team
from tests.unit.test_optimize import four_agent_graph, write_items


def _lines(stderr: str, title: str) -> list[str]:
    """The progress lines of ``title`` on stderr, without their clock."""
    return [re.sub(r" · \d+:\d\d:\d\d$", "", line) for line in stderr.splitlines() if line.startswith(f"{title}: ")]


def test_optimize_logs_the_calls_its_items_make_before_any_item_ends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four agents all answering (A): a consensus after the third answer of layer 1, so 3 calls an item, one item at
    a time. The log says each call as it is made, then the item."""
    monkeypatch.setattr(_progress, "LOG_EVERY_S", 0.0)
    monkeypatch.chdir(tmp_path)
    graph = tmp_path / "team.yaml"
    graph.write_text(dump_graph(four_agent_graph()))
    script = tmp_path / "agree.yaml"
    script.write_text('default: "I think (A)."\n')
    args = ["optimize", str(graph), "--data", str(write_items(tmp_path / "items.jsonl", 2)), "--top-k", "2"]
    args += ["-m", f"scripted:{script}", "--db", f"sqlite:///{tmp_path / 'runs.db'}", "-c", "1"]
    code, _, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 0, stderr
    assert _lines(stderr, "dylan_mmlu") == [
        "dylan_mmlu: 0/2 items · 1 model call made so far",
        "dylan_mmlu: 0/2 items · 2 model calls made so far",
        "dylan_mmlu: 0/2 items · 3 model calls made so far",
        "dylan_mmlu: 1/2 items · line 1: 3 calls",
        "dylan_mmlu: 1/2 items · 4 model calls made so far",
        "dylan_mmlu: 1/2 items · 5 model calls made so far",
        "dylan_mmlu: 1/2 items · 6 model calls made so far",
        "dylan_mmlu: 2/2 items · line 2: 3 calls",
    ]
    # run again, every item is reused: no call is made, and none is said
    code, _, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 0, stderr
    assert _lines(stderr, "dylan_mmlu") == [
        "dylan_mmlu: 1/2 items · line 1: reused",
        "dylan_mmlu: 2/2 items · line 2: reused",
    ]


def test_calibrate_logs_the_calls_of_its_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """MAgICoRe's calibration with the judges: three calls a problem (the Solver's first sample, the ORM and PRM
    judges), each said as it is made."""
    monkeypatch.setattr(_progress, "LOG_EVERY_S", 0.0)
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "mc.yaml"
    script.write_text(
        "rules:\n"
        '  - {agent: solver, template: "Step 1: Look.\\nStep 2: So it is \\\\boxed{4}."}\n'
        "  - {agent: orm_judge, prompt: 'Problem (\\d)', template: \"{{ match[1]|int * 10 }} [END]\"}\n"
        '  - {agent: prm_judge, template: "[0.5, 0.5]"}\n'
    )
    data = tmp_path / "problems.jsonl"
    data.write_text("".join(f'{{"question": "Problem {d}: what is 2+2?"}}\n' for d in (1, 3)))
    args = ["calibrate", "magicore", "--data", str(data), "-m", f"scripted:{script}", "-c", "1"]
    code, stdout, stderr = run_cli([*args, "--db", f"sqlite:///{tmp_path / 'runs.db'}"], capsys, monkeypatch)
    assert code == 0, stderr
    lines = _lines(stderr, "magicore calibration")
    assert lines[:4] == [
        "magicore calibration: 0/2 problems · 1 model call made so far",
        "magicore calibration: 0/2 problems · 2 model calls made so far",
        "magicore calibration: 0/2 problems · 3 model calls made so far",
        "magicore calibration: 1/2 problems · line 1: 3 calls",
    ]
    assert len(lines) == 8 and lines[-2] == "magicore calibration: 1/2 problems · 6 model calls made so far"
    # R = ORM + prod(PRM) = 0.1 + 0.25 and 0.3 + 0.25: mu 0.45, sigma 0.1
    assert "mu = 0.45, sigma = 0.1 over 2 first samples" in " ".join(stdout.split())


def test_an_item_of_one_call_is_said_in_the_singular() -> None:
    """Every run of ``eval alu``'s baselines makes one call: its log read "vanilla r2/none: 1 calls"."""
    assert item_note(ItemRun(line=2, inputs={}, calls=1), "vanilla r2/none") == "vanilla r2/none: 1 call"
    assert item_note(ItemRun(line=2, inputs={}, calls=5), "alu f11-1/none") == "alu f11-1/none: 5 calls"
    assert item_note(ItemRun(line=2, inputs={}, calls=1, reused=True), "line 2") == "line 2: reused"


def test_optimize_off_a_terminal_says_it_is_still_working_while_its_calls_are_slow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model that takes 1.5 s a call (the embedded one takes minutes): no call ends within the heartbeat's interval
    (here 1 s, 60 s in use), and a line says the job is still working, how far and how many calls so far; the lines
    of calls and items (at most one a minute, but at every tenth: each of one item) come as before. The heartbeat
    stops with the job."""
    monkeypatch.setattr(_progress, "HEARTBEAT_S", 1.0)
    monkeypatch.chdir(tmp_path)
    graph = tmp_path / "team.yaml"
    graph.write_text(dump_graph(four_agent_graph()))
    script = tmp_path / "slow.yaml"
    script.write_text('delay_s: 1.5\ndefault: "I think (A)."\n')
    args = ["optimize", str(graph), "--data", str(write_items(tmp_path / "items.jsonl", 1)), "--top-k", "2"]
    args += ["-m", f"scripted:{script}", "--db", f"sqlite:///{tmp_path / 'runs.db'}"]
    code, _, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 0, stderr
    assert not [t for t in threading.enumerate() if t.name.startswith("agentmesh progress heartbeat")]
    lines = [line for line in stderr.splitlines() if line.startswith("dylan_mmlu: ")]
    assert lines[-1].startswith("dylan_mmlu: 1/1 items · line 1: 3 calls · 0:00:0"), lines
    beats = lines[:-1]
    assert len(beats) >= 3, lines  # 4.5 s of calls, a line at least every second
    pattern = r"dylan_mmlu: still working · 0/1 items done · (\d) model calls? made so far · 0:00:0(\d)"
    found = [re.fullmatch(pattern, line) for line in beats]
    assert all(found), lines
    calls = [int(m[1]) for m in found if m]
    seconds = [int(m[2]) for m in found if m]
    assert calls[0] == 0 and calls == sorted(calls) and calls[-1] <= 3, lines
    assert seconds == sorted(set(seconds)), lines  # the same line is never printed twice


def test_a_resumed_item_says_the_calls_made_now_and_its_runs_total(tmp_path: Path) -> None:
    """An item whose run was cut short after 4 calls, resumed: 7 calls are made now. Its note said "11 calls" (the
    run's total), beside a count of calls made so far that had grown by 7; it says both, the total being what
    ``agentmesh show`` says of the run."""
    spec = four_agent_graph()
    items = read_items(write_items(tmp_path / "items.jsonl", 3), spec)
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    first = optimize(spec, items, top_k=2, model=ScriptedModel(respond=Team(fail_on="Question 1?")), store=db)
    assert [i.line for i in first.failed] == [2]

    finished: list[ItemRun] = []
    made: list[int] = []
    again = ScriptedModel(respond=Team())
    optimize(
        spec,
        items,
        top_k=2,
        model=again,
        store=db,
        concurrency=1,
        progress=lambda item, done, total: finished.append(item),
        on_call=lambda: made.append(1),
    )
    assert len(again.calls) == len(made) == 7
    assert [item_note(item, f"line {item.line}") for item in finished] == [
        "line 1: reused",
        "line 2: 7 calls (resumed: 11 in all)",
        "line 3: reused",
    ]
    resumed = finished[1]
    assert (resumed.calls, resumed.earlier_calls) == (11, 4)
    with Store(db) as store:
        assert store.get_run(resumed.run_id or "").totals["calls"] == 11  # as agentmesh show counts them

    # a run made afresh has no earlier calls: its note is as it was
    assert item_note(ItemRun(line=2, inputs={}, calls=3), "line 2") == "line 2: 3 calls"
    assert (
        item_note(ItemRun(line=2, inputs={}, calls=4, earlier_calls=3), "line 2")
        == "line 2: 1 call (resumed: 4 in all)"
    )


def _calibrate_args(tmp_path: Path) -> tuple[list[str], str]:
    """MAgICoRe's calibration of two problems, three calls each (as above); its bar's title."""
    script = tmp_path / "mc.yaml"
    script.write_text(
        "rules:\n"
        '  - {agent: solver, template: "Step 1: Look.\\nStep 2: So it is \\\\boxed{4}."}\n'
        "  - {agent: orm_judge, prompt: 'Problem (\\d)', template: \"{{ match[1]|int * 10 }} [END]\"}\n"
        '  - {agent: prm_judge, template: "[0.5, 0.5]"}\n'
    )
    data = tmp_path / "problems.jsonl"
    data.write_text("".join(f'{{"question": "Problem {d}: what is 2+2?"}}\n' for d in (1, 3)))
    return ["calibrate", "magicore", "--data", str(data), "-m", f"scripted:{script}"], "magicore calibration"


def _optimize_args(tmp_path: Path) -> tuple[list[str], str]:
    """DyLAN's optimisation of two items, three calls each (as above); its bar's title."""
    graph = tmp_path / "team.yaml"
    graph.write_text(dump_graph(four_agent_graph()))
    script = tmp_path / "agree.yaml"
    script.write_text('default: "I think (A)."\n')
    items = write_items(tmp_path / "items.jsonl", 2)
    return ["optimize", str(graph), "--data", str(items), "--top-k", "2", "-m", f"scripted:{script}"], "dylan_mmlu"


@pytest.mark.parametrize("job", [_calibrate_args, _optimize_args], ids=["calibrate", "optimize"])
def test_on_a_terminal_the_bar_stays_once_the_job_is_over(
    job: Callable[[Path], tuple[list[str], str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """optimize's bar stayed on the screen at the end (2/2, the last note, the time), calibrate's was erased (rich's
    transient bar: the cursor taken up a line and the line cleared): the jobs' bars now both stay."""
    screen = Console(file=io.StringIO(), force_terminal=True, width=120)
    monkeypatch.setattr(_job, "err_console", screen)
    monkeypatch.chdir(tmp_path)
    args, title = job(tmp_path)
    code, _, stderr = run_cli([*args, "-c", "1", "--db", f"sqlite:///{tmp_path / 'runs.db'}"], capsys, monkeypatch)
    assert code == 0, stderr
    drawn = screen.file.getvalue()  # type: ignore[attr-defined]
    last = drawn.rindex(title)  # the bar's last drawing: the job done
    assert "2/2" in drawn[last:] and "line 2: 3 calls" in drawn[last:], repr(drawn[last:])
    assert "\x1b[2K" not in drawn[last:], repr(drawn[last:])  # nothing cleared after it: it stays


def test_the_heartbeat_does_not_count_the_calls_of_ray_workers(tmp_path: Path) -> None:
    """A Ray worker's calls are not told to the job (``on_call``): its heartbeat would say "0 model calls made so
    far" however many were made. On Ray it says none; here it counts from 0."""
    for executor, calls in ((Executor.LOCAL, 0), (Executor.RAY, None)):
        options = JobOptions(
            model=None,
            concurrency=1,
            executor=executor,
            ray_address=None,
            ray_cpus=None,
            db=f"sqlite:///{tmp_path / 'runs.db'}",
            as_json=False,
        )
        with options.session("team", 2) as session:
            assert session.bar.calls == calls, executor
