"""Unlearning target sets in the store (alu.md §3.1): named, versioned sets of targets that change at any time.

A target set has a ``version`` that every change (an addition, a removal, an import) increments in the same
transaction as the change itself, so a reader sees either the set before the change or after it, never half of
it. Removal is a soft delete (``removed_in_version``): a target is active at version V iff
``added_in_version <= V < removed_in_version`` (or it was never removed), so the targets any past version had
can be listed again, and a run that read version V stays explainable after the set has moved on.

This module holds what changes and reads a set (:class:`TargetMethods`, mixed into
:class:`~agentmesh.store.Store`). What a single record is, how it is checked, numbered and turned into rows,
lives in ``target_records.py`` (shared with ALU, which must check records by the same rule); the versions runs
read, and the copies of them replays and exports carry, live in ``target_pins.py`` (:class:`PinMethods`, which
:class:`TargetMethods` inherits). Their public names are re-exported here, so ``from agentmesh.store.targets
import ...`` keeps working for all of them.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from agentmesh.errors import StoreError
from agentmesh.store.schema import SCHEMA_VERSION, target_aliases, target_embeddings, target_sets, targets, utcnow
from agentmesh.store.target_pins import IMPORTED_PINS, PinMethods, PinnedTargetSet, StoredEmbedding
from agentmesh.store.target_records import (
    SAME_TARGET,
    TARGET_KINDS,
    TargetRecordError,
    TargetRow,
    active_at,
    assign_target_ids,
    check_located_target_records,
    check_target_record,
    check_target_records,
    normalize_alias,
    pack_vector,
    stored_spelling,
    target_alias_rows,
    target_row,
    unpack_vector,
)

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


class TargetMethods(PinMethods):
    """The target-set methods of :class:`~agentmesh.store.Store` (mixed in; they use its engine and writers).

    Changes are rare and small, so each is one SQLAlchemy write transaction that first waits for the queued
    batch writes (:class:`~agentmesh.store.writes.Writer`); the set's row is locked for it (``FOR UPDATE`` on
    Postgres, SQLite's write lock), so concurrent changes from several processes get distinct versions.
    Reading the version a query uses (:meth:`~PinMethods.pin_target_set`, with the other pin methods inherited
    from :class:`~agentmesh.store.target_pins.PinMethods`) is one small write on the batch writer, which commits
    it with the run's other writes.
    """

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

    def has_target_set(self, name: str) -> bool:
        """Whether the database has a target set of that name: one indexed look-up, whatever the set's size (unlike
        :meth:`target_set`, which counts its targets), for a check made before every run."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(target_sets.c.id).where(target_sets.c.name == name)).first() is not None

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
        An empty name, a bad field, an id given twice or already taken, a name that an active target of the set
        (or another record) already has in another spelling ("ada" beside "Ada": ALU matches them as one target,
        :func:`~agentmesh.store.target_records.spelling`), or an unknown set (unless ``create``) raises
        :class:`~agentmesh.errors.StoreError` and changes nothing. Targets a database already holds in two
        spellings (added before this check) stay as they are, listed and matched.
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
            active = conn.execute(
                sa.select(targets.c.id, targets.c.name).where(
                    targets.c.set_id == head.id, targets.c.removed_in_version.is_(None)
                )
            ).all()
            again = stored_spelling(checked, ((row.id, row.name) for row in active))
            if again is not None:
                raise _second_spelling(set_name, checked, *again)
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
                alias_rows += target_alias_rows(head.id, target_id, record["name"], record["aliases"])
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
            query = query.where(since if include_removed else active_at(at))
            return [target_row(r, at) for r in conn.execute(query)]

    def target_snapshot_rows(self, set_name: str, version: int | None = None) -> tuple[int, list[TargetRow]]:
        """(version, the targets active at it, as it knew them): one consistent read, whatever changes commit
        meanwhile."""
        with self.engine.connect() as conn, conn.begin():
            head = self._head(conn, set_name)
            at = _checked_version(set_name, head.version, version)
            query = sa.select(targets).where(targets.c.set_id == head.id, active_at(at)).order_by(targets.c.id)
            return at, [target_row(r, at) for r in conn.execute(query)]

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
                .where(target_aliases.c.set_id == head.id, target_aliases.c.first_token.in_(tokens), active_at(at))
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


def _insert_set_if_absent(conn: sa.Connection, name: str, now: datetime) -> sa.Insert:
    """``INSERT ... ON CONFLICT (name) DO NOTHING`` of a new set at version 0: two processes creating the same set
    at once both succeed, one of them inserting it (a plain insert would fail the other with a unique violation
    that aborts its whole transaction on Postgres)."""
    values = {"name": name, "version": 0, "created_at": now, "updated_at": now, "schema_version": SCHEMA_VERSION}
    if conn.dialect.name == "postgresql":
        return postgresql_insert(target_sets).values(**values).on_conflict_do_nothing(index_elements=["name"])
    return sqlite_insert(target_sets).values(**values).on_conflict_do_nothing(index_elements=["name"])


def _second_spelling(
    set_name: str, records: Sequence[Mapping[str, Any]], position: int, stored_id: int, stored_name: str
) -> StoreError:
    """The refusal of a record whose name a stored target already has in another spelling, naming that target as
    it is stored and how to change how it is written. Its context has the record (1-based), the ``reason`` and
    the ``remedy``, so that a caller reading the records from a file can name the line instead."""
    name = records[position]["name"]
    where = f", record {position + 1}" if len(records) > 1 else ""
    reason = f"{name!r} is already in the set as {stored_name!r} (id {stored_id}): {SAME_TARGET}"
    remedy = (
        f"to store it as {name!r} instead, remove target {stored_id} with `agentmesh targets remove "
        f"{shlex.quote(set_name)} {stored_id}` and add it again"
    )
    return StoreError(
        f"target set {set_name!r}{where}: {reason}; nothing added ({remedy})",
        target_set=set_name,
        record=position + 1,
        target_id=stored_id,
        stored_name=stored_name,
        reason=reason,
        remedy=remedy,
    )


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
