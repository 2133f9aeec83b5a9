"""The version of a target set a run read (``target_pins``), and the copy of it a replay or an export carries.

Apart from the set methods (``targets.py``) because it is a different job with its own readers: the ALU node pins
the version it reads (:meth:`PinMethods.pin_target_set`, one small write on the batch writer, so a resumed run
reads the same version), a fork copies its parent's pins (:meth:`PinMethods.copy_target_pins`), and a replay,
which runs against a scratch database, or an exported run gets the pinned targets with their embeddings
(:meth:`PinMethods.pinned_target_sets`) and recreates them there (:meth:`PinMethods.restore_pinned_target_sets`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from agentmesh.errors import StoreError
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
from agentmesh.store.target_records import TargetRow, active_at, target_alias_rows, target_row

if TYPE_CHECKING:
    from agentmesh.store.writes import BatchWriter, Writer

__all__ = ["IMPORTED_PINS", "PinMethods", "PinnedTargetSet", "StoredEmbedding"]

IMPORTED_PINS = "pinned_target_sets"
"""The ``meta`` key of an imported run holding the target sets it read where it ran (see ``transfer.py``)."""


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


_SET_BY_NAME = Statement("SELECT id, version, created_at FROM target_sets WHERE name = :name")
_PIN_OF = Statement("SELECT version FROM target_pins WHERE run_id = :run_id AND node = :node AND set_id = :set_id")
_INSERT_PIN = Statement.insert(target_pins, [c.name for c in target_pins.columns])


class PinMethods:
    """The pin methods of :class:`~agentmesh.store.Store` (mixed in through
    :class:`~agentmesh.store.targets.TargetMethods`; they use its engine and writers)."""

    if TYPE_CHECKING:
        url: str
        engine: sa.Engine
        _writer: Writer
        _batch: BatchWriter

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
                    sa.select(targets).where(targets.c.set_id == pin.id, active_at(pin.version)).order_by(targets.c.id)
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
                        targets=[target_row(r) for r in rows],
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
                    alias_rows += target_alias_rows(set_id, t.id, t.name, t.aliases)
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


class _Pin:
    """The batch-writer op of :meth:`PinMethods.pin_target_set`."""

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
