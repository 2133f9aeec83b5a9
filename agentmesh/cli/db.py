"""``agentmesh db``: schema management."""

from __future__ import annotations

import typer

from agentmesh.cli._common import DbOption, console
from agentmesh.store import upgrade_database

app = typer.Typer(help="Manage the agentmesh database.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(db: DbOption = None) -> None:
    """Create the schema or migrate it to this agentmesh's version (safe to run repeatedly)."""
    url, revision = upgrade_database(db)
    console.print(f"database {url} is at schema revision [bold]{revision}[/]")
