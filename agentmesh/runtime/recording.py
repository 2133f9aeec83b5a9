"""The bridge from the model client layer to the store: every attempt becomes an event as it completes.

``models`` and ``store`` do not know each other (both are leaves); the runtime joins them here.

An event is handed to the store's writer thread the moment its call completes (:meth:`Store.post_events`) and
the call goes on without waiting for the commit: the answer had arrived before any commit could happen, so waiting
would not make a crash lose less. What matters for resume and replay is order, and the writer keeps it: the
event commits before the checkpoint of the step that used its answer (both go through the same queue), so a
resumed run finds every call its checkpoint depends on. Events queued together (a parallel team's) share one
commit. A write that fails is reported by :meth:`StoreRecorder.check` at the run's next write and once the run's
end is committed (after all its writes), so a run never ends "succeeded" with a gap in its record;
:meth:`StoreRecorder.settle` waits for the writes (a single call's run, ``agentmesh ask``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agentmesh.errors import DatabaseFailedError, StoreError
from agentmesh.models.messages import CallRecord

if TYPE_CHECKING:
    from agentmesh.store import Store
    from agentmesh.store.writes import Posted


def _first_event_row(kind: str, **fields: Any) -> dict[str, Any]:
    """:func:`~agentmesh.store.events.event_row`, imported when the first row is built and put in this function's
    place (:data:`_event_row`), so that later rows -- one per model call -- call it without an import statement each.

    The store's modules import SQLAlchemy: imported with this module, importing the runtime's registries
    (``agentmesh graph validate``) would import it too; the first row is built only once a run has a store."""
    global _event_row
    from agentmesh.store.events import event_row

    _event_row = event_row
    return event_row(kind, **fields)


#: What builds an event's row: :func:`_first_event_row` until the first one is built, then ``event_row`` itself.
_event_row: Callable[..., dict[str, Any]] = _first_event_row


class CallEvent:
    """A model call's event as queued for the store: made into a row (checked, redacted) when the writer thread
    calls it. A named type rather than a lambda so that the queued call can be told apart from other events
    (``bench/bench_breakdown.py`` measures what each kind of write costs)."""

    __slots__ = ("record",)

    def __init__(self, record: CallRecord) -> None:
        self.record = record

    def __call__(self) -> dict[str, Any]:
        return _event_row("model_call", **self.record.event_fields())


class StoreRecorder:
    """Records one run's events; also a :data:`~agentmesh.models.client.CallObserver` for its model calls."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self._writes: deque[Posted[list[int]]] = deque()

    def __call__(self, record: CallRecord) -> None:
        # The row is built (checked, redacted) by the writer thread: the call's answer goes back to the graph
        # without waiting for that work, which then overlaps the next calls' waiting for their models. (A plain
        # method: queuing never blocks, so a coroutine per call would be pure overhead.)
        self.check()
        self._writes.append(self.store.post_events(self.run_id, [CallEvent(record)]))

    def post(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Queue an event (checked and redacted here, committed by the writer thread) without waiting; the row
        as it is stored."""
        self.check()
        row = _event_row(kind, **fields)
        self._writes.append(self.store.post_events(self.run_id, [row]))
        return row

    def check(self) -> None:
        """Raise if one of the writes already done has failed; forget the done ones.

        The writer resolves writes in the order they were queued, so the done ones are a prefix of the queue:
        this looks at the front only, and costs nothing per pending write."""
        failed: BaseException | None = None
        writes = self._writes
        while writes and writes[0].done():
            exc = writes.popleft().exception()
            if failed is None:
                failed = exc
        if failed is not None:
            raise self._failed(failed)

    async def settle(self) -> None:
        """Wait for every queued event of the run; raise if one of them could not be stored."""
        if self._writes and not self._writes[-1].done():
            await self.store.aflush()  # commits them now rather than after the writer's delay for posted writes
        self.check()

    def _failed(self, exc: BaseException) -> StoreError:
        """The failed write's error: the store's own as it is; a driver's (a full disk, a read-only file) as a
        :class:`DatabaseFailedError` -- a failure of the database, not a refusal of what was asked (exit 1, and a
        batch stops starting lines when it is lasting) -- with the driver's error as its cause."""
        if isinstance(exc, StoreError):
            return exc
        from agentmesh.store._failures import lasting_failure

        failed = DatabaseFailedError(
            f"run {self.run_id}: an event could not be stored in {self.store.url}: {type(exc).__name__}: {exc}",
            run_id=self.run_id,
            url=self.store.url,
            lasting=lasting_failure(str(exc)),
        )
        failed.__cause__ = exc
        return failed
