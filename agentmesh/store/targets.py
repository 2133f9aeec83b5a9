"""Unlearning targets in the store (alu.md §3.1): named, versioned target sets that change at any time.

A target set has a ``version`` that every change (an addition, a removal, an import) increments in the same
transaction as the change itself, so a reader sees either the set before the change or after it, never half of
it. Removal is a soft delete (``removed_in_version``): a target is active at version V iff
``added_in_version <= V < removed_in_version`` (or it was never removed), so the targets any past version had
can be listed again, and a run that read version V stays explainable after the set has moved on.

A run records the version it read in ``target_pins`` (:meth:`TargetMethods.pin_target_set`): the first read
pins it, every later read by the same run and node (a resumed run) gets the same version, and a replay, which
runs against a scratch database, gets the pinned targets copied in (:meth:`TargetMethods.pinned_target_sets`,
:meth:`TargetMethods.restore_pinned_target_sets`).

The store is a leaf package (it imports nothing of ALU), so the aliases it indexes are normalised here with the
same rule as :func:`agentmesh.systems.alu.targets.normalize` (a test checks that the two agree).
"""

from __future__ import annotations

import struct
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from agentmesh.errors import StoreError
from agentmesh.store._redact import mask_secrets
from agentmesh.store.schema import (
    SCHEMA_VERSION,
    runs,
    target_aliases,
    target_embeddings,
    target_pins,
    target_sets,
    targets,
    utcnow,
)
from agentmesh.store.statements import Statement, Tx

if TYPE_CHECKING:
    from agentmesh.store.writes import BatchWriter, Writer

__all__ = [
    "IMPORTED_PINS",
    "TARGET_KINDS",
    "PinnedTargetSet",
    "StoredEmbedding",
    "TargetMethods",
    "TargetRecordError",
    "TargetRow",
    "TargetSetInfo",
    "TargetSetNotFoundError",
    "assign_target_ids",
    "check_located_target_records",
    "check_target_record",
    "check_target_records",
    "normalize_alias",
    "pack_vector",
    "unpack_vector",
]

TARGET_KINDS = ("entity", "topic", "option", "other")
IMPORTED_PINS = "pinned_target_sets"
"""The ``meta`` key of an imported run holding the target sets it read where it ran (see ``transfer.py``)."""


class TargetSetNotFoundError(StoreError):
    """No target set of that name in the database."""


class TargetSetInfo(BaseModel):
    """A target set's head: its name, current version and how many targets are active now / were ever added."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    active: int
    total: int
    created_at: datetime
    updated_at: datetime


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


class StoredEmbedding(BaseModel):
    """One ``target_embeddings`` row as it is stored (raw little-endian float32 bytes)."""

    model_config = ConfigDict(frozen=True)

    target_id: int
    embedder_id: str
    dim: int
    vector: bytes


class PinnedTargetSet(BaseModel):
    """A set as one run read it: what a replay copies into its scratch database so it reads the same targets."""

    model_config = ConfigDict(frozen=True)

    node: str
    name: str
    version: int
    targets: list[TargetRow]
    embeddings: list[StoredEmbedding] = []
    """The stored profile vectors of those targets, so that a replay embeds nothing either."""


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


def check_located_target_records(records: Iterable[tuple[str, object]]) -> list[dict[str, Any]]:
    """``(where, record)`` pairs, each checked by :func:`check_target_record`, in order (a lazy iterable is read
    one record at a time, so a caller's own error for a later line, say bad JSON, comes after this one's for an
    earlier line); an id given twice is refused at its second place, naming the first."""
    out: list[dict[str, Any]] = []
    first: dict[int, str] = {}
    for where, record in records:
        checked = check_target_record(record, where)
        target_id = checked["id"]
        if target_id is not None:
            if target_id in first:
                raise TargetRecordError(where, f"id {target_id} is already given at {first[target_id]}")
            first[target_id] = where
        out.append(checked)
    return out


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


def _alias_rows(set_id: int, target_id: int, name: str, aliases: Sequence[str]) -> list[dict[str, Any]]:
    """The ``target_aliases`` rows of a target: each distinct non-empty normalised alias with its first token.

    Every alias is indexed whatever its length; the matcher applies its ``min_alias_len`` when it reads them.
    """
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


def _row(row: sa.Row[Any], at: int | None = None) -> TargetRow:
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


def _active_at(version: int) -> sa.ColumnElement[bool]:
    return sa.and_(
        targets.c.added_in_version <= version,
        sa.or_(targets.c.removed_in_version.is_(None), targets.c.removed_in_version > version),
    )


_SET_BY_NAME = Statement("SELECT id, version, created_at FROM target_sets WHERE name = :name")
_PIN_OF = Statement("SELECT version FROM target_pins WHERE run_id = :run_id AND node = :node AND set_id = :set_id")
_INSERT_PIN = Statement.insert(target_pins, [c.name for c in target_pins.columns])


class TargetMethods:
    """The target-set methods of :class:`~agentmesh.store.Store` (mixed in; they use its engine and writers).

    Changes are rare and small, so each is one SQLAlchemy write transaction that first waits for the queued
    batch writes (:class:`~agentmesh.store.writes.Writer`); the set's row is locked for it (``FOR UPDATE`` on
    Postgres, SQLite's write lock), so concurrent changes from several processes get distinct versions.
    Reading the version a query uses (:meth:`pin_target_set`) is one small write on the batch writer, which
    commits it with the run's other writes.
    """

    if TYPE_CHECKING:
        url: str
        engine: sa.Engine
        _writer: Writer
        _batch: BatchWriter

    # --- sets -------------------------------------------------------------------------------------------------

    def create_target_set(self, name: str) -> TargetSetInfo:
        """A new, empty target set at version 0; an empty name or a name already taken is refused."""
        clean = _set_name(name)
        now = utcnow()
        with self._writer.begin() as conn:
            if conn.execute(_insert_set_if_absent(conn, clean, now).returning(target_sets.c.id)).first() is None:
                raise StoreError(f"target set {clean!r} already exists in {self.url}")
        return self.target_set(clean)

    def target_set(self, name: str) -> TargetSetInfo:
        """The set's head; :class:`TargetSetNotFoundError` (naming the sets there are) when there is none."""
        with self.engine.connect() as conn:
            head = conn.execute(sa.select(target_sets).where(target_sets.c.name == name)).first()
            if head is None:
                raise self._missing(conn, name)
            return _info(conn, head)

    def list_target_sets(self) -> list[TargetSetInfo]:
        """Every target set, by name."""
        with self.engine.connect() as conn:
            heads = conn.execute(sa.select(target_sets).order_by(target_sets.c.name)).all()
            return [_info(conn, head) for head in heads]

    # --- changes ----------------------------------------------------------------------------------------------

    def add_targets(
        self, set_name: str, records: Iterable[Mapping[str, Any]], *, create: bool = False
    ) -> tuple[int, list[int]]:
        """Add targets in one transaction that bumps the set's version; returns (new version, their ids).

        A record is ``{"name", "aliases"?, "description"?, "kind"?, "id"?}``. Without an id a target gets the
        next one after the highest of its set and of those given in ``records`` (:func:`assign_target_ids`); ids
        are never reused (a removed target keeps its id), so any earlier version's snapshot stays what it was.
        An empty name, a bad field, an id given twice or already taken, or an unknown set (unless ``create``)
        raises :class:`~agentmesh.errors.StoreError` and changes nothing.
        """
        set_name = _set_name(set_name)
        checked = check_target_records(records, set_name)
        if not checked:
            raise StoreError(f"target set {set_name!r}: no targets to add; nothing changed")
        now = utcnow()
        with self._writer.begin() as conn:
            head = self._locked_set(conn, set_name, create=create, now=now)
            taken = set(conn.execute(sa.select(targets.c.id).where(targets.c.set_id == head.id)).scalars())
            clash = [r["id"] for r in checked if r["id"] in taken]
            if clash:
                raise StoreError(
                    f"target set {set_name!r}: id {clash[0]} is already taken (ids are never reused, even after a "
                    "removal); nothing added"
                )
            ids = assign_target_ids(checked, taken)
            version = head.version + 1
            rows, alias_rows = [], []
            for record, target_id in zip(checked, ids, strict=True):
                rows.append(
                    {
                        **record,
                        "id": target_id,
                        "set_id": head.id,
                        "added_in_version": version,
                        "removed_in_version": None,
                        "created_at": now,
                        "schema_version": SCHEMA_VERSION,
                    }
                )
                alias_rows += _alias_rows(head.id, target_id, record["name"], record["aliases"])
            conn.execute(sa.insert(targets), rows)
            if alias_rows:
                conn.execute(sa.insert(target_aliases), alias_rows)
            _bump(conn, head.id, version, now)
        return version, ids

    def remove_targets(self, set_name: str, ids: Iterable[int]) -> int:
        """Soft-delete targets (by id) in one transaction that bumps the set's version; returns the new version.

        An id that is not an active target of the set is refused and nothing is removed.
        """
        wanted = list(dict.fromkeys(int(i) for i in ids))
        if not wanted:
            raise StoreError(f"target set {set_name!r}: no target ids to remove; nothing changed")
        now = utcnow()
        with self._writer.begin() as conn:
            head = self._locked_set(conn, set_name, create=False, now=now)
            active = set(
                conn.execute(
                    sa.select(targets.c.id).where(
                        targets.c.set_id == head.id, targets.c.id.in_(wanted), targets.c.removed_in_version.is_(None)
                    )
                ).scalars()
            )
            missing = [i for i in wanted if i not in active]
            if missing:
                raise StoreError(
                    f"target set {set_name!r} has no active target with id {missing[0]} (see `agentmesh targets "
                    f"list {set_name}`); nothing removed"
                )
            version = head.version + 1
            conn.execute(
                sa.update(targets)
                .where(targets.c.set_id == head.id, targets.c.id.in_(wanted))
                .values(removed_in_version=version)
            )
            _bump(conn, head.id, version, now)
        return int(version)

    # --- reads ------------------------------------------------------------------------------------------------

    def list_targets(
        self, set_name: str, version: int | None = None, *, include_removed: bool = False
    ) -> list[TargetRow]:
        """The targets active at ``version`` (default: the current one), by id; with ``include_removed``, every
        target the set had up to that version (added at or before it), with its life span.

        Rows are as that version knew them: a target removed after ``version`` has no ``removed_in_version``
        (a past version's listing must not tell the future; at the current version nothing is hidden)."""
        with self.engine.connect() as conn:
            head = self._head(conn, set_name)
            at = _checked_version(set_name, head.version, version)
            query = sa.select(targets).where(targets.c.set_id == head.id).order_by(targets.c.id)
            since = targets.c.added_in_version <= at  # with include_removed: what the set had up to `at`
            query = query.where(since if include_removed else _active_at(at))
            return [_row(r, at) for r in conn.execute(query)]

    def target_snapshot_rows(self, set_name: str, version: int | None = None) -> tuple[int, list[TargetRow]]:
        """(version, the targets active at it, as it knew them): one consistent read, whatever changes commit
        meanwhile."""
        with self.engine.connect() as conn, conn.begin():
            head = self._head(conn, set_name)
            at = _checked_version(set_name, head.version, version)
            query = sa.select(targets).where(targets.c.set_id == head.id, _active_at(at)).order_by(targets.c.id)
            return at, [_row(r, at) for r in conn.execute(query)]

    def alias_candidates(self, set_name: str, first_tokens: Iterable[str], version: int | None = None) -> list[int]:
        """Ids of the targets active at ``version`` with an alias whose first token is one of ``first_tokens``:
        an indexed look-up (``(set_id, first_token)``), so its cost follows the text, not the size of the set."""
        tokens = sorted(set(first_tokens))
        if not tokens:
            return []
        with self.engine.connect() as conn:
            head = self._head(conn, set_name)
            at = _checked_version(set_name, head.version, version)
            query = (
                sa.select(target_aliases.c.target_id)
                .distinct()
                .join(
                    targets,
                    sa.and_(targets.c.set_id == target_aliases.c.set_id, targets.c.id == target_aliases.c.target_id),
                )
                .where(target_aliases.c.set_id == head.id, target_aliases.c.first_token.in_(tokens), _active_at(at))
                .order_by(target_aliases.c.target_id)
            )
            return list(conn.execute(query).scalars())

    # --- embeddings -------------------------------------------------------------------------------------------

    def put_target_embeddings(self, set_name: str, embedder_id: str, vectors: Mapping[int, Sequence[float]]) -> None:
        """Store (or replace) targets' embeddings for one embedder, as little-endian float32 bytes."""
        if not embedder_id:
            raise StoreError("an embedding needs an embedder id")
        with self._writer.begin() as conn:
            head = self._head(conn, set_name)
            known = set(conn.execute(sa.select(targets.c.id).where(targets.c.set_id == head.id)).scalars())
            unknown = sorted(set(vectors) - known)
            if unknown:
                raise StoreError(f"target set {set_name!r} has no target {unknown[0]}; no embedding stored")
            dims = {len(v) for v in vectors.values()}
            if len(dims) > 1 or 0 in dims:
                raise StoreError(f"embeddings for {embedder_id!r} must all have one non-zero dimension, got {dims}")
            ids = list(vectors)
            conn.execute(
                sa.delete(target_embeddings).where(
                    target_embeddings.c.set_id == head.id,
                    target_embeddings.c.embedder_id == embedder_id,
                    target_embeddings.c.target_id.in_(ids),
                )
            )
            if ids:
                conn.execute(
                    sa.insert(target_embeddings),
                    [
                        {
                            "set_id": head.id,
                            "target_id": i,
                            "embedder_id": embedder_id,
                            "dim": len(vectors[i]),
                            "vector": pack_vector(vectors[i]),
                            "schema_version": SCHEMA_VERSION,
                        }
                        for i in ids
                    ],
                )

    def target_embeddings(self, set_name: str, embedder_id: str) -> dict[int, list[float]]:
        """Target id → vector for one embedder (targets without one are absent)."""
        with self.engine.connect() as conn:
            head = self._head(conn, set_name)
            rows = conn.execute(
                sa.select(target_embeddings.c.target_id, target_embeddings.c.dim, target_embeddings.c.vector).where(
                    target_embeddings.c.set_id == head.id, target_embeddings.c.embedder_id == embedder_id
                )
            ).all()
        return {row.target_id: unpack_vector(bytes(row.vector), row.dim) for row in rows}

    # --- pins: the version a run read -------------------------------------------------------------------------

    def pin_target_set(self, run_id: str, node: str, set_name: str) -> tuple[int, int, str] | None:
        """The version of ``set_name`` that ``node`` of ``run_id`` reads: the set's current version the first
        time (recorded), the recorded one ever after (a resumed run reads the targets it read before).

        Returns ``(set id, version, created_at)`` -- enough to key a cache of the snapshot -- or ``None`` when
        the database has no such set (the caller may look elsewhere). One read and at most one small insert,
        committed with the run's other writes.
        """
        if not set_name:
            return None
        found: tuple[int, int, str] | None = self._batch.run(_Pin(run_id, node, set_name))
        return found

    async def apin_target_set(self, run_id: str, node: str, set_name: str) -> tuple[int, int, str] | None:
        """:meth:`pin_target_set` for the event loop: awaits the commit without a worker thread."""
        if not set_name:
            return None
        found: tuple[int, int, str] | None = await self._batch.arun(_Pin(run_id, node, set_name))
        return found

    def pinned_target_sets(self, run_id: str) -> list[PinnedTargetSet]:
        """The sets a run read, each with the targets active at the version it read (for a replay's copy)."""
        self._batch.flush()
        with self.engine.connect() as conn:
            pins = conn.execute(
                sa.select(target_pins.c.node, target_pins.c.version, target_sets.c.name, target_sets.c.id)
                .join(target_sets, target_sets.c.id == target_pins.c.set_id)
                .where(target_pins.c.run_id == run_id)
                .order_by(target_pins.c.node, target_sets.c.name)
            ).all()
            if not pins:  # an imported run: the sets it read came with it, in its meta (see transfer.py)
                meta = conn.execute(sa.select(runs.c.meta).where(runs.c.id == run_id)).scalar()
                imported = meta.get(IMPORTED_PINS) if isinstance(meta, dict) else None
                return [PinnedTargetSet.model_validate(p) for p in imported or []]
            out = []
            for pin in pins:
                rows = conn.execute(
                    sa.select(targets).where(targets.c.set_id == pin.id, _active_at(pin.version)).order_by(targets.c.id)
                ).all()
                active = [r.id for r in rows]
                vectors = conn.execute(
                    sa.select(
                        target_embeddings.c.target_id,
                        target_embeddings.c.embedder_id,
                        target_embeddings.c.dim,
                        target_embeddings.c.vector,
                    )
                    .where(target_embeddings.c.set_id == pin.id, target_embeddings.c.target_id.in_(active))
                    .order_by(target_embeddings.c.target_id, target_embeddings.c.embedder_id)
                ).all()
                out.append(
                    PinnedTargetSet(
                        node=pin.node,
                        name=pin.name,
                        version=pin.version,
                        targets=[_row(r) for r in rows],
                        embeddings=[
                            StoredEmbedding(
                                target_id=v.target_id, embedder_id=v.embedder_id, dim=v.dim, vector=bytes(v.vector)
                            )
                            for v in vectors
                        ],
                    )
                )
        return out

    def copy_target_pins(self, from_run_id: str, to_run_id: str) -> int:
        """Give ``to_run_id`` the versions ``from_run_id`` read (a fork reads its parent's targets, so that only
        what the fork changes differs); returns how many pins were copied. Pins ``to_run_id`` already has win."""
        self._batch.flush()
        with self._writer.begin() as conn:
            have = set(
                conn.execute(
                    sa.select(target_pins.c.node, target_pins.c.set_id).where(target_pins.c.run_id == to_run_id)
                ).all()
            )
            rows = [
                {
                    "run_id": to_run_id,
                    "node": pin.node,
                    "set_id": pin.set_id,
                    "version": pin.version,
                    "created_at": utcnow(),
                    "schema_version": SCHEMA_VERSION,
                }
                for pin in conn.execute(sa.select(target_pins).where(target_pins.c.run_id == from_run_id))
                if (pin.node, pin.set_id) not in have
            ]
            if rows:
                conn.execute(sa.insert(target_pins), rows)
        return len(rows)

    def restore_pinned_target_sets(self, run_id: str, pinned: Sequence[PinnedTargetSet]) -> None:
        """Recreate the pinned sets in this (scratch) database as the original run read them, pinned for
        ``run_id``: a replay's nodes then read exactly those targets at exactly those versions.

        Meant for an empty scratch database: a set that already exists here is refused.
        """
        if not pinned:
            return
        now = utcnow()
        self._batch.flush()
        with self._writer.begin() as conn:
            ids: dict[str, int] = {}
            for pin in pinned:
                if pin.name in ids:  # pinned by several nodes: the same set (at the versions each one read)
                    continue
                if conn.execute(sa.select(target_sets.c.id).where(target_sets.c.name == pin.name)).first() is not None:
                    raise StoreError(f"cannot restore target set {pin.name!r}: {self.url} already has one")
                versions = [p.version for p in pinned if p.name == pin.name]
                set_id = conn.execute(
                    sa.insert(target_sets)
                    .values(
                        name=pin.name,
                        version=max(versions),
                        created_at=now,
                        updated_at=now,
                        schema_version=SCHEMA_VERSION,
                    )
                    .returning(target_sets.c.id)
                ).scalar_one()
                ids[pin.name] = set_id
                merged: dict[int, TargetRow] = {}
                for other in pinned:
                    if other.name == pin.name:
                        merged.update({t.id: t for t in other.targets})
                rows, alias_rows = [], []
                for t in merged.values():
                    rows.append(
                        {
                            "set_id": set_id,
                            "id": t.id,
                            "name": t.name,
                            "aliases": list(t.aliases),
                            "description": t.description,
                            "kind": t.kind,
                            "added_in_version": t.added_in_version,
                            "removed_in_version": t.removed_in_version,
                            "created_at": now,
                            "schema_version": SCHEMA_VERSION,
                        }
                    )
                    alias_rows += _alias_rows(set_id, t.id, t.name, t.aliases)
                if rows:
                    conn.execute(sa.insert(targets), rows)
                if alias_rows:
                    conn.execute(sa.insert(target_aliases), alias_rows)
                vectors = {
                    (e.target_id, e.embedder_id): e
                    for other in pinned
                    if other.name == pin.name
                    for e in other.embeddings
                }
                if vectors:
                    conn.execute(
                        sa.insert(target_embeddings),
                        [
                            {
                                "set_id": set_id,
                                "target_id": e.target_id,
                                "embedder_id": e.embedder_id,
                                "dim": e.dim,
                                "vector": e.vector,
                                "schema_version": SCHEMA_VERSION,
                            }
                            for e in vectors.values()
                        ],
                    )
            conn.execute(
                sa.insert(target_pins),
                [
                    {
                        "run_id": run_id,
                        "node": p.node,
                        "set_id": ids[p.name],
                        "version": p.version,
                        "created_at": now,
                        "schema_version": SCHEMA_VERSION,
                    }
                    for p in pinned
                ],
            )

    # --- helpers ----------------------------------------------------------------------------------------------

    def _head(self, conn: sa.Connection, name: str) -> sa.Row[Any]:
        head = conn.execute(sa.select(target_sets).where(target_sets.c.name == name)).first()
        if head is None:
            raise self._missing(conn, name)
        return head

    def _locked_set(self, conn: sa.Connection, name: str, *, create: bool, now: datetime) -> sa.Row[Any]:
        query = sa.select(target_sets).where(target_sets.c.name == name).with_for_update()
        head = conn.execute(query).first()
        if head is None and create:
            conn.execute(_insert_set_if_absent(conn, name, now))  # another process may be creating it too
            head = conn.execute(query).first()
        if head is None:
            raise self._missing(conn, name)
        if head.schema_version > SCHEMA_VERSION:
            raise StoreError(
                f"target set {name!r} has schema version {head.schema_version}; "
                f"this agentmesh reads up to {SCHEMA_VERSION}"
            )
        return head

    def _missing(self, conn: sa.Connection, name: str) -> TargetSetNotFoundError:
        names = list(conn.execute(sa.select(target_sets.c.name).order_by(target_sets.c.name).limit(11)).scalars())
        known = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "") if names else "none"
        return TargetSetNotFoundError(
            f"no target set {name!r} in {self.url} (target sets: {known}; create one with `agentmesh targets add`)",
            target_set=name,
        )


class _Pin:
    """The batch-writer op of :meth:`TargetMethods.pin_target_set`."""

    def __init__(self, run_id: str, node: str, set_name: str) -> None:
        self.run_id, self.node, self.set_name = run_id, node, set_name

    def __call__(self, tx: Tx) -> tuple[int, int, str] | None:
        head = tx.execute(_SET_BY_NAME, {"name": self.set_name}).fetchone()
        if head is None:
            return None
        set_id, current, created = int(head[0]), int(head[1]), str(head[2])
        pinned = tx.scalar(_PIN_OF, {"run_id": self.run_id, "node": self.node, "set_id": set_id})
        if pinned is not None:
            return set_id, int(pinned), created
        tx.execute(
            _INSERT_PIN,
            {
                "run_id": self.run_id,
                "node": self.node,
                "set_id": set_id,
                "version": current,
                "created_at": utcnow(),
                "schema_version": SCHEMA_VERSION,
            },
        )
        return set_id, current, created


def _insert_set_if_absent(conn: sa.Connection, name: str, now: datetime) -> sa.Insert:
    """``INSERT ... ON CONFLICT (name) DO NOTHING`` of a new set at version 0: two processes creating the same set
    at once both succeed, one of them inserting it (a plain insert would fail the other with a unique violation
    that aborts its whole transaction on Postgres)."""
    values = {"name": name, "version": 0, "created_at": now, "updated_at": now, "schema_version": SCHEMA_VERSION}
    if conn.dialect.name == "postgresql":
        return postgresql_insert(target_sets).values(**values).on_conflict_do_nothing(index_elements=["name"])
    return sqlite_insert(target_sets).values(**values).on_conflict_do_nothing(index_elements=["name"])


def _set_name(name: str) -> str:
    clean = name.strip() if isinstance(name, str) else ""
    if not clean:
        raise StoreError(f"a target set needs a non-empty name, got {name!r}")
    return clean


def _checked_version(name: str, current: int, version: int | None) -> int:
    if version is None:
        return current
    if version < 0 or version > current:
        raise StoreError(f"target set {name!r} has no version {version} (versions 0..{current})")
    return version


def _bump(conn: sa.Connection, set_id: int, version: int, now: datetime) -> None:
    conn.execute(sa.update(target_sets).where(target_sets.c.id == set_id).values(version=version, updated_at=now))


def _info(conn: sa.Connection, head: sa.Row[Any]) -> TargetSetInfo:
    counts = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((targets.c.removed_in_version.is_(None), 1), else_=0)), 0),
        ).where(targets.c.set_id == head.id)
    ).one()
    return TargetSetInfo(
        name=head.name,
        version=head.version,
        active=int(counts[1]),
        total=int(counts[0]),
        created_at=head.created_at,
        updated_at=head.updated_at,
    )
