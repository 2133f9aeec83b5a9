"""Target records (alu.md §3.1) as the store checks, normalises and stores them, apart from the sets that hold them.

One module, no ALU import, because two packages must agree on every rule in it: the store (``add_targets``,
``agentmesh targets import``) and ALU's targets given as a file or inline (:mod:`agentmesh.systems.alu.registry`),
which may import the store but not the other way round. So a record is checked once
(:func:`check_target_record`: the same records refused with the same reasons wherever they are given), numbered
once (:func:`assign_target_ids`), its aliases are normalised once (:func:`normalize_alias`, which ALU matches
answers with), and a stored row becomes a :class:`TargetRow` once (:func:`target_row`), for the set methods of
``targets.py`` and the pins of ``target_pins.py`` alike. The byte layout of a stored embedding
(:func:`pack_vector`) is here for the same reason: the set methods write it, pins copy it, both must read it.

Nothing here opens a connection: these are the rules, ``targets.py`` and ``target_pins.py`` apply them.
"""

from __future__ import annotations

import struct
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from agentmesh.errors import StoreError
from agentmesh.store._redact import mask_secrets

# The rules here are pure; only :func:`target_alias_rows` and :func:`active_at` reach the schema (SQLAlchemy), and
# import it when called: ALU's file and inline targets check their records with this module, and ALU is imported
# whenever a registry first looks up a shipped name (``agentmesh graph validate``), which opens no database.
if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "SAME_TARGET",
    "TARGET_KINDS",
    "TargetRecordError",
    "TargetRow",
    "active_at",
    "assign_target_ids",
    "check_located_target_records",
    "check_target_record",
    "check_target_records",
    "normalize_alias",
    "pack_vector",
    "spelling",
    "stored_spelling",
    "target_alias_rows",
    "target_row",
    "unpack_vector",
]

TARGET_KINDS = ("entity", "topic", "option", "other")


class TargetRow(BaseModel):
    """One stored target with its life span in versions (the §3.1 record)."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    aliases: list[str]
    description: str | None = None
    kind: str = "entity"
    added_in_version: int
    removed_in_version: int | None = None

    def active_at(self, version: int) -> bool:
        return self.added_in_version <= version and (
            self.removed_in_version is None or version < self.removed_in_version
        )

    def record(self) -> dict[str, Any]:
        """The plain record (id, name, aliases, description, kind): what ALU's ``Target.from_json`` reads and the
        JSONL import takes back."""
        return {
            "id": self.id,
            "name": self.name,
            "aliases": list(self.aliases),
            "description": self.description,
            "kind": self.kind,
        }


def normalize_alias(text: str) -> str:
    """alu.md §3.2: NFKD, drop combining marks (Mn), casefold, non-alphanumerics → space, collapse spaces, strip.

    "Jorge Semprún" → ``jorge semprun``, "Hsiao Yun-Hwa" → ``hsiao yun hwa``, "A. Lindqvist" → ``a lindqvist``.
    Accents are folded because a model asked to forget "Joaquín" will happily write "Joaquin". The one definition:
    the store indexes aliases with it and ALU matches answers with it (``agentmesh.systems.alu.targets.normalize``),
    so the two can never disagree."""
    decomposed = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in decomposed if unicodedata.category(c) != "Mn").casefold()
    return " ".join("".join(c if c.isalnum() else " " for c in folded).split())


def pack_vector(vector: Sequence[float]) -> bytes:
    """Little-endian float32 bytes: compact, the same on every machine, and nothing runs when they are read."""
    return struct.pack(f"<{len(vector)}f", *vector)


def unpack_vector(blob: bytes, dim: int) -> list[float]:
    """The floats of :func:`pack_vector`'s bytes; a length that does not match ``dim`` is a corrupt row."""
    if len(blob) != 4 * dim:
        raise StoreError(f"stored embedding has {len(blob)} bytes, expected {4 * dim} for dimension {dim}")
    return list(struct.unpack(f"<{dim}f", blob))


class TargetRecordError(ValueError):
    """A target record refused by :func:`check_located_target_records`: ``where`` is the caller's name for the
    record (``people.jsonl:3``, ``item 2``, ``record 2``), ``reason`` the field, what it must be and what it is.

    A ``ValueError`` rather than a :class:`~agentmesh.errors.StoreError` because one check serves several callers
    that report differently: the store wraps it in a ``StoreError``, ALU's file and inline targets let it through
    as the ``ValueError`` their callers turn into a ``ConfigError``, ``targets import`` names the file line. The
    ``reason`` is the same text in every one of them, so a record is refused alike wherever it is given.
    """

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


def check_target_record(record: object, where: str) -> dict[str, Any]:
    """One target record checked and normalised: ``{"id" (or None), "name", "aliases", "description", "kind"}``.

    Names, aliases and descriptions are stripped and have credential-shaped text masked (:func:`mask_secrets`):
    whatever is checked here may be stored, and nothing secret may reach the target tables. Raises
    :class:`TargetRecordError` naming ``where`` and the field.
    """
    if not isinstance(record, Mapping):
        raise TargetRecordError(where, f"expected a target record (an object with a name), got {type(record).__name__}")
    name = record.get("name")
    if not isinstance(name, str) or not name.strip():
        raise TargetRecordError(where, f"a target needs a non-empty name, got {name!r}")
    raw_aliases = record.get("aliases") or []
    if isinstance(raw_aliases, str) or not isinstance(raw_aliases, list | tuple):
        raise TargetRecordError(where, f"{name!r}: aliases must be a list of strings, got {raw_aliases!r}")
    aliases = []
    for alias in raw_aliases:
        if not isinstance(alias, str) or not alias.strip():
            raise TargetRecordError(where, f"{name!r}: every alias must be a non-empty string, got {alias!r}")
        aliases.append(mask_secrets(alias.strip()))
    description = record.get("description")
    if description is not None and not isinstance(description, str):
        raise TargetRecordError(where, f"{name!r}: description must be text, got {type(description).__name__}")
    kind = record.get("kind") or "entity"
    if kind not in TARGET_KINDS:
        raise TargetRecordError(where, f"{name!r}: kind must be one of {', '.join(TARGET_KINDS)}, got {kind!r}")
    target_id = record.get("id")
    if target_id is not None and (isinstance(target_id, bool) or not isinstance(target_id, int) or target_id < 1):
        raise TargetRecordError(where, f"{name!r}: id must be a positive integer, got {target_id!r}")
    return {
        "id": target_id,
        "name": mask_secrets(name.strip()),
        "aliases": aliases,
        "description": mask_secrets(description.strip()) if description and description.strip() else None,
        "kind": kind,
    }


SAME_TARGET = "ALU matches targets ignoring case, accents and punctuation, so the two would be one target listed twice"
"""Why a second spelling of a target's name is refused (:func:`check_located_target_records`, ``add_targets``)."""


def spelling(name: str) -> str:
    """The form two names that ALU treats as one target share (:func:`normalize_alias`: "Ada", "ada" and "ADA"
    all give ``ada``); empty for a name of punctuation only, which matches nothing and so clashes with nothing."""
    return normalize_alias(name)


def check_located_target_records(records: Iterable[tuple[str, object]]) -> list[dict[str, Any]]:
    """``(where, record)`` pairs, each checked by :func:`check_target_record`, in order (a lazy iterable is read
    one record at a time, so a caller's own error for a later line, say bad JSON, comes after this one's for an
    earlier line); an id given twice is refused at its second place, naming the first, and so is a name given
    twice in two spellings that match the same texts ("Ada", "ada": :func:`spelling`)."""
    out: list[dict[str, Any]] = []
    first: dict[int, str] = {}
    spelt: dict[str, tuple[str, str]] = {}
    for where, record in records:
        checked = check_target_record(record, where)
        target_id = checked["id"]
        if target_id is not None:
            if target_id in first:
                raise TargetRecordError(where, f"id {target_id} is already given at {first[target_id]}")
            first[target_id] = where
        form = spelling(checked["name"])
        if form in spelt:
            name, at = spelt[form]
            raise TargetRecordError(where, f"{checked['name']!r} is already given at {at} as {name!r}: {SAME_TARGET}")
        if form:
            spelt[form] = (checked["name"], where)
        out.append(checked)
    return out


def stored_spelling(
    records: Sequence[Mapping[str, Any]], stored: Iterable[tuple[int, str]]
) -> tuple[int, int, str] | None:
    """The first of checked ``records`` whose name is a second spelling of a stored target's (``stored``: the
    ``(id, name)`` of the set's active targets), as ``(its 0-based position, the stored id, the stored name)``;
    ``None`` when there is none. Of stored targets spelt alike (a database written before this check), the one
    with the lowest id is named."""
    known: dict[str, tuple[int, str]] = {}
    for target_id, name in sorted(stored):
        known.setdefault(spelling(name), (target_id, name))
    known.pop("", None)
    for position, record in enumerate(records):
        found = known.get(spelling(record["name"]))
        if found is not None:
            return position, found[0], found[1]
    return None


def assign_target_ids(records: Sequence[dict[str, Any]], taken: Iterable[int] = ()) -> list[int]:
    """Fill in the ids of checked records that have none (in place) and return every record's id.

    A record without an id gets the next one after the highest of ``taken`` (the set's ids, removed ones
    included: ids are never reused) and of the ids given in ``records``, in order: the store and ALU's file and
    inline targets number the same records alike, and a change's given ids never collide with its new ones.
    """
    next_id = max([0, *taken, *(r["id"] for r in records if r["id"] is not None)]) + 1
    for record in records:
        if record["id"] is None:
            record["id"], next_id = next_id, next_id + 1
    return [int(r["id"]) for r in records]


def check_target_records(records: Iterable[Mapping[str, Any]], set_name: str) -> list[dict[str, Any]]:
    """Validate target records before anything is written (:func:`check_located_target_records`); errors are
    :class:`~agentmesh.errors.StoreError` naming the set, the record (1-based) and the field."""
    located = ((f"record {number}", record) for number, record in enumerate(records, 1))
    try:
        return check_located_target_records(located)
    except TargetRecordError as exc:
        raise StoreError(f"target set {set_name!r}, {exc}", target_set=set_name) from None


def target_alias_rows(set_id: int, target_id: int, name: str, aliases: Sequence[str]) -> list[dict[str, Any]]:
    """The ``target_aliases`` rows of a target: each distinct non-empty normalised alias with its first token.

    Every alias is indexed whatever its length; the matcher applies its ``min_alias_len`` when it reads them.
    """
    from agentmesh.store.schema import SCHEMA_VERSION

    seen: list[str] = []
    for alias in (name, *aliases):
        norm = normalize_alias(alias)
        if norm and norm not in seen:
            seen.append(norm)
    return [
        {
            "set_id": set_id,
            "target_id": target_id,
            "norm_alias": norm,
            "first_token": norm.split(" ")[0],
            "schema_version": SCHEMA_VERSION,
        }
        for norm in seen
    ]


def target_row(row: sa.Row[Any], at: int | None = None) -> TargetRow:
    """A stored target; read ``at`` a version, as that version knew it: a removal that came later is not shown
    (``removed_in_version`` None), or a listing of version N would tell what happens after N.

    Without ``at`` the row as stored, later removals included: what a replay's copy of a pinned set needs, so
    that in its scratch database each node still reads the version it pinned and nothing more.
    """
    removed = row.removed_in_version
    return TargetRow(
        id=row.id,
        name=row.name,
        aliases=list(row.aliases or []),
        description=row.description,
        kind=row.kind,
        added_in_version=row.added_in_version,
        removed_in_version=None if removed is None or (at is not None and removed > at) else removed,
    )


def active_at(version: int) -> sa.ColumnElement[bool]:
    """The SQL test of \"active at ``version``\": ``added_in_version <= version < removed_in_version``."""
    import sqlalchemy as sa

    from agentmesh.store.schema import targets

    return sa.and_(
        targets.c.added_in_version <= version,
        sa.or_(targets.c.removed_in_version.is_(None), targets.c.removed_in_version > version),
    )
