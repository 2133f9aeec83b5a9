"""The store's secret redactor and JSON conversion (pure functions, no database)."""

from __future__ import annotations

import dataclasses
import math
import random
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from uuid import UUID

import pytest
from pydantic import BaseModel

from agentmesh.errors import StoreError
from agentmesh.store._jsonable import to_jsonable
from agentmesh.store._redact import (
    REDACTED,
    is_secret_key,
    key_words,
    mask_secrets,
    redact,
    redact_json,
    redact_state,
)

OPENAI_KEY = "sk-proj-AbCdEf0123456789xyzQRSTUV"


@pytest.mark.parametrize(
    "key",
    [
        "api_key",
        "apiKey",
        "API_KEY",
        "OPENAI_API_KEY",
        "x-api-key",
        "Authorization",
        "proxy-authorization",
        "password",
        "db_password",
        "passwd",
        "client_secret",
        "clientSecret",
        "secret",
        "aws_secret_access_key",
        "private_key",
        "access_token",
        "refresh_token",
        "id_token",
        "hf_token",
        "GITHUB_TOKEN",
        "authToken",
        "cookie",
        "Set-Cookie",
        "credentials",
        "auth",
    ],
)
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "max_tokens",
        "max_new_tokens",
        "estimated_tokens",
        "token_count",
        "tokens",
        "eos_token",
        "bos_token",
        "stop_token",
        "max_token",
        "token",  # judged by its value, see below
        "api_key_env",  # the *name* of the variable holding the key
        "key",
        "monkey",
        "author",
        "keyword",
        "model",
        "",
    ],
)
def test_non_secret_keys(key: str) -> None:
    assert not is_secret_key(key)


def test_key_words_split_snake_camel_kebab_and_caps() -> None:
    assert key_words("clientSecret") == ["client", "secret"]
    assert key_words("X-API-Key") == ["x", "api", "key"]
    assert key_words("OPENAI_API_KEY") == ["openai", "api", "key"]
    assert key_words("HTTPHeaderValue") == ["http", "header", "value"]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"my key is {OPENAI_KEY}, use it", OPENAI_KEY),
        ("Authorization: Bearer abcdef0123456789.tokenvalue", "abcdef0123456789.tokenvalue"),
        ("basic auth: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("postgresql://alice:s3cretpw@db.example:5432/runs", "s3cretpw"),
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github_pat_11ABCDEFG0123456789"),
        ("hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567", "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567"),
        ("xoxb-123456789012-abcdefghij", "xoxb-123456789012-abcdefghij"),
        ("AKIAIOSFODNN7EXAMPLE is the id", "AKIAIOSFODNN7EXAMPLE"),
        ("AIzaSyA0123456789abcdefghijklmnopqrstuv", "AIzaSyA0123456789abcdefghijklmnopqrstuv"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "eyJzdWIiOiIxMjM0NTY3ODkwIn0",
        ),
    ],
)
def test_credential_shaped_strings_are_masked_in_place(text: str, secret: str) -> None:
    masked = mask_secrets(text)
    assert secret not in masked
    assert REDACTED in masked


@pytest.mark.parametrize(
    "text",
    [
        "Ask the task-management system about risk-assessment",
        "The answer is \\boxed{42}",
        "see https://example.com/path?q=1",
        "Bearer of bad news",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert mask_secrets(text) == text


def test_redact_by_key_and_by_shape_keeps_counts_and_text() -> None:
    value = to_jsonable(
        {
            "model": "gpt-4o-mini",
            "api_key": OPENAI_KEY,
            "api_key_env": "OPENAI_API_KEY",
            "headers": {"Authorization": "Bearer abcdef0123456789", "Accept": "application/json"},
            "messages": [{"role": "user", "content": f"here is {OPENAI_KEY}"}],
            "max_tokens": 64,
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            "logprobs": [{"token": "Hello", "logprob": -0.1}, {"token": "a1b2c3d4e5f6g7h8i9j0k1", "logprob": -2.0}],
            "password": None,
            "nested": {"credentials": {"user": "u", "pass": "p"}},
        }
    )
    out = redact(value)
    assert isinstance(out, dict)
    assert out["api_key"] == REDACTED
    assert out["api_key_env"] == "OPENAI_API_KEY"
    assert out["headers"] == {"Authorization": REDACTED, "Accept": "application/json"}
    assert out["messages"] == [{"role": "user", "content": f"here is {REDACTED}"}]
    assert out["max_tokens"] == 64
    assert out["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    assert out["logprobs"] == [{"token": "Hello", "logprob": -0.1}, {"token": REDACTED, "logprob": -2.0}]
    assert out["password"] is None  # no secret to hide; "was one configured?" stays answerable
    assert out["nested"] == {"credentials": REDACTED}
    assert OPENAI_KEY not in repr(out)


class Color(Enum):
    RED = "red"


class Settings(BaseModel):
    api_key: str
    when: datetime


@dataclasses.dataclass
class Point:
    x: int
    label: str


def test_to_jsonable_converts_common_types() -> None:
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    out = to_jsonable(
        {
            "tuple": (1, 2),
            "set": {3},
            "enum": Color.RED,
            "model": Settings(api_key=OPENAI_KEY, when=when),
            "point": Point(1, "a"),
            "when": when,
            "uuid": UUID(int=1),
            "decimal": Decimal("1.5"),
            "path": Path("/tmp/x"),
            "nan": math.nan,
            "inf": math.inf,
            "nul": "a\x00b",
            "cut emoji": "smile \ud83d",  # a lone surrogate: no database encodes it
            "k\udcff": "caf\udce9",
            1: "int key",
        }
    )
    assert out == {
        "tuple": [1, 2],
        "set": [3],
        "enum": "red",
        "model": {"api_key": OPENAI_KEY, "when": "2025-01-02T03:04:05Z"},
        "point": {"x": 1, "label": "a"},
        "when": "2025-01-02T03:04:05+00:00",
        "uuid": "00000000-0000-0000-0000-000000000001",
        "decimal": "1.5",
        "path": "/tmp/x",
        "nan": None,
        "inf": None,
        "nul": "a\ufffdb",
        "cut emoji": "smile \ufffd",
        "k\ufffd": "caf\ufffd",
        "1": "int key",
    }
    # Converted before redaction, so the key inside the pydantic model is caught too.
    redacted = redact(out)
    assert isinstance(redacted, dict)
    assert redacted["model"] == {"api_key": REDACTED, "when": "2025-01-02T03:04:05Z"}


def test_to_jsonable_rejects_other_types_naming_the_path() -> None:
    with pytest.raises(StoreError, match=r"inputs\.blob: a bytes cannot be stored as JSON"):
        to_jsonable({"blob": b"raw"}, where="inputs")
    with pytest.raises(StoreError, match=r"data\[1\]: a object"):
        to_jsonable([1, object()], where="data")


class _Colour(Enum):
    RED = "red"
    EMPTY = ""


def _random_value(rng: random.Random, depth: int = 0) -> object:
    """Nested data of the kinds the store is handed, with secrets by key and by shape among ordinary values."""
    leaves: list[object] = [
        None,
        True,
        7,
        -1.5,
        math.nan,
        math.inf,
        "",
        "plain text",
        "nul\x00inside",
        "caf\udce9 and \ud83d",  # lone surrogates
        "café ✓",
        f"quoting {OPENAI_KEY} in a prompt",
        "Authorization: Bearer abcdefghijklmnop",
        "AbCdEfGhIjKlMnOp12345678",  # opaque: a credential under a "token" key, text elsewhere
        "abc123.sk-AAAAAAAAAAAAAAAAAAAAAA",  # opaque and credential-shaped
        "postgres://user:hunter2@db/x",
        _Colour.RED,
        _Colour.EMPTY,
        (1, "two"),
        Path("/tmp/x"),
    ]
    if depth >= 3 or rng.random() < 0.4:
        return rng.choice(leaves)
    if rng.random() < 0.5:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = [
        "role",
        "content",
        "api_key",
        "token",
        "max_tokens",
        "password",
        "text",
        "clientSecret",
        "\x00k",
        "k\udcff",
        "usage",
    ]
    out: dict[object, object] = {rng.choice(keys): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))}
    if rng.random() < 0.1:
        out[3] = "a non-string key"
    return out


def test_redact_json_equals_redact_of_to_jsonable() -> None:
    """The store's one-pass hot path gives exactly what the two passes give, on every kind of value."""
    rng = random.Random(20261203)
    for _ in range(3000):
        value = _random_value(rng)
        assert redact_json(value, where="data") == redact(to_jsonable(value, where="data")), value


def test_redact_json_refuses_what_json_cannot_hold_naming_the_path() -> None:
    with pytest.raises(StoreError, match=r"inputs\.blob: a bytes cannot be stored as JSON"):
        redact_json({"blob": b"raw"}, where="inputs")
    with pytest.raises(StoreError, match=r"inputs\.api_key: a bytes"):
        redact_json({"api_key": b"raw"}, where="inputs")  # a secret key's value is still checked


class _Login(BaseModel):
    user: str
    password: str


@dataclasses.dataclass
class _Call:
    url: str
    headers: dict[str, str]


def test_state_values_are_masked_and_given_back_as_a_checkpoint_rebuilds_them() -> None:
    """What a user's function puts in a graph's state: masked by key and by shape like JSON, but not converted to
    JSON: numbers (NaN too), bytes, sets and non-text keys stay; tuples become lists, models and dataclasses their
    fields, as a resumed run reads them back from a checkpoint."""
    value = {
        "login": _Login(user="ann", password="hunter2"),
        "call": _Call(url="https://u:pw123456@host/v1", headers={"Authorization": "Basic abc", "accept": "json"}),
        "pair": (f"key {OPENAI_KEY}", 1),
        1: OPENAI_KEY,
        "api_key": "",
        "token": "x",
        "nan": math.nan,
        "raw": b"sk-not-looked-at",
        "tags": {"a"},
    }
    out = redact_state(value)
    assert out["login"] == {"user": "ann", "password": REDACTED}
    assert out["call"] == {
        "url": f"https://u:{REDACTED}@host/v1",
        "headers": {"Authorization": REDACTED, "accept": "json"},
    }
    assert out["pair"] == [f"key {REDACTED}", 1]
    assert out[1] == REDACTED  # masked by shape under a key that is not text
    assert (out["api_key"], out["token"]) == ("", "x")  # an empty secret and a short token piece reveal nothing
    assert math.isnan(out["nan"]) and out["raw"] == b"sk-not-looked-at" and out["tags"] == {"a"}
    assert value["login"].password == "hunter2"  # the function's own objects are left as they were
