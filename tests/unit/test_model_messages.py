"""The model value objects' direct JSON forms equal pydantic's dumps, so stored events and hashes do not change."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from agentmesh.errors import StoreError
from agentmesh.models.messages import (
    CallContext,
    CallRecord,
    ChatMessage,
    Choice,
    ModelRequest,
    ModelResponse,
    Sampling,
    TokenLogprob,
    Usage,
)
from agentmesh.store import event_row


def _text(rng: random.Random) -> str:
    # ASCII only half the time (with control characters and DEL): the hash takes its fast path on those
    alphabet = 'abc xyz\n\t\r\x00\x01\x1f\x7f"\\/{}[]:,0123456789' + ("é✓" if rng.random() < 0.5 else "")
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))


def _sampling(rng: random.Random) -> Sampling:
    return Sampling(
        temperature=rng.choice([None, 0.0, 0.7, 1.3, 1e-5, 2.0, rng.random() * 2]),
        top_p=rng.choice([None, 0.9, 1.0, 0.00012, 1e-9, rng.random() or 1.0]),
        max_tokens=rng.choice([None, 1, 256]),
        n=rng.choice([1, 3]),
        stop=rng.choice([None, (), ("\n",), ("###", "END"), (_text(rng),)]),
        seed=rng.choice([None, 0, 42]),
        logprobs=rng.choice([False, True]),
        top_logprobs=rng.choice([None, 0, 5]),
    )


def _request(rng: random.Random) -> ModelRequest:
    roles = ["system", "user", "assistant"]
    messages = tuple(ChatMessage(role=rng.choice(roles), content=_text(rng)) for _ in range(rng.randint(1, 4)))
    return ModelRequest(messages=messages, sampling=_sampling(rng))


def _response(rng: random.Random, *, logprobs: bool) -> ModelResponse:
    choices = tuple(
        Choice(
            text=_text(rng),
            finish_reason=rng.choice([None, "stop", "length"]),
            logprobs=(TokenLogprob(token="a", logprob=-0.5, top=(("a", -0.5), ("b", -1.5))),) if logprobs else None,
            reasoning=rng.choice([None, _text(rng)]),
        )
        for _ in range(rng.randint(0, 3))
    )
    return ModelResponse(
        model=_text(rng),
        choices=choices,
        usage=Usage(
            prompt_tokens=rng.randint(0, 99), completion_tokens=rng.randint(0, 99), estimated=rng.random() < 0.5
        ),
        latency_s=rng.random(),
        cost_usd=rng.choice([None, 0.0, 1.25e-6]),
        attempts=rng.randint(1, 3),
    )


def test_request_json_is_pydantics_dump_and_the_hash_is_unchanged() -> None:
    rng = random.Random(5)
    for _ in range(2000):
        request = _request(rng)
        dumped = request.model_dump(mode="json")
        assert request.to_json() == dumped
        # the hash stored with every recorded call: the formula of earlier versions, so their runs still resume
        expected = hashlib.sha256(json.dumps(dumped, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        assert request.request_hash() == expected


def test_request_json_is_a_fresh_dict_each_time() -> None:
    request = ModelRequest.of("hi", temperature=0.5)
    first = request.to_json()
    first["sampling"]["temperature"] = 2.0
    first["messages"].clear()
    assert request.to_json() == request.model_dump(mode="json")


def test_response_json_is_pydantics_dump_with_and_without_logprobs() -> None:
    rng = random.Random(7)
    for i in range(300):
        response = _response(rng, logprobs=i % 5 == 0)
        assert response.to_json() == response.model_dump(mode="json")


def test_call_record_event_fields_hold_the_dumps() -> None:
    rng = random.Random(11)
    request, response = _request(rng), _response(rng, logprobs=False)
    record = CallRecord(
        reference="m:x",
        context=CallContext(node="n", agent="a", round=2, call_index=1),
        request=request,
        attempt=1,
        response=response,
        request_hash=request.request_hash(),
    )
    fields = record.event_fields()
    assert fields["request"] == {"model": "m:x", **request.model_dump(mode="json")}
    assert fields["response"] == response.model_dump(mode="json")
    assert (fields["node"], fields["agent"], fields["round"], fields["call_index"]) == ("n", "a", 2, 1)
    assert fields["total_tokens"] == response.usage.total_tokens


def test_a_call_event_is_dated_when_its_attempt_ended_not_when_it_is_written() -> None:
    ended = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    record = CallRecord(
        reference="m:x",
        context=CallContext(node="n", agent="a"),
        request=_request(random.Random(3)),
        attempt=1,
        latency_s=1.5,
        finished_at=ended,
    )
    assert record.event_fields()["created_at"] == ended
    assert event_row("model_call", **record.event_fields())["created_at"] == ended
    now = event_row("model_call")["created_at"]  # an event without a time of its own: now
    assert abs(now - datetime.now(UTC)) < timedelta(minutes=1)
    with pytest.raises(StoreError, match="timezone-aware"):
        event_row("model_call", created_at=datetime(2026, 1, 2))
