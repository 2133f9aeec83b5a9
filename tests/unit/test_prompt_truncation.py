"""A server that cut the prompt short without an error (Ollama past its ``num_ctx``) is named once per endpoint,
from the usage it reports; servers that read the whole prompt raise no alarm. Each test talks over real HTTP to
its own loopback server (a fresh endpoint: the warning is said once per endpoint and process)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from agentmesh.models import EndpointLimits, ModelRequest, ModelSettings, get_model
from agentmesh.models.messages import CallContext
from agentmesh.models.providers._truncation import MIN_TOKENS, least_tokens, looks_cut
from tests._servers import FakeOpenAIServer, Reply

LOGGER = "agentmesh.models.providers.openai_compat"
FAST = EndpointLimits(timeout_s=5, max_retries=0, backoff_initial_s=0.001)

#: A prompt of plain prose, 40,000 characters: about 7,200 tokens by any tokenizer (its words and full stops).
PROSE = "The committee reviewed each proposal in turn and noted where the budget fell short. " * 480
#: Deeply indented code: four characters a token overrates it twice over (SmolLM2: 0.48 of the estimate).
INDENTED = ("                " + "return x\n") * 1200


def request(text: str) -> ModelRequest:
    return ModelRequest.of(text, system="Answer briefly.")


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fake:
        yield fake


async def ask(server: FakeOpenAIServer, text: str, times: int = 1) -> None:
    client = get_model(f"openai:llama3@{server.url}", settings=ModelSettings(endpoints={server.url: FAST}))
    try:
        for i in range(times):
            await client.complete(request(text), CallContext(node="debate", agent="debater", round=2, call_index=i))
    finally:
        await client.aclose()


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


async def test_a_prompt_counted_at_a_fraction_of_its_length_is_named_once(
    server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Ollama with num_ctx 2048 reads 2,048 tokens of a 7,200-token prompt and says nothing; we do, once."""
    server.default = Reply.ok("42", usage=(2048, 3))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        await ask(server, PROSE, times=3)
    said = warnings_of(caplog)
    assert len(said) == 1, said
    message = said[0]
    assert message.startswith(f"{server.url} (model 'llama3', node debate, agent debater, round 2): ")
    assert "counted 2048 prompt tokens for a prompt of" in message
    assert "num_ctx" in message and "OLLAMA_CONTEXT_LENGTH=" in message and "ollama ps" in message
    assert len(server.chat_requests) == 3  # a warning, not a failure: the calls went on


@pytest.mark.parametrize(
    ("text", "usage"),
    [
        (PROSE, (7400, 3)),  # the whole prompt read
        (PROSE, (6600, 3)),  # a large-vocabulary tokenizer ("'s" one token): 0.65 of the estimate, 0.9 of the words
        (INDENTED, (3600, 3)),  # indented code as SmolLM2 counts it: under half the estimate, and no cut
        (PROSE, (0, 3)),  # old Ollama said 0 for a cached prompt: not a cut
        (PROSE, None),  # no usage at all
        ("What is 17*3?", (3, 3)),  # a short prompt is not checked
    ],
)
async def test_servers_that_read_the_whole_prompt_raise_no_alarm(
    server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture, text: str, usage: tuple[int, int] | None
) -> None:
    server.default = Reply.ok("42", usage=usage)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        await ask(server, text)
    assert warnings_of(caplog) == []


def test_the_rule_worked_through() -> None:
    """The least count of indented code is its pieces (a run of spaces, a word...), not four characters a token."""
    indented = request(INDENTED)
    assert 2 * 1200 <= least_tokens(indented) <= 3 * 1200 + 10 < len(INDENTED) // 4
    assert looks_cut(2048, 5000) and not looks_cut(2600, 5000)
    assert not looks_cut(0, 5000) and not looks_cut(100, MIN_TOKENS - 1)
