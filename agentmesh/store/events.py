"""A run's events: what fields one has (:class:`EventFields`, the one list of them), how one is built
(:func:`event_row`), appended (:class:`AppendEvents`, a writer op) and read back (:class:`EventMethods`, the
``record_event``, ``record_events``, ``post_events`` and ``events`` of :class:`~agentmesh.store.Store`).

Apart from the runs (:mod:`agentmesh.store.run_lifecycle`, :mod:`agentmesh.store.run_reads`) because it is the
store's hottest path: every model call posts one event, built -- checked, redacted -- and inserted in the writer
thread (:mod:`agentmesh.store.writes`) as a prepared statement (:mod:`agentmesh.store.statements`), consecutive
appends to one run sharing one ``seq`` lookup. The same redaction applies to the runs' own JSON and text
(:func:`stored_json`, :func:`stored_text`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict, Unpack, get_type_hints

import sqlalchemy as sa

from agentmesh.errors import RunNotFoundError, StoreError
from agentmesh.store._redact import stored_json, stored_state, stored_text
from agentmesh.store.records import EventKind, EventRecord
from agentmesh.store.run_reads import checked_version, run_exists
from agentmesh.store.schema import SCHEMA_VERSION, events, utcnow
from agentmesh.store.statements import Statement, Tx

if TYPE_CHECKING:
    from agentmesh.store.writes import BatchWriter, Posted

__all__ = [
    "EVENT_FIELDS",
    "EVENT_FIELD_TYPES",
    "RUN_EXISTS",
    "AppendEvents",
    "EventFields",
    "EventMethods",
    "EventRowSource",
    "event_row",
    "lock_run",
    "locked_run",
    "stored_json",
    "stored_state",
    "stored_text",
]


class EventFields(TypedDict, total=False):
    """What an event says besides its kind and time, as :meth:`Store.record_event
    <agentmesh.store.Store.record_event>` and :func:`event_row` take it (keywords, each optional: left out, ``None``;
    ``usage_estimated`` ``False``). A field typed ``Any`` is JSON, stored redacted (:func:`stored_json`).

    The one list of an event's fields, that the others are made from or checked against: ``record_event`` takes
    them as ``**fields: Unpack[EventFields]`` (mypy and IDEs check each keyword as if it were written out), the
    model an import checks an exported event with is built from them (:mod:`agentmesh.store.transfer`), and
    ``tests/unit/test_store_events.py`` holds :func:`event_row`'s parameters, the ``events`` table's columns,
    :class:`~agentmesh.store.records.EventRecord`'s attributes and the keys of a model call's
    :meth:`~agentmesh.models.messages.CallRecord.event_fields` to them (names, types, order), so a field added here
    and not there fails a test.
    """

    node: str | None
    agent: str | None
    round: int | None
    call_index: int | None
    attempt: int | None
    request: Any
    request_hash: str | None
    response: Any
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    usage_estimated: bool
    latency_s: float | None
    cost_usd: float | None
    error: str | None
    data: Any


#: :class:`EventFields`' names, in column order, and their types (for the models built from them).
EVENT_FIELD_TYPES: Mapping[str, Any] = get_type_hints(EventFields)
EVENT_FIELDS: tuple[str, ...] = tuple(EVENT_FIELD_TYPES)
_FIELD_NAMES = frozenset(EVENT_FIELDS)


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

    Building it is the caller's thread's work (it can run while the writer commits another batch). Its parameters
    are :class:`EventFields` written out rather than taken as ``**fields: Unpack[EventFields]``: every model call's
    event is built here, and Python binds written-out keywords and builds the row as one literal for about 8,000
    fewer instructions an event than it collects a ``**fields`` dict and merges it with the defaults (callgrind,
    CPython 3.11, redaction left out: 15,000 against 23,000 a call).
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


def _check_fields(fields: Mapping[str, Any], caller: str) -> None:
    """Refuse a keyword given to ``caller`` as ``**fields`` that is no event field, with the ``TypeError`` Python
    raises for a keyword a written-out signature does not have, naming the fields there are."""
    if not fields.keys() <= _FIELD_NAMES:
        unknown = ", ".join(repr(name) for name in fields if name not in _FIELD_NAMES)
        raise TypeError(
            f"{caller}() got an unexpected keyword argument {unknown}; an event's fields are {', '.join(EVENT_FIELDS)}"
        )


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise StoreError(f"an event's created_at must be timezone-aware (UTC), got {when!r}")
    return when


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


class EventMethods:
    """The event methods of :class:`~agentmesh.store.Store` (mixed in; they use its engine and batch writer)."""

    if TYPE_CHECKING:
        url: str
        engine: sa.Engine
        _batch: BatchWriter

    def record_event(self, run_id: str, kind: str, **fields: Unpack[EventFields]) -> int:
        """Append an event to a run and commit it; returns the event's id. ``fields`` are its fields as keywords,
        each optional (:class:`~agentmesh.store.events.EventFields` names and types them: ``node``, ``agent``,
        ``round``, ``data``...).

        The event's ``seq`` (its position in the run) is assigned inside the insert's transaction while the
        run's row is locked (``SELECT ... FOR UPDATE`` on Postgres, the write lock on SQLite), so concurrent
        writers -- threads or processes -- never collide; ``UNIQUE(run_id, seq)`` guards it regardless.
        """
        _check_fields(fields, "Store.record_event")
        return self.record_events(run_id, [event_row(kind, **fields)])[0]

    def record_events(self, run_id: str, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Append several events (built with :func:`event_row`) to a run in one transaction; their ids.

        Returns once they are committed. Events queued by several callers at once share one commit (group commit).
        """
        return self._batch.submit(AppendEvents(run_id, rows, self.url)).result() if rows else []

    def post_events(self, run_id: str, rows: Sequence[EventRowSource]) -> Posted[list[int]]:
        """Queue events for a run without waiting; the future resolves with their ids once committed.

        A row may be given as a function that makes it (:data:`EventRowSource`): it is then built in the writer
        thread, and an error building it (a value JSON cannot hold) comes back through the future.

        They commit in order with the run's other writes (its checkpoints, its end), so an event is stored before
        anything queued after it, and at the latest 10 ms after it was posted
        (:data:`~agentmesh.store.writes.POST_DELAY_S`). The ``seq`` of each (its position in the run) is assigned
        inside the commit, with the run's row locked on Postgres and SQLite's write lock held, so concurrent
        writers -- threads or processes -- never collide; ``UNIQUE(run_id, seq)`` guards it regardless.
        """
        return self._batch.post(AppendEvents(run_id, rows, self.url))

    def events(self, run_id: str, *, kind: EventKind | str | None = None) -> list[EventRecord]:
        """A run's events in order (``seq``), optionally only one kind; :class:`RunNotFoundError` if no run."""
        query = sa.select(events).where(events.c.run_id == run_id).order_by(events.c.seq)
        if kind is not None:
            query = query.where(events.c.kind == str(kind))
        self._batch.flush()
        with self.engine.connect() as conn:
            if not run_exists(conn, run_id):
                raise RunNotFoundError(f"no run {run_id!r} in {self.url}", run_id=run_id, url=self.url)
            rows = conn.execute(query).all()
        return [EventRecord.model_validate(checked_version(row._asdict(), "event")) for row in rows]


def lock_run(tx: Tx, run_id: str, url: str) -> None:
    """Check the run exists and lock its row for this transaction (Postgres; SQLite holds its write lock): what
    every write that appends to a run or totals its events does first, so that two writers of one run queue."""
    if not locked_run(tx, run_id):
        raise RunNotFoundError(f"no run {run_id!r} in {url}", run_id=run_id, url=url)


def locked_run(tx: Tx, run_id: str) -> bool:
    """:func:`lock_run` that says whether the run exists instead of raising (one statement either way)."""
    return tx.scalar(_LOCK_RUN if tx.postgres else RUN_EXISTS, {"id": run_id}) is not None
