"""Model reference strings: what each form parses to, and what a malformed one says."""

from __future__ import annotations

import pydantic
import pytest

from agentmesh.errors import InvalidModelReferenceError, ModelError
from agentmesh.models import ModelReference, parse_reference


@pytest.mark.parametrize(
    ("ref", "provider", "target", "base_url"),
    [
        ("local", "local", "", None),
        ("  local  ", "local", "", None),
        ("openai:gpt-4o-mini", "openai", "gpt-4o-mini", None),
        ("openai:qwen2.5@http://127.0.0.1:8000/v1", "openai", "qwen2.5", "http://127.0.0.1:8000/v1"),
        ("openai:qwen2.5@http://127.0.0.1:8000/v1/", "openai", "qwen2.5", "http://127.0.0.1:8000/v1"),
        ("openai:m@https://api.example.com/v1", "openai", "m", "https://api.example.com/v1"),
        # Ollama tags contain ':'; only a trailing '@http(s)://...' is a URL.
        ("openai:llama3:8b@http://localhost:11434/v1", "openai", "llama3:8b", "http://localhost:11434/v1"),
        ("openai:org@model", "openai", "org@model", None),
        ("openai:claude-3-5-sonnet@20240620", "openai", "claude-3-5-sonnet@20240620", None),  # Vertex-style version
        ("llamacpp:/models@v2/x.gguf", "llamacpp", "/models@v2/x.gguf", None),
        ("openai:a@b@http://h:1/v1", "openai", "a@b", "http://h:1/v1"),
        ("llamacpp:/models/x.gguf", "llamacpp", "/models/x.gguf", None),
        ("llamacpp:C:/models/x.gguf", "llamacpp", "C:/models/x.gguf", None),
        ("scripted:tests/script.yaml", "scripted", "tests/script.yaml", None),
        ("replay:0f3a9c", "replay", "0f3a9c", None),
        ("my_provider-2:thing", "my_provider-2", "thing", None),
    ],
)
def test_parse_reference_forms(ref: str, provider: str, target: str, base_url: str | None) -> None:
    parsed = parse_reference(ref)
    assert (parsed.provider, parsed.target, parsed.base_url) == (provider, target, base_url)
    assert str(parsed) == ref.strip() == parsed.raw


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("", "empty model reference"),
        ("   ", "empty model reference"),
        ("gpt-4o-mini", "has no provider prefix"),
        ("OpenAI:gpt-4o", "has no provider prefix"),
        ("open ai:gpt-4o", "has no provider prefix"),
        ("1openai:gpt-4o", "has no provider prefix"),
        ("openai:", "names no model after 'openai:'"),
        ("openai:@http://127.0.0.1:8000/v1", "names no model"),
        ("openai:m@http://", "is not a valid server URL"),
        ("openai:m@http://host name/v1", "is not a valid server URL"),
        # a server without its scheme would be read as a model name and sent to hosted OpenAI
        ("openai:qwen@localhost:8000/v1", "'openai:qwen@http://localhost:8000/v1'"),
        ("openai:qwen@10.0.0.5:8000", "'10.0.0.5:8000' after '@' is not an http(s) URL"),
        ("openai:qwen@ftp://h/v1", "'ftp://h/v1' after '@' is not an http(s) URL"),
    ],
)
def test_malformed_reference_says_what_is_wrong(ref: str, expected: str) -> None:
    with pytest.raises(InvalidModelReferenceError) as info:
        parse_reference(ref)
    assert expected in str(info.value)
    assert isinstance(info.value, ModelError)
    assert info.value.context["reference"] == ref
    assert not info.value.retryable


def test_no_prefix_error_lists_the_providers() -> None:
    with pytest.raises(InvalidModelReferenceError, match=r"openai, llamacpp, scripted, replay\) or 'local'"):
        parse_reference("gpt-4o")


def test_reference_is_frozen_and_comparable() -> None:
    a = parse_reference("openai:m@http://h:1/v1")
    assert a == ModelReference(raw="openai:m@http://h:1/v1", provider="openai", target="m", base_url="http://h:1/v1")
    assert hash(a) == hash(parse_reference("openai:m@http://h:1/v1"))
    with pytest.raises(pydantic.ValidationError):
        a.target = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "ref",
    [
        "openai:m@http://labuser:PwInUrl9Qz7Xk2@127.0.0.1:9/v1",  # was read as model 'm@http://labuser:...'
        "openai:m@https://PwInUrl9Qz7Xk2@example.com/v1",
        "openai:m@http://u:PwInUrl9Qz7Xk2@h:1/v1",
    ],
)
def test_credentials_in_a_server_url_are_refused_without_repeating_them(ref: str) -> None:
    with pytest.raises(InvalidModelReferenceError) as info:
        parse_reference(ref)
    assert "api_key_env" in str(info.value)
    assert "PwInUrl9Qz7Xk2" not in str(info.value) and "PwInUrl9Qz7Xk2" not in repr(info.value.context)


@pytest.mark.parametrize(
    "ref",
    [
        "openai:m@http://127.0.0.1:1/v1?api_key=sk-QueryKey9Qz7Xk2abcdef",  # the SDK sent '/v1/?api_key=...chat/...'
        "openai:m@https://h.example/v1?key=QueryKey9Qz7Xk2",
        "openai:m@http://h:1/v1#QueryKey9Qz7Xk2",
    ],
)
def test_a_query_string_in_a_server_url_is_refused_without_repeating_it(ref: str) -> None:
    with pytest.raises(InvalidModelReferenceError, match="query string") as info:
        parse_reference(ref)
    assert "api_key_env" in str(info.value)
    assert "QueryKey9Qz7Xk2" not in str(info.value) and "QueryKey9Qz7Xk2" not in repr(info.value.context)
