"""Progress of long CLI work off a terminal: a plain line at every tenth, and at least once a minute while it moves."""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from agentmesh.cli import _progress
from agentmesh.cli._progress import LOG_EVERY_S, WorkProgress
from tests._cli import run_cli


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def consoles(*, terminal: bool) -> tuple[Console, Console, io.StringIO]:
    log = io.StringIO()
    return (
        Console(file=io.StringIO(), force_terminal=terminal, width=100),
        Console(file=log, force_terminal=False, width=100),
        log,
    )


def test_off_a_terminal_a_line_at_every_tenth_and_once_a_minute_while_calls_move(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(_progress.time, "monotonic", clock)
    screen, log_console, log = consoles(terminal=False)
    with WorkProgress("debate", 20, console=screen, log=log_console, unit="items") as progress:
        progress.update(note="0 failed · 1 calls")  # nothing finished, no minute gone: quiet
        clock.now += LOG_EVERY_S - 1
        progress.update(note="0 failed · 2 calls")
        assert log.getvalue() == ""
        clock.now += 1  # a minute without a line, and calls moved: one line
        progress.update(note="0 failed · 3 calls")
        clock.now += LOG_EVERY_S + 5  # a minute later, but nothing moved since: no line
        progress.update()
        progress.update(advance=1, note="0 failed · 3 calls")  # it moves (1 of 20), over a minute since: a line
        progress.update(advance=1, note="1 failed · 3 calls")  # 2 of 20: the first tenth
        progress.update(completed=9, note="1 failed · 9 calls")  # jumps over three tenths: one line
        progress.update(advance=1)  # 10 of 20: the fifth tenth
        progress.update(completed=20, note="1 failed · 20 calls")
    assert log.getvalue().splitlines() == [
        "debate: 0/20 items · 0 failed · 3 calls · 0:01:00",
        "debate: 1/20 items · 0 failed · 3 calls · 0:02:05",
        "debate: 2/20 items · 1 failed · 3 calls · 0:02:05",
        "debate: 9/20 items · 1 failed · 9 calls · 0:02:05",
        "debate: 10/20 items · 1 failed · 9 calls · 0:02:05",
        "debate: 20/20 items · 1 failed · 20 calls · 0:02:05",
    ]
    assert screen.file.getvalue() == ""  # type: ignore[attr-defined]


def test_fewer_than_ten_units_log_each_one() -> None:
    screen, log_console, log = consoles(terminal=False)
    with WorkProgress("resume", 3, console=screen, log=log_console, unit="runs") as progress:
        for _ in range(3):
            progress.update(advance=1)
    assert [line.split(" · ")[0] for line in log.getvalue().splitlines()] == [
        "resume: 1/3 runs",
        "resume: 2/3 runs",
        "resume: 3/3 runs",
    ]


def test_on_a_terminal_a_bar_and_no_log_lines_and_disabled_nothing() -> None:
    screen, log_console, log = consoles(terminal=True)
    with WorkProgress("debate", 4, console=screen, log=log_console, transient=False) as progress:
        progress.update(completed=4, note="0 failed · 12 calls")
    assert log.getvalue() == ""
    drawn = screen.file.getvalue()  # type: ignore[attr-defined]
    assert "4/4" in drawn and "12 calls" in drawn

    screen, log_console, log = consoles(terminal=False)
    with WorkProgress("debate", 4, console=screen, log=log_console, enabled=False) as progress:
        progress.update(completed=4)
    assert log.getvalue() == "" and screen.file.getvalue() == ""  # type: ignore[attr-defined]


def _heartbeats() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("agentmesh progress heartbeat")]


def test_off_a_terminal_a_heartbeat_says_the_work_goes_on_while_nothing_is_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A call on the embedded model takes minutes: no call ended, no item either, so no line came, and the first one
    came after 2:50 (the job looked hung). With no line for HEARTBEAT_S (here 1 s), one says the work goes on; its
    clock (elapsed, at least HEARTBEAT_S later each time) is what changed, so it is never the same line twice."""
    monkeypatch.setattr(_progress, "HEARTBEAT_S", 1.0)
    screen, log_console, log = consoles(terminal=False)
    with WorkProgress("debate", 20, console=screen, log=log_console, calls=0) as progress:
        time.sleep(1.5)
        progress.update(note="1 model call made so far", calls=1)  # no tenth, no minute: no line of its own
        time.sleep(1.0)
        progress.update(completed=2, note="line 2: 1 call", calls=1)  # a tenth: a line, and the heartbeat waits again
        time.sleep(0.5)
    assert not _heartbeats()  # stopped with the work
    lines = log.getvalue().splitlines()
    # (what is asserted holds however late a loaded machine wakes the heartbeat's thread: no exact clock, no count)
    unclocked = [re.sub(r" · \d+:\d\d:\d\d$", "", line) for line in lines]
    assert unclocked[0] == "debate: still working · 0/20 items done · 0 model calls made so far"
    item = unclocked.index("debate: 2/20 items · line 2: 1 call")
    assert "debate: still working · 0/20 items done · 1 model call made so far" in unclocked[:item]
    assert all(line.startswith("debate: still working · ") for line in unclocked[:item])
    assert len(set(lines)) == len(lines)  # never the same line twice: the clock moves
    time.sleep(1.1)
    assert log.getvalue().splitlines() == lines  # none once the work is over


def test_no_heartbeat_on_a_terminal_nor_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal the bar shows the work moving (its clock ticks): no line of text beside it; with --json or
    --quiet, nothing at all."""
    monkeypatch.setattr(_progress, "HEARTBEAT_S", 1.0)
    for terminal, enabled in ((True, True), (False, False)):
        screen, log_console, log = consoles(terminal=terminal)
        with WorkProgress("debate", 4, console=screen, log=log_console, enabled=enabled, calls=0):
            assert not _heartbeats()
            time.sleep(1.2)
        assert log.getvalue() == ""
        assert "still working" not in screen.file.getvalue()  # type: ignore[attr-defined]


def test_a_batch_off_a_terminal_has_the_heartbeat_with_its_calls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run --input-file`` shares the progress: a model taking 1.5 s a call, the heartbeat (here every second) says
    the batch is still working and the calls made so far (the batch's own count: 3 once the first item ended)."""
    monkeypatch.setattr(_progress, "HEARTBEAT_S", 1.0)
    script = tmp_path / "slow.yaml"
    script.write_text("delay_s: 1.5\nrules:\n  - {agent: debater, template: '\\boxed{1}'}\n")
    items = tmp_path / "items.jsonl"
    items.write_text('{"question": "What is 1*1?"}\n{"question": "What is 2*3?"}\n')
    args = ["run", "debate", "--input-file", str(items), "-m", f"scripted:{script}", "-c", "1"]
    code, _, err = run_cli([*args, "--db", f"sqlite:///{tmp_path / 'runs.db'}"], capsys, monkeypatch)
    assert code == 0, err
    lines = [re.sub(r" · \d+:\d\d:\d\d$", "", line) for line in err.splitlines() if line.startswith("debate: ")]
    # (however late a loaded machine runs things: each heartbeat says what was done when it came, in order)
    items = [line for line in lines if "still working" not in line]
    assert items == ["debate: 1/2 items · 0 failed · 3 calls", "debate: 2/2 items · 0 failed · 6 calls"]
    first, second = lines.index(items[0]), lines.index(items[1])
    assert lines[:first] and set(lines[:first]) == {
        "debate: still working · 0/2 items done · 0 model calls made so far"
    }
    assert set(lines[first + 1 : second]) <= {"debate: still working · 1/2 items done · 3 model calls made so far"}
    assert lines[first + 1 : second]  # a 1.5 s call after the first item: at least one heartbeat before the second
