"""Deleting runs from a large store: the parent link is indexed.

Deleting a run makes the database look up the runs that name it as their parent (``runs.parent_run_id``'s foreign
key, ``ON DELETE SET NULL``). Without an index that lookup scanned every run for each run deleted:
``agentmesh delete --batch`` of 3,000 runs in a SQLite store of 12,000 took 64 s (14 s for 1,000), quadratic in the
store's size. Schema version 3 indexes the column, and ``agentmesh db upgrade`` adds the index to a version-2 store.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from agentmesh.store import Store, migrate, upgrade_database
from agentmesh.store.engine import make_engine


def _indexed_columns(url: str) -> list[list[str]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [list(ix["column_names"]) for ix in sa.inspect(conn).get_indexes("runs")]
    finally:
        engine.dispose()


def test_the_parent_link_of_runs_is_indexed(store_url: str) -> None:
    with Store(store_url):
        pass
    assert ["parent_run_id"] in _indexed_columns(store_url)


def test_sqlite_finds_the_children_of_a_deleted_run_through_the_index(sqlite_url: str) -> None:
    with Store(sqlite_url) as store, store.engine.connect() as conn:
        plan = " ".join(
            str(row[-1])
            for row in conn.execute(sa.text("EXPLAIN QUERY PLAN SELECT id FROM runs WHERE parent_run_id = 'x'"))
        )
    assert "ix_runs_parent_run_id" in plan, plan


def test_a_version_2_store_gets_the_index_from_db_upgrade_and_keeps_its_runs(store_url: str) -> None:
    with Store(store_url) as store:
        parent = store.create_run("g", {"q": 1})
        child = store.create_run("g", {"q": 2}, parent_run_id=parent)
        with store.engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0002")
    assert ["parent_run_id"] not in _indexed_columns(store_url)
    assert upgrade_database(store_url)[1] == migrate.head_revision()
    assert ["parent_run_id"] in _indexed_columns(store_url)
    with Store(store_url) as store:
        assert store.get_run(child).parent_run_id == parent
        store.delete_runs([parent], force=True)
        assert store.get_run(child).parent_run_id is None
