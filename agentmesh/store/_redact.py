"""Keep secrets out of the store: every JSON value and error text passes through here before it is written.

Two independent nets, because either alone leaks:

* **by key** -- a value stored under a name that means "credential" (``api_key``, ``Authorization``,
  ``password``, ``client_secret``, ``hf_token``...) is replaced whole, whatever it looks like;
* **by shape** -- strings that look like credentials (``Bearer ...``, OpenAI ``sk-...`` keys, GitHub/Hugging
  Face/Slack/AWS/Google keys, JWTs, passwords inside URLs) are masked wherever they appear, even in a prompt or
  an error message that quotes them.

Token *counts* are everywhere in LLM data (``prompt_tokens``, ``max_tokens``, ``eos_token``), so "token" is
judged by its qualifier: ``access_token`` is a secret, ``max_token`` is not. A bare ``token`` key is ambiguous
(logprobs use it for the generated text piece), so its value decides: only a long, opaque string is masked.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from agentmesh.store._jsonable import JSONValue, clean_text, to_jsonable

REDACTED = "[redacted]"

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

# Whole words that make any key a secret: "db_password", "clientSecret", "set-cookie", "aws_credentials".
_SECRET_WORDS = frozenset(
    {"password", "passwd", "passphrase", "secret", "secrets", "credential", "credentials", "cookie", "cookies"}
)
# Keys whose words, joined, end like this: "api_key", "x-api-key", "OPENAI_API_KEY", "aws_secret_access_key".
_SECRET_SUFFIXES = (
    "apikey",
    "secretkey",
    "privatekey",
    "accesskey",
    "signingkey",
    "encryptionkey",
    "sessionkey",
    "authorization",
)
_SECRET_EXACT = frozenset({"auth", "pwd"})
# "<qualifier>_token" that count or name tokens of text rather than grant access.
_TEXT_TOKEN_QUALIFIERS = frozenset(
    {
        "max",
        "min",
        "num",
        "total",
        "prompt",
        "completion",
        "input",
        "output",
        "cached",
        "reasoning",
        "audio",
        "image",
        "text",
        "stop",
        "eos",
        "bos",
        "pad",
        "unk",
        "sep",
        "cls",
        "mask",
        "start",
        "end",
        "special",
        "first",
        "last",
        "next",
        "per",
        "new",
        "added",
        "chat",
        "think",
        "thinking",
        "estimated",
        "bad",
    }
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {REDACTED}"),
    (re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@"), rf"\1{REDACTED}@"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), REDACTED),
    (re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}"), REDACTED),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{30,}"), REDACTED),
    (re.compile(r"\bhf_[A-Za-z0-9]{30,}"), REDACTED),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), REDACTED),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"), REDACTED),
)
_OPAQUE = re.compile(r"[A-Za-z0-9._~+/=-]{20,}")


def _may_hold_credential(text: str) -> bool:
    """Whether ``text`` contains a literal that every credential pattern above starts with or contains.

    Most text (prompts, answers) has none, and these substring searches cost a fraction of one regex scan: the
    patterns only run on text that passes. (``bearer``/``basic`` are matched in any case, like the patterns.)
    No pattern matches fewer than 8 characters (``a://b:c@``).
    """
    if len(text) < 8:
        return False
    # each multi-character search costs about 1 µs per KiB; a single character is found by memchr at a fraction
    # of that, so the searches are guarded by a character every literal they look for contains
    if "_" in text and ("gh" in text or "github_pat_" in text or "hf_" in text):
        return True
    if "-" in text and ("sk-" in text or "xox" in text):
        return True
    if (":" in text and "://" in text) or ("A" in text and ("AKIA" in text or "AIza" in text)):
        return True
    if "J" in text and "eyJ" in text:
        return True
    lowered = text.lower()
    return "bearer" in lowered or "basic" in lowered


def key_words(key: str) -> list[str]:
    """``"clientSecret"`` -> ``["client", "secret"]``; ``"X-API-Key"`` -> ``["x", "api", "key"]``."""
    return [w.lower() for w in _WORD.findall(key)]


@lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether a value stored under ``key`` must never be written, whatever the value looks like.

    Cached: a run's records repeat the same few dozen keys (``role``, ``content``, ``prompt_tokens``...) thousands
    of times, and splitting a key into words costs more than the lookup."""
    words = key_words(key)
    if not words:
        return False
    joined = "".join(words)
    if joined in _SECRET_EXACT or _SECRET_WORDS.intersection(words) or joined.endswith(_SECRET_SUFFIXES):
        return True
    return len(words) >= 2 and words[-1] == "token" and words[-2] not in _TEXT_TOKEN_QUALIFIERS


def looks_like_credential(text: str) -> bool:
    """A long opaque string (20+ URL-safe characters mixing letters and digits, no spaces)."""
    return _OPAQUE.fullmatch(text) is not None and any(c.isalpha() for c in text) and any(c.isdigit() for c in text)


def mask_secrets(text: str) -> str:
    """``text`` with every credential-shaped substring replaced by ``[redacted]``."""
    if not _may_hold_credential(text):
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact(value: JSONValue) -> JSONValue:
    """A copy of the JSON ``value`` with secrets removed, by key and by shape (see the module docstring)."""
    if isinstance(value, dict):
        return {k: _redact_entry(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return mask_secrets(value)
    return value


def _redact_entry(key: str, value: JSONValue) -> JSONValue:
    if value is None or value == "":
        return value  # an absent secret reveals nothing, and keeps "was a key configured?" answerable
    if is_secret_key(key):
        return REDACTED
    if key.lower() == "token" and isinstance(value, str) and looks_like_credential(value):
        return REDACTED
    return redact(value)


def redact_state(value: Any) -> Any:
    """A value headed for a graph's state (what a user's function or operator returns), secrets masked as
    :func:`redact` masks JSON: by key and by shape.

    Not converted to JSON, but to what a checkpoint gives back to a resumed run: containers are walked (a tuple
    becomes a list), a pydantic model or a dataclass becomes its fields (agentmesh's checkpoints rebuild no class
    of the user's, see :mod:`agentmesh.store.checkpointer`), and anything else (numbers, NaN, bytes, sets...) is
    kept as it is.
    """
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, BaseModel):
        value = value.model_dump()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {key: _redact_state_entry(key, item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_state(item) for item in value]
    return value


def _redact_state_entry(key: Any, value: Any) -> Any:
    if value is None or value == "" or not isinstance(key, str):
        return redact_state(value)
    if is_secret_key(key) or (key.lower() == "token" and isinstance(value, str) and looks_like_credential(value)):
        return REDACTED
    return redact_state(value)


class _NotPlain(Exception):
    """A value :func:`redact_json`'s single pass does not handle (left to the two-pass way)."""


def redact_json(value: Any, *, where: str = "value") -> JSONValue:
    """``redact(to_jsonable(value, where=where))``, in one pass when ``value`` is plain JSON-like data.

    This is the store's hot path: every event's request, response and data go through it. Plain data (dicts with
    string keys, lists, tuples, strings, numbers, booleans, ``None``) is converted and redacted in a single walk;
    anything else (models, dataclasses, enums, dates...) takes the two passes, which also name the path of a value
    JSON cannot hold. Both give the same result.
    """
    try:
        return _plain(value)
    except _NotPlain:
        return redact(to_jsonable(value, where=where))


def _plain(value: Any) -> JSONValue:
    kind = type(value)
    if kind is str:
        return mask_secrets(clean_text(value))
    if kind is dict:
        # the entries are handled inline (not by a call per entry): most are short strings and numbers, and this
        # runs for every event a run records
        out: dict[str, JSONValue] = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlain
            if "\x00" in key or not key.isascii():
                key = clean_text(key)
            item_kind = type(item)
            if item_kind is str:
                if "\x00" in item or not item.isascii():
                    item = clean_text(item)
                if item == "":
                    out[key] = item
                elif is_secret_key(key) or (key.lower() == "token" and looks_like_credential(item)):
                    out[key] = REDACTED
                else:
                    out[key] = mask_secrets(item)
            elif item is None or (item_kind is float and not math.isfinite(item)):
                out[key] = None
            elif is_secret_key(key):
                _plain(item)  # still refuse what JSON cannot hold
                out[key] = REDACTED
            elif item_kind is int or item_kind is bool or item_kind is float:
                out[key] = item
            else:
                out[key] = _plain(item)
        return out
    if kind is list or kind is tuple:
        return [_plain(item) for item in value]
    if value is None or kind is bool or kind is int:
        return value  # type: ignore[no-any-return]
    if kind is float:
        return value if math.isfinite(value) else None
    raise _NotPlain


#: A graph spec's maps from names its author chose to what they define. A node called ``auth`` or an agent called
#: ``password_checker`` names no credential: masked by key, its whole definition became ``[redacted]``, and the
#: run's stored spec no longer loaded (export, replay, resume and fork of every run of that graph failed).
_SPEC_NAMED = ("inputs", "agents", "nodes")


def _redact_one(key: str, value: Any, where: str) -> JSONValue:
    redacted = redact_json({key: value}, where=where)
    assert isinstance(redacted, dict)
    return redacted[key]


def redact_spec(spec: Any, where: str = "spec") -> JSONValue:
    """A stored graph spec with secrets removed as :func:`redact_json` removes them, except that the names of its
    inputs, agents and nodes are kept with their definitions (those are redacted inside). The default value of an
    input whose name means "credential" (``api_key``) is masked, as the input itself is in a run's inputs."""
    if not isinstance(spec, dict):
        return redact_json(spec, where=where)
    out: dict[str, JSONValue] = {}
    for key, value in spec.items():
        if key not in _SPEC_NAMED or not isinstance(value, dict):
            out[key] = _redact_one(key, value, where)
            continue
        named: dict[str, JSONValue] = {}
        for name, definition in value.items():
            kept = redact_json(definition, where=f"{where}.{key}.{name}")
            if (
                key == "inputs"
                and is_secret_key(str(name))
                and isinstance(kept, dict)
                and kept.get("default") not in (None, "")
            ):
                kept = {**kept, "default": REDACTED}
            named[str(name)] = kept
        out[key] = named
    return out


def redact_named(mapping: Mapping[Any, Any], where: str = "value") -> dict[str, JSONValue]:
    """A map from names a graph's author chose (a run's outputs by node) with each value redacted, the names kept:
    an output of a node called ``auth`` is not a credential (masked, the export of its run was refused on import)."""
    return {str(name): redact_json(value, where=f"{where}.{name}") for name, value in mapping.items()}


def stored_meta(meta: Mapping[str, Any], where: str = "meta") -> JSONValue:
    """What a run's ``meta`` column receives: :func:`redact_json` of it, its ``spec`` by :func:`redact_spec`."""
    return {
        str(key): redact_spec(value, f"{where}.spec") if key == "spec" else _redact_one(str(key), value, where)
        for key, value in meta.items()
    }


# --- what the store's columns and a graph's state receive -------------------------------------------------------
# Here rather than with the events that use them most: the runtime masks replies and a user's results with them on
# every call, and this module, unlike the store's writing modules, imports no SQLAlchemy.


def stored_json(value: Any, where: str) -> JSONValue:
    """What a JSON column receives: plain JSON, secrets removed (``where`` names the value in errors)."""
    return redact_json(value, where=where)


def stored_text(value: str | None) -> str | None:
    """What a text column receives: secrets masked, NUL characters replaced."""
    return None if value is None else clean_text(mask_secrets(value))


def stored_state(value: Any) -> Any:
    """What a graph's state receives from a user's function or operator: secrets masked, models and dataclasses
    as their fields (as a resumed run would read them back); see :func:`redact_state`."""
    return redact_state(value)
