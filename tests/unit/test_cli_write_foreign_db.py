"""A command that stores runs (``run``, ``ask``, ``import``) given another application's database by mistake (a
wrong ``--db``) added agentmesh's tables to it beside the application's own; the commands that read runs refused
it. It is refused by those too now, unchanged, saying how to put agentmesh's tables there on purpose
(``agentmesh db upgrade``). A new, empty database is still set up as ever."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from agentmesh.store import Store
from agentmesh.store.engine import make_engine
from tests._cli import run_cli


def _tables(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_a_command_that_stores_runs_leaves_another_applications_database_alone(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "model.yaml"
    script.write_text('default: "\\\\boxed{4}"\n', encoding="utf-8")
    if store_url.startswith("sqlite"):
        path = Path(store_url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as plain:
            plain.execute("CREATE TABLE users (id INTEGER)")
    else:
        engine = make_engine(store_url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE users (id INTEGER)"))
        engine.dispose()
    for command in (
        ["run", "self_consistency", "-i", "question=What is 2+2?", "-m", f"scripted:{script}"],
        ["ask", "What is 2+2?", "-m", f"scripted:{script}"],
    ):
        code, _, err = run_cli([*command, "--db", store_url], capsys, monkeypatch)
        said = " ".join(err.split())
        assert code == 2, said
        assert "is not an agentmesh database: it has no agentmesh schema, and tables of its own (users)" in said
        assert "run agentmesh db upgrade --db" in said
    assert _tables(store_url) == ["users"]

    code, _, err = run_cli(["db", "upgrade", "--db", store_url], capsys, monkeypatch)  # on purpose: then it runs
    assert code == 0, err
    code, _, err = run_cli(["ask", "What is 2+2?", "-m", f"scripted:{script}", "--db", store_url], capsys, monkeypatch)
    assert code == 0, err
    with Store(store_url) as store:
        assert store.count_runs() == 1


def test_a_new_database_is_set_up_by_a_run_as_ever(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "model.yaml"
    script.write_text('default: "\\\\boxed{4}"\n', encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'new' / 'runs.db'}"
    code, _, err = run_cli(["ask", "What is 2+2?", "-m", f"scripted:{script}", "--db", url], capsys, monkeypatch)
    assert code == 0, err
    with Store(url) as store:
        assert store.count_runs() == 1
