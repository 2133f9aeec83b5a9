"""Large stored documents are kept compressed (zstd): event payloads (SQLite) and checkpoint channel blobs.

LLM runs store a lot of text that repeats: a debate's prompts quote the previous round's answers, a layer's
state holds the answers again. Compressing what is large (≥ 1 KiB) keeps the store small without changing what
readers see: both wrappers decompress on the way out and read uncompressed values written before them.

- :class:`CompressedJSON`: a JSON column whose large documents are stored as ``{"$zstd": "<base64>"}`` -- still
  valid JSON, so the column's type and the schema do not change. Postgres compresses large ``jsonb`` values itself
  (TOAST), so this applies on SQLite only.
- :class:`CompressingSerde`: wraps a LangGraph serializer; a large blob becomes type ``zstd+<type>``.

Why zstd (level 3) rather than zlib: every model call's request is compressed as the call is recorded, and zlib
spends ~10 µs setting up its state for each document before compressing anything (15-60 µs per prompt or state
blob at level 6); a reused zstd compressor does the same documents in 3-5 µs at a similar ratio. Documents written
by earlier versions as ``$zlib`` / ``zlib+`` are still read.
"""

from __future__ import annotations

import base64
import json
import threading
import zlib
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
import zstandard
from langgraph.checkpoint.serde.base import SerializerProtocol

#: Documents and blobs smaller than this are stored as they are (compression would not pay for itself).
THRESHOLD = 1024
LEVEL = 3
_MARK = "$zstd"
_PREFIX = "zstd+"
_ZLIB_MARK = "$zlib"  # written by earlier versions: read, never written
_ZLIB_PREFIX = "zlib+"

_local = threading.local()


def compress(data: bytes) -> bytes:
    """zstd frame of ``data``, with this thread's reusable compressor (a compressor is not thread-safe)."""
    compressor: zstandard.ZstdCompressor | None = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(level=LEVEL)
    return compressor.compress(data)


def decompress(data: bytes) -> bytes:
    decompressor: zstandard.ZstdDecompressor | None = getattr(_local, "decompressor", None)
    if decompressor is None:
        decompressor = _local.decompressor = zstandard.ZstdDecompressor()
    return decompressor.decompress(data)


class CompressedJSON(sa.TypeDecorator[Any]):
    """JSON whose documents of ``THRESHOLD`` bytes or more are stored compressed (see the module docstring)."""

    impl = sa.JSON
    cache_ok = True

    def bind_processor(self, dialect: sa.Dialect) -> Callable[[Any], Any]:
        """JSON's own processor (its NULL handling, the engine's serializer), then compression of what is large.

        One processor rather than ``process_bind_param`` plus JSON's: that pair would serialise every document
        twice (once to measure it, once to store it), and this runs for every event a run records.
        """
        store_json = self.impl_instance.bind_processor(dialect)
        assert store_json is not None  # JSON always serialises

        def process(value: Any) -> Any:
            text = store_json(value)
            if not isinstance(value, dict | list) or not isinstance(text, str) or len(text) < THRESHOLD:
                return text
            packed = base64.b64encode(compress(text.encode())).decode("ascii")
            # the wrapper written out rather than serialised again: base64 needs no JSON escaping
            return f'{{"{_MARK}": "{packed}"}}' if len(packed) + 12 < len(text) else text

        return process

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            if isinstance(value.get(_MARK), str):
                return json.loads(decompress(base64.b64decode(value[_MARK])))
            if isinstance(value.get(_ZLIB_MARK), str):
                return json.loads(zlib.decompress(base64.b64decode(value[_ZLIB_MARK])))
        return value


class CompressingSerde:
    """A LangGraph serializer whose large blobs are zstd-compressed, tagged in their type."""

    def __init__(self, inner: SerializerProtocol) -> None:
        self.inner = inner

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        type_, blob = self.inner.dumps_typed(obj)
        if len(blob) >= THRESHOLD:
            packed = compress(blob)
            if len(packed) < len(blob):
                return _PREFIX + type_, packed
        return type_, blob

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        type_, blob = data
        if type_.startswith(_PREFIX):
            return self.inner.loads_typed((type_[len(_PREFIX) :], decompress(blob)))
        if type_.startswith(_ZLIB_PREFIX):
            return self.inner.loads_typed((type_[len(_ZLIB_PREFIX) :], zlib.decompress(blob)))
        return self.inner.loads_typed(data)
