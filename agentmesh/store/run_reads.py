"""Reading runs back: one by id or unique prefix, a batch's or a job's id from a unique prefix, a listing, a count
(:class:`RunReadMethods`, mixed into
:class:`~agentmesh.store.Store`), and the decoding every read of a run shares -- a row to a checked
:class:`~agentmesh.store.records.RunRecord`, refused when a newer agentmesh wrote it -- which the run's writes
(:mod:`agentmesh.store.run_lifecycle`) and its events' reads use too.

Every read first waits for the writes queued before it (the batch writer's flush), so a caller reads what it was
told is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from agentmesh.errors import BatchNotFoundError, JobNotFoundError, RunNotFoundError, SchemaVersionError, StoreError
from agentmesh.store.records import RunRecord, RunStatus
from agentmesh.store.run_totals import running_totals
from agentmesh.store.schema import SCHEMA_VERSION, runs
from agentmesh.store.statements import Statement, result_processors

if TYPE_CHECKING:
    from agentmesh.store.writes import BatchWriter

__all__ = [
    "JOB_KINDS",
    "SELECT_RUN",
    "RunReadMethods",
    "checked_version",
    "decoded_run",
    "run_exists",
    "run_from",
    "run_record",
    "run_status",
]

_AMBIGUOUS_SHOWN = 5

JOB_KINDS = ("optimize", "calibrate", "eval", "judge")
"""The purposes a job (:func:`agentmesh.optimize.items.run_items`) tags its runs with: ``meta[kind]["job"]`` is the
job id that ``optimize``, ``calibrate`` and ``eval`` print, which ``runs --job`` lists. A kind added to a command
is added here; one of a caller's own (``run_items`` is public) is not listed by ``--job``."""


def _job_id() -> sa.ColumnElement[Any]:
    """A run's job id (``None`` for a run of no job): a run is tagged by one kind only."""
    return sa.func.coalesce(*(runs.c.meta[kind]["job"].as_string() for kind in JOB_KINDS))


class RunReadMethods:
    """The run-reading methods of :class:`~agentmesh.store.Store` (mixed in; they use its engine and writer)."""

    if TYPE_CHECKING:
        url: str
        engine: sa.Engine
        _batch: BatchWriter

    def get_run(self, run_id_or_unique_prefix: str) -> RunRecord:
        """The run with this id, or the only run whose id starts with it; :class:`RunNotFoundError` otherwise."""
        key = run_id_or_unique_prefix.strip()
        if not key:
            raise RunNotFoundError("no run id given", url=self.url)
        self._batch.flush()
        with self.engine.connect() as conn:
            exact = conn.execute(sa.select(runs).where(runs.c.id == key)).first()
            if exact is not None:
                return run_record(exact)
            found = conn.execute(
                sa.select(runs)
                .where(runs.c.id.startswith(key, autoescape=True))
                .order_by(runs.c.created_at.desc())
                .limit(_AMBIGUOUS_SHOWN + 1)
            ).all()
        _only_match(key, [r.id for r in found], "run", RunNotFoundError, url=self.url, run_id=key)
        return run_record(found[0])

    def resolve_batch(self, batch_id_or_unique_prefix: str) -> str:
        """The id of the batch (``meta.batch.id``, as ``agentmesh run --input-file`` tags its runs) with this id,
        or of the only batch whose id starts with it; :class:`BatchNotFoundError` otherwise, in the words of
        :meth:`get_run`'s (the candidates named when several match). Every command that takes ``--batch`` resolves
        it here, as the commands that take a run resolve it with :meth:`get_run`."""
        key = batch_id_or_unique_prefix.strip()
        if not key:
            raise BatchNotFoundError("no batch id given", url=self.url)
        batch_id = runs.c.meta["batch"]["id"].as_string()
        self._batch.flush()
        with self.engine.connect() as conn:
            if conn.execute(sa.select(runs.c.id).where(batch_id == key).limit(1)).first() is not None:
                return key
            found = (
                conn.execute(
                    sa.select(batch_id)
                    .where(batch_id.startswith(key, autoescape=True))
                    .group_by(batch_id)
                    .order_by(sa.func.max(runs.c.created_at).desc())
                    .limit(_AMBIGUOUS_SHOWN + 1)
                )
                .scalars()
                .all()
            )
        return _only_match(key, [str(b) for b in found], "batch", BatchNotFoundError, url=self.url, batch=key)

    def resolve_job(self, job_id_or_unique_prefix: str) -> str:
        """The id of the job (``meta[kind].job`` for a kind of :data:`JOB_KINDS`, the id ``optimize``,
        ``calibrate`` and ``eval`` print) with this id, or of the only job whose id starts with it;
        :class:`JobNotFoundError` otherwise, in the words of :meth:`resolve_batch`'s."""
        key = job_id_or_unique_prefix.strip()
        if not key:
            raise JobNotFoundError("no job id given", url=self.url)
        job_id = _job_id()
        self._batch.flush()
        with self.engine.connect() as conn:
            if conn.execute(sa.select(runs.c.id).where(job_id == key).limit(1)).first() is not None:
                return key
            found = (
                conn.execute(
                    sa.select(job_id)
                    .where(job_id.startswith(key, autoescape=True))
                    .group_by(job_id)
                    .order_by(sa.func.max(runs.c.created_at).desc())
                    .limit(_AMBIGUOUS_SHOWN + 1)
                )
                .scalars()
                .all()
            )
        return _only_match(key, [str(j) for j in found], "job", JobNotFoundError, url=self.url, job=key)

    def list_runs(
        self,
        *,
        graph: str | None = None,
        status: RunStatus | str | None = None,
        batch: str | None = None,
        limit: int = 50,
        job: str | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first, optionally only of one graph, one status, one batch (``meta.batch.id``, as
        ``agentmesh run --input-file`` tags its runs) and/or one job (:meth:`resolve_job`)."""
        if limit < 1:
            raise StoreError(f"limit must be at least 1, got {limit}")
        query = _filtered(sa.select(runs), graph, status, batch, job)
        query = query.order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(limit)
        self._batch.flush()
        with self.engine.connect() as conn:
            return [run_record(row) for row in conn.execute(query)]

    def with_running_totals(self, records: Sequence[RunRecord]) -> list[RunRecord]:
        """``records`` with the totals of those still marked running summed from their calls so far (a run's stored
        totals are summed when it ends: :func:`~agentmesh.store.run_totals.running_totals`); the others as they
        are. For what shows runs to people (``agentmesh runs``, ``show``); the stored record is unchanged."""
        running = [r.id for r in records if r.status == RunStatus.RUNNING]
        if not running:
            return list(records)
        self._batch.flush()
        with self.engine.connect() as conn:
            sums = running_totals(conn, running)
        return [r.model_copy(update={"totals": sums[r.id]}) if r.id in sums else r for r in records]

    def count_runs(
        self,
        *,
        graph: str | None = None,
        status: RunStatus | str | None = None,
        batch: str | None = None,
        job: str | None = None,
    ) -> int:
        """How many runs :meth:`list_runs` would find without its limit."""
        query = _filtered(sa.select(sa.func.count()).select_from(runs), graph, status, batch, job)
        self._batch.flush()
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())


def _only_match(key: str, found: Sequence[str], noun: str, error: type[StoreError], **context: Any) -> str:
    """The one id of ``found`` (those starting with the prefix ``key``, newest first, at most
    ``_AMBIGUOUS_SHOWN + 1``), or ``error`` saying that there is none, or naming the candidates when there are
    several: a run's and a batch's prefix are resolved in the same words."""
    if not found:
        raise error(f"no {noun} {key!r} in {context.get('url')}", **context)
    if len(found) > 1:
        shown = ", ".join(found[:_AMBIGUOUS_SHOWN]) + (", ..." if len(found) > _AMBIGUOUS_SHOWN else "")
        raise error(f"{noun} id prefix {key!r} is ambiguous: it matches {shown}; give more characters", **context)
    return found[0]


def run_status(value: RunStatus | str) -> RunStatus:
    """``value`` as a :class:`RunStatus`; a :class:`StoreError` naming the statuses there are otherwise."""
    try:
        return RunStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in RunStatus)
        raise StoreError(f"unknown run status {value!r}; expected one of {allowed}") from None


#: A run's row by id, as the writer thread reads it (its columns in table order, for :func:`decoded_run`).
SELECT_RUN = Statement(f"SELECT {', '.join(c.name for c in runs.columns)} FROM runs WHERE id = :id")
_RUN_READERS: dict[str, list[Any]] = {}


def decoded_run(row: Sequence[Any], dialect: sa.Dialect) -> dict[str, Any]:
    """A ``runs`` row read by the driver, decoded as SQLAlchemy would (JSON, UTC datetimes)."""
    readers = _RUN_READERS.get(dialect.name)
    if readers is None:
        readers = _RUN_READERS[dialect.name] = result_processors(runs, dialect)
    return {
        column.name: value if reader is None or value is None else reader(value)
        for column, reader, value in zip(runs.columns, readers, row, strict=True)
    }


def _filtered(
    query: sa.Select[Any],
    graph: str | None,
    status: RunStatus | str | None,
    batch: str | None,
    job: str | None = None,
) -> sa.Select[Any]:
    if graph is not None:
        query = query.where(runs.c.graph == graph)
    if status is not None:
        query = query.where(runs.c.status == run_status(status).value)
    if batch is not None:
        query = query.where(runs.c.meta["batch"]["id"].as_string() == batch)
    if job is not None:
        query = query.where(_job_id() == job)
    return query


def checked_version(values: dict[str, Any], what: str) -> dict[str, Any]:
    """``values`` (a run's or an event's row), unless a newer agentmesh wrote it: then a
    :class:`SchemaVersionError`, rather than a record read as this version's that is not one."""
    if values["schema_version"] > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{what} {values['id']} has schema version {values['schema_version']}; this agentmesh reads up to "
            f"{SCHEMA_VERSION}",
            record=str(values["id"]),
        )
    return values


def run_exists(conn: sa.Connection, run_id: str) -> bool:
    """Whether ``run_id`` is a stored run."""
    return conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first() is not None


def run_record(row: sa.Row[Any]) -> RunRecord:
    """A ``runs`` row read through SQLAlchemy, as a checked record."""
    return run_from(row._asdict())


def run_from(values: dict[str, Any]) -> RunRecord:
    """A run's decoded values (:func:`decoded_run`, or a row's), as a checked record."""
    return RunRecord.model_validate(checked_version(values, "run"))
