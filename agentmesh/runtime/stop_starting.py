"""Stop starting runs once their database has failed for good: :class:`StopStarting`, shared by every command that
runs many runs on one database (a batch, ``run --input-file``: :func:`agentmesh.cli.batch.run_all`; a job,
``optimize``, ``calibrate``, ``eval``: :func:`agentmesh.optimize.items.run_items`), here or on Ray.

Why: on a full disk, a read-only or vanished database, every run started after the first failure fails alike: a
batch of 1,000 lines on a full 2 MB tmpfs stored 27 runs and then started, and failed, each of the 973 others;
a job did the same with its items. Once a run meets a failure every later one would meet too
(:func:`~agentmesh.store._failures.lasting_database_failure`), no more runs are started; those under way end as
they may, and the items not started say why (:attr:`StopStarting.reason`, beginning :data:`NOT_STARTED`) so that
the command can name them and say how to run them once the database is fixed. A failure that may pass (a lock, a
deadlock) or a run failing for its own reasons (its model, its inputs) stops nothing.

A run made in a Ray worker reports its failure as JSON; the worker says whether it is lasting, and
:func:`agentmesh.runtime.on_ray.run_there` raises it here as a :class:`~agentmesh.errors.DatabaseFailedError`
carrying that (``context['lasting']``), which this reads as it reads a failure of a run made here.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentmesh.errors import DatabaseFailedError
from agentmesh.store._failures import DRIVER_ERRORS, database_failed, lasting_database_failure

#: How the reason an item was not started begins (:attr:`StopStarting.reason`): what tells such an item from one
#: that failed, in an item's ``error`` (a job's items) or its ``not_run`` (a batch's lines).
NOT_STARTED = "not started: "


@dataclass
class StopStarting:
    """Whether runs may still be started on the database at ``db_url``, for one batch or job: :meth:`failed` is told
    of each run's failure, and once one is lasting :attr:`reason` says why no more are started.

    ``what`` and ``runs`` name the command and what it starts, in the reason (``the batch`` ... ``runs``, ``the
    job`` ... ``items``)."""

    db_url: str | None
    what: str = "the batch"
    runs: str = "runs"
    failure: DatabaseFailedError | None = None
    """The lasting failure that stopped it, once there is one."""

    def failed(self, exc: BaseException) -> BaseException:
        """A run failed with ``exc``: stop starting runs if every later one would fail alike. Returns the error to
        report for the run: a driver's own error as the failure of the database, named (it was ``OperationalError:
        database or disk is full``, with no word of which database); any other as it is."""
        if self.db_url is not None and isinstance(exc, DRIVER_ERRORS):
            exc = database_failed(self.db_url, exc)
        if self.failure is None:
            self.failure = lasting_database_failure(exc, self.db_url)
        return exc

    @property
    def reason(self) -> str | None:
        """Why a run is not to be started (beginning :data:`NOT_STARTED`), naming the database and what happened to
        it; ``None`` while runs may be started."""
        if self.failure is None:
            return None
        where = self.failure.context.get("url") or self.db_url or "the database"
        return (
            f"{NOT_STARTED}{self.what} stopped starting {self.runs} once database {where} failed "
            f"({self.failure.context['lasting']})"
        )
