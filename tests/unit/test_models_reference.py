"""Model references with the mistakes people make typing them: each is refused with what to write instead, before
any call, rather than run on another model or sent to another server than the one meant."""

from __future__ import annotations

import pytest

from agentmesh.errors import InvalidModelReferenceError
from agentmesh.models import parse_reference


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        # ran the embedded SmolLM2 whatever the name after 'local:' said
        ("local:qwen2.5-7b", "'local' is the embedded SmolLM2 and is written alone"),
        ("local:", "'llamacpp:/path/to/model.gguf'"),
        # an address after '@' that was taken for part of the model name: the prompt went to hosted OpenAI
        ("openai:qwen@http//127.0.0.1:8000/v1", "'http//127.0.0.1:8000/v1' after '@' reads as a server address"),
        ("openai:qwen@http:/127.0.0.1:8000/v1", "is not an http(s) URL"),
        ("openai:qwen@127.0.0.1/v1", "'openai:qwen@http://host:port/v1'"),
        ("openai:qwen@localhost/v1", "reads as a server address"),
        ("openai:qwen@gpu.lab.example/v1", "reads as a server address"),
        # the endpoint's own path: every call answered 404, 'has no model'
        ("openai:qwen@http://127.0.0.1:8000/v1/chat/completions", "give its base, such as 'http://127.0.0.1:8000/v1'"),
        # a space went to the server as part of the name, which then had no such model
        ("openai: qwen@http://127.0.0.1:8000/v1", "write 'openai:qwen@http://127.0.0.1:8000/v1'"),
        ("openai:qwen @http://127.0.0.1:8000/v1", "the model name 'qwen ' starts or ends with a space"),
        # a server's URL alone
        ("http://127.0.0.1:8000/v1", "'openai:<model>@http://127.0.0.1:8000/v1'"),
    ],
)
def test_a_mistyped_reference_is_refused_with_what_to_write(ref: str, expected: str) -> None:
    with pytest.raises(InvalidModelReferenceError) as info:
        parse_reference(ref)
    assert expected in str(info.value)
    assert info.value.context["reference"] == ref


@pytest.mark.parametrize(
    ("ref", "target", "base_url"),
    [
        ("openai:org@model", "org@model", None),
        ("openai:claude-3-5-sonnet@20240620", "claude-3-5-sonnet@20240620", None),
        ("openai:model@v1.5", "model@v1.5", None),
        ("llamacpp:/models/my model.gguf", "/models/my model.gguf", None),
        ("openai:qwen@http://127.0.0.1:8000/v1", "qwen", "http://127.0.0.1:8000/v1"),
    ],
)
def test_names_that_only_look_odd_are_still_taken(ref: str, target: str, base_url: str | None) -> None:
    parsed = parse_reference(ref)
    assert (parsed.target, parsed.base_url) == (target, base_url)
