"""Ctrl-C pressed twice: the second press must not break the clean-up the first one started.

asyncio's own SIGINT handling (which :func:`agentmesh.cli._common.run_async` left to it) cancelled the work on the
first press and raised ``KeyboardInterrupt`` on the second wherever the event loop was: inside the runs' clean-up
(storing them as interrupted), which was then cut, and the process could hang on the tasks it left half done. The
signals are real, sent by the process to itself at the moments a user's presses would land."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from agentmesh.cli._common import run_async

pytestmark = pytest.mark.usefixtures("restore_signal_handlers")


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_during_clean_up_lets_it_finish_and_says_so(
    second: signal.Signals, capfd: pytest.CaptureFixture[str]
) -> None:
    steps: list[str] = []

    async def work() -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)  # the first Ctrl-C, while the work runs
            await asyncio.sleep(30)
            steps.append("not cancelled")
        except asyncio.CancelledError:
            steps.append("cancelled")
            os.kill(os.getpid(), second)  # a second press while the runs are being stored as interrupted
            await asyncio.sleep(0.05)  # the clean-up's own awaits (the store's commits)
            steps.append("cleaned up")
            raise

    with pytest.raises(KeyboardInterrupt):
        run_async(work())
    assert steps == ["cancelled", "cleaned up"]
    assert "stopping: storing the interrupted runs" in capfd.readouterr().err


def test_a_second_press_after_the_work_is_over_raises_nothing_more(capfd: pytest.CaptureFixture[str]) -> None:
    """Once run_async returned, the command says how far it got and closes its store: a press then raised
    KeyboardInterrupt inside that (a traceback from the connection pool, the store's last writes lost)."""

    async def work() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(30)

    with pytest.raises(KeyboardInterrupt):
        run_async(work())
    os.kill(os.getpid(), signal.SIGINT)  # during the command's report and the store's close
    said = [sum(range(1000)) for _ in range(100)]  # bytecode runs: a Python handler would have raised by now
    assert len(said) == 100
    assert "stopping: storing the interrupted runs" in capfd.readouterr().err


def test_without_a_signal_cancellation_is_not_turned_into_an_interrupt() -> None:
    async def work() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        run_async(work())
