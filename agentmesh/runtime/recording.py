"""The bridge from the model client layer to the store: every attempt becomes an event as it completes.

``models`` and ``store`` do not know each other (both are leaves); the runtime joins them here.

Writes use group commit: an event is handed to the run's writer and the caller waits until it is committed, but
events that arrive while a commit is in flight (the other calls of a parallel team) go together in the next
single transaction. A call the graph has seen is therefore always on disk first (a resumed run never repeats it,
replay can serve it back), and a team of seven costs one or two commits instead of seven. Building the rows
(JSON checks, secret redaction) and the commit itself run in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agentmesh.models.messages import CallRecord
from agentmesh.store import Store, event_row


class StoreRecorder:
    """Records one run's events; also a :data:`~agentmesh.models.client.CallObserver` for its model calls."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def __call__(self, record: CallRecord) -> None:
        await self.record("model_call", **record.event_fields())

    async def record(self, kind: str, **fields: Any) -> None:
        """Append an event and return once it is committed (possibly together with others)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(({"kind": kind, **fields}, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await asyncio.shield(future)

    def record_sync(self, record: CallRecord) -> None:
        """Blocking form for code without an event loop."""
        self.store.record_event(self.run_id, "model_call", **record.event_fields())

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self._write, [fields for fields, _ in batch])
            except BaseException as exc:  # every waiter of the batch learns why its event is not stored
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    def _write(self, batch: list[dict[str, Any]]) -> None:
        self.store.record_events(self.run_id, [event_row(**fields) for fields in batch])
