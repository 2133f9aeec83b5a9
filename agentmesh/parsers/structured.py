"""Structured and plain text: the first JSON value in a reply, a list of texts, the reply itself.

* ``json``: models wrap JSON in prose and in ```` ```json ```` fences; fenced blocks are tried first (they are
  what the model meant to be data), then the first position where a JSON object or array decodes.
* ``text_list``: ALU's eraser reply → candidate rewrites (alu.md §4.3), with its fallbacks in order: a JSON
  array of strings between the first ``[`` and the last ``]``; blocks separated by ``---`` lines; a numbered
  list of at least two items; the whole reply. Candidates are stripped, empty ones dropped, at most ``k`` kept.
* ``text``: the reply stripped, for free-form answers (ALU's vanilla and composer outputs).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import Field, JsonValue

from agentmesh.parsers.registry import Parsed, ParserParams, register_parser

__all__ = ["NO_JSON", "extract_json", "json_parser", "split_text_list", "text_list", "text_parser"]

JsonExpect = Literal["any", "object", "array"]

_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```", re.DOTALL)
# strict=False: control characters inside strings (a raw line break in a value) are taken as they are. Strict JSON
# forbids them, but models write them, and llama.cpp's grammar for ``response_format`` lets them through.
_DECODER = json.JSONDecoder(parse_constant=lambda name: _reject_constant(name), strict=False)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class _NoJson:
    pass


NO_JSON: Any = _NoJson()


def _matches(value: Any, expect: JsonExpect) -> bool:
    if expect == "object":
        return isinstance(value, dict)
    if expect == "array":
        return isinstance(value, list)
    return isinstance(value, dict | list)


def extract_json(text: str, expect: JsonExpect = "any") -> Any:
    """The first JSON object/array in ``text`` (fenced blocks first), or :data:`NO_JSON` when there is none.

    ``NaN``/``Infinity`` are rejected (they are not JSON and would not survive the store); raw control characters
    inside strings are accepted (models write line breaks unescaped).
    """
    for lang, body in _FENCE_RE.findall(text):
        if lang.lower() not in ("", "json", "jsonc", "javascript", "js"):
            continue
        try:
            value = _DECODER.decode(body.strip())
        except (ValueError, RecursionError):
            continue
        if _matches(value, expect):
            return value
    starts = "{[" if expect == "any" else "{" if expect == "object" else "["
    for i, char in enumerate(text):
        if char not in starts:
            continue
        try:
            value, _ = _DECODER.raw_decode(text, i)
        except (ValueError, RecursionError):
            continue
        if _matches(value, expect):
            return value
    return NO_JSON


class JsonParams(ParserParams):
    """Parameters of :data:`json_parser` (registered as ``json``)."""

    expect: JsonExpect = "any"
    """Accept an ``object``, an ``array`` or ``any`` of the two."""


@register_parser("json", params=JsonParams)
def json_parser(text: str, *, expect: JsonExpect) -> Parsed:
    """The first JSON object or array in the reply, fenced or inline; the vote key is its canonical form."""
    value = extract_json(text, expect)
    if value is NO_JSON:
        what = {"any": "object or array", "object": "object", "array": "array"}[expect]
        return Parsed.failure(f"no JSON {what} in the reply")
    key = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return Parsed.success(value, key)


class TextParams(ParserParams):
    """:data:`text_parser` (registered as ``text``) has no parameters."""


@register_parser("text", params=TextParams)
def text_parser(text: str) -> Parsed:
    """The reply itself, stripped; an empty reply is ``ok=false`` (there is nothing to use)."""
    stripped = text.strip()
    if not stripped:
        return Parsed.failure("the reply is empty", stripped)
    return Parsed.success(stripped, stripped)


_SEPARATOR_RE = re.compile(r"^[ \t]*---[ \t]*$", re.MULTILINE)
_ITEM_RE = re.compile(r"^[ \t]*(?:(?i:response)[ \t]*)?\d+[ \t]*[.):](?:[ \t]+|$)")


def _json_strings(text: str) -> list[str] | None:
    start, end = text.find("["), text.rfind("]")
    if start < 0 or end <= start:
        return None
    try:
        value = json.loads(text[start : end + 1])
    except (ValueError, RecursionError):
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _numbered_items(text: str) -> list[str] | None:
    items: list[list[str]] = []
    for line in text.split("\n"):
        marker = _ITEM_RE.match(line)
        if marker:
            items.append([line[marker.end() :]])
        elif items:
            items[-1].append(line)
    if len(items) < 2:
        return None
    return ["\n".join(lines) for lines in items]


def split_text_list(text: str, k: int | None = None) -> tuple[list[str], str]:
    """ALU's eraser parse (alu.md §4.3): candidates and the rule that produced them.

    Rules in order: ``json`` (the first ``[`` to the last ``]`` is a JSON array of strings), ``separator``
    (blocks between lines that are only ``---``), ``numbered`` (at least two items starting ``1.``, ``2)``,
    ``Response 3:``; lines before the first item are dropped, later lines join the item above), ``whole``.
    Then every candidate is stripped, empty ones are dropped and at most ``k`` kept, in order.
    """
    rule = "json"
    parts = _json_strings(text)
    if parts is None and _SEPARATOR_RE.search(text):
        parts, rule = _SEPARATOR_RE.split(text), "separator"
    if parts is None:
        parts, rule = _numbered_items(text), "numbered"
    if parts is None:
        parts, rule = [text], "whole"
    kept = [p.strip() for p in parts if p.strip()]
    return (kept if k is None else kept[:k]), rule


class TextListParams(ParserParams):
    """Parameters of :data:`text_list`."""

    k: int | None = Field(None, ge=1)
    """Keep at most this many items (ALU: the k rewrites asked for); ``null`` = all."""


@register_parser("text_list", params=TextListParams)
def text_list(text: str, *, k: int | None) -> Parsed:
    """A list of texts (ALU eraser rewrites, alu.md §4.3): JSON array → ``---`` blocks → numbered list → reply.

    An empty list is ``ok=false`` (ALU then refuses); otherwise ``ok`` even when a fallback rule was used,
    since each rule is an accepted format of the spec.
    """
    items, _rule = split_text_list(text, k)
    if not items:
        return Parsed.failure("no non-empty item in the reply", [])
    values: list[JsonValue] = [item for item in items]
    return Parsed.success(values, "\n---\n".join(items))
