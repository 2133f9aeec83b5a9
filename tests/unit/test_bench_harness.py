"""The benchmark scripts still run and still check what they claim (no timing is asserted here).

``bench/bench_overhead.py`` verifies every contender's answers and call counts on each run and fails when the
early-stop counts differ from the expected ones; running it briefly in CI keeps a refactor of agentmesh (or of the
harness) from silently breaking the figures BENCHMARKS.md reports.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_overhead.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The bench script, loaded once as a module."""
    spec = importlib.util.spec_from_file_location("bench_overhead", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_overhead"] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


def test_overhead_and_concurrency_harness_runs_and_verifies(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # the contenders that need no bench extra: the floor, the baseline and agentmesh, in interleaved rounds
    bench.main(
        [
            "--parts", "overhead", "concurrency",
            "--only", "plain asyncio", "Send, async, no", "agentmesh",
            "--reps", "2", "--sleep-reps", "1", "--warmup", "0", "--markdown",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    agentmesh_rows = [line for line in out.splitlines() if line.startswith("| agentmesh")]
    assert len(agentmesh_rows) == 2, out  # one row per part
    baseline = next(line for line in out.splitlines() if line.startswith("| LangGraph Send, async, no"))
    assert "| 1.00 | 1.00 |" in baseline  # the baseline's own ratios, by medians and round by round


def test_early_stop_counts_are_exact(bench: ModuleType) -> None:
    rows = bench.measure_early_stop()
    assert len(rows) == len(bench.EARLY_STOP_SCENARIOS)
    assert not [row for row in rows if any("MISMATCH" in cell for cell in row)], rows


def test_breakdown_takes_away_what_it_says_and_puts_the_store_back(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    from agentmesh.runtime.context import RunContext
    from agentmesh.store.writes import BatchWriter

    transaction, enqueue, ask = BatchWriter._transaction, BatchWriter._enqueue, RunContext.ask
    spec = importlib.util.spec_from_file_location("bench_breakdown", BENCH.parent / "bench_breakdown.py")
    assert spec is not None and spec.loader is not None
    breakdown = importlib.util.module_from_spec(spec)
    sys.modules["bench_breakdown"] = breakdown
    spec.loader.exec_module(breakdown)
    # every variant's answers and call counts are verified by the harness on each run; the script exits with an
    # error when a variant took nothing away (no event or checkpoint skipped, nothing sent to the echo process)
    breakdown.main(["--reps", "2", "--warmup", "0", "--call-reps", "5", "--timeline-runs", "1", "--markdown"])
    out = capsys.readouterr().out
    b = breakdown
    for name in (b.AGENTMESH, b.PROCESS, b.PROCESS_LOOP, b.FREE_WRITES, b.FREE_CALLS):
        assert f"| {name} |" in out, out
    # three variants drop every model call's event of their three runs (one verified, two timed)
    assert breakdown.STATS.skipped_events >= 3 * 3 * bench.CALLS
    assert breakdown.STATS.frames >= 3 * bench.CALLS  # sent as posted: a frame per event at least
    assert "| whole agent call (RunContext.ask, no store) |" in out
    timeline = [line for line in out.splitlines() if line.startswith(f"| {breakdown.AGENTMESH} |")][-1]
    assert float(timeline.split("|")[-2]) > 1.0  # wall over the 80 ms critical path: the sleeps were really slept
    # the hooks are gone: agentmesh writes and calls as usual afterwards
    assert BatchWriter._transaction is transaction
    assert BatchWriter._enqueue is enqueue
    assert RunContext.ask is ask
