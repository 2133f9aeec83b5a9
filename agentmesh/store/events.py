"""A run's events: how one is built (:func:`event_row`) and appended (:class:`AppendEvents`, a writer op).

Apart from :mod:`agentmesh.store.runs` (the runs, and the :class:`~agentmesh.store.runs.Store` facade whose
``record_event``, ``post_events`` and ``events`` use this) because it is the store's hottest path: every model call
posts one event, built -- checked, redacted -- and inserted in the writer thread (:mod:`agentmesh.store.writes`)
as a prepared statement (:mod:`agentmesh.store.statements`), consecutive appends to one run sharing one ``seq``
lookup. The same redaction applies to the runs' own JSON and text (:func:`stored_json`, :func:`stored_text`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from agentmesh.errors import RunNotFoundError, StoreError
from agentmesh.store._jsonable import JSONValue, clean_text
from agentmesh.store._redact import mask_secrets, redact_json, redact_state
from agentmesh.store.schema import SCHEMA_VERSION, events, utcnow
from agentmesh.store.statements import Statement, Tx

__all__ = [
    "RUN_EXISTS",
    "AppendEvents",
    "EventRowSource",
    "event_row",
    "lock_run",
    "stored_json",
    "stored_state",
    "stored_text",
]


def event_row(
    kind: str,
    *,
    node: str | None = None,
    agent: str | None = None,
    round: int | None = None,
    call_index: int | None = None,
    attempt: int | None = None,
    request: Any = None,
    request_hash: str | None = None,
    response: Any = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    total_tokens: int | None = None,
    usage_estimated: bool = False,
    latency_s: float | None = None,
    cost_usd: float | None = None,
    error: str | None = None,
    data: Any = None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """An event ready for :meth:`Store.record_events`: JSON checked and redacted, timestamped (``created_at``:
    when it happened, aware; default now), versioned.

    Building it is the caller's thread's work (it can run while the writer commits another batch).
    """
    if not kind:
        raise StoreError("an event needs a kind (e.g. 'model_call')")
    return {
        "kind": kind,
        "node": node,
        "agent": agent,
        "round": round,
        "call_index": call_index,
        "attempt": attempt,
        "request": None if request is None else stored_json(request, "request"),
        "request_hash": request_hash,
        "response": None if response is None else stored_json(response, "response"),
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": total_tokens,
        "usage_estimated": bool(usage_estimated),
        "latency_s": latency_s,
        "cost_usd": cost_usd,
        "error": stored_text(error),
        "data": None if data is None else stored_json(data, "data"),
        "created_at": utcnow() if created_at is None else _aware(created_at),
        "schema_version": SCHEMA_VERSION,
    }


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise StoreError(f"an event's created_at must be timezone-aware (UTC), got {when!r}")
    return when


def stored_json(value: Any, where: str) -> JSONValue:
    """What a JSON column receives: plain JSON, secrets removed (``where`` names the value in errors)."""
    return redact_json(value, where=where)


def stored_text(value: str | None) -> str | None:
    """What a text column receives: secrets masked, NUL characters replaced."""
    return None if value is None else clean_text(mask_secrets(value))


def stored_state(value: Any) -> Any:
    """What a graph's state receives from a user's function or operator: secrets masked, models and dataclasses
    as their fields (as a resumed run would read them back); see :func:`~agentmesh.store._redact.redact_state`."""
    return redact_state(value)


_EVENT_COLUMNS = [c.name for c in events.columns if c.name != "id"]
_INSERT_EVENT = Statement.insert(events, _EVENT_COLUMNS)
_INSERT_EVENT_RETURNING = Statement.insert(events, _EVENT_COLUMNS, "RETURNING id")
_NEXT_SEQ = Statement("SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE run_id = :run_id")
RUN_EXISTS = Statement("SELECT 1 FROM runs WHERE id = :id")
_LOCK_RUN = Statement("SELECT 1 FROM runs WHERE id = :id FOR UPDATE")


EventRowSource = Mapping[str, Any] | Callable[[], Mapping[str, Any]]
"""An event row (from :func:`event_row`), or a function making one: called in the writer thread, so that checking
and redacting the row happens off the caller's critical path."""


class AppendEvents:
    """A writer op appending events to a run; consecutive appends to one run share its lock and ``seq`` lookup."""

    def __init__(self, run_id: str, rows: Sequence[EventRowSource], url: str) -> None:
        self.run_id = run_id
        self.sources = list(rows)
        self.url = url
        self.coalesce_key = ("events", run_id)
        self._rows: list[dict[str, Any]] | None = None

    def rows(self) -> list[dict[str, Any]]:
        if self._rows is None:
            self._rows = [dict(row() if callable(row) else row) for row in self.sources]
        return self._rows

    def __call__(self, tx: Tx) -> list[int]:
        return self.run_group(tx, [self])[0]

    def run_group(self, tx: Tx, group: Sequence[AppendEvents]) -> list[list[int]]:
        rows = [op.rows() for op in group]  # built (and checked) before anything is written
        lock_run(tx, self.run_id, self.url)
        seq = int(tx.scalar(_NEXT_SEQ, {"run_id": self.run_id}))
        insert = _INSERT_EVENT_RETURNING if tx.postgres else _INSERT_EVENT
        out = []
        for op_rows in rows:
            ids = []
            for row in op_rows:
                cursor = tx.execute(insert, {**row, "run_id": self.run_id, "seq": seq})
                ids.append(int(cursor.fetchone()[0] if tx.postgres else cursor.lastrowid))
                seq += 1
            out.append(ids)
        return out


def lock_run(tx: Tx, run_id: str, url: str) -> None:
    """Check the run exists and lock its row for this transaction (Postgres; SQLite holds its write lock): what
    every write that appends to a run or totals its events does first, so that two writers of one run queue."""
    if tx.scalar(_LOCK_RUN if tx.postgres else RUN_EXISTS, {"id": run_id}) is None:
        raise RunNotFoundError(f"no run {run_id!r} in {url}", run_id=run_id, url=url)
