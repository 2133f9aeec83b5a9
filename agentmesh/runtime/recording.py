"""The bridge from the model client layer to the store: every attempt becomes an event as it completes.

``models`` and ``store`` do not know each other (both are leaves); the runtime joins them here. The store's API
is synchronous (SQLAlchemy), so the write runs in a worker thread and the event loop keeps serving other calls;
it is awaited before the call returns, so a call the graph has seen is always on disk first: a resumed run never
repeats it, and replay can serve it back.
"""

from __future__ import annotations

import asyncio

from agentmesh.models.messages import CallRecord
from agentmesh.store import Store


class StoreRecorder:
    """A :data:`~agentmesh.models.client.CallObserver` writing ``model_call`` events of one run."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id

    async def __call__(self, record: CallRecord) -> None:
        await asyncio.to_thread(self.record_sync, record)

    def record_sync(self, record: CallRecord) -> None:
        self.store.record_event(self.run_id, "model_call", **record.event_fields())
