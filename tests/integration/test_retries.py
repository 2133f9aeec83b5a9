"""Retries, usage, cost and observers of the real client, against a scriptable loopback OpenAI server."""

from __future__ import annotations

import itertools
import json
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from agentmesh.errors import (
    AuthenticationError,
    ContextLengthError,
    MalformedResponseError,
    ModelError,
    ModelNotFoundError,
    ModelRequestError,
    ModelTimeoutError,
    RateLimitedError,
    ServerError,
)
from agentmesh.models import (
    CallContext,
    CallRecord,
    EndpointLimits,
    ModelClient,
    ModelRequest,
    ModelSettings,
    Price,
    get_model,
)
from agentmesh.models.client import _Backoff
from agentmesh.models.providers.openai_compat import parse_retry_after
from tests._servers import FakeOpenAIServer, Recorded, Reply

MakeClient = Callable[..., Awaitable[ModelClient]]


@pytest.fixture
async def make_client(fake_server: FakeOpenAIServer) -> AsyncIterator[MakeClient]:
    """Build a client for the fake server with small backoffs; all are closed after the test."""
    clients: list[ModelClient] = []

    async def make(
        *,
        model: str = "fake",
        prices: dict[str, Price] | None = None,
        observers: tuple[Callable[[CallRecord], object], ...] = (),
        api_key_env: str | None = None,
        **limits: object,
    ) -> ModelClient:
        settings = ModelSettings(
            endpoints={
                fake_server.url: EndpointLimits.model_validate(
                    {"timeout_s": 5.0, "max_retries": 3, "backoff_initial_s": 0.01, "backoff_max_s": 0.05, **limits}
                )
            },
            prices=prices or {},
        )
        client = get_model(
            f"openai:{model}@{fake_server.url}",
            settings=settings,
            observers=observers,  # type: ignore[arg-type]
            api_key_env=api_key_env,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def gaps(requests: list[Recorded]) -> list[float]:
    return [b.at - a.at for a, b in itertools.pairwise(requests)]


# --- transient failures are retried -----------------------------------------------------------------------------


async def test_429_waits_for_retry_after(fake_server: FakeOpenAIServer, make_client: MakeClient) -> None:
    records: list[CallRecord] = []
    client = await make_client(observers=(records.append,))
    fake_server.script(Reply.rate_limited(retry_after_s=1.0), Reply.ok("after the wait"))
    response = await client.complete(ModelRequest.of("hi"))
    assert response.text == "after the wait"
    assert response.attempts == 2
    requests = fake_server.chat_requests
    assert len(requests) == 2
    # backoff alone would retry after <= 50 ms; the server asked for 1 s
    assert requests[1].at - requests[0].at >= 1.0
    assert [r.error_type for r in records] == ["RateLimitedError", None]


async def test_503_with_retry_after_is_honoured_too(fake_server: FakeOpenAIServer, make_client: MakeClient) -> None:
    client = await make_client()
    fake_server.script(Reply.server_error(503, headers={"Retry-After": "1"}), Reply.ok())
    assert (await client.complete(ModelRequest.of("hi"))).attempts == 2
    assert gaps(fake_server.chat_requests)[0] >= 1.0


async def test_500_then_success(fake_server: FakeOpenAIServer, make_client: MakeClient) -> None:
    client = await make_client()
    fake_server.script(Reply.server_error(500), Reply.server_error(502), Reply.ok("fine now"))
    response = await client.complete(ModelRequest.of("hi"))
    assert (response.text, response.attempts) == ("fine now", 3)
    assert len(fake_server.chat_requests) == 3


async def test_hang_past_the_timeout_then_success(fake_server: FakeOpenAIServer, make_client: MakeClient) -> None:
    records: list[CallRecord] = []
    # 1 s: the hanging attempt must time out, and the next one (an instant reply) must not, even on a busy machine
    client = await make_client(timeout_s=1.0, observers=(records.append,))
    fake_server.script(Reply.hang(60), Reply.ok("quick this time"))
    response = await client.complete(ModelRequest.of("hi"))
    assert (response.text, response.attempts) == ("quick this time", 2)
    assert records[0].error_type == "ModelTimeoutError"
    assert "within 1 s" in (records[0].error or "") or "timed out" in (records[0].error or "")
    assert records[0].latency_s >= 1.0
    assert gaps(fake_server.chat_requests)[0] >= 1.0


@pytest.mark.parametrize("reply", [Reply.malformed_json(), Reply.html_page()], ids=["truncated-json", "html"])
async def test_garbled_body_then_success(fake_server: FakeOpenAIServer, make_client: MakeClient, reply: Reply) -> None:
    records: list[CallRecord] = []
    client = await make_client(observers=(records.append,))
    fake_server.script(reply, Reply.ok("valid"))
    response = await client.complete(ModelRequest.of("hi"))
    assert (response.text, response.attempts) == ("valid", 2)
    assert records[0].error_type == "MalformedResponseError"
    assert fake_server.url in (records[0].error or "")


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply.server_error(500), ServerError),
        (Reply.rate_limited(retry_after_s=0.01), RateLimitedError),
        (Reply.malformed_json(), MalformedResponseError),
        (Reply.hang(60), ModelTimeoutError),
    ],
    ids=["500", "429", "malformed", "hang"],
)
async def test_retries_exhausted_raise_the_specific_error_with_the_attempt_count(
    fake_server: FakeOpenAIServer, make_client: MakeClient, reply: Reply, error: type[ModelError]
) -> None:
    # Only the hanging server needs a short timeout; the others answer at once, and a short timeout there would
    # make the test depend on the machine's load (a 500 that takes 0.3 s on a busy machine becomes a timeout).
    client = await make_client(max_retries=2, timeout_s=0.3 if error is ModelTimeoutError else 30)
    fake_server.default = reply
    with pytest.raises(error) as info:
        await client.complete(ModelRequest.of("hi"))
    assert type(info.value) is error
    assert info.value.context["attempts"] == 3
    assert "gave up after 3 attempts" in str(info.value)
    assert len(fake_server.chat_requests) == 3


# --- what is not retried ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply.error(400, "temperature must be <= 2"), ModelRequestError),
        (Reply.error(422, "unprocessable"), ModelRequestError),
        (Reply.context_too_long(), ContextLengthError),
        (Reply.unauthorized(), AuthenticationError),
        (Reply.error(403, "forbidden", type_="permission_error"), AuthenticationError),
        (Reply.not_found(), ModelNotFoundError),
    ],
    ids=["400", "422", "400-context", "401", "403", "404"],
)
async def test_client_errors_are_not_retried(
    fake_server: FakeOpenAIServer, make_client: MakeClient, reply: Reply, error: type[ModelError]
) -> None:
    records: list[CallRecord] = []
    client = await make_client(max_retries=5, observers=(records.append,))
    fake_server.default = reply
    with pytest.raises(error) as info:
        await client.complete(ModelRequest.of("hi"))
    assert type(info.value) is error
    assert len(fake_server.chat_requests) == 1
    assert "attempts" not in info.value.context
    assert [(r.attempt, r.error_type) for r in records] == [(1, error.__name__)]


async def test_bad_request_error_carries_the_status(fake_server: FakeOpenAIServer, make_client: MakeClient) -> None:
    client = await make_client()
    fake_server.script(Reply.error(400, "temperature must be <= 2"))
    with pytest.raises(ModelRequestError) as info:
        await client.complete(ModelRequest.of("hi"))
    assert info.value.context["status"] == 400
    assert "rejected the request (400): temperature must be <= 2" in str(info.value)


# --- usage, cost, logprobs, n --------------------------------------------------------------------------------------


async def test_usage_reported_by_the_server_is_exact(fake_server: FakeOpenAIServer, make_client: MakeClient) -> None:
    client = await make_client()
    fake_server.script(Reply.ok(usage=(123, 45)))
    usage = (await client.complete(ModelRequest.of("hi"))).usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.estimated) == (123, 45, False)


async def test_usage_missing_is_estimated_and_flagged(fake_server: FakeOpenAIServer, make_client: MakeClient) -> None:
    client = await make_client()
    fake_server.script(Reply.ok("a reply of a few words", usage=None))
    usage = (await client.complete(ModelRequest.of("a prompt of about forty characters long"))).usage
    assert usage.estimated is True
    assert usage.prompt_tokens >= 10  # ~4 characters a token, plus message framing
    assert usage.completion_tokens >= 5


async def test_usage_missing_from_one_of_several_requests_is_estimated(
    fake_server: FakeOpenAIServer, make_client: MakeClient
) -> None:
    client = await make_client()
    fake_server.script(Reply.ok(choices=1, usage=(10, 2)), Reply.ok(choices=1, usage=None))
    usage = (await client.complete(ModelRequest.of("hi", n=2))).usage
    assert usage.estimated is True


async def test_cost_from_a_configured_price(fake_server: FakeOpenAIServer, make_client: MakeClient) -> None:
    client = await make_client(prices={"fake": Price(input=2.0, output=10.0)})
    fake_server.script(Reply.ok(usage=(1_000, 200)))
    response = await client.complete(ModelRequest.of("hi"))
    assert response.cost_usd == pytest.approx((1_000 * 2.0 + 200 * 10.0) / 1e6)


async def test_cost_is_none_when_the_price_is_unknown(fake_server: FakeOpenAIServer, make_client: MakeClient) -> None:
    client = await make_client(model="unpriced-model")
    assert (await client.complete(ModelRequest.of("hi"))).cost_usd is None


async def test_logprobs_are_requested_and_passed_through(
    fake_server: FakeOpenAIServer, make_client: MakeClient
) -> None:
    client = await make_client()
    fake_server.script(Reply.ok("Hi there", logprobs=(("Hi", -0.25), (" there", -1.5))))
    response = await client.complete(ModelRequest.of("hi", logprobs=True, top_logprobs=2))
    body = fake_server.chat_requests[0].body
    assert body is not None and body["logprobs"] is True and body["top_logprobs"] == 2
    logprobs = response.choices[0].logprobs
    assert logprobs is not None
    assert [(t.token, t.logprob) for t in logprobs] == [("Hi", -0.25), (" there", -1.5)]
    assert logprobs[0].top == (("Hi", -0.25),)


async def test_logprobs_not_asked_are_not_requested(fake_server: FakeOpenAIServer, make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.complete(ModelRequest.of("hi", temperature=0.7, max_tokens=9, seed=3, stop=("\n",)))
    body = fake_server.chat_requests[0].body
    assert body is not None and "logprobs" not in body and "n" not in body
    assert (body["temperature"], body["max_tokens"], body["seed"], body["stop"]) == (0.7, 9, 3, ["\n"])
    assert response.choices[0].logprobs is None


async def test_n_is_asked_again_from_a_server_that_returns_one_choice(
    fake_server: FakeOpenAIServer, make_client: MakeClient
) -> None:
    client = await make_client()
    fake_server.default = Reply.ok(choices=1, usage=(10, 2))
    response = await client.complete(ModelRequest.of("hi", n=3))
    assert len(response.choices) == 3
    assert [r.body.get("n") if r.body else None for r in fake_server.chat_requests] == [3, 2, None]
    assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.estimated) == (30, 6, False)


async def test_n_from_a_server_that_honours_it_is_one_request(
    fake_server: FakeOpenAIServer, make_client: MakeClient
) -> None:
    client = await make_client()
    response = await client.complete(ModelRequest.of("hi", n=3))
    assert len(response.choices) == 3
    assert len(fake_server.chat_requests) == 1


async def test_no_choices_is_a_malformed_answer(fake_server: FakeOpenAIServer, make_client: MakeClient) -> None:
    client = await make_client(max_retries=0)
    fake_server.script(Reply.ok(choices=0))
    with pytest.raises(MalformedResponseError, match="had no choices"):
        await client.complete(ModelRequest.of("hi"))


# --- observers ----------------------------------------------------------------------------------------------------


async def test_observers_see_failed_attempts_then_the_success(
    fake_server: FakeOpenAIServer, make_client: MakeClient
) -> None:
    sync_seen: list[CallRecord] = []
    async_seen: list[CallRecord] = []

    async def async_observer(record: CallRecord) -> None:
        async_seen.append(record)

    client = await make_client(observers=(sync_seen.append,))
    fake_server.script(Reply.server_error(500), Reply.rate_limited(0.01), Reply.ok("third time", usage=(7, 3)))
    context = CallContext(run_id="r1", node="solve", agent="solver", round=2, call_index=5)
    request = ModelRequest.of("hi")
    response = await client.complete(request, context, observer=async_observer)

    assert [(r.attempt, r.error_type) for r in sync_seen] == [(1, "ServerError"), (2, "RateLimitedError"), (3, None)]
    assert [r.model_dump() for r in async_seen] == [r.model_dump() for r in sync_seen]
    failed, _, success = sync_seen
    assert failed.response is None and failed.error and "500" in failed.error
    assert success.response == response and success.error is None
    assert all(r.context == context and r.request_hash == request.request_hash() for r in sync_seen)
    fields = success.event_fields()
    assert (fields["attempt"], fields["prompt_tokens"], fields["completion_tokens"], fields["agent"]) == (
        3,
        7,
        3,
        "solver",
    )
    assert failed.event_fields()["error"].startswith("ServerError: ")


# --- secrets -------------------------------------------------------------------------------------------------------

SECRET = "sk-test-SECRET-do-not-leak-0123456789abcdef"


async def test_the_api_key_never_reaches_records_or_errors(
    fake_server: FakeOpenAIServer, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_SERVER_KEY", SECRET)
    records: list[CallRecord] = []
    client = await make_client(api_key_env="FAKE_SERVER_KEY", observers=(records.append,), max_retries=1)

    # A misbehaving proxy that echoes the Authorization header back in its error bodies.
    def echo(body: dict[str, object]) -> Reply:
        auth = fake_server.chat_requests[-1].headers.get("authorization", "")
        return Reply.error(401, f"Incorrect API key provided: {auth}")

    fake_server.script(Reply.server_error(500), Reply.ok(usage=(3, 1)))
    ok = await client.complete(ModelRequest.of("hi"))
    fake_server.default = echo
    with pytest.raises(AuthenticationError) as info:
        await client.complete(ModelRequest.of("hi again"))
    fake_server.default = Reply.error(500, f"upstream said {SECRET}")
    with pytest.raises(ServerError) as second:
        await client.complete(ModelRequest.of("and again"))

    # the key was really used ...
    assert all(r.headers.get("authorization") == f"Bearer {SECRET}" for r in fake_server.chat_requests)
    # ... but appears in no record, response, error message, error context or description
    texts = [r.model_dump_json() for r in records]
    texts += [json.dumps(r.event_fields(), default=str) for r in records]
    texts += [ok.model_dump_json(), str(info.value), repr(info.value.context), str(second.value)]
    texts += [json.dumps(client.describe(), default=str)]
    assert len(records) == 5
    for text in texts:
        assert SECRET not in text
    assert "Incorrect API key provided: Bearer ***" in str(info.value)
    for error in (info.value, second.value):  # nor in a printed traceback (the SDK's exception quotes the body)
        assert SECRET not in "".join(traceback.format_exception(error))


# --- pure parts of the policy -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250", "retry-after": "3"}, 0.25),
        ({"retry-after-ms": "junk", "retry-after": "2"}, 2.0),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past: retry now
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_http_date_in_the_future() -> None:
    import email.utils
    import time

    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    assert 100 < (parse_retry_after({"retry-after": when}) or 0) <= 120


def test_backoff_prefers_retry_after_and_otherwise_jitters_within_the_exponential_cap() -> None:
    from tenacity import RetryCallState

    backoff = _Backoff(EndpointLimits(backoff_initial_s=0.5, backoff_max_s=30))

    def state(attempt: int, exc: BaseException) -> RetryCallState:
        s = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        s.attempt_number = attempt
        s.set_exception((type(exc), exc, None))
        return s

    assert backoff(state(1, RateLimitedError("429", retry_after=7.0))) == 7.0
    waits = [backoff(state(3, ServerError("500"))) for _ in range(200)]
    assert all(0 <= w <= 0.5 * 2**3 for w in waits)
    assert len(set(waits)) > 100  # jittered, not a fixed schedule
    assert all(0 <= backoff(state(20, ServerError("500"))) <= 30 for _ in range(50))
