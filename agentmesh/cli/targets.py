"""``agentmesh targets``: the unlearning target sets ALU reads from the store (alu.md §3.1).

Every change (``add``, ``remove``, ``import``) is one transaction that bumps the set's version, so it is safe while
runs, servers and jobs read the set: a query reads the version current when it starts and keeps it. Removal is a
soft delete, so ``list --version N`` shows what any earlier version held and old runs stay explainable.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from agentmesh.cli._common import DbOption, JsonOption, console, number_option
from agentmesh.errors import ConfigError, StoreError
from agentmesh.store.target_records import TargetRecordError, check_located_target_records, check_target_record
from agentmesh.systems.alu.registry import read_text

# The store (SQLAlchemy) is imported by each command when it runs (opening it), not for ``agentmesh targets --help``.
if TYPE_CHECKING:
    from agentmesh.store import Store, TargetRow, TargetSetInfo

#: What this module's commands import when they run (not for their --help): imported first, watched for Ctrl-C
#: as this module's import is (agentmesh.cli.app).
WORK_IMPORTS = ("agentmesh.cli._store",)

app = typer.Typer(
    help="Manage ALU's unlearning target sets in the store (each change bumps the set's version).",
    no_args_is_help=True,
)


def _trimmed(name: str | None) -> str | None:
    """The set's name as the store keeps it (spaces around it dropped), so that messages and --json say that."""
    return None if name is None else name.strip()


SetArgument = Annotated[
    str, typer.Argument(help="The target set's name (graphs read it as -i target_set=NAME).", callback=_trimmed)
]
_KINDS = "entity, topic, option or other"


@app.command("add")
def add(
    target_set: SetArgument,
    name: Annotated[str, typer.Option("--name", "-n", help="The target's name (what must not be revealed).")],
    alias: Annotated[
        list[str] | None, typer.Option("--alias", "-a", help="Another name it is known by (repeatable).")
    ] = None,
    description: Annotated[
        str | None,
        typer.Option(
            "--description",
            "-d",
            help="Who or what it is, identifying facts: the auditor and the semantic matcher use it to catch "
            "references that never say the name.",
        ),
    ] = None,
    kind: Annotated[str, typer.Option("--kind", "-k", help=f"The target's kind: {_KINDS}.")] = "entity",
    target_id: Annotated[
        int | None,
        number_option("--id", whole=True, at_least=1, help="Its id (default: the next free one of the set)."),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a target to a set (the set is created if it does not exist yet)."""
    record: dict[str, Any] = {"name": name, "aliases": list(alias or []), "description": description, "kind": kind}
    if target_id is not None:
        record["id"] = target_id
    from agentmesh.cli._store import open_store

    with open_store(db) as store:
        version, ids = store.add_targets(target_set, [record], create=True)
    if as_json:
        console.print_json(json.dumps({"target_set": target_set, "version": version, "ids": ids}))
        return
    # the name as the store keeps it (stripped, a key's shape masked): the echo said "'ada '" for a stored "ada",
    # and printed a key pasted as a name in full
    stored = check_target_record(record, "--name")["name"]
    console.print(
        f"added target [bold]{ids[0]}[/] {escape(repr(stored))} to {escape(repr(target_set))}: "
        f"version [bold]{version}[/]",
        highlight=False,
    )


@app.command("remove")
def remove(
    target_set: SetArgument,
    ids: Annotated[list[int], typer.Argument(help="The ids of the targets to remove (see `targets list`).")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove targets from a set (soft delete: earlier versions keep them, so old runs stay explainable)."""
    ids = list(dict.fromkeys(ids))  # as the store takes them: "removed targets 1, 1" said one twice
    # existing: removing from a set of a database that is not there (a typo in --db) made an empty one and left it
    from agentmesh.cli._store import open_store

    with open_store(db, existing=True) as store:
        version = store.remove_targets(target_set, ids)
    if as_json:
        console.print_json(json.dumps({"target_set": target_set, "version": version, "removed": ids}))
        return
    shown = ", ".join(str(i) for i in ids)
    console.print(
        f"removed target{'s' if len(ids) > 1 else ''} {shown} from {escape(repr(target_set))}: "
        f"version [bold]{version}[/]",
        highlight=False,
    )


@app.command("list")
def list_targets(
    target_set: Annotated[
        str | None,
        typer.Argument(help="The set to list; without it, every set with its version.", callback=_trimmed),
    ] = None,
    version: Annotated[
        int | None,
        number_option(
            "--version", "-v", whole=True, at_least=0, help="The targets active at this version (default: now)."
        ),
    ] = None,
    include_removed: Annotated[
        bool,
        typer.Option(
            "--all", help="Every target the set had up to the version (default: ever), with when it was removed."
        ),
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List a set's targets at its current version or an earlier one (or, without a set, the sets)."""
    # existing: only looks, as `agentmesh runs` does; a typo in --db made an empty database and left it behind
    from agentmesh.cli._store import open_store

    with open_store(db, existing=True) as store:
        if target_set is None:
            sets = store.list_target_sets()
            rows: list[TargetRow] = []
        else:
            head = store.target_set(target_set)
            at = head.version if version is None else version
            rows = store.list_targets(target_set, at, include_removed=include_removed)
    if target_set is None:
        _print_sets(sets, as_json)
        return
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "target_set": target_set,
                    "version": at,
                    "current_version": head.version,
                    "targets": [r.model_dump(mode="json") for r in rows],
                }
            )
        )
        return
    current = "" if at == head.version else f" (current: {head.version})"
    title = f"{target_set} at version {at}{current}"
    if include_removed:
        title = (
            f"{target_set}: every target ever added (current version {head.version})"
            if at == head.version
            else f"{target_set}: every target added up to version {at}{current}"
        )
    if not rows:
        console.print(f"{escape(title)}: no targets", highlight=False)
        return
    table = Table(title=title)
    for column in ("id", "name", "aliases", "kind", "description", "added", "removed"):
        table.add_column(column, justify="right" if column in ("id", "added", "removed") else "left")
    for r in rows:  # as version `at` knew them (the store's rows): a removal after it is blank, not the future
        table.add_row(
            str(r.id),
            escape(r.name),
            escape("; ".join(r.aliases)),
            r.kind,
            escape(r.description or ""),
            str(r.added_in_version),
            "" if r.removed_in_version is None else str(r.removed_in_version),
        )
    console.print(table)


@app.command("import")
def import_(
    target_set: SetArgument,
    file: Annotated[
        Path,
        typer.Argument(
            help='JSONL, one target per line: {"name", "aliases"?, "description"?, "kind"?, "id"?}.',
            exists=True,
            dir_okay=False,
        ),
    ],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add every target of a JSONL file to a set in one change (one version); a bad line changes nothing."""
    records = read_jsonl(file, target_set)
    from agentmesh.cli._store import open_store

    with open_store(db) as store:
        try:
            version, ids = store.add_targets(target_set, records, create=True)
        except StoreError as exc:
            raise _taken(store, target_set, records, file) or _spelt_again(exc, file) or exc from None
    if as_json:
        console.print_json(json.dumps({"target_set": target_set, "version": version, "ids": ids}))
        return
    console.print(
        f"imported {len(ids)} target{'s' if len(ids) != 1 else ''} into {escape(repr(target_set))}: "
        f"version [bold]{version}[/]",
        highlight=False,
    )


def read_jsonl(path: Path, target_set: str) -> list[dict[str, Any]]:
    """The target records of a JSONL file (blank lines skipped), checked by the store's own record check
    (:func:`~agentmesh.store.target_records.check_located_target_records`, which ``eval alu --targets`` and ALU's
    ``-i targets=`` use too), so that a bad line is an error naming the file and the line before anything is
    written. ``target_set`` is only named in errors the store raises later; the check does not depend on it."""
    try:
        text = read_text(path)
    except ValueError as exc:  # not UTF-8: the file and line of the first bad byte
        raise ConfigError(f"{exc}; nothing imported", file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}", file=str(path)) from exc

    def located() -> Iterator[tuple[str, Any]]:
        for number, line in enumerate(_lines(text), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{number}: not JSON ({exc.msg}); nothing imported", file=str(path)) from None
            yield f"{path}:{number}", record

    try:
        out = check_located_target_records(located())
    except TargetRecordError as exc:
        raise ConfigError(f"{exc}; nothing imported", file=str(path)) from None
    if not out:
        raise ConfigError(f"{path}: no target records; nothing imported", file=str(path))
    return out


def _taken(store: Store, target_set: str, records: list[dict[str, Any]], path: Path) -> ConfigError | None:
    """When an import was refused because an id it gives is taken in the set, that error naming the record's line
    (the store names the id only, and a long file leaves the user to search for it); else ``None``."""
    try:
        taken = {row.id for row in store.list_targets(target_set, include_removed=True)}
    except StoreError:  # no such set: the store's own error says so
        return None
    lines = _record_lines(path)
    for record, line in zip(records, lines, strict=False):
        if record.get("id") in taken:
            return ConfigError(
                f"{path}:{line}: id {record['id']} is already taken in {target_set!r} (ids are never reused, even "
                "after a removal); nothing imported",
                file=str(path),
            )
    return None


def _spelt_again(exc: StoreError, path: Path) -> ConfigError | None:
    """When an import was refused because a record's name is a stored target's in another spelling ("ada" for a
    stored "Ada"), that error naming the record's line rather than its number among the records; else ``None``."""
    record, reason = exc.context.get("record"), exc.context.get("reason")
    if not isinstance(record, int) or reason is None:
        return None
    lines = _record_lines(path)
    line = lines[record - 1] if 0 < record <= len(lines) else record
    return ConfigError(f"{path}:{line}: {reason}; nothing imported ({exc.context['remedy']})", file=str(path))


def _record_lines(path: Path) -> list[int]:
    """The line number of each record :func:`read_jsonl` returned (it skips blank lines)."""
    return [number for number, line in enumerate(_lines(read_text(path)), 1) if line.strip()]


def _lines(text: str) -> list[str]:
    """A JSONL file's lines: split on newlines only; ``str.splitlines`` also splits on U+2028 and other
    separators that JSON allows raw inside a string, which cut a record in two ("not JSON")."""
    return text.split("\n")


def _print_sets(sets: list[TargetSetInfo], as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps([s.model_dump(mode="json") for s in sets]))
        return
    if not sets:
        console.print("no target sets yet (agentmesh targets add SET --name ...)")
        return
    table = Table(title=f"target sets ({len(sets)})")
    for column in ("name", "version", "active", "ever added", "updated"):
        table.add_column(column, justify="left" if column in ("name", "updated") else "right")
    for s in sets:
        table.add_row(
            escape(s.name), str(s.version), str(s.active), str(s.total), s.updated_at.strftime("%Y-%m-%d %H:%M:%S")
        )
    console.print(table)
