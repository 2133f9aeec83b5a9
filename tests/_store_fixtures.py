"""Store fixtures shared by the unit and conformance tests (``from tests._store_fixtures import *`` in conftest).

``store_url`` runs a test once on SQLite (a fresh file) and once on Postgres (``$AGENTMESH_TEST_PG``). Each
Postgres test gets its own schema, selected through the connection's ``search_path``, so tests neither see nor
clean up after each other, and the schema (tables and Alembic's version table alike) is dropped afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import sqlalchemy as sa

from agentmesh.store.engine import make_engine

__all__ = ["postgres_url", "sqlite_url", "store_url"]

PG_ENV = "AGENTMESH_TEST_PG"


def postgres_base_url() -> str:
    """``$AGENTMESH_TEST_PG``, or skip the calling test saying why."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} not set: Postgres store tests skipped")
    return url


def _with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A Postgres URL whose connections work in a fresh, empty schema (dropped after the test)."""
    base = postgres_base_url()
    schema = f"am_{uuid4().hex[:16]}"
    admin = make_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        yield _with_search_path(base, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file URL in the test's temporary directory (the file does not exist yet)."""
    return f"sqlite:///{tmp_path / 'store' / 'agentmesh.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty store database: SQLite file, then Postgres schema."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url
