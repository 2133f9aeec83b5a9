"""A SQLite database whose folder cannot be made or written: a clean error naming the database and what to do, on
the command line and in Python, never an ``OSError`` traceback from ``mkdir`` nor SQLite's bare "unable to open
database file".

Found running agentmesh as a team would: a ``--db`` on a read-only mount (an archive of runs), a working directory
that cannot be written (the default database's ``.agentmesh`` folder). A test process is often root, whom file
permissions do not stop, so the failures are made real where they can be (a file standing where the folder goes
fails ``mkdir`` for root too) and write access is faked only where nothing else makes SQLite refuse."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agentmesh.errors import ConfigError, StoreError
from agentmesh.store import Store, resolve_db_url
from agentmesh.store.engine import DB_ENV
from tests._cli import run_cli

SCRIPT = r"""
rules:
  - prompt: 'What is (\d+)\*(\d+)'
    template: '\boxed{ {{- match[1]|int * match[2]|int -}} }'
"""


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory of its own, no settings file or database from the environment, a wide terminal."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("AGENTMESH_CONFIG", raising=False)
    monkeypatch.delenv(DB_ENV, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return work


def test_a_database_whose_folder_is_behind_a_file_is_refused_naming_it(tmp_path: Path) -> None:
    """``--db sqlite:///runs/new.db`` where ``runs`` is a file: mkdir's ``NotADirectoryError`` was a traceback."""
    blocker = tmp_path / "runs"
    blocker.write_text("a file, not a folder")
    db = blocker / "sub" / "new.db"
    with pytest.raises(ConfigError) as caught:
        Store(f"sqlite:///{db}")
    message = str(caught.value)
    assert f"cannot create the folder {db.parent} of the SQLite database {db}" in message
    assert "a file is in the way" in message and "--db" in message and DB_ENV in message
    assert isinstance(caught.value.__cause__, OSError)
    assert blocker.read_text() == "a file, not a folder"  # nothing changed


def test_the_default_database_in_a_directory_where_its_folder_cannot_be_made(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A working directory holding a file named ``.agentmesh`` (or a read-only one): resolving the default URL raised
    ``FileExistsError`` before any command could speak, even ``runs``, which only reads a store."""
    (cli_env / ".agentmesh").write_text("not the folder")
    assert resolve_db_url(None) == f"sqlite:///{cli_env / '.agentmesh' / 'agentmesh.db'}"

    code, _, err = run_cli(["runs"], capsys, monkeypatch)
    assert code == 2 and "Traceback" not in err
    assert "no agentmesh database at" in " ".join(err.split())

    code, _, err = run_cli(
        ["run", "debate", "-i", "question=What is 6*7?", "-m", f"scripted:{_script(cli_env)}"], capsys, monkeypatch
    )
    message = " ".join(err.split())
    assert code == 2 and "Traceback" not in err
    assert message.startswith(f"error: cannot create the folder {cli_env / '.agentmesh'} of the SQLite database")
    assert "a file is in the way" in message and "--db or $AGENTMESH_DB" in message


def test_a_new_database_in_a_folder_that_cannot_be_written_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new database in a folder that exists but cannot be written (a read-only mount): SQLite's "unable to open
    database file" alone read like a damaged database. The refusal is real (the database's name is a dangling link,
    which SQLite cannot open for root either); the folder's write access is faked, as root may write anywhere."""
    import agentmesh.store.migrate as migrate

    folder = tmp_path / "archive"
    folder.mkdir()
    db = folder / "new.db"
    db.symlink_to(tmp_path / "nowhere" / "target.db")
    real = os.access
    monkeypatch.setattr(migrate.os, "access", lambda path, mode: Path(path) != folder and real(path, mode))
    with pytest.raises(StoreError) as caught:
        Store(f"sqlite:///{db}")
    message = str(caught.value)
    assert "cannot open the agentmesh database" in message and "unable to open database file" in message
    assert f"its folder {folder} cannot be written, so the database cannot be created there" in message
    assert "--db or $AGENTMESH_DB" in message

    monkeypatch.setattr(migrate.os, "access", real)  # a folder that can be written: no such hint
    with pytest.raises(StoreError) as caught:
        Store(f"sqlite:///{db}")
    assert "cannot be written" not in str(caught.value)


def _script(folder: Path) -> Path:
    path = folder / "multiply.yaml"
    path.write_text(SCRIPT)
    return path
