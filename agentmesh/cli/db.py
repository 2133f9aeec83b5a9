"""``agentmesh db``: the database itself (its schema, its size)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.text import Text

from agentmesh.cli._common import DbOption, console, open_store
from agentmesh.store import Store, upgrade_database

app = typer.Typer(help="Manage the agentmesh database.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(db: DbOption = None) -> None:
    """Create the schema or migrate it to this agentmesh's version (safe to run repeatedly)."""
    url, revision = upgrade_database(db)
    console.print(f"database {escape(url)} is at schema revision [bold]{escape(revision)}[/]")


@app.command("vacuum")
def vacuum(db: DbOption = None) -> None:
    """Give the space of deleted runs back to the disk (SQLite rewrites the file; Postgres reclaims dead rows)."""
    with open_store(db, existing=True) as store:
        size = _file_size(store)
        store.vacuum()
        after = _file_size(store)
        shrunk = f": {size:,} -> {after:,} bytes" if size is not None and after is not None else ""
        console.print(Text(f"vacuumed {store.url}{shrunk}"))


def _file_size(store: Store) -> int | None:
    path = store.engine.url.database if store.engine.dialect.name == "sqlite" else None
    return Path(path).stat().st_size if path and Path(path).is_file() else None
