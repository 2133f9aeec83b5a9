"""Servers that cannot answer: a real llama.cpp server (llama-cpp-python's, SmolLM2, n_ctx 2048) asked for more
than its window, and one that does not answer in time."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from agentmesh.errors import ContextLengthError, ModelNotFoundError, ModelRequestError, ModelTimeoutError
from agentmesh.models import CallRecord, ModelRequest, ModelSettings, get_model, load_settings
from agentmesh.models.settings import EndpointLimits
from tests._servers import FakeOpenAIServer, Reply

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python is not installed: pip install 'agentmesh[dev]' to run the llama.cpp server tests",
    ),
]


async def test_a_prompt_over_the_servers_window_says_what_to_change(llama_server_url: str) -> None:
    """The error quoted the server ("reduce the length of the messages or completion") but not where either is set
    in agentmesh, nor that the window is the server's own start-up option."""
    client = get_model(f"openai:smollm2@{llama_server_url}", settings=ModelSettings())
    try:
        with pytest.raises(ContextLengthError) as caught:
            await client.complete(ModelRequest.of("hello " * 3000, max_tokens=16))
    finally:
        await client.aclose()
    message = str(caught.value)
    assert "maximum context length is 2048 tokens" in message  # the server's own words, kept
    assert "sampling.max_tokens" in message
    assert "llama_cpp.server: --n_ctx" in message and "--max-model-len" in message


async def test_a_timeout_says_which_setting_gives_the_model_longer(
    fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    """It said "(endpoint timeout_s)" (or, when the HTTP client's own timer fired first, "timed out waiting for the
    model server") without where that is set; the message now holds the config entry, which loads as written.
    A scripted server that hangs: a real one is slow only by chance."""
    fake_server.script(Reply.hang(30))
    settings = ModelSettings(endpoints={fake_server.url: EndpointLimits(timeout_s=0.3, max_retries=0)})
    client = get_model(f"openai:fake@{fake_server.url}", settings=settings)
    try:
        with pytest.raises(ModelTimeoutError) as caught:
            await client.complete(ModelRequest.of("hi"))
    finally:
        await client.aclose()
    message = str(caught.value)
    assert "within 0.3 s (endpoint timeout_s)" in message
    entry = re.search(r"'(endpoints: .*)'", message)
    assert entry is not None, message
    (tmp_path / "config.yaml").write_text(entry.group(1) + "\n")
    written = load_settings(tmp_path / "config.yaml")
    assert written.limits_for(fake_server.url, None, EndpointLimits()).timeout_s == 600


async def test_a_request_the_llama_cpp_server_cannot_read_is_not_retried(llama_server_url: str) -> None:
    """llama-cpp-python's server answers 500 when its schema refuses a request (here a sampling value of the wrong
    type in extra_body): read as a failing server, the same request was sent six times over ~15 s of backoff, and
    the error said the server had failed."""
    client = get_model(f"openai:smollm2@{llama_server_url}", settings=ModelSettings())
    attempts: list[CallRecord] = []
    try:
        with pytest.raises(ModelRequestError) as caught:
            await client.complete(
                ModelRequest.of("Hi", max_tokens=4, extra_body={"top_k": "many"}), observer=attempts.append
            )
    finally:
        await client.aclose()
    assert [a.error_type for a in attempts] == ["ModelRequestError"]
    assert "rejected the request as invalid" in str(caught.value) and "top_k" in str(caught.value)


async def test_a_server_url_without_v1_is_said_to_lack_it(llama_server_url: str) -> None:
    """The real server answers a path without /v1 with a bare 404; the error said "has no model 'smollm2' (404:
    Error code: 404)", sending the user to check a model name that was right."""
    bare = llama_server_url.removesuffix("/v1")
    client = get_model(f"openai:smollm2@{bare}", settings=ModelSettings())
    try:
        with pytest.raises(ModelNotFoundError) as caught:
            await client.complete(ModelRequest.of("Hi", max_tokens=4))
    finally:
        await client.aclose()
    assert "the URL does not end with a version such as /v1" in str(caught.value)
    assert "http://host:port/v1" in str(caught.value)
