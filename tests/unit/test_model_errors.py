"""Errors a user can act on: each type, and that its message says what to do (and never holds a secret)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openai
import pytest

from agentmesh.errors import (
    AgentmeshError,
    AuthenticationError,
    ContextLengthError,
    InvalidModelReferenceError,
    MissingAPIKeyError,
    ModelError,
    ModelNotFoundError,
    ServerUnreachableError,
    UnknownProviderError,
)
from agentmesh.models import EndpointLimits, ModelClient, ModelRequest, ModelSettings, get_model
from agentmesh.models.client import MAX_RETRY_AFTER_S
from agentmesh.models.providers.openai_compat import OpenAICompatProvider
from tests._servers import FakeOpenAIServer, Reply, closed_port_url

FAST = EndpointLimits(timeout_s=5, max_retries=0, backoff_initial_s=0.001)


def settings_for(url: str, limits: EndpointLimits = FAST) -> ModelSettings:
    return ModelSettings(endpoints={url: limits})


@pytest.fixture
async def fake_client(fake_server: FakeOpenAIServer) -> AsyncIterator[ModelClient]:
    client = get_model(f"openai:fake@{fake_server.url}", settings=settings_for(fake_server.url))
    yield client
    await client.aclose()


def test_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(UnknownProviderError) as info:
        get_model("anthropic:claude", settings=ModelSettings())
    message = str(info.value)
    assert "unknown model provider 'anthropic'" in message
    known = message.split("known: ", 1)[1].split(" (", 1)[0].split(", ")
    # the built-in providers, among any other tests registered before this one (sorted, as the message lists them)
    assert {"llamacpp", "local", "openai", "replay", "scripted"} <= set(known) and known == sorted(known), message
    assert "register_provider" in message
    assert info.value.context["reference"] == "anthropic:claude"
    assert isinstance(info.value, ModelError) and isinstance(info.value, AgentmeshError)


def test_unknown_provider_behind_an_alias_names_the_alias() -> None:
    with pytest.raises(UnknownProviderError, match="'nope' in 'mine'"):
        get_model("mine", settings=ModelSettings(aliases={"mine": "nope:x"}))


def test_malformed_reference_is_its_own_error() -> None:
    with pytest.raises(InvalidModelReferenceError, match="has no provider prefix"):
        get_model("gpt-4o", settings=ModelSettings())


def test_missing_key_names_the_default_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError) as info:
        get_model("openai:gpt-4o-mini", settings=ModelSettings())
    assert "environment variable OPENAI_API_KEY is not set" in str(info.value)
    assert info.value.context == {"reference": "openai:gpt-4o-mini", "variable": "OPENAI_API_KEY"}


def test_missing_key_names_the_configured_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEAM_OPENAI_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-this-one")
    settings = ModelSettings(endpoints={"openai": EndpointLimits(api_key_env="TEAM_OPENAI_KEY")})
    with pytest.raises(MissingAPIKeyError, match="environment variable TEAM_OPENAI_KEY is not set"):
        get_model("openai:gpt-4o-mini", settings=settings)
    monkeypatch.delenv("OTHER_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="OTHER_KEY"):
        get_model("openai:gpt-4o-mini", settings=ModelSettings(), api_key_env="OTHER_KEY")


async def test_a_hosted_model_without_its_key_can_be_described_but_not_called(monkeypatch: pytest.MonkeyPatch) -> None:
    """``agentmesh models openai:gpt-4o-mini`` shows what the reference resolves to, the key variable and that it is
    not set (never a key), where a run refuses to start."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = get_model("openai:gpt-4o-mini", settings=ModelSettings(), require_key=False)
    info = client.describe()
    assert info["api_key"] == "$OPENAI_API_KEY (not set)"
    assert info["endpoint"] == "https://api.openai.com/v1" and info["price"].startswith("$0.15/M in")
    with pytest.raises(MissingAPIKeyError, match="environment variable OPENAI_API_KEY is not set"):
        await client.complete(ModelRequest.of("hi"))
    await client.aclose()


async def test_a_server_by_url_needs_no_key(monkeypatch: pytest.MonkeyPatch, fake_server: FakeOpenAIServer) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = get_model(f"openai:fake@{fake_server.url}", settings=settings_for(fake_server.url))
    assert (await client.complete(ModelRequest.of("hi"))).text == "ok"
    await client.aclose()


async def test_the_hosted_key_is_not_sent_to_a_server_by_url(
    monkeypatch: pytest.MonkeyPatch, fake_server: FakeOpenAIServer
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-hosted-secret-0123456789")
    client = get_model(f"openai:fake@{fake_server.url}", settings=settings_for(fake_server.url))
    await client.complete(ModelRequest.of("hi"))
    await client.aclose()
    assert "sk-hosted-secret-0123456789" not in fake_server.chat_requests[0].headers.get("authorization", "")
    assert "api_key_env" in client.describe()["api_key"]


async def test_unreachable_server_names_the_url() -> None:
    url = closed_port_url()
    client = get_model(f"openai:m@{url}", settings=settings_for(url, FAST.model_copy(update={"max_retries": 1})))
    with pytest.raises(ServerUnreachableError) as info:
        await client.complete(ModelRequest.of("hi"))
    await client.aclose()
    message = str(info.value)
    assert f"cannot reach the model server at {url}" in message
    assert "is it running" in message
    assert info.value.retryable
    assert info.value.context["endpoint"] == url
    assert info.value.context["attempts"] == 2
    assert "gave up after 2 attempts" in message


def test_unreachable_hosted_openai_points_at_the_network_not_at_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hosted OpenAI is no server of the user's to start, nor a URL of theirs to fix: the hint is the network."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")
    provider = get_model("openai:gpt-4o-mini", settings=ModelSettings()).provider
    assert isinstance(provider, OpenAICompatProvider)
    request = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")
    error = provider._translate(openai.APIConnectionError(request=request))
    assert isinstance(error, ServerUnreachableError)
    assert "cannot reach the model server at https://api.openai.com/v1" in error.message
    assert "is this machine online" in error.message and "is it running" not in error.message


async def test_model_not_found_names_model_and_url(fake_server: FakeOpenAIServer, fake_client: ModelClient) -> None:
    fake_server.script(Reply.not_found("fake"))
    with pytest.raises(ModelNotFoundError) as info:
        await fake_client.complete(ModelRequest.of("hi"))
    message = str(info.value)
    assert f"{fake_server.url} has no model 'fake'" in message
    assert "does not exist" in message  # the server's own words
    assert f"GET {fake_server.url}/models" in message
    assert not info.value.retryable
    assert info.value.context == {"endpoint": fake_server.url, "model": "fake"}


async def test_context_too_long_says_so(fake_server: FakeOpenAIServer, fake_client: ModelClient) -> None:
    fake_server.script(Reply.context_too_long())
    with pytest.raises(ContextLengthError) as info:
        await fake_client.complete(ModelRequest.of("long " * 100))
    message = str(info.value)
    assert "prompt plus max_tokens exceeds the context window" in message
    assert "maximum context length is 2048 tokens" in message
    assert not info.value.retryable


async def test_context_too_long_is_recognised_from_the_message_alone(
    fake_server: FakeOpenAIServer, fake_client: ModelClient
) -> None:
    fake_server.script(Reply.error(400, "the request exceeds the available context size"))
    with pytest.raises(ContextLengthError):
        await fake_client.complete(ModelRequest.of("x"))


async def test_refused_key_names_the_variable(monkeypatch: pytest.MonkeyPatch, fake_server: FakeOpenAIServer) -> None:
    monkeypatch.setenv("LAB_KEY", "lab-key-value")
    client = get_model(f"openai:fake@{fake_server.url}", settings=settings_for(fake_server.url), api_key_env="LAB_KEY")
    fake_server.script(Reply.unauthorized())
    with pytest.raises(AuthenticationError) as info:
        await client.complete(ModelRequest.of("x"))
    await client.aclose()
    assert "refused the API key from $LAB_KEY (401)" in str(info.value)
    assert info.value.context["variable"] == "LAB_KEY"
    assert fake_server.chat_requests[0].headers["authorization"] == "Bearer lab-key-value"


async def test_a_retry_after_beyond_the_cap_is_not_waited_for(
    fake_server: FakeOpenAIServer,
) -> None:
    limits = FAST.model_copy(update={"max_retries": 3})
    client = get_model(f"openai:fake@{fake_server.url}", settings=settings_for(fake_server.url, limits))
    fake_server.script(Reply.rate_limited(retry_after_s=MAX_RETRY_AFTER_S + 3600))
    with pytest.raises(ModelError) as info:
        await client.complete(ModelRequest.of("x"))
    await client.aclose()
    assert info.value.retry_after == pytest.approx(MAX_RETRY_AFTER_S + 3600)
    assert len(fake_server.chat_requests) == 1  # raised at once instead of sleeping an hour


def test_missing_gguf_file_is_model_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent.gguf"
    with pytest.raises(ModelNotFoundError) as info:
        get_model(f"llamacpp:{missing}", settings=ModelSettings())
    assert f"GGUF file {missing} does not exist" in str(info.value)
    assert info.value.context["path"] == str(missing)


async def test_a_file_that_is_not_a_gguf_model_is_a_model_error(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python (agentmesh[local]) is not installed")
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a model")
    client = get_model(f"llamacpp:{bogus}", settings=ModelSettings())
    with pytest.raises(ModelError) as info:
        await client.complete(ModelRequest.of("hi", max_tokens=2))
    assert f"llama.cpp could not load {bogus}" in str(info.value)
    assert not info.value.retryable


# --- the per-attempt timeout ------------------------------------------------------------------------------------


async def test_a_slow_model_times_out_with_a_message_naming_the_limit() -> None:
    from agentmesh.errors import ModelTimeoutError
    from agentmesh.models import ScriptedModel

    limits = EndpointLimits(timeout_s=0.05, max_retries=0)
    client = ModelClient(ScriptedModel(default="late", delay_s=5), limits=limits)
    with pytest.raises(ModelTimeoutError, match=r"no answer from .* within 0.05 s \(endpoint timeout_s\)"):
        await client.complete(ModelRequest.of("hi"))
    # an answer well inside its timeout comes back (5 s: never reached, however busy the machine)
    quick = ModelClient(
        ScriptedModel(default="on time", delay_s=0.01), limits=EndpointLimits(timeout_s=5, max_retries=0)
    )
    assert (await quick.complete(ModelRequest.of("hi"))).text == "on time"


async def test_within_answers_and_leaves_the_task_uncancelled() -> None:
    import asyncio

    from agentmesh.models.client import _within

    async def quick() -> int:
        await asyncio.sleep(0)
        return 7

    assert await _within(5, quick()) == 7
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_within_turns_its_own_cancellation_into_timeouterror() -> None:
    import asyncio

    from agentmesh.models.client import _within

    with pytest.raises(TimeoutError):
        await _within(0.02, asyncio.sleep(10))
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # the timer's cancel request was taken back
    await asyncio.sleep(0.01)  # and the task is not cancelled later by a leftover


async def test_within_lets_a_cancellation_from_elsewhere_through() -> None:
    import asyncio

    from agentmesh.models.client import _within

    started = asyncio.Event()

    async def slow() -> None:
        started.set()
        await asyncio.sleep(10)

    waiting = asyncio.create_task(_within(5, slow()))
    await started.wait()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_within_keeps_an_answer_given_despite_the_timer() -> None:
    import asyncio

    from agentmesh.models.client import _within

    async def stubborn() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "kept"
        return "slept"

    assert await _within(0.02, stubborn()) == "kept"  # as asyncio.timeout does: no error without a cancellation
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_server_wanting_a_key_none_was_sent_to_says_so(
    monkeypatch: pytest.MonkeyPatch, fake_server: FakeOpenAIServer
) -> None:
    # a server given by URL gets no key without api_key_env: its 401 must not read "refused the API key from
    # $OPENAI_API_KEY" (which said the user's OpenAI key went to it), but say none was sent and how to send one
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-this-server-000000000000")
    client = get_model(f"openai:fake@{fake_server.url}", settings=settings_for(fake_server.url))
    fake_server.script(Reply.unauthorized())
    with pytest.raises(AuthenticationError) as info:
        await client.complete(ModelRequest.of("x"))
    await client.aclose()
    message = str(info.value)
    assert "requires an API key (401) and none was sent" in message, message
    assert "api_key_env" in message and fake_server.url in message, message
    assert "OPENAI_API_KEY" not in message, message


async def test_a_key_variable_named_but_unset_is_named_on_a_401(
    monkeypatch: pytest.MonkeyPatch, fake_server: FakeOpenAIServer
) -> None:
    monkeypatch.delenv("LAB_KEY", raising=False)
    client = get_model(f"openai:fake@{fake_server.url}", settings=settings_for(fake_server.url), api_key_env="LAB_KEY")
    fake_server.script(Reply.unauthorized())
    with pytest.raises(AuthenticationError) as info:
        await client.complete(ModelRequest.of("x"))
    await client.aclose()
    assert "none was sent: its api_key_env names $LAB_KEY, which is not set" in str(info.value), str(info.value)
    assert info.value.context["variable"] == "LAB_KEY"
