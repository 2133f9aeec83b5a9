"""Unlearning targets, their normalised aliases and whole-word lexical hits (alu.md §3.1, §3.2).

A target is what a user asked the system to forget: a person, a topic, an answer option. It is matched in a
text by its name and aliases after :func:`normalize` (accents, case and punctuation folded), as a whole-word
phrase, so "Joaquin Ferreira's" hits "Joaquín Ferreira" while "Nonelli" does not hit "None".

Matching must not cost more when the store holds more targets (§3.5): :class:`AliasIndex` maps the first token
of every normalised alias to the aliases that start with it, so a text is scanned once, token by token, with
one dictionary look-up per token; the number of targets only changes how long the dictionary is.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agentmesh.store.target_records import TARGET_KINDS  # (the pure rules: not store.targets, which is SQL)
from agentmesh.store.target_records import normalize_alias as normalize

__all__ = [
    "DEFAULT_MIN_ALIAS_LEN",
    "AliasIndex",
    "Target",
    "TargetKind",
    "TargetSnapshot",
    "lexical_hits",
    "normalize",
    "occurs",
    "target_aliases",
    "targets_block",
]

TargetKind = Literal["entity", "topic", "option", "other"]

DEFAULT_MIN_ALIAS_LEN = 2
"""Two-letter names ("VS", "VR") occur in the released WMDP-style examples, so 2 rather than 3 (§3.2)."""


@dataclass(frozen=True)
class Target:
    """One target record (§3.1). ``id`` is the tie-breaker everywhere (lexical positions, semantic scores)."""

    id: int
    name: str
    aliases: tuple[str, ...] = ()
    description: str | None = None
    kind: TargetKind = "entity"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Target:
        """A record as the store, the JSONL import and the worked examples write it; unknown keys are ignored."""
        kind = str(data.get("kind") or "entity")
        if kind not in TARGET_KINDS:
            raise ValueError(f"target {data.get('id')!r}: kind must be entity, topic, option or other, got {kind!r}")
        description = data.get("description")
        return cls(
            id=int(data["id"]),
            name=str(data["name"]),
            aliases=tuple(str(a) for a in data.get("aliases") or ()),
            description=None if description in (None, "") else str(description),
            kind=kind,  # type: ignore[arg-type]  # checked just above
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "aliases": list(self.aliases),
            "description": self.description,
            "kind": self.kind,
        }

    @property
    def profile(self) -> str:
        """The text the semantic matcher embeds: name, aliases and description joined with "; " (§3.3)."""
        return "; ".join([self.name, *self.aliases, *([self.description] if self.description else [])])


def target_aliases(target: Target, min_alias_len: int = DEFAULT_MIN_ALIAS_LEN) -> list[str]:
    """The target's normalised name and aliases long enough to match, without duplicates, name first.

    An alias that normalises to nothing (punctuation only) never matches, whatever ``min_alias_len`` says:
    it would otherwise hit every empty text.
    """
    out: list[str] = []
    for alias in (target.name, *target.aliases):
        norm = normalize(alias)
        if norm and len(norm) >= min_alias_len and norm not in out:
            out.append(norm)
    return out


def occurs(target: Target, text: str, min_alias_len: int = DEFAULT_MIN_ALIAS_LEN) -> bool:
    """Whether the target occurs in ``text`` as a whole-word phrase (§3.2), by the spec's substring definition."""
    padded = f" {normalize(text)} "
    return any(f" {alias} " in padded for alias in target_aliases(target, min_alias_len))


class AliasIndex:
    """``first_token → [(alias tokens, target id)]`` over a set of targets (the ``target_alias`` table, §3.1).

    :meth:`hits` costs one look-up per token of the text plus the verification of the aliases that start with
    that token, so it does not grow with the number of targets (§3.5). Build it once per target-set version.
    """

    def __init__(self, targets: Iterable[Target], min_alias_len: int = DEFAULT_MIN_ALIAS_LEN) -> None:
        self.min_alias_len = min_alias_len
        self.targets: dict[int, Target] = {}
        self._by_first: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        for target in targets:
            if target.id in self.targets:
                raise ValueError(f"duplicate target id {target.id}")
            self.targets[target.id] = target
            for alias in target_aliases(target, min_alias_len):
                tokens = tuple(alias.split(" "))
                self._by_first.setdefault(tokens[0], []).append((tokens, target.id))

    def __len__(self) -> int:
        return len(self.targets)

    def positions(self, text: str) -> dict[int, int]:
        """Target id → smallest start index (in the normalised text) of any of its aliases found in ``text``."""
        norm = normalize(text)
        if not norm:
            return {}
        tokens = norm.split(" ")
        starts: list[int] = []
        offset = 0
        for token in tokens:
            starts.append(offset)
            offset += len(token) + 1
        found: dict[int, int] = {}
        for i, token in enumerate(tokens):
            for alias, target_id in self._by_first.get(token, ()):
                if tuple(tokens[i : i + len(alias)]) == alias and target_id not in found:
                    found[target_id] = starts[i]  # tokens are scanned left to right: the first hit is the earliest
        return found

    def hits(self, text: str, among: Iterable[int] | None = None) -> list[int]:
        """Ids of the targets occurring in ``text`` (optionally only those in ``among``), by position then id."""
        found = self.positions(text)
        if among is not None:
            keep = set(among)
            found = {t: p for t, p in found.items() if t in keep}
        return sorted(found, key=lambda t: (found[t], t))


def lexical_hits(text: str, targets: Sequence[Target], min_alias_len: int = DEFAULT_MIN_ALIAS_LEN) -> list[int]:
    """Ids of the targets of ``targets`` that occur in ``text``, ordered by position, ties by id (§3.2).

    Builds a throw-away index; a caller that matches many texts against the same targets keeps an
    :class:`AliasIndex` (or a :class:`TargetSnapshot`) instead.
    """
    return AliasIndex(targets, min_alias_len).hits(text)


def targets_block(targets: Sequence[Target], found: Iterable[int] = ()) -> str:
    """One line per target, in the given (shortlist) order: ``- name (also: a; b) — description`` (§4).

    Empty parts are left out; targets whose id is in ``found`` get the suffix `` [found]`` (eraser prompt).
    """
    marked = set(found)
    lines = []
    for target in targets:
        line = f"- {target.name}"
        if target.aliases:
            line += f" (also: {'; '.join(target.aliases)})"
        if target.description:
            line += f" — {target.description}"
        if target.id in marked:
            line += " [found]"
        lines.append(line)
    return "\n".join(lines)


@dataclass
class TargetSnapshot:
    """The active targets of one target set at one version: what a query reads once and uses throughout (§3.1).

    Derived structures (the alias index, embedding matrices per embedder) hang off the snapshot, so a cache
    keyed by ``(set name, version)`` rebuilds them only when the set changes.
    """

    name: str
    version: int
    targets: tuple[Target, ...]
    min_alias_len: int = DEFAULT_MIN_ALIAS_LEN
    _indexes: dict[int, AliasIndex] = field(default_factory=dict, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)
    derived: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    """Per-embedder caches (:class:`agentmesh.systems.alu.semantic.EmbeddingScorer` puts its matrix here)."""

    @property
    def key(self) -> tuple[str, int]:
        return (self.name, self.version)

    @property
    def index(self) -> AliasIndex:
        """The alias index at the snapshot's own ``min_alias_len``."""
        return self.index_for(self.min_alias_len)

    def index_for(self, min_alias_len: int) -> AliasIndex:
        """The alias index at ``min_alias_len``, built once per snapshot and length (a query that configures
        another length than the snapshot's must not rebuild it: that would cost O(N) per query)."""
        with self._lock:
            found = self._indexes.get(min_alias_len)
            if found is None:
                found = AliasIndex(self.targets, min_alias_len)
                self._indexes[min_alias_len] = found
            return found

    def by_id(self, ids: Iterable[int]) -> list[Target]:
        table = self.index_for(self.min_alias_len).targets
        return [table[i] for i in ids]
