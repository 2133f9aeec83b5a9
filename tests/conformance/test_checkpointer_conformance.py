"""The agentmesh checkpointer against LangGraph's conformance suite, and against real graphs, on both backends.

Every capability the suite knows (base and extended) must be detected and pass: a capability that is skipped
or not detected fails the test, so a new capability in a future suite release is noticed, not ignored.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Annotated, Any, TypedDict
from uuid import uuid4

import pytest
import sqlalchemy as sa
from langchain_core.runnables import RunnableConfig
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES, Capability
from langgraph.checkpoint.conformance.report import CapabilityReport
from langgraph.graph import END, START, StateGraph

from agentmesh.errors import StoreError
from agentmesh.store import SQLAlchemyCheckpointSaver, Store
from agentmesh.store.schema import graph_checkpoint_blobs, graph_checkpoints

pytestmark = pytest.mark.timeout(600)


class SyncSurfaceSaver(SQLAlchemyCheckpointSaver):
    """The saver with every async method answered by its *sync* counterpart, called inline.

    The conformance suite only calls async methods; running it through this subclass checks the sync API
    (what ``graph.invoke`` uses) against the same specification. Blocking the loop is fine in a test.
    """

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.get_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for item in self.list(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        self.delete_for_runs(run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self.copy_thread(source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self.prune(thread_ids, strategy=strategy)


def _assert_full_conformance(report: CapabilityReport) -> None:
    report.print_report()
    problems = []
    for capability in sorted(ALL_CAPABILITIES, key=lambda c: c.value):
        result = report.results.get(capability.value)
        if result is None or not result.detected:
            problems.append(f"{capability.value}: not detected")
        elif result.passed is not True:
            problems.append(f"{capability.value}: {result.tests_failed} failed, {result.tests_skipped} skipped")
            problems.extend(f"    {failure}" for failure in result.failures)
        elif result.tests_passed == 0:
            problems.append(f"{capability.value}: no test ran")
    assert not problems, "checkpointer is not fully conformant:\n" + "\n".join(problems)


@pytest.mark.parametrize("surface", ["async", "sync"])
async def test_conformance_all_capabilities(store_url: str, surface: str) -> None:
    saver_type = SQLAlchemyCheckpointSaver if surface == "async" else SyncSurfaceSaver

    async def factory() -> AsyncGenerator[SQLAlchemyCheckpointSaver, None]:
        store = Store(store_url)
        try:
            yield saver_type(store.engine)
        finally:
            store.close()

    registered = checkpointer_test(name=f"agentmesh-{surface}")(factory)
    report = await validate(registered)
    assert set(report.results) == {c.value for c in Capability}
    _assert_full_conformance(report)


# --- storage: unchanged channels are not rewritten ---------------------------------------------------------


def _blob_rows(store: Store, thread_id: str) -> list[tuple[str, str]]:
    blobs = graph_checkpoint_blobs
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(blobs.c.channel, blobs.c.version).where(blobs.c.thread_id == thread_id)).all()
    return sorted((r.channel, r.version) for r in rows)


def test_unchanged_channels_are_not_rewritten(store_url: str) -> None:
    big = "x" * 10_000
    with Store(store_url) as store:
        saver = store.checkpointer()
        thread = str(uuid4())
        config: RunnableConfig = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
        versions: dict[str, Any] = {"transcript": saver.get_next_version(None, None), "step": None}
        for step in range(6):
            versions["step"] = saver.get_next_version(versions["step"], None)
            new_versions = {"step": versions["step"]} if step else dict(versions)
            checkpoint: Checkpoint = {
                "v": 1,
                "id": f"1ef0000{step}-0000-6000-8000-000000000000",
                "ts": "2025-01-01T00:00:00+00:00",
                "channel_values": {"transcript": big, "step": step},
                "channel_versions": dict(versions),
                "versions_seen": {},
                "updated_channels": ["step"],
            }
            config = saver.put(config, checkpoint, {"source": "loop", "step": step}, new_versions)

        rows = _blob_rows(store, thread)
        assert [ch for ch, _ in rows].count("transcript") == 1, "the unchanged channel was written again"
        assert [ch for ch, _ in rows].count("step") == 6
        history = list(saver.list({"configurable": {"thread_id": thread}}))
        assert len(history) == 6
        assert all(t.checkpoint["channel_values"]["transcript"] == big for t in history)
        assert [t.checkpoint["channel_values"]["step"] for t in history] == [5, 4, 3, 2, 1, 0]


async def test_long_histories_list_in_batches_without_blocking_the_loop(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 130 checkpoints x 10 changed channels: listing spans several load batches and chunked IN lists.
    with Store(store_url) as store:
        saver = store.checkpointer()
        thread = uuid4().hex
        config: RunnableConfig = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
        versions: dict[str, Any] = {}
        for step in range(130):
            versions = {f"c{i}": saver.get_next_version(versions.get(f"c{i}"), None) for i in range(10)}
            checkpoint: Checkpoint = {
                "v": 1,
                "id": f"1ef{step:05d}-0000-6000-8000-000000000000",
                "ts": "2025-01-01T00:00:00+00:00",
                "channel_values": {f"c{i}": f"{step}/{i}" for i in range(10)},
                "channel_versions": dict(versions),
                "versions_seen": {},
                "updated_channels": None,
            }
            config = saver.put(config, checkpoint, {"source": "loop", "step": step}, dict(versions))

        listed = list(saver.list({"configurable": {"thread_id": thread}}))
        assert [t.metadata["step"] for t in listed] == list(range(129, -1, -1))
        assert all(t.checkpoint["channel_values"]["c9"] == f"{t.metadata['step']}/9" for t in listed)

        worker_threads: set[int] = set()
        real_hydrate = saver._hydrate_batch

        def spy(*args: Any) -> Any:
            worker_threads.add(threading.get_ident())
            return real_hydrate(*args)

        monkeypatch.setattr(saver, "_hydrate_batch", spy)
        alisted = [t async for t in saver.alist({"configurable": {"thread_id": thread}}, filter={"source": "loop"})]
        assert [t.checkpoint for t in alisted] == [t.checkpoint for t in listed]
        assert worker_threads and threading.get_ident() not in worker_threads, "alist ran on the event loop"
        assert [t.metadata["step"] for t in await _alist(saver, thread, limit=3)] == [129, 128, 127]


async def _alist(saver: SQLAlchemyCheckpointSaver, thread: str, **kwargs: Any) -> list[CheckpointTuple]:
    return [t async for t in saver.alist({"configurable": {"thread_id": thread}}, **kwargs)]


# --- a real LangGraph graph ----------------------------------------------------------------------------


class Steps(TypedDict):
    topic: str
    log: Annotated[list[str], operator.add]


def _three_node_graph(calls: list[str]) -> StateGraph[Steps]:
    def node(name: str) -> Any:
        def run(state: Steps) -> dict[str, Any]:
            calls.append(name)
            return {"log": [f"{name}:{state['topic']}"]}

        return run

    graph = StateGraph(Steps)
    for name in ("draft", "review", "publish"):
        graph.add_node(name, node(name))
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "review")
    graph.add_edge("review", "publish")
    graph.add_edge("publish", END)
    return graph


EXPECTED_LOG = ["draft:t", "review:t", "publish:t"]


def test_graph_sync_invoke_interrupt_and_resume(store_url: str) -> None:
    calls: list[str] = []
    config: RunnableConfig = {"configurable": {"thread_id": "sync-" + uuid4().hex}}
    with Store(store_url) as store:
        app = _three_node_graph(calls).compile(checkpointer=store.checkpointer(), interrupt_before=["publish"])
        first = app.invoke({"topic": "t", "log": []}, config)
        assert first["log"] == EXPECTED_LOG[:2]
        assert app.get_state(config).next == ("publish",)

    # A new store (as another process would open it) resumes where the first one stopped.
    with Store(store_url) as store:
        app = _three_node_graph(calls).compile(checkpointer=store.checkpointer(), interrupt_before=["publish"])
        state = app.get_state(config)
        assert state.values["log"] == EXPECTED_LOG[:2]
        assert state.next == ("publish",)
        final = app.invoke(None, config)
        assert final["log"] == EXPECTED_LOG
        assert calls == ["draft", "review", "publish"], "a finished node ran again on resume"
        history = list(app.get_state_history(config))
        assert len(history) == 5  # input, draft, review, publish, plus the start of the loop
        assert history[0].values["log"] == EXPECTED_LOG
        assert history[-1].metadata is not None and history[-1].metadata["source"] == "input"

        # Time travel: re-run from the checkpoint taken before "review".
        before_review = next(s for s in history if s.next == ("review",))
        replayed = app.invoke(None, before_review.config)
        assert replayed["log"] == EXPECTED_LOG[:2]
        assert calls[-1] == "review"


async def test_graph_async_invoke_interrupt_and_resume(store_url: str) -> None:
    calls: list[str] = []
    config: RunnableConfig = {"configurable": {"thread_id": "async-" + uuid4().hex}}
    with Store(store_url) as store:
        app = _three_node_graph(calls).compile(checkpointer=store.checkpointer(), interrupt_before=["publish"])
        first = await app.ainvoke({"topic": "t", "log": []}, config)
        assert first["log"] == EXPECTED_LOG[:2]
        assert (await app.aget_state(config)).next == ("publish",)

    with Store(store_url) as store:
        app = _three_node_graph(calls).compile(checkpointer=store.checkpointer(), interrupt_before=["publish"])
        final = await app.ainvoke(None, config)
        assert final["log"] == EXPECTED_LOG
        assert calls == ["draft", "review", "publish"]
        history = [s async for s in app.aget_state_history(config)]
        assert len(history) == 5
        assert [s.values["log"] for s in reversed(history)][-1] == EXPECTED_LOG


# --- strict deserialization -------------------------------------------------------------------------------


class Opaque:
    """A class the serializer does not know: it must not be rebuilt by importing it from the stored data."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _asdict(self) -> dict[str, str]:  # msgpack stores namedtuple-like objects by constructor kwargs
        return {"text": self.text}


def test_unknown_types_are_not_imported_on_load_unless_allowlisted(store_url: str) -> None:
    with Store(store_url) as store:
        saver = store.checkpointer()
        config: RunnableConfig = {"configurable": {"thread_id": uuid4().hex, "checkpoint_ns": ""}}
        version = saver.get_next_version(None, None)
        checkpoint: Checkpoint = {
            "v": 1,
            "id": "1ef00000-0000-6000-8000-000000000001",
            "ts": "2025-01-01T00:00:00+00:00",
            "channel_values": {"note": Opaque("hello")},
            "channel_versions": {"note": version},
            "versions_seen": {},
            "updated_channels": None,
        }
        stored = saver.put(config, checkpoint, {"source": "input", "step": -1}, {"note": version})

        loaded = saver.get_tuple(stored)
        assert loaded is not None
        assert loaded.checkpoint["channel_values"]["note"] == {"text": "hello"}  # data only, class not imported

        trusting = saver.with_allowlist([(Opaque.__module__, Opaque.__name__)])
        rebuilt = trusting.get_tuple(stored)
        assert rebuilt is not None
        note = rebuilt.checkpoint["channel_values"]["note"]
        assert isinstance(note, Opaque) and note.text == "hello"


# --- pruning keeps what DeltaChannel needs ----------------------------------------------------------------


def _concat(state: list[str], writes: Sequence[list[str]]) -> list[str]:
    return [*state, *(item for batch in writes for item in batch)]


class Counting(TypedDict):
    n: int
    items: Annotated[list[str], DeltaChannel(_concat, snapshot_frequency=3)]


def _delta_graph() -> Any:
    def step(state: Counting) -> dict[str, Any]:
        return {"n": state["n"] + 1, "items": [f"item{state['n']}"]}

    graph = StateGraph(Counting)
    graph.add_node("step", step)
    graph.add_edge(START, "step")
    graph.add_conditional_edges("step", lambda s: END if s["n"] >= 7 else "step")
    return graph


def _checkpoint_count(store: Store, thread_id: str) -> int:
    cp = graph_checkpoints
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(cp.c.thread_id == thread_id)).scalar_one())


def test_prune_keep_latest_preserves_delta_channel_history(store_url: str) -> None:
    config: RunnableConfig = {"configurable": {"thread_id": "delta-" + uuid4().hex}}
    thread = config["configurable"]["thread_id"]
    with Store(store_url) as store:
        saver = store.checkpointer()
        app = _delta_graph().compile(checkpointer=saver)
        result = app.invoke({"n": 0, "items": []}, config)
        expected = [f"item{i}" for i in range(7)]
        assert result["items"] == expected
        # The run ends two updates after the last snapshot of "items" (snapshot_frequency=3), so the latest
        # checkpoint stores no value for it: rebuilding it needs the parent and the snapshot checkpoint too.
        latest = saver.get_tuple(config)
        assert latest is not None
        counters: Any = latest.metadata["counters_since_delta_snapshot"]
        assert counters == {"items": [2, 2]}  # (updates, supersteps) since the snapshot, as JSON
        assert "items" not in latest.checkpoint["channel_values"]
        before = _checkpoint_count(store, thread)
        blobs_before = len(_blob_rows(store, thread))

        saver.prune([thread], strategy="keep_latest")

        assert _checkpoint_count(store, thread) == 3 < before
        assert len(_blob_rows(store, thread)) < blobs_before, "blobs of pruned checkpoints should be collected"
        assert app.get_state(config).values["items"] == expected, "the delta channel lost its history"
        assert app.get_state(config).values["n"] == 7


def test_prune_rejects_unknown_strategy(store_url: str) -> None:
    with Store(store_url) as store, pytest.raises(StoreError, match="unknown prune strategy"):
        store.checkpointer().prune(["t"], strategy="keep_some")


def test_copy_thread_refuses_existing_target(store_url: str) -> None:
    with Store(store_url) as store:
        saver = store.checkpointer()
        app = _three_node_graph([]).compile(checkpointer=saver)
        for thread in ("a", "b"):
            app.invoke({"topic": thread, "log": []}, {"configurable": {"thread_id": thread}})
        with pytest.raises(StoreError, match="already has checkpoints"):
            saver.copy_thread("a", "b")
        saver.copy_thread("a", "c")
        copied = app.get_state({"configurable": {"thread_id": "c"}})
        assert copied.values["log"] == ["draft:a", "review:a", "publish:a"]
        app.invoke(None, {"configurable": {"thread_id": "c"}})  # the copy is a working thread
