"""A Postgres store that cannot be opened says what to do, as users write its URL: a server that refuses the
connection (a wrong port, a server that is down) and a database the server does not have. libpq's words said what
but not what to do, and the same database read ``postgresql+psycopg://`` in one error and ``postgresql://`` in the
next. The refused connection is real (a free port on this machine); the missing database needs a server
(``$AGENTMESH_TEST_PG``)."""

from __future__ import annotations

import socket
from uuid import uuid4

import pytest
import sqlalchemy as sa

from agentmesh.errors import StoreError
from agentmesh.store import Store, upgrade_database
from agentmesh.store.migrate import refuse_foreign_database
from tests._store_fixtures import postgres_base_url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_a_server_that_refuses_the_connection_says_where_and_what_to_do() -> None:
    port = _free_port()
    url = f"postgresql://admin:hunter2@127.0.0.1:{port}/runs?connect_timeout=2"
    for open_it in (Store, upgrade_database, refuse_foreign_database):  # run, db upgrade, the commands that read
        with pytest.raises(StoreError) as caught:
            open_it(url)
        said = str(caught.value)
        assert said.startswith(f"cannot open the agentmesh database postgresql://admin:***@127.0.0.1:{port}/runs")
        assert f"(no Postgres server answered at 127.0.0.1:{port}: start it, or give the right host and port" in said
        assert "--db or $AGENTMESH_DB; nothing was read or written)" in said
        assert "hunter2" not in said and "+psycopg" not in said


def test_a_database_the_server_does_not_have_says_to_create_it() -> None:
    base = sa.make_url(postgres_base_url())
    name = f"am_missing_{uuid4().hex[:12]}"
    url = base.set(database=name).render_as_string(hide_password=False)
    for open_it in (Store, upgrade_database, refuse_foreign_database):
        with pytest.raises(StoreError) as caught:
            open_it(url)
        said = str(caught.value)
        assert f'database "{name}" does not exist' in said and "+psycopg" not in said
        assert f"has no database {name!r}: create it (createdb {name}, or CREATE DATABASE in psql)" in said
        assert "agentmesh sets up its tables on first use" in said
