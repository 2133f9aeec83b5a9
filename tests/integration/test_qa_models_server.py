"""A real llama.cpp server (llama-cpp-python's, SmolLM2, n_ctx 2048) asked for more than its window."""

from __future__ import annotations

import importlib.util

import pytest

from agentmesh.errors import ContextLengthError
from agentmesh.models import ModelRequest, ModelSettings, get_model

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
