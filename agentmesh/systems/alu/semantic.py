"""Semantic candidates: targets a text refers to without naming them (alu.md §3.3).

A masked question ("the leadership author born in Taichung on 3 March 1984…") names nobody, so lexical hits
miss it; a similarity between the question-and-answer text and each target's profile (name, aliases,
description) catches it. Two layers:

* an :class:`Embedder` turns texts into vectors (``hashing`` here, no model; an OpenAI-compatible
  ``/v1/embeddings`` endpoint elsewhere);
* a :class:`SemanticScorer` gives each target a score in [-1, 1]. :class:`EmbeddingScorer` embeds the
  profiles once per target-set version and, per query, embeds the query-side text in windows of at most 400
  characters (a many-shot prefix must not dilute the score) and keeps the best window. :class:`ScriptedScorer`
  is a table of scores (tests, the worked examples).

Per query the cost is one embedding per window and one matrix-vector product over the cached profiles (§3.5).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import mul
from typing import Any, Protocol, runtime_checkable

from agentmesh.systems.alu.targets import Target, TargetSnapshot, normalize

__all__ = [
    "HASHING_DIM",
    "HASHING_TAU_SEM",
    "WINDOW_CHARS",
    "Embedder",
    "EmbeddingScorer",
    "HashingEmbedder",
    "LexicalOnly",
    "OpenAIEmbedder",
    "ScriptedScorer",
    "SemanticScorer",
    "Vector",
    "cosine",
    "embedder_from_ref",
    "hashing_vector",
    "windows",
]

Vector = Sequence[float]

HASHING_DIM = 1024
HASHING_TAU_SEM = 0.35
"""Default ``tau_sem`` of the ``hashing`` embedder (§3.4); tune it with the eval command's shortlist recall."""
WINDOW_CHARS = 400


@runtime_checkable
class Embedder(Protocol):
    """Texts → vectors. ``id`` names the embedder in caches and the ``target_embedding`` table."""

    @property
    def id(self) -> str: ...

    @property
    def tau_sem(self) -> float:
        """The shortlist threshold that suits this embedder's score scale."""
        ...

    def embed(self, texts: Sequence[str]) -> list[Vector]: ...


@runtime_checkable
class SemanticScorer(Protocol):
    """Scores of every target of a snapshot against a query-side text; missing ids count as 0 (§3.3)."""

    @property
    def tau_sem(self) -> float: ...

    def scores(self, text: str, snapshot: TargetSnapshot) -> Mapping[int, float]: ...


def hashing_vector(text: str, dim: int = HASHING_DIM) -> list[float]:
    """The ``hashing`` embedding (§3.3): signed character 3-grams of ``" " + normalize(text) + " "``.

    Each trigram's UTF-8 bytes → 8-byte BLAKE2b digest read big-endian as h; bucket ``h mod dim``, sign ``+``
    when the top bit of h is 0. The result is L2-normalised (all zeros for a text with no trigram).
    """
    padded = f" {normalize(text)} "
    vector = [0.0] * dim
    for i in range(len(padded) - 2):
        h = int.from_bytes(hashlib.blake2b(padded[i : i + 3].encode("utf-8"), digest_size=8).digest(), "big")
        vector[h % dim] += -1.0 if h >> 63 else 1.0
    norm = math.sqrt(math.fsum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


@dataclass(frozen=True)
class HashingEmbedder:
    """No model, no network: a deterministic lexical-similarity embedding, the default (§3.3)."""

    dim: int = HASHING_DIM
    tau_sem: float = HASHING_TAU_SEM

    @property
    def id(self) -> str:
        return f"hashing-{self.dim}"

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        return [hashing_vector(t, self.dim) for t in texts]


class OpenAIEmbedder:
    """Any OpenAI-compatible ``/v1/embeddings`` endpoint: a llama.cpp server started with embeddings on, vLLM
    with an embedding model, or a hosted API (§3.3). The key is read from the environment variable named by
    ``api_key_env`` at call time and never kept. ``tau_sem`` depends on the model's similarity scale: tune it
    with the eval's shortlist recall and retain trigger rate."""

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        tau_sem: float = 0.5,
        batch_size: int = 64,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self.api_key_env = api_key_env
        self._tau_sem = tau_sem
        self.batch_size = batch_size
        self._one_at_a_time = False  # set once the server is seen answering with per-token vectors (see embed)

    @property
    def id(self) -> str:
        return f"openai:{self.model}" + (f"@{self.base_url}" if self.base_url else "")

    @property
    def tau_sem(self) -> float:
        return self._tau_sem

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        import openai

        client = openai.OpenAI(base_url=self.base_url, api_key=os.environ.get(self.api_key_env) or "unused")
        out: list[Vector] = []
        try:
            start = 0
            while start < len(texts):
                size = 1 if self._one_at_a_time else self.batch_size
                chunk = list(texts[start : start + size])
                response = client.embeddings.create(model=self.model, input=chunk)
                data = sorted(response.data, key=lambda d: d.index)
                if len(chunk) > 1 and data and _per_token(data[0].embedding):
                    # A server that does not pool (llama-cpp-python's on a generative GGUF) mixes up the token
                    # vectors of a batch's later texts: two copies of one text came back with cosine 0.003. Alone,
                    # a text's vectors are right, so such a server gets one text per request from now on.
                    self._one_at_a_time = True
                    continue
                out.extend(_pooled(d.embedding) for d in data)
                start += len(chunk)
        finally:
            client.close()
        return out


def _per_token(embedding: Sequence[Any]) -> bool:
    return bool(embedding) and isinstance(embedding[0], Sequence)


def _pooled(embedding: Sequence[Any]) -> Vector:
    """One vector per text. A server without pooling (llama-cpp-python's on a generative GGUF) answers with one
    vector per token; their mean is what a mean-pooling server would have returned."""
    if _per_token(embedding):
        tokens: Sequence[Sequence[float]] = embedding
        return [math.fsum(token[i] for token in tokens) / len(tokens) for i in range(len(tokens[0]))]
    return [float(x) for x in embedding]


def embedder_from_ref(ref: str, tau_sem: float | None = None) -> Embedder:
    """``hashing`` or ``openai:<model>`` / ``openai:<model>@<base url>`` (agentmesh's model-reference format)."""
    if ref == "hashing":
        return HashingEmbedder() if tau_sem is None else HashingEmbedder(tau_sem=tau_sem)
    if ref.startswith("openai:") and len(ref) > len("openai:"):
        model, _, url = ref[len("openai:") :].partition("@")
        if not model:
            raise ValueError(f"embedder {ref!r}: no model name")
        return OpenAIEmbedder(model, url or None, tau_sem=0.5 if tau_sem is None else tau_sem)
    raise ValueError(f"unknown embedder {ref!r}: expected 'hashing' or 'openai:<model>[@<base url>]'")


def cosine(a: Vector, b: Vector) -> float:
    """Cosine similarity; 0 when either vector is zero."""
    na = math.sqrt(math.fsum(x * x for x in a))
    nb = math.sqrt(math.fsum(x * x for x in b))
    if not na or not nb:
        return 0.0
    return math.fsum(map(mul, a, b)) / (na * nb)


_PARAGRAPH_RE = re.compile(r"\n[ \t]*\n")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+|\n+")


def windows(text: str, size: int = WINDOW_CHARS) -> list[str]:
    """``text`` cut into windows of at most ``size`` characters at sentence ends (§3.3).

    Sentences (split after ``.``, ``!``, ``?`` and at line breaks) are packed greedily into windows; a window
    never spans a blank line, so each exchange of a many-shot prefix (blank-line separated) lands in windows of
    its own and cannot dilute the window that holds the real question. A sentence longer than ``size`` is cut at
    its last space before the limit (or hard at the limit). Always at least one window.
    """
    if size < 1:
        raise ValueError(f"window size must be positive, got {size}")
    out: list[str] = []
    for paragraph in _PARAGRAPH_RE.split(text):
        pieces: list[str] = []
        for sentence in _SENTENCE_END_RE.split(paragraph):
            sentence = sentence.strip()
            while len(sentence) > size:
                cut = sentence.rfind(" ", 0, size + 1)
                cut = cut if cut > 0 else size
                pieces.append(sentence[:cut].strip())
                sentence = sentence[cut:].strip()
            if sentence:
                pieces.append(sentence)
        packed: list[str] = []
        for piece in pieces:
            if packed and len(packed[-1]) + 1 + len(piece) <= size:
                packed[-1] = f"{packed[-1]} {piece}"
            else:
                packed.append(piece)
        out.extend(packed)
    return out or [text.strip()]


class EmbeddingScorer:
    """Cosine between each target's profile and the best window of the query-side text (§3.3).

    The profile matrix (unit rows) is cached on the snapshot under the embedder's id, so it is computed once
    per target-set version, never per query.
    """

    def __init__(self, embedder: Embedder, tau_sem: float | None = None, window_chars: int = WINDOW_CHARS) -> None:
        self.embedder = embedder
        self.tau_sem = embedder.tau_sem if tau_sem is None else tau_sem
        self.window_chars = window_chars

    def _postings(self, snapshot: TargetSnapshot) -> tuple[list[int], dict[int, list[tuple[int, float]]]]:
        """Target ids and ``dimension → [(row, value)]`` over the unit profile rows, built once per version.

        Scoring a window then touches only the dimensions where the window is non-zero: for the sparse
        ``hashing`` vectors that is a few hundred postings lists, whatever N is, instead of N full rows.
        """
        key = f"embedding:{self.embedder.id}"
        cached = snapshot.derived.get(key)
        if cached is None:
            ids = [t.id for t in snapshot.targets]
            postings: dict[int, list[tuple[int, float]]] = {}
            if ids:
                for row, vector in enumerate(self._profile_vectors(snapshot)):
                    for dim, value in enumerate(_unit(vector)):
                        if value:
                            postings.setdefault(dim, []).append((row, value))
            cached = (ids, postings)
            snapshot.derived[key] = cached
        result: tuple[list[int], dict[int, list[tuple[int, float]]]] = cached
        return result

    def _profile_vectors(self, snapshot: TargetSnapshot) -> list[Vector]:
        """The targets' profile vectors, in snapshot order.

        A snapshot read from the store carries the vectors stored for this embedder under
        ``stored_vectors:<embedder id>`` (:data:`STORED_VECTORS`): only the targets without one are embedded,
        rounded to float32 as the store keeps them (so a query scores the same whether a vector was just computed
        or read back), and left under ``fresh_vectors:<embedder id>`` for the caller to store. Other snapshots
        embed every profile.
        """
        stored_key = f"{STORED_VECTORS}{self.embedder.id}"
        stored: Mapping[int, Vector] | None = snapshot.derived.get(stored_key)
        if stored is None:
            return self.embedder.embed([t.profile for t in snapshot.targets])
        missing = [t for t in snapshot.targets if t.id not in stored]
        fresh: dict[int, Vector] = {}
        if missing:
            computed = self.embedder.embed([t.profile for t in missing])
            fresh = {t.id: _float32(v) for t, v in zip(missing, computed, strict=True)}
            snapshot.derived[f"{FRESH_VECTORS}{self.embedder.id}"] = fresh
        return [stored[t.id] if t.id in stored else fresh[t.id] for t in snapshot.targets]

    def scores(self, text: str, snapshot: TargetSnapshot) -> dict[int, float]:
        ids, postings = self._postings(snapshot)
        if not ids:
            return {}
        best = [0.0] * len(ids)
        seen = False
        for window in self.embedder.embed(windows(text, self.window_chars)):
            sums = [0.0] * len(ids)
            for dim, x in enumerate(_unit(window)):
                if x:
                    for row, value in postings.get(dim, ()):
                        sums[row] += value * x
            best = sums if not seen else [max(a, b) for a, b in zip(best, sums, strict=True)]
            seen = True
        return dict(zip(ids, best, strict=True))


STORED_VECTORS = "stored_vectors:"
"""Prefix of the snapshot cache entry holding a stored set's profile vectors for one embedder (id → vector)."""
FRESH_VECTORS = "fresh_vectors:"
"""Prefix of the entry holding the profile vectors computed because the store had none (to be stored)."""


def _float32(vector: Vector) -> list[float]:
    """``vector`` rounded to float32, the precision of the ``target_embeddings`` table."""
    values = list(vector)
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


def _unit(vector: Vector) -> list[float]:
    norm = math.sqrt(math.fsum(x * x for x in vector))
    return [x / norm for x in vector] if norm else [0.0 for _ in vector]


class LexicalOnly:
    """No semantic matching at all: only lexical hits reach the shortlist (embedder ``none``)."""

    tau_sem = math.inf

    def scores(self, text: str, snapshot: TargetSnapshot) -> dict[int, float]:
        return {}


class ScriptedScorer:
    """A fixed table ``target id → score`` (tests; the worked examples' ``semantic_scores``). Missing ids: 0."""

    def __init__(self, table: Mapping[int | str, float], tau_sem: float = HASHING_TAU_SEM) -> None:
        self.table = {int(k): float(v) for k, v in table.items()}
        self.tau_sem = tau_sem

    def scores(self, text: str, snapshot: TargetSnapshot) -> dict[int, float]:
        return {t.id: self.table.get(t.id, 0.0) for t in snapshot.targets}


def profile_texts(targets: Sequence[Target]) -> list[str]:
    """The profile text of each target, in order (what gets embedded and stored in ``target_embedding``)."""
    return [t.profile for t in targets]
