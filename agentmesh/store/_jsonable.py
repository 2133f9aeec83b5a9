"""Turn what callers hand the store into plain JSON values before anything else looks at it.

The store's JSON columns (run inputs, event requests/responses/data, checkpoint metadata) must hold JSON and
nothing else: never a pickled object, never a type that needs importing to read back. Converting *first* also
means the redactor sees every nested value (a pydantic model is dumped before its fields are inspected, so a
secret inside one cannot slip past). Two values that databases reject are neutralised here instead of failing a
write that would lose a record: NaN/Infinity (invalid JSON; Postgres refuses it) become ``null``, and NUL
characters (Postgres text cannot hold them) and lone surrogates (not Unicode text: half an emoji a server cut at
``max_tokens``, a byte that is not UTF-8 as Python reads it; no database encodes them) become U+FFFD.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any, TypeAlias
from uuid import UUID

from pydantic import BaseModel

from agentmesh._text import mend_lone_surrogates
from agentmesh.errors import StoreError

JSONValue: TypeAlias = dict[str, "JSONValue"] | list["JSONValue"] | str | int | float | bool | None


def clean_text(text: str) -> str:
    """``text`` without NUL characters (Postgres cannot store them in text or JSONB) or lone surrogates (no
    database can encode them: :mod:`agentmesh._text`), each replaced by U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return mend_lone_surrogates(text)


def to_jsonable(value: Any, *, where: str = "value") -> JSONValue:
    """A JSON-compatible copy of ``value``; :class:`StoreError` naming the path for types JSON cannot hold.

    Supported beyond JSON's own types: mappings (keys become strings), lists/tuples/sets/deques, pydantic
    models, dataclasses, enums (their value), datetimes (ISO 8601), UUID, Decimal and paths (``str``).
    """
    try:
        return _convert(value, None)
    except _NotJSON:  # convert again, keeping track of the path this time, to say where
        _convert(value, where)
        raise AssertionError("unreachable: the second pass raises StoreError") from None


class _NotJSON(Exception):
    """Raised by the fast pass (no path tracked: building a path string for every value would cost more than
    the conversion itself)."""


def _convert(value: Any, where: str | None) -> JSONValue:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Enum):
        return _convert(value.value, where)
    if isinstance(value, Mapping):
        if where is None:
            return {clean_text(str(k)): _convert(v, None) for k, v in value.items()}
        return {clean_text(str(k)): _convert(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset | deque):
        if where is None:
            return [_convert(v, None) for v in value]
        return [_convert(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, BaseModel):
        return _convert(value.model_dump(mode="json"), where)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _convert(dataclasses.asdict(value), where)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, UUID | Decimal | PurePath):
        return str(value)
    if where is None:
        raise _NotJSON
    raise StoreError(
        f"{where}: a {type(value).__name__} cannot be stored as JSON; pass JSON values "
        "(dict, list, str, int, float, bool, None), pydantic models or dataclasses",
        where=where,
        type=type(value).__name__,
    )
