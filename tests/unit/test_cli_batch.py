"""A batch (``agentmesh run --input-file``) stopped by Ctrl-C: what its message says about each item."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from agentmesh.cli.batch import run_all, run_many
from agentmesh.cli.batch_store import line_list
from agentmesh.cli.batch_summary import ItemOutcome
from agentmesh.runtime.context import Listener
from agentmesh.runtime.run import RunResult
from agentmesh.store import Store


def test_line_numbers_read_as_ranges() -> None:
    assert line_list([7]) == "line 7"
    assert line_list([8, 5, 6, 2]) == "lines 2, 5-6, 8"


def test_an_interrupt_names_the_lines_that_never_started(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Items that never started have no stored run, so ``resume --batch`` cannot reach them: after resuming, the
    batch was silently short of them. The message now names their lines and file."""

    async def cut(listeners: list[Listener]) -> RunResult:
        for listen in listeners:
            listen("start", {"run_id": "a" * 32})
        os.kill(os.getpid(), signal.SIGTERM)  # as `kill` or `timeout` would: the batch stops as after Ctrl-C
        await asyncio.sleep(30)
        raise AssertionError("SIGTERM did not stop the batch")

    async def never(listeners: list[Listener]) -> RunResult:
        raise AssertionError("a line after the interrupt started")

    def work(store: Store) -> list[tuple[ItemOutcome, Any]]:
        return [(ItemOutcome(line=n, inputs={}, batch="b"), cut if n == 1 else never) for n in (1, 2, 3, 5)]

    with pytest.raises(KeyboardInterrupt):
        run_many(
            "g",
            work,
            noun="items",
            db=f"sqlite:///{tmp_path / 'runs.db'}",
            concurrency=1,
            as_json=False,
            quiet=True,
            batch="b",
            source=Path("items.jsonl"),
        )
    message = " ".join(capsys.readouterr().err.split())
    assert "0 of 4 items had finished, 1 run was cut short and 3 never started" in message
    assert "the whole batch at once, the lines that never started too: agentmesh resume --batch b" in message
    assert "Never started: lines 2-3, 5 of items.jsonl" in message


def test_a_count_of_one_is_singular() -> None:
    from agentmesh.cli.batch_summary import _count

    assert (_count(1, "items"), _count(2, "items"), _count(1, "runs"), _count(0, "runs")) == (
        "1 item",
        "2 items",
        "1 run",
        "0 runs",
    )


def test_without_json_a_finished_run_keeps_its_answer_and_usage_but_not_its_outputs() -> None:
    """A batch holds every item's result until its summary; per-node outputs are most of one and only --json
    prints them, so the summary's runs drop them (they are in the store either way)."""

    def result(n: int) -> RunResult:
        return RunResult(
            run_id=f"{n:032x}",
            graph="g",
            status="succeeded",
            stop_reason="consensus",
            answer=str(n),
            outputs={"debate": {"answers": [{"text": "x" * 1000}]}},
            calls=3,
            prompt_tokens=10,
            completion_tokens=5,
            cost_usd=None,
        )

    def start(n: int) -> Any:
        async def go(listeners: list[Listener]) -> RunResult:
            return result(n)

        return go

    for keep in (False, True):
        runs = [(ItemOutcome(line=n, inputs={}), start(n)) for n in (1, 2)]
        done = asyncio.run(run_all(runs, 2, lambda kind, data: None, lambda outcome: None, keep_outputs=keep))
        for n, outcome in zip((1, 2), done, strict=True):
            assert outcome.result is not None
            assert outcome.result.model_dump(exclude={"outputs"}) == result(n).model_dump(exclude={"outputs"})
            assert outcome.result.outputs == (result(n).outputs if keep else {})


def test_an_interrupt_names_a_run_stored_before_it_could_say_it_started(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Interrupted while its run was being created, an item's run is stored (as interrupted) though the batch never
    heard it start: its line was named as never started and its run missing from the runs to resume by id."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"

    async def created_then_cut(listeners: list[Listener]) -> RunResult:
        with Store(url) as store:  # what arun's acreate_run leaves when cancelled mid-commit
            run_id = store.create_run("g", {}, run_id="c" * 32, meta={"batch": {"id": "b", "line": 2}})
            store.finish_run(run_id, "interrupted", stop_reason="interrupted")
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(30)
        raise AssertionError("SIGTERM did not stop the batch")

    async def never(listeners: list[Listener]) -> RunResult:
        raise AssertionError("a line after the interrupt started")

    def work(store: Store) -> list[tuple[ItemOutcome, Any]]:
        return [(ItemOutcome(line=n, inputs={}, batch="b"), created_then_cut if n == 2 else never) for n in (2, 3)]

    with pytest.raises(KeyboardInterrupt):
        run_many(
            "g", work, noun="items", db=url, concurrency=1, as_json=False, quiet=True, batch="b", source=Path("i.jsonl")
        )
    message = " ".join(capsys.readouterr().err.split())
    assert "0 of 2 items had finished, 1 run was cut short and 1 never started" in message
    assert "(finished calls are not made again): cccccccccccc;" in message
    assert "Never started: line 3 of i.jsonl" in message


def test_a_run_another_resume_claimed_first_is_skipped_and_a_failed_start_gives_the_run_back(tmp_path: Path) -> None:
    from agentmesh.cli.batch_store import Elsewhere, resume_claimed
    from agentmesh.errors import ConfigError

    async def never() -> RunResult:
        raise AssertionError("resumed beside the resume that claimed it")

    async def broken() -> RunResult:
        raise ConfigError("the run's model does not resolve here")

    with Store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        run_id = store.create_run("g", {})
        store.finish_run(run_id, "interrupted", stop_reason="interrupted")
        seen = store.get_run(run_id)
        assert store.claim_run(seen)  # another resume got there first
        with pytest.raises(Elsewhere, match=r"resumed it first \(it is running now\); left to it"):
            asyncio.run(resume_claimed(store, seen, never))
        store.release_claim(seen)
        with pytest.raises(ConfigError, match="does not resolve"):
            asyncio.run(resume_claimed(store, seen, broken))
        assert store.get_run(run_id).status == "interrupted"  # not left "running" under this process


def test_a_line_another_process_started_first_is_skipped_not_failed(tmp_path: Path) -> None:
    from agentmesh.cli.batch_store import Elsewhere, batch_run_id, start_line
    from agentmesh.store.schema import runs

    with Store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        run_id = batch_run_id("b", 3)
        assert run_id == batch_run_id("b", 3) != batch_run_id("b", 4)
        store.create_run("g", {}, run_id=run_id, meta={"batch": {"id": "b", "line": 3}})
        other = {"host": "other-host", "pid": 7, "started": 1}
        with store._writer.begin() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id).values(meta={"owner": other}))

        async def create() -> RunResult:
            await store.acreate_run("g", {}, run_id=run_id)
            raise AssertionError("created twice")

        with pytest.raises(Elsewhere, match="line 3: process 7 on other-host started it first"):
            asyncio.run(start_line(store, run_id, 3, create))

        async def fails() -> RunResult:  # its own run, failed: a failure, not skipped
            raise RuntimeError("boom")

        mine = batch_run_id("b", 4)
        store.create_run("g", {}, run_id=mine)
        with pytest.raises(RuntimeError, match="boom"):
            asyncio.run(start_line(store, mine, 4, fails))


def test_a_run_deleted_while_it_ran_does_not_sink_the_batch_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`delete --force` of a batch's running runs from another shell: the runs failed (their rows gone), and the
    batch then read each failed run back for its totals -- a RunNotFoundError that replaced the whole summary."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"

    async def deleted(listeners: list[Listener]) -> RunResult:
        for listen in listeners:
            listen("start", {"run_id": "d" * 32})
        raise RuntimeError("no run 'ddd...' (deleted while it ran)")

    def work(store: Store) -> list[tuple[ItemOutcome, Any]]:
        return [(ItemOutcome(line=1, inputs={}, batch="b"), deleted)]

    import typer

    with pytest.raises(typer.Exit) as exited:
        run_many("g", work, noun="items", db=url, concurrency=1, as_json=True, quiet=False, batch="b")
    assert exited.value.exit_code == 1
    (item,) = json.loads(capsys.readouterr().out)
    assert item["status"] == "failed"
    assert item["error"].endswith(f"(run {'d' * 32} is no longer stored: deleted while it ran)")
    assert item["run_id"] is None  # nothing to show or resume

    # the summary's footer does not send anyone to a run that is gone ("failed runs are stored: ... resume <run>")
    with pytest.raises(typer.Exit):
        run_many("g", work, noun="items", db=url, concurrency=1, as_json=False, quiet=False, batch="b")
    said = " ".join(capsys.readouterr().out.split())
    assert "deleted while it ran" in said and "failed runs are stored" not in said


def test_a_batch_cost_with_a_run_of_unknown_cost_is_unknown_not_a_partial_sum() -> None:
    """README: a cost is n/a "rather than a partial sum"; the batch's total summed the known costs only. A line
    that failed before its run made a call cost nothing, and does not make the total unknown."""
    from agentmesh.cli.batch_summary import _total_cost, _usage, digest_table

    def done(run_id: str, cost: float | None) -> ItemOutcome:
        result = RunResult(
            run_id=run_id,
            graph="g",
            status="succeeded",
            stop_reason="completed",
            outputs={},
            calls=2,
            prompt_tokens=10,
            completion_tokens=5,
            cost_usd=cost,
        )
        return ItemOutcome(line=1, inputs={}, run_id=run_id, result=result)

    never = ItemOutcome(line=3, inputs={}, error="bad input")
    priced, unpriced = done("a", 0.25), done("b", None)
    assert _usage(never) == (0, 0, 0.0)
    assert _total_cost(_usage(o)[2] for o in (priced, never)) == 0.25
    assert _total_cost(_usage(o)[2] for o in (priced, unpriced, never)) is None
    from rich.console import Console

    out = Console(width=200, record=True)
    out.print(digest_table("batch", [priced, unpriced, never]))
    total = next(line for line in out.export_text().splitlines() if "total" in line)
    assert "n/a" in total and "0.25" not in total
