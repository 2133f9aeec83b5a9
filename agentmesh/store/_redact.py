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

import re
from functools import lru_cache

from agentmesh.store._jsonable import JSONValue

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
# A cheap literal scan for what every credential pattern above starts with or contains: most text (prompts,
# answers) has none of these, and one literal search is an order of magnitude cheaper than the patterns.
_MAY_HOLD_CREDENTIAL = re.compile(
    r"sk-|[Bb][Ee][Aa][Rr][Ee][Rr]|[Bb][Aa][Ss][Ii][Cc]|://|gh[pousr]_|github_pat_|hf_|xox[abprs]-|AKIA|AIza|eyJ"
)


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
    if _MAY_HOLD_CREDENTIAL.search(text) is None:
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
