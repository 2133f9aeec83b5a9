"""A job on Ray (``--executor ray``) whose database cannot be written stops starting items, as a job run here does.

A worker's failed run comes back as JSON, and came back as a plain :class:`AgentmeshError`: nothing in it told a
database that failed for good from a model that failed one item, so the job went on sending every item to a worker
to fail alike. The worker now says whether the failure is lasting (:func:`agentmesh.runtime.on_ray.run_there`).

The read-only database is real SQLite: the workers import a module (as ``--import`` gives them) that opens every
connection to the test's file with ``PRAGMA query_only`` (SQLite then refuses each write with "attempt to write a
readonly database", as for a read-only file; chmod does not stop root). The driver's own connections are not.
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import pytest

from agentmesh.optimize.items import run_items
from agentmesh.runtime.arguments import resolve_graph
from agentmesh.store import Store

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None,
        reason="Ray is not installed: pip install 'agentmesh[ray]' to run the Ray executor's tests (dev has it)",
    ),
]

READ_ONLY = """
import sqlalchemy as sa
from sqlalchemy import event

@event.listens_for(sa.Engine, "connect")
def read_only(dbapi_connection, _record):
    if any(row[2] == {path!r} for row in dbapi_connection.execute("PRAGMA database_list").fetchall()):
        dbapi_connection.execute("PRAGMA query_only = 1")
"""


def test_a_job_on_ray_stops_starting_items_once_a_worker_finds_the_database_read_only(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    url = f"sqlite:///{path}"
    with Store(url):
        pass
    plugin = tmp_path / "read_only_db.py"
    plugin.write_text(READ_ONLY.format(path=str(path)))
    model = tmp_path / "model.yaml"
    model.write_text("rules:\n  - {agent: debater, template: '\\boxed{1}'}\n")
    done = asyncio.run(
        run_items(
            resolve_graph("debate"),
            [{"question": f"q{n}"} for n in range(1, 9)],
            kind="optimize",
            model=f"scripted:{model}",
            store=url,
            concurrency=2,
            executor="ray",
            ray_cpus_per_item=0.5,
            imports=[str(plugin)],
        )
    )
    failed = [i for i in done.items if i.error is not None and not i.not_run]
    not_run = [i for i in done.items if i.not_run]
    assert 1 <= len(failed) <= 2 and len(not_run) == 8 - len(failed), [i.error for i in done.items]
    assert all("readonly database" in str(i.error) for i in failed), [i.error for i in failed]
    assert str(not_run[0].error).startswith(
        f"not started: the job stopped starting items once database {url} failed (it cannot be written"
    )
