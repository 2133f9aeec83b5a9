"""The run store: runs, their events, and their checkpointer, behind one URL.

Every write is one short transaction committed before the method returns, so what a caller has been told is
stored survives a crash of the caller a moment later: a model call recorded by :meth:`Store.record_event` is
never repeated by a resumed run. Everything JSON that is written passes through the secret redactor first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any
from uuid import uuid4

import sqlalchemy as sa

from agentmesh.errors import RunNotFoundError, SchemaVersionError, StoreError
from agentmesh.store._jsonable import JSONValue, clean_text, to_jsonable
from agentmesh.store._redact import mask_secrets, redact
from agentmesh.store.checkpointer import SQLAlchemyCheckpointSaver
from agentmesh.store.engine import make_engine, mask_url, resolve_db_url, writer
from agentmesh.store.migrate import ensure_schema, upgrade_engine
from agentmesh.store.records import EventKind, EventRecord, RunRecord, RunStatus
from agentmesh.store.schema import SCHEMA_VERSION, events, runs, utcnow

_AMBIGUOUS_SHOWN = 5


def zero_totals() -> dict[str, Any]:
    """The totals of a run that has made no call yet."""
    return {
        "calls": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cost_usd": None,
        "estimated_tokens": False,
        "errors": 0,
    }


class Store:
    """Runs, events and LangGraph checkpoints in one database (SQLite file or Postgres).

    ``Store()`` uses ``$AGENTMESH_DB``, else ``.agentmesh/agentmesh.db`` in the working directory. A brand-new
    database gets the schema on first open; one at an older schema raises
    :class:`~agentmesh.errors.SchemaVersionError` until ``agentmesh db upgrade`` has run. Thread-safe; several
    processes may share one database.
    """

    def __init__(self, url: str | None = None) -> None:
        resolved = resolve_db_url(url)
        self.url = mask_url(resolved)
        self.engine = make_engine(resolved)
        try:
            ensure_schema(self.engine)
        except BaseException:
            self.engine.dispose()
            raise
        self._writer = writer(self.engine)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    __str__ = __repr__

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()

    def upgrade(self) -> str:
        """Migrate the database to this agentmesh's schema (a no-op when it is there); returns the revision."""
        return upgrade_engine(self.engine)

    def checkpointer(self) -> SQLAlchemyCheckpointSaver:
        """A LangGraph checkpointer on this store's database."""
        return SQLAlchemyCheckpointSaver(self.engine)

    # --- runs ------------------------------------------------------------------------------------------

    def create_run(
        self,
        graph: str,
        inputs: Mapping[str, Any],
        *,
        spec_hash: str | None = None,
        model: str | None = None,
        parent_run_id: str | None = None,
        meta: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> str:
        """Record a new run as ``running``; returns its id (a fresh uuid4 hex unless ``run_id`` is given)."""
        new_id = run_id or uuid4().hex
        row = {
            "id": new_id,
            "graph": graph,
            "spec_hash": spec_hash,
            "inputs": _prepare(inputs, "inputs"),
            "status": RunStatus.RUNNING.value,
            "stop_reason": None,
            "parent_run_id": parent_run_id,
            "model": None if model is None else mask_secrets(model),
            "totals": zero_totals(),
            "error": None,
            "created_at": utcnow(),
            "finished_at": None,
            "meta": _prepare(meta or {}, "meta"),
            "schema_version": SCHEMA_VERSION,
        }
        with self._writer.begin() as conn:
            if _run_exists(conn, new_id):
                raise StoreError(f"a run with id {new_id!r} already exists in {self.url}", run_id=new_id)
            if parent_run_id is not None and not _run_exists(conn, parent_run_id):
                raise RunNotFoundError(
                    f"parent run {parent_run_id!r} of the new run is not in {self.url}", run_id=parent_run_id
                )
            conn.execute(sa.insert(runs).values(row))
        return new_id

    def finish_run(
        self,
        run_id: str,
        status: RunStatus | str,
        *,
        stop_reason: str | None = None,
        error: str | None = None,
    ) -> RunRecord:
        """Close a run with a final status; its totals are summed from its ``model_call`` events."""
        final = _status(status)
        if final is RunStatus.RUNNING:
            raise StoreError(f"finish_run needs a final status, not {final.value!r}", run_id=run_id)
        e = events.c
        with self._writer.begin() as conn:
            _lock_run(conn, run_id, self.url)
            agg = conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.coalesce(sa.func.sum(e.prompt_tokens), 0),
                    sa.func.coalesce(sa.func.sum(e.completion_tokens), 0),
                    sa.func.coalesce(sa.func.sum(e.total_tokens), 0),
                    sa.func.sum(e.cost_usd),
                    sa.func.coalesce(sa.func.max(sa.case((e.usage_estimated, 1), else_=0)), 0),
                    sa.func.coalesce(sa.func.sum(sa.case((e.error.is_not(None), 1), else_=0)), 0),
                ).where(e.run_id == run_id, e.kind == EventKind.MODEL_CALL.value)
            ).one()
            totals = {
                "calls": int(agg[0]),
                "prompt_tokens": int(agg[1]),
                "completion_tokens": int(agg[2]),
                "total_tokens": int(agg[3]),
                "cost_usd": None if agg[4] is None else float(agg[4]),
                "estimated_tokens": bool(agg[5]),
                "errors": int(agg[6]),
            }
            conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id)
                .values(
                    status=final.value,
                    stop_reason=_text(stop_reason),
                    error=_text(error),
                    totals=totals,
                    finished_at=utcnow(),
                )
            )
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).one()
        return _run_record(row)

    def mark_running(self, run_id: str) -> None:
        """Reopen a run that is being resumed: status back to running, its end and error cleared."""
        with self._writer.begin() as conn:
            _lock_run(conn, run_id, self.url)
            conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id)
                .values(status=RunStatus.RUNNING.value, finished_at=None, error=None, stop_reason=None)
            )

    def get_run(self, run_id_or_unique_prefix: str) -> RunRecord:
        """The run with this id, or the only run whose id starts with it; :class:`RunNotFoundError` otherwise."""
        key = run_id_or_unique_prefix.strip()
        if not key:
            raise RunNotFoundError("no run id given", url=self.url)
        with self.engine.connect() as conn:
            exact = conn.execute(sa.select(runs).where(runs.c.id == key)).first()
            if exact is not None:
                return _run_record(exact)
            found = conn.execute(
                sa.select(runs)
                .where(runs.c.id.startswith(key, autoescape=True))
                .order_by(runs.c.created_at.desc())
                .limit(_AMBIGUOUS_SHOWN + 1)
            ).all()
        if not found:
            raise RunNotFoundError(f"no run {key!r} in {self.url}", run_id=key, url=self.url)
        if len(found) > 1:
            shown = ", ".join(r.id for r in found[:_AMBIGUOUS_SHOWN])
            if len(found) > _AMBIGUOUS_SHOWN:
                shown += ", ..."

            raise RunNotFoundError(
                f"run id prefix {key!r} is ambiguous: it matches {shown}; give more characters",
                run_id=key,
                url=self.url,
            )
        return _run_record(found[0])

    def list_runs(
        self, *, graph: str | None = None, status: RunStatus | str | None = None, limit: int = 50
    ) -> list[RunRecord]:
        """Runs, newest first, optionally only of one graph and/or one status."""
        if limit < 1:
            raise StoreError(f"limit must be at least 1, got {limit}")
        query = sa.select(runs).order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(limit)
        if graph is not None:
            query = query.where(runs.c.graph == graph)
        if status is not None:
            query = query.where(runs.c.status == _status(status).value)
        with self.engine.connect() as conn:
            return [_run_record(row) for row in conn.execute(query)]

    # --- events ----------------------------------------------------------------------------------------

    def record_event(
        self,
        run_id: str,
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
    ) -> int:
        """Append an event to a run and commit it; returns the event's id.

        The event's ``seq`` (its position in the run) is assigned inside the insert's transaction while the
        run's row is locked (``SELECT ... FOR UPDATE`` on Postgres, the write lock on SQLite), so concurrent
        writers -- threads or processes -- never collide; ``UNIQUE(run_id, seq)`` guards it regardless.
        """
        row = event_row(
            kind,
            node=node,
            agent=agent,
            round=round,
            call_index=call_index,
            attempt=attempt,
            request=request,
            request_hash=request_hash,
            response=response,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=total_tokens,
            usage_estimated=usage_estimated,
            latency_s=latency_s,
            cost_usd=cost_usd,
            error=error,
            data=data,
        )
        return self.record_events(run_id, [row])[0]

    def record_events(self, run_id: str, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Append several events (built with :func:`event_row`) to a run in one transaction; their ids.

        This is group commit: calls of a parallel team that complete together are made durable by one commit,
        in completion order, before any of them is reported done.
        """
        if not rows:
            return []
        with self._writer.begin() as conn:
            _lock_run(conn, run_id, self.url)
            first = conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(events.c.seq), 0) + 1).where(events.c.run_id == run_id)
            ).scalar_one()
            values = [{**row, "run_id": run_id, "seq": first + i} for i, row in enumerate(rows)]
            ids = conn.execute(sa.insert(events).returning(events.c.id, sort_by_parameter_order=True), values)
            return [int(i) for i in ids.scalars()]

    def events(self, run_id: str, *, kind: EventKind | str | None = None) -> list[EventRecord]:
        """A run's events in order (``seq``), optionally only one kind; :class:`RunNotFoundError` if no run."""
        query = sa.select(events).where(events.c.run_id == run_id).order_by(events.c.seq)
        if kind is not None:
            query = query.where(events.c.kind == str(kind))
        with self.engine.connect() as conn:
            if not _run_exists(conn, run_id):
                raise RunNotFoundError(f"no run {run_id!r} in {self.url}", run_id=run_id, url=self.url)
            rows = conn.execute(query).all()
        return [EventRecord.model_validate(_checked(row, "event")._asdict()) for row in rows]


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
) -> dict[str, Any]:
    """An event ready for :meth:`Store.record_events`: JSON checked and redacted, timestamped, versioned.

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
        "request": None if request is None else _prepare(request, "request"),
        "request_hash": request_hash,
        "response": None if response is None else _prepare(response, "response"),
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": total_tokens,
        "usage_estimated": bool(usage_estimated),
        "latency_s": latency_s,
        "cost_usd": cost_usd,
        "error": _text(error),
        "data": None if data is None else _prepare(data, "data"),
        "created_at": utcnow(),
        "schema_version": SCHEMA_VERSION,
    }


def _prepare(value: Any, where: str) -> JSONValue:
    """What a JSON column receives: plain JSON, secrets removed."""
    return redact(to_jsonable(value, where=where))


def _text(value: str | None) -> str | None:
    return None if value is None else clean_text(mask_secrets(value))


def _status(value: RunStatus | str) -> RunStatus:
    try:
        return RunStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in RunStatus)
        raise StoreError(f"unknown run status {value!r}; expected one of {allowed}") from None


def _run_exists(conn: sa.Connection, run_id: str) -> bool:
    return conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first() is not None


def _lock_run(conn: sa.Connection, run_id: str, url: str) -> None:
    """Lock the run's row for this transaction (Postgres; SQLite holds its write lock already)."""
    found = conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id).with_for_update()).first()
    if found is None:
        raise RunNotFoundError(f"no run {run_id!r} in {url}", run_id=run_id, url=url)


def _checked(row: sa.Row[Any], what: str) -> sa.Row[Any]:
    if row.schema_version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{what} {row.id} has schema version {row.schema_version}; this agentmesh reads up to {SCHEMA_VERSION}",
            record=str(row.id),
        )
    return row


def _run_record(row: sa.Row[Any]) -> RunRecord:
    return RunRecord.model_validate(_checked(row, "run")._asdict())
