"""``agentmesh db``: the database itself (its schema, its size, the checkpoints no run owns)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from agentmesh._text import counted
from agentmesh.cli._common import DbOption, console

# The store (SQLAlchemy, Alembic) is imported by each command when it runs, not for ``agentmesh db --help``.
if TYPE_CHECKING:
    from agentmesh.store import Store

#: What this module's commands import when they run (not for their --help): imported first, watched for Ctrl-C
#: as this module's import is (agentmesh.cli.app).
WORK_IMPORTS = ("agentmesh.cli._store",)

app = typer.Typer(help="Manage the agentmesh database.", no_args_is_help=True)

_SHOWN = 20  # threads listed by reclaim before "... and N more"


@app.command("upgrade")
def upgrade(db: DbOption = None) -> None:
    """Create the schema or migrate it to this agentmesh's version (safe to run repeatedly)."""
    from agentmesh.store import upgrade_database

    url, revision = upgrade_database(db)
    console.print(f"database {escape(url)} is at schema revision [bold]{escape(revision)}[/]")


@app.command("vacuum")
def vacuum(db: DbOption = None) -> None:
    """Give the space of deleted runs back to the disk (SQLite rewrites the file; Postgres reclaims dead rows)."""
    from agentmesh.cli._store import open_store

    with open_store(db, existing=True) as store:
        size = _file_size(store)
        store.vacuum()
        after = _file_size(store)
        shrunk = f": {size:,} -> {after:,} bytes" if size is not None and after is not None else ""
        console.print(Text(f"vacuumed {store.url}{shrunk}"))


@app.command("reclaim")
def reclaim(
    db: DbOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete checkpoints whose thread has no run (lists them and asks first).

    A run deleted (delete --force) while its process ran leaves them when that process dies before the run's end,
    which would have deleted them. Threads a program checkpointed under ids of its own (Store.checkpointer()) have
    no run either. agentmesh db vacuum then gives the space back."""
    from agentmesh.cli._store import open_store

    with open_store(db, existing=True) as store:
        orphans = store.orphan_threads()
        if not orphans:
            console.print(Text(f"no checkpoints without a run in {store.url}; nothing to reclaim"))
            return
        rows = sum(orphans.values())
        table = Table(
            title=Text(
                f"{len(orphans)} checkpoint thread(s) with no run in {store.url}: {counted(rows, 'row', spec=',')}"
            )
        )
        table.add_column("thread (no run of this id)", overflow="fold")
        table.add_column("rows", justify="right")
        for thread_id, count in sorted(orphans.items())[:_SHOWN]:
            table.add_row(Text(thread_id), f"{count:,}")
        if len(orphans) > _SHOWN:
            table.add_row(Text(f"... and {len(orphans) - _SHOWN} more"), "")
        console.print(table)
        # (imported here: the runs commands' module reads timelines and pictures, which nothing else here needs)
        from agentmesh.cli.runs import _confirmed

        if not yes and not _confirmed("Delete their checkpoints?"):
            console.print("nothing deleted")
            raise typer.Exit(1)
        deleted = store.delete_orphan_threads(list(orphans))
    console.print(
        f"deleted {counted(deleted, 'checkpoint row', spec=',')} of {len(orphans)} thread(s); agentmesh db vacuum "
        "gives the space back"
    )


def _file_size(store: Store) -> int | None:
    path = store.engine.url.database if store.engine.dialect.name == "sqlite" else None
    return Path(path).stat().st_size if path and Path(path).is_file() else None
