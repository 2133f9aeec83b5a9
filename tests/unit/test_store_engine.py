"""Choosing the database and configuring engines: URL resolution, normalisation, SQLite settings, bad URLs."""

from __future__ import annotations

import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from agentmesh.errors import ConfigError, StoreError
from agentmesh.store import Store, make_engine, resolve_db_url, upgrade_database
from agentmesh.store.engine import DB_ENV, mask_url, parse_db_url


def test_resolution_order_explicit_then_env_then_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DB_ENV, "sqlite:///from-env.db")
    assert resolve_db_url("sqlite:///explicit.db") == "sqlite:///explicit.db"
    assert resolve_db_url(None) == "sqlite:///from-env.db"

    monkeypatch.delenv(DB_ENV)
    assert not (tmp_path / ".agentmesh").exists()
    assert resolve_db_url(None) == f"sqlite:///{tmp_path / '.agentmesh' / 'agentmesh.db'}"
    assert (tmp_path / ".agentmesh").is_dir()


def test_default_store_lives_in_the_working_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DB_ENV, raising=False)
    with Store() as store:
        run_id = store.create_run("g", {})
    assert (tmp_path / ".agentmesh" / "agentmesh.db").is_file()
    with Store() as store:
        assert store.get_run(run_id).graph == "g"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@localhost/db",
        "postgres://u@localhost/db",
        "postgresql+psycopg://u@localhost/db",
    ],
)
def test_postgres_urls_use_psycopg3(url: str) -> None:
    assert parse_db_url(url).drivername == "postgresql+psycopg"


def test_sqlite_connections_are_set_up_for_sharing(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'x.db'}")
    try:
        with engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
            }
        assert pragma == {"journal_mode": "wal", "busy_timeout": 30_000, "foreign_keys": 1, "synchronous": 1}
        assert (tmp_path / "nested" / "dir" / "x.db").exists()
    finally:
        engine.dispose()


def test_many_connections_opening_a_new_database_at_once_all_get_in(tmp_path: Path) -> None:
    """Switching a new file to WAL takes a lock SQLite's busy handler does not wait for: without the retry, all
    but one of several processes starting on a fresh database at the same moment failed with "database is locked"
    (seen in CI with four writers)."""
    for attempt in range(8):
        url = f"sqlite:///{tmp_path / f'fresh{attempt}.db'}"
        ready = threading.Barrier(6)

        def open_store(_: int, url: str = url, ready: threading.Barrier = ready) -> str:
            ready.wait()
            with Store(url) as store, store.engine.connect() as conn:
                return str(conn.exec_driver_sql("PRAGMA journal_mode").scalar())

        with ThreadPoolExecutor(max_workers=6) as pool:
            assert list(pool.map(open_store, range(6))) == ["wal"] * 6


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://admin:hunter2@db.example/runs", "unsupported database 'mysql'"),
        ("postgresql+asyncpg://admin:hunter2@db.example/runs", "asks for the 'asyncpg' driver"),
        ("postgresql://admin:hunter2@db.example:notaport/runs", "invalid database URL"),
        ("postgresql//admin:hunter2@db.example/runs", "invalid database URL"),
        ("admin:hunter2@db.example", "invalid database URL"),
        ("sqlite://", "is not a SQLite file"),
        ("sqlite:///:memory:", "is not a SQLite file"),
    ],
)
def test_bad_urls_raise_config_error_without_the_password(url: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as caught:
        make_engine(url)
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(caught.value.context)


def test_missing_postgres_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if agentmesh[postgres] were not installed
    with pytest.raises(ConfigError, match=r"pip install 'agentmesh\[postgres\]'") as caught:
        make_engine("postgresql://admin:hunter2@db.example/runs")
    assert "hunter2" not in str(caught.value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_unreachable_postgres_is_a_store_error_without_the_password() -> None:
    url = f"postgresql://admin:hunter2@127.0.0.1:{_free_port()}/runs?connect_timeout=2"
    with pytest.raises(StoreError, match="cannot open the agentmesh database") as caught:
        Store(url)
    assert "hunter2" not in str(caught.value)
    assert "***" in str(caught.value)
    with pytest.raises(StoreError, match="cannot open the agentmesh database"):
        upgrade_database(url)


def test_a_password_in_the_query_string_is_a_password_too() -> None:
    # libpq reads ?password= (and ?sslpassword=): such a URL was shown whole in "cannot open" errors, and passed the
    # Ray check that refuses a --db with a password (a task's arguments show in Ray's dashboard).
    from agentmesh.runtime.on_ray import worker_db_url

    port = _free_port()
    url = f"postgresql://admin@127.0.0.1:{port}/runs?password=hunter2&sslpassword=swordfish&connect_timeout=2"
    parsed = parse_db_url(url)
    assert parsed.password == "hunter2" and "password" not in parsed.query
    with pytest.raises(StoreError, match="cannot open the agentmesh database") as caught:
        Store(url)
    assert "hunter2" not in str(caught.value) and "swordfish" not in str(caught.value)
    assert "hunter2" not in mask_url(url) and "swordfish" not in mask_url(url)
    store = SimpleNamespace(engine=make_engine(url), url=mask_url(url))  # what worker_db_url reads of a Store
    with pytest.raises(ConfigError, match="holds a password") as refused:
        worker_db_url(store, cluster=True)  # type: ignore[arg-type]
    assert "hunter2" not in str(refused.value)


def test_store_url_and_repr_mask_the_password(postgres_url: str) -> None:
    # The local test server trusts loopback connections, so a password in the URL is accepted and ignored.
    url = postgres_url.replace("://", "://root:hunter2@", 1) if "@" not in postgres_url else postgres_url
    url = sa.make_url(url).set(password="hunter2").render_as_string(hide_password=False)
    with Store(url) as store:
        assert store.engine.url.password == "hunter2"  # the engine keeps it, to connect
        assert "hunter2" not in store.url
        assert "hunter2" not in repr(store) and "hunter2" not in str(store)
        assert "***" in store.url


def test_a_sqlite_database_that_cannot_be_opened_for_want_of_write_access_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a read-only mount (an archive of runs, a colleague's folder) SQLite says only "unable to open database
    file": WAL mode writes -wal and -shm files beside the database even to read it. The error now says which of
    the file or its folder cannot be written, and what to do. (Write access is faked: root may write anywhere; the
    open fails here on a file that is not a database.)"""
    import agentmesh.store.migrate as migrate

    db = tmp_path / "archive" / "runs.db"
    db.parent.mkdir()
    db.write_bytes(b"not a database, as the open fails on a read-only mount" * 100)
    real = migrate.os.access
    monkeypatch.setattr(migrate.os, "access", lambda path, mode: Path(path) != db.parent and real(path, mode))
    with pytest.raises(StoreError, match=f"its folder {db.parent} cannot be written: SQLite keeps"):
        Store(f"sqlite:///{db}")
    monkeypatch.setattr(migrate.os, "access", lambda path, mode: Path(path) != db and real(path, mode))
    with pytest.raises(StoreError, match=f"{db} is read-only: agentmesh writes to its database even to read it"):
        Store(f"sqlite:///{db}")
    monkeypatch.setattr(migrate.os, "access", real)
    with pytest.raises(StoreError, match="cannot open the agentmesh database") as caught:
        Store(f"sqlite:///{db}")
    assert "read-only" not in str(caught.value) and "cannot be written" not in str(caught.value)
