"""Versioned target sets (alu.md §3.1): in memory, and read from the framework store.

Users add and remove targets at any time, including while queries run. Every change bumps the set's version;
removal is a soft delete (``removed_in_version``) so an old run stays explainable; a target is active at
version V iff ``added_in_version ≤ V < removed_in_version``. A query reads the version once and works on that
:class:`~agentmesh.systems.alu.targets.TargetSnapshot` throughout, and snapshots are cached per
``(set, version)`` so the alias index and the embedding matrix are rebuilt only when the set changes.

:class:`TargetSet` is the in-process implementation of those rules; the framework store's ``target_sets`` /
``targets`` / ``target_aliases`` / ``target_embeddings`` tables (:mod:`agentmesh.store.targets`) hold the same
records across processes and machines. :func:`snapshot_from_store` reads one version of a stored set as a
snapshot, cached per ``(database, set, version)`` so a stream of queries against an unchanged set reads its rows
once; :meth:`TargetSet.from_store` copies a stored set's whole history into memory.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentmesh.store.target_records import (
    SAME_TARGET,
    assign_target_ids,
    check_located_target_records,
    spelling,
)
from agentmesh.systems.alu.targets import DEFAULT_MIN_ALIAS_LEN, Target, TargetSnapshot

if TYPE_CHECKING:
    from agentmesh.store import Store

__all__ = [
    "StoredTarget",
    "TargetSet",
    "cached_store_snapshot",
    "get_target_set",
    "load_targets_jsonl",
    "read_text",
    "register_target_set",
    "snapshot_from_store",
    "snapshot_of_records",
    "targets_of_records",
    "unregister_target_set",
]

_KEEP_SNAPSHOTS = 4
"""Versions whose derived structures stay cached (queries still running on the previous version keep theirs)."""


@dataclass(frozen=True)
class StoredTarget:
    """A target with its life span in versions."""

    target: Target
    added_in_version: int
    removed_in_version: int | None = None

    def active_at(self, version: int) -> bool:
        return self.added_in_version <= version and (
            self.removed_in_version is None or version < self.removed_in_version
        )


class TargetSet:
    """One named, versioned set of targets; thread-safe, so a server can change it while queries run."""

    def __init__(self, name: str, min_alias_len: int = DEFAULT_MIN_ALIAS_LEN) -> None:
        self.name = name
        self.min_alias_len = min_alias_len
        self.version = 0
        self._rows: dict[int, StoredTarget] = {}
        self._lock = threading.Lock()
        self._snapshots: dict[int, TargetSnapshot] = {}

    @classmethod
    def from_store(cls, store: Store, name: str, min_alias_len: int = DEFAULT_MIN_ALIAS_LEN) -> TargetSet:
        """The stored set ``name`` with its whole history (removed targets with their life spans) at its current
        version, in memory: what a process that must not touch the database afterwards (a benchmark, a
        notebook) keeps. Later changes in the store are not seen; :func:`snapshot_from_store` reads them."""
        head = store.target_set(name)
        rows = store.list_targets(name, include_removed=True)
        found = cls(name, min_alias_len)
        found.version = head.version
        found._rows = {
            r.id: StoredTarget(Target.from_json(r.record()), r.added_in_version, r.removed_in_version) for r in rows
        }
        return found

    def add(self, targets: Iterable[Target | Mapping[str, Any]]) -> int:
        """Add targets under new ids; returns the new version. Ids are never reused (a removed id stays taken), so
        a snapshot of any earlier version stays exactly what it was. A name an active target (or another of
        ``targets``) has in another spelling ("ada" beside "Ada") is refused, as the store refuses it: ALU matches
        the two as one target."""
        items = [t if isinstance(t, Target) else Target.from_json(t) for t in targets]
        with self._lock:
            for item in items:
                row = self._rows.get(item.id)
                if row is not None:
                    raise ValueError(f"target set {self.name!r}: id {item.id} is already taken")
            if len({item.id for item in items}) != len(items):
                raise ValueError(f"target set {self.name!r}: duplicate ids in one addition")
            # a second spelling of a name ("ada" beside "Ada") is refused as the store refuses it
            known = {spelling(r.target.name): r.target for r in self._rows.values() if r.active_at(self.version)}
            for item in items:
                form = spelling(item.name)
                found = known.get(form) if form else None
                if found is not None:
                    raise ValueError(
                        f"target set {self.name!r}: {item.name!r} is already in the set as {found.name!r} "
                        f"(id {found.id}): {SAME_TARGET}"
                    )
                known[form] = item
            self.version += 1
            for item in items:
                self._rows[item.id] = StoredTarget(item, self.version)
            return self.version

    def remove(self, ids: Iterable[int]) -> int:
        """Soft-delete targets by id; returns the new version. Unknown or already removed ids are an error."""
        wanted = list(ids)
        with self._lock:
            for target_id in wanted:
                row = self._rows.get(target_id)
                if row is None or row.removed_in_version is not None:
                    raise KeyError(f"target set {self.name!r}: no active target with id {target_id}")
            self.version += 1
            for target_id in wanted:
                row = self._rows[target_id]
                self._rows[target_id] = StoredTarget(row.target, row.added_in_version, self.version)
            return self.version

    def list(self, version: int | None = None) -> list[Target]:
        """The targets active at ``version`` (default: now), by id."""
        with self._lock:
            at = self.version if version is None else version
            return sorted((r.target for r in self._rows.values() if r.active_at(at)), key=lambda t: t.id)

    def snapshot(self, version: int | None = None) -> TargetSnapshot:
        """The active targets at ``version`` (default: the current one), cached per version."""
        with self._lock:
            at = self.version if version is None else version
            if at > self.version or at < 0:
                raise ValueError(f"target set {self.name!r} has no version {at} (current: {self.version})")
            found = self._snapshots.get(at)
            if found is None:
                active = tuple(sorted((r.target for r in self._rows.values() if r.active_at(at)), key=lambda t: t.id))
                found = TargetSnapshot(self.name, at, active, self.min_alias_len)
                self._snapshots[at] = found
                while len(self._snapshots) > _KEEP_SNAPSHOTS:  # the oldest built first goes first
                    del self._snapshots[next(iter(self._snapshots))]
            return found


def read_text(path: str | Path) -> str:
    """A data file's text (a byte-order mark dropped: it is not part of line 1's JSON); one that is not UTF-8
    raises ``ValueError`` naming the file and line (the decoder's own message names neither, and is all that
    ``eval alu`` would show)."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        where = f"{path}:{line}"
        raise ValueError(f"{where}: not UTF-8 text (byte {exc.object[exc.start]:#04x}); save it as UTF-8") from None


def load_targets_jsonl(path: str | Path) -> list[Target]:
    """Target records from a JSONL file (one record per line; blank lines skipped). Errors name the file and line.

    The records are those ``agentmesh targets import`` takes, so the same file serves both: ``id`` is optional
    (a record without one takes the next id after the largest given, in file order), ``aliases`` is a list. An
    ``eval alu --targets`` or ``-i target_set=FILE`` given an import file used to fail on the first record without
    an id ("not a target record ('id')"), and a line that was not an object was a traceback."""
    text = read_text(path)
    records: list[tuple[str, Any]] = []
    for number, line in enumerate(text.split("\n"), 1):  # not splitlines(): U+2028 may be inside a string
        if not line.strip():
            continue
        try:
            records.append((f"{path}:{number}", json.loads(line)))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: not JSON ({exc})") from None
    return targets_of_records(records)


def targets_of_records(records: Iterable[tuple[str, Any]]) -> list[Target]:
    """:class:`Target` objects from ``(where, record)`` pairs, checked and numbered as the store checks and numbers
    the same records (:func:`~agentmesh.store.target_records.check_located_target_records`,
    :func:`~agentmesh.store.target_records.assign_target_ids`), so a file or an inline list gives the targets that
    ``agentmesh targets import`` of it would store, and refuses what the import refuses, in the same words.

    A bad record raises :class:`~agentmesh.store.target_records.TargetRecordError` (a ``ValueError``) naming ``where``
    and the field; records without an ``id`` take the next ones after the largest given, in order."""
    checked = check_located_target_records(records)
    assign_target_ids(checked)
    return [Target.from_json(record) for record in checked]


def snapshot_of_records(
    records: Iterable[Mapping[str, Any]],
    version: int | None = None,
    *,
    min_alias_len: int = DEFAULT_MIN_ALIAS_LEN,
    name: str = "records",
) -> TargetSnapshot:
    """A snapshot of plain records (an export, a JSONL file, a worked example) at ``version``.

    Records without ``added_in_version`` count as added at version 1; a record is active iff
    ``added_in_version <= version < removed_in_version`` (a null removal: still active). ``version`` defaults to
    the latest version any record mentions (1 when none does).
    """
    rows: list[StoredTarget] = []
    for record in records:
        removed = record.get("removed_in_version")
        rows.append(
            StoredTarget(
                Target.from_json(record),
                int(record.get("added_in_version") or 1),
                None if removed is None else int(removed),
            )
        )
    mentioned = [r.added_in_version for r in rows] + [r.removed_in_version or 0 for r in rows]
    at = int(version) if version is not None else max([1, *mentioned])
    active = tuple(r.target for r in rows if r.active_at(at))  # in the given order (the reference's prompt order)
    return TargetSnapshot(name, at, active, min_alias_len)


_stored: OrderedDict[tuple[Any, ...], TargetSnapshot] = OrderedDict()
_stored_lock = threading.Lock()
_KEEP_STORED = 16


def cached_store_snapshot(key: tuple[Any, ...]) -> TargetSnapshot | None:
    """The snapshot cached under ``key`` (see :func:`snapshot_from_store`), without touching the database."""
    with _stored_lock:
        found = _stored.get(key)
        if found is not None:
            _stored.move_to_end(key)
        return found


def snapshot_from_store(
    store: Store,
    name: str,
    version: int | None = None,
    *,
    min_alias_len: int = DEFAULT_MIN_ALIAS_LEN,
    key: tuple[Any, ...] | None = None,
) -> TargetSnapshot:
    """The targets of the stored set ``name`` active at ``version`` (default: its current one), as a snapshot.

    Reading a version costs O(N) once; the snapshot (with its alias index and embedding matrices, built on first
    use) is then cached under ``key`` (default: the store's URL, the set and the version), so queries on an
    unchanged set pay only the version read (alu.md §3.5). A set that changed gets a new version, hence a new
    key: nothing stale is ever served.
    """
    if key is not None and (found := cached_store_snapshot(key)) is not None:
        return found
    at, rows = store.target_snapshot_rows(name, version)
    cache_key = key if key is not None else (store.url, name, at, min_alias_len)
    if key is None and (found := cached_store_snapshot(cache_key)) is not None:
        return found
    snapshot = TargetSnapshot(name, at, tuple(Target.from_json(r.record()) for r in rows), min_alias_len)
    with _stored_lock:
        _stored[cache_key] = snapshot
        while len(_stored) > _KEEP_STORED:
            _stored.popitem(last=False)
    return snapshot


_sets: dict[str, TargetSet] = {}
_sets_lock = threading.Lock()


def register_target_set(target_set: TargetSet) -> TargetSet:
    """Make a set reachable by name in this process (a graph input ``targets: "set:<name>"``)."""
    with _sets_lock:
        _sets[target_set.name] = target_set
    return target_set


def get_target_set(name: str) -> TargetSet:
    with _sets_lock:
        found = _sets.get(name)
        known = sorted(_sets)
    if found is None:
        raise KeyError(f"no target set {name!r} in this process; registered: {', '.join(known) or 'none'}")
    return found


def unregister_target_set(name: str) -> None:
    """Forget a registered set (its snapshots go with it); unknown names are ignored."""
    with _sets_lock:
        _sets.pop(name, None)
