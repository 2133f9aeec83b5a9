"""Shared CLI plumbing: consoles, common options, opening the store."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from agentmesh.store import Store

console = Console()
err_console = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: $AGENTMESH_DB, else sqlite:///.agentmesh/agentmesh.db)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]


def open_store(db: str | None) -> Store:
    return Store(db)


def fmt_cost(cost: float | None) -> str:
    return "n/a" if cost is None else f"${cost:.6f}"


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"
