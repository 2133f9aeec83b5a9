"""The value objects every provider speaks: a request, its call context, the response, token usage.

They are provider-neutral on purpose: the runtime builds a :class:`ModelRequest` once and any provider (hosted,
served, in-process, scripted, replayed) answers it with a :class:`ModelResponse`, so a graph never knows which
kind of model it runs on. All of them are plain pydantic models that dump to JSON, because they are what the
store records and what replay serves back.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

Role = Literal["system", "user", "assistant"]


class ChatMessage(BaseModel):
    """One chat turn."""

    model_config = ConfigDict(frozen=True)

    role: Role
    content: str


class Sampling(BaseModel):
    """Sampling parameters; ``None`` leaves the server's default in place.

    ``reasoning_effort`` is the OpenAI API's knob for reasoning models (``low``, ``medium``, ``high``...; hosted
    OpenAI, gpt-oss on vLLM or Ollama). ``extra_body`` holds what a server accepts beyond the OpenAI API, sent as
    it is: vLLM's ``top_k``, ``min_p``, ``repetition_penalty``, ``chat_template_kwargs`` (Qwen3's
    ``{enable_thinking: false}``), ``response_format``... The embedded model takes the llama.cpp sampling keys among
    them (``top_k``, ``min_p``, ``repeat_penalty``..., and ``response_format`` with a JSON schema) and refuses others
    by name; it ignores ``reasoning_effort``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, gt=0)
    n: int = Field(default=1, ge=1, le=128)
    stop: tuple[str, ...] | None = None
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    reasoning_effort: str | None = Field(default=None, min_length=1)
    extra_body: dict[str, JsonValue] | None = None

    @field_validator("n", "max_tokens", "seed", "top_logprobs", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        # pydantic reads true as 1 for an int: `n: true` or `max_tokens: yes` in a card was a 1 nobody meant
        if isinstance(value, bool):
            raise ValueError(f"expected a whole number, got {str(value).lower()}")
        return value

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # fields added after runs were first recorded appear only when set: a request's dump, and so its hash and
        # every recorded run's replay, stay what they were
        dumped: dict[str, Any] = handler(self)
        for name in _LATER_FIELDS:
            if dumped.get(name) is None:
                dumped.pop(name, None)
        return dumped

    def __hash__(self) -> int:
        # frozen, but ``extra_body`` is a dict: hashed by its canonical JSON (equal dicts, equal JSON); every other
        # field by its value, whichever fields there are (every model call looks its agent's sampling up by it)
        values = tuple(self.__dict__.values())
        if self.extra_body is None:
            return hash(values)
        return hash(tuple(orjson.dumps(v, option=orjson.OPT_SORT_KEYS) if isinstance(v, dict) else v for v in values))


_LATER_FIELDS = ("reasoning_effort", "extra_body")


class ModelRequest(BaseModel):
    """What is asked of a model: the messages and how to sample."""

    model_config = ConfigDict(frozen=True)

    messages: tuple[ChatMessage, ...]
    sampling: Sampling = Sampling()

    @classmethod
    def of(cls, prompt: str, *, system: str | None = None, **sampling: Any) -> ModelRequest:
        """Build a one-turn request: the common case of an agent with a system prompt and a user prompt."""
        messages = [ChatMessage(role="system", content=system)] if system else []
        messages.append(ChatMessage(role="user", content=prompt))
        return cls(messages=tuple(messages), sampling=Sampling(**sampling))

    @property
    def prompt_text(self) -> str:
        """All message contents joined: what scripted rules match against and token estimates count."""
        return "\n".join(m.content for m in self.messages)

    def to_json(self) -> dict[str, Any]:
        """``model_dump(mode="json")``, built directly: every model call's event and hash start from it, and
        pydantic's general dump costs several times more for this fixed shape."""
        if type(self) is not ModelRequest:  # a subclass may add fields: pydantic knows them
            return self.model_dump(mode="json")
        return {
            "messages": [{"role": m.role, "content": m.content} for m in self.messages],
            "sampling": dict(_sampling_json(self.sampling)),
        }

    def request_hash(self) -> str:
        """Stable hash of messages and sampling; replay compares it to detect a changed prompt.

        It is the SHA-256 of ``json.dumps(to_json(), sort_keys=True, separators=(",", ":"))`` (ASCII, non-ASCII
        escaped), which runs recorded by every version stored. orjson writes the same bytes whenever its output is
        ASCII without DEL and the floats are ones both print alike, at a tenth of the cost, so it is used then.
        """
        data = self.to_json()
        if _plain_floats(data["sampling"]):
            fast = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
            if fast.isascii() and b"\x7f" not in fast:  # json escapes DEL, orjson does not
                return hashlib.sha256(fast).hexdigest()
        payload = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()


def _plain_floats(sampling: dict[str, Any]) -> bool:
    """Whether every float in ``sampling`` prints the same in ``json`` (``repr``) and orjson: zero, or neither so
    small nor so large that one of them switches to an exponent (``1e-05`` vs ``1e-5``)."""
    for value in sampling.values():
        if type(value) is float and value != 0.0 and not 1e-4 <= abs(value) < 1e15:
            return False
    return True


@lru_cache(maxsize=1024)
def _sampling_json(sampling: Sampling) -> dict[str, Any]:
    # an agent's sampling is one frozen object reused by all its calls: dumped once (callers copy the dict)
    return sampling.model_dump(mode="json")


class CallContext(BaseModel):
    """Where in a run a call is made.

    Scripted rules match on it, the store keys recorded calls by it, and replay finds a recorded answer by
    (node, agent, round, call_index): a prompt hash alone would confuse two identical prompts of one run.
    """

    model_config = ConfigDict(frozen=True)

    run_id: str | None = None
    node: str | None = None
    agent: str | None = None
    round: int | None = None
    call_index: int = 0


class Usage(BaseModel):
    """Token counts of one call. ``estimated`` is true when the server did not report them and we counted.

    ``cached_prompt_tokens`` are the part of ``prompt_tokens`` the server read from its prompt cache (hosted OpenAI
    bills them at a discount; a debate's later rounds repeat long prefixes), ``reasoning_tokens`` the part of
    ``completion_tokens`` a reasoning model spent thinking. Both are 0 when the server does not say.
    """

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False
    cached_prompt_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            estimated=self.estimated or other.estimated,
            cached_prompt_tokens=self.cached_prompt_tokens + other.cached_prompt_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
        )


class TokenLogprob(BaseModel):
    """Log probability of one generated token and, when asked, its top alternatives."""

    model_config = ConfigDict(frozen=True)

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


class Choice(BaseModel):
    """One sampled completion: its answer ``text`` and, for a reasoning model, its ``reasoning`` (the thinking that
    came before the answer, kept apart: see :mod:`agentmesh.models.reasoning`)."""

    model_config = ConfigDict(frozen=True)

    text: str
    finish_reason: str | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None
    reasoning: str | None = None


class ModelResponse(BaseModel):
    """A completed call, with what it cost.

    ``attempts`` counts tries including retries; ``latency_s`` is the wall time of the successful attempt;
    ``cost_usd`` is ``None`` when the price of a hosted model is unknown (never guessed).
    """

    model_config = ConfigDict(frozen=True)

    model: str
    choices: tuple[Choice, ...]
    usage: Usage
    latency_s: float = 0.0
    cost_usd: float | None = None
    attempts: int = 1

    @property
    def text(self) -> str:
        """The first choice's text: what a single-sample agent answered."""
        return self.choices[0].text if self.choices else ""

    @property
    def texts(self) -> list[str]:
        return [c.text for c in self.choices]

    def to_json(self) -> dict[str, Any]:
        """``model_dump(mode="json")``, built directly for the common shape (no log probabilities): what every
        model call's event stores."""
        if type(self) is not ModelResponse or any(c.logprobs is not None for c in self.choices):
            return self.model_dump(mode="json")
        usage = self.usage
        return {
            "model": self.model,
            "choices": [
                {"text": c.text, "finish_reason": c.finish_reason, "logprobs": None, "reasoning": c.reasoning}
                for c in self.choices
            ],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "estimated": usage.estimated,
                "cached_prompt_tokens": usage.cached_prompt_tokens,
                "reasoning_tokens": usage.reasoning_tokens,
            },
            "latency_s": self.latency_s,
            "cost_usd": self.cost_usd,
            "attempts": self.attempts,
        }


class ProviderResult(BaseModel):
    """What a provider returns from one attempt; the client adds usage estimates, cost and timing."""

    model: str
    choices: list[Choice]
    usage: Usage | None = None


class CallRecord(BaseModel):
    """One attempt of one call, as handed to a :class:`~agentmesh.models.client.CallObserver`.

    Failed attempts are reported too (``error`` set, ``response`` empty) so that a run's events show retries.
    It holds no secret: the request carries messages and sampling only, never headers or keys.
    """

    reference: str
    context: CallContext
    request: ModelRequest
    attempt: int
    response: ModelResponse | None = None
    error: str | None = None
    error_type: str | None = None
    latency_s: float = 0.0
    request_hash: str = ""
    finished_at: datetime | None = Field(
        default=None, description="When the attempt ended (UTC); it started ``latency_s`` before."
    )

    def event_fields(self) -> dict[str, Any]:
        """The record flattened to the store's event columns (its time is when the attempt ended, not when the
        store wrote it: a run's timeline is drawn from it).

        Written out, not built from :class:`~agentmesh.store.events.EventFields` (this package does not import the
        store, and every model call's event is made from it): ``tests/unit/test_store_events.py`` holds its keys to
        that list, in its order (all but ``data``, which a call has none of)."""
        usage = self.response.usage if self.response else None
        return {
            "created_at": self.finished_at,
            "node": self.context.node,
            "agent": self.context.agent,
            "round": self.context.round,
            "call_index": self.context.call_index,
            "attempt": self.attempt,
            "request": {"model": self.reference, **self.request.to_json()},
            "request_hash": self.request_hash,
            "response": self.response.to_json() if self.response else None,
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
            "total_tokens": usage.total_tokens if usage else None,
            "usage_estimated": usage.estimated if usage else False,
            "latency_s": self.latency_s,
            "cost_usd": self.response.cost_usd if self.response else None,
            "error": f"{self.error_type}: {self.error}" if self.error else None,
        }
