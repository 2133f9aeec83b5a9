"""OpenAI-compatible chat completions over HTTP: hosted OpenAI, vLLM, llama.cpp server, Ollama, SGLang.

``openai:<model>`` talks to OpenAI with the key from ``$OPENAI_API_KEY`` (or the variable the endpoint's
``api_key_env`` names); ``openai:<model>@http://host:port/v1`` talks to any compatible server, where a key is
optional and is sent only when a variable is named for it (``api_key_env``): the hosted OpenAI key is never
sent to another server by default. The SDK's own retries are switched off: the client layer retries, with one
policy for all providers. A server that echoes the key back has it masked in every error message.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import re
import time
from collections.abc import Mapping
from typing import Any, NoReturn

import openai
import pydantic
from openai import AsyncOpenAI

from agentmesh.errors import (
    AuthenticationError,
    ConfigError,
    ContextLengthError,
    MalformedResponseError,
    MissingAPIKeyError,
    ModelError,
    ModelNotFoundError,
    ModelRequestError,
    ModelTimeoutError,
    RateLimitedError,
    ServerError,
    ServerUnreachableError,
)
from agentmesh.models.messages import (
    CallContext,
    Choice,
    ModelRequest,
    ProviderResult,
    TokenLogprob,
    Usage,
)
from agentmesh.models.providers._truncation import warn_if_cut
from agentmesh.models.providers.base import Provider
from agentmesh.models.reference import ModelReference
from agentmesh.models.settings import EndpointLimits

log = logging.getLogger(__name__)

OPENAI_URL = "https://api.openai.com/v1"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
# Local servers accept any key; the SDK insists on a non-empty one.
_NO_KEY = "not-needed"


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, ``Retry-After`` (seconds or HTTP date); ``None`` if absent."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class OpenAICompatProvider(Provider):
    """Chat completions through the ``openai`` SDK against ``base_url``."""

    name = "openai"

    def __init__(
        self,
        reference: ModelReference,
        limits: EndpointLimits,
        *,
        api_key_env: str | None = None,
        require_key: bool = True,
    ) -> None:
        """``require_key=False`` builds the provider without its key, to be described (``agentmesh models``: which
        variable it reads, and that it is not set), not called: a call then fails with :class:`MissingAPIKeyError`."""
        self._model = reference.target
        self._base_url = reference.base_url or OPENAI_URL
        self._hosted = reference.base_url is None
        named = api_key_env or limits.api_key_env
        self._named_key = named is not None
        self.key_env = named or DEFAULT_KEY_ENV
        # A server given by URL gets a key only from a variable named for it: $OPENAI_API_KEY is not sent to
        # whatever server a reference points at.
        key = os.environ.get(self.key_env) if (self._hosted or named) else None
        self._missing_key: MissingAPIKeyError | None = None
        if not key:
            if self._hosted:
                self._missing_key = MissingAPIKeyError(
                    f"{reference.raw}: environment variable {self.key_env} is not set; export your API key "
                    f"in it (or name another variable with api_key_env)",
                    reference=reference.raw,
                    variable=self.key_env,
                )
                if require_key:
                    raise self._missing_key
            key = _NO_KEY
        self._secret = key if key != _NO_KEY else None
        self._timeout_s = limits.timeout_s
        self._client = AsyncOpenAI(
            api_key=key,
            base_url=self._base_url,
            max_retries=0,
            timeout=limits.timeout_s,
        )

    def use_limits(self, limits: EndpointLimits) -> None:
        """Refuse ``n_ctx``: it sizes a model run in this process; a server's window is set where it starts, so
        the setting would be ignored and the user left thinking the window changed."""
        if limits.n_ctx is not None:
            raise ConfigError(
                f"{self._base_url}: n_ctx: {limits.n_ctx} in the model settings (config.yaml's endpoints) sizes the "
                "context window of a model run in this process (local, llamacpp:); a server sets its own when it "
                "starts (llama.cpp server: --ctx-size or llama_cpp.server --n_ctx; vLLM: --max-model-len; Ollama: "
                "num_ctx): remove n_ctx from the entry that applies to this server",
                endpoint=self._base_url,
            )

    @property
    def endpoint(self) -> str:
        return self._base_url

    @property
    def model_name(self) -> str:
        return self._model

    def describe(self) -> dict[str, str]:
        info = super().describe()
        if self._hosted or self._secret is not None or self.key_env != DEFAULT_KEY_ENV:
            info["api_key"] = f"${self.key_env} ({'set' if os.environ.get(self.key_env) else 'not set'})"
        else:
            info["api_key"] = "none (name a variable with api_key_env if the server needs one)"
        return info

    async def aclose(self) -> None:
        await self._client.close()

    async def complete(self, request: ModelRequest, context: CallContext) -> ProviderResult:
        if self._missing_key is not None:
            raise self._missing_key
        want = request.sampling.n
        choices: list[Choice] = []
        usage: Usage | None = Usage()
        model = self._model
        # Several servers (llama.cpp, some vLLM builds) ignore n>1: ask again for the missing samples.
        while len(choices) < want:
            got, got_usage, model = await self._one(request, want - len(choices))
            if not self._hosted:  # Ollama cuts a prompt longer than its num_ctx without an error: say so, once
                warn_if_cut(log, self._base_url, self._model, request, got_usage, context)
            if not got:
                raise MalformedResponseError(
                    f"{self._base_url}: completion for {self._model!r} had no choices",
                    endpoint=self._base_url,
                )
            choices.extend(got)
            usage = None if usage is None or got_usage is None else usage + got_usage
        return ProviderResult(model=model, choices=choices[:want], usage=usage)

    async def _one(self, request: ModelRequest, n: int) -> tuple[list[Choice], Usage | None, str]:
        s = request.sampling
        kwargs: dict[str, Any] = {
            "model": self._model,
            "messages": [m.model_dump() for m in request.messages],
        }
        if n > 1:
            kwargs["n"] = n
        for name in ("temperature", "top_p", "max_tokens", "seed"):
            value = getattr(s, name)
            if value is not None:
                kwargs[name] = value
        if s.stop:
            kwargs["stop"] = list(s.stop)
        if s.logprobs:
            kwargs["logprobs"] = True
            if s.top_logprobs is not None:
                kwargs["top_logprobs"] = s.top_logprobs
        if s.reasoning_effort is not None:
            kwargs["reasoning_effort"] = s.reasoning_effort
        if s.extra_body:
            kwargs["extra_body"] = s.extra_body
        try:
            completion = await self._client.chat.completions.create(**kwargs)
            return self._parse(completion)
        except openai.APIError as exc:
            self._raise(self._translate(exc), exc)
        except (json.JSONDecodeError, pydantic.ValidationError, ValueError, TypeError) as exc:
            error = MalformedResponseError(
                f"{self._base_url}: answer is not a valid chat completion ({type(exc).__name__}: {exc})",
                endpoint=self._base_url,
            )
            self._raise(error, exc)

    def _raise(self, error: ModelError, cause: BaseException) -> NoReturn:
        """Raise ``error`` with the key masked: some servers and proxies echo it back in their error text. When
        they did, the SDK's exception (which quotes that text) is not chained, so no traceback shows it."""
        if self._secret and (self._secret in error.message or self._secret in str(cause)):
            error.message = error.message.replace(self._secret, "***")
            error.args = (error.message,)
            raise error from None
        raise error from cause

    def _parse(self, completion: Any) -> tuple[list[Choice], Usage | None, str]:
        raw_choices = getattr(completion, "choices", None)
        if not isinstance(raw_choices, list):
            raise MalformedResponseError(
                f"{self._base_url}: answer has no 'choices' list (got {type(completion).__name__})",
                endpoint=self._base_url,
            )
        choices: list[Choice] = []
        for c in raw_choices:
            message = getattr(c, "message", None)
            text = getattr(message, "content", None)
            if message is None:
                raise MalformedResponseError(f"{self._base_url}: a choice has no message", endpoint=self._base_url)
            choices.append(
                Choice(
                    text=text or "",
                    finish_reason=getattr(c, "finish_reason", None),
                    logprobs=_logprobs(getattr(c, "logprobs", None)),
                    reasoning=_reasoning(message),
                )
            )
        usage = None
        raw_usage = getattr(completion, "usage", None)
        if raw_usage is not None and getattr(raw_usage, "prompt_tokens", None) is not None:
            usage = Usage(
                prompt_tokens=int(raw_usage.prompt_tokens or 0),
                completion_tokens=int(raw_usage.completion_tokens or 0),
                cached_prompt_tokens=_detail_count(raw_usage, "prompt_tokens_details", "cached_tokens"),
                reasoning_tokens=_detail_count(raw_usage, "completion_tokens_details", "reasoning_tokens"),
            )
        return choices, usage, str(getattr(completion, "model", None) or self._model)

    def _translate(self, exc: openai.APIError) -> ModelError:
        url = self._base_url
        if isinstance(exc, openai.APITimeoutError):
            from agentmesh.models.client import timeout_hint  # (the client imports the providers' base)

            return ModelTimeoutError(
                f"no answer from the model server at {url} within {self._timeout_s:g} s (endpoint timeout_s)"
                f"{timeout_hint(url)}",
                endpoint=url,
                timeout_s=self._timeout_s,
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            # Hosted OpenAI is not the user's server to start or URL to fix: what they can check is the network.
            hint = (
                "is this machine online (behind a proxy: is HTTPS_PROXY set)?"
                if self._hosted
                else "is it running and is the URL right (it usually ends in /v1)?"
            )
            return ServerUnreachableError(
                f"cannot reach the model server at {url} ({type(cause).__name__}: {cause}); {hint}",
                endpoint=url,
            )
        if isinstance(exc, openai.APIResponseValidationError):
            return MalformedResponseError(f"{url}: answer is not a valid chat completion: {exc.message}", endpoint=url)
        if not isinstance(exc, openai.APIStatusError):
            return MalformedResponseError(f"{url}: {type(exc).__name__}: {exc.message}", endpoint=url)
        status = exc.status_code
        retry_after = parse_retry_after(exc.response.headers)
        detail = _detail(exc)
        if status == 429:
            return RateLimitedError(
                f"{url} is rate limiting requests (429): {detail}",
                retry_after=retry_after,
                endpoint=url,
                status=status,
            )
        if status >= 500 and _REQUEST_INVALID.search(detail):
            # llama-cpp-python's server answers 500 for a request its schema refuses (a bad extra_body value): the
            # same request fails the same way every time, so it is not retried (6 attempts, ~15 s of backoff)
            return ModelRequestError(
                f"{url} rejected the request as invalid ({status}; llama-cpp-python's server says 500 for a request it "
                f"cannot read): {detail}",
                endpoint=url,
                status=status,
            )
        if status >= 500:
            return ServerError(
                f"{url} failed with {status}: {detail}", retry_after=retry_after, endpoint=url, status=status
            )
        if status in (401, 403):
            if self._secret is None:
                # no key went out: "refused the API key from $OPENAI_API_KEY" said the user's OpenAI key was sent here
                sent = (
                    f"its api_key_env names ${self.key_env}, which is not set in this environment"
                    if self._named_key
                    else f"a server given by URL gets a key only from the variable its config.yaml entry names: "
                    f"endpoints: {{{url}: {{api_key_env: YOUR_VAR}}}}"
                )
                return AuthenticationError(
                    f"{url} requires an API key ({status}) and none was sent: {sent}; it said: {detail}",
                    endpoint=url,
                    variable=self.key_env,
                    status=status,
                )
            return AuthenticationError(
                f"{url} refused the API key from ${self.key_env} ({status}): {detail}",
                endpoint=url,
                variable=self.key_env,
                status=status,
            )
        if status == 404 and not _VERSIONED.search(url):
            # the likelier mistake first: llama.cpp's and vLLM's servers answer a path without /v1 with a bare 404
            # ("Error code: 404"), which read as "has no model" sent the user to check a name that was right
            return ModelNotFoundError(
                f"{url} answered 404 to POST {url}/chat/completions: the URL does not end with a version such as /v1, "
                f"where OpenAI-compatible servers answer (vLLM, llama.cpp, Ollama, SGLang: http://host:port/v1); "
                f"else the server has no model {self._model!r} (GET <url>/models lists what it serves)",
                endpoint=url,
                model=self._model,
            )
        if status == 404:
            return ModelNotFoundError(
                f"{url} has no model {self._model!r} (404: {detail}); check the name (GET {url}/models lists "
                "what the server serves) and that the URL ends with /v1",
                endpoint=url,
                model=self._model,
            )
        lowered = detail.lower()
        code = str(getattr(exc, "code", "") or "")
        if code == "context_length_exceeded" or (
            "context" in lowered and ("length" in lowered or "window" in lowered or "exceed" in lowered)
        ):
            return ContextLengthError(
                f"{self._model!r} at {url}: prompt plus max_tokens exceeds the context window: {detail}; shorten the "
                "prompt (the inputs, or what earlier nodes pass on to it), lower the agent's sampling.max_tokens, or "
                "start the server with a larger window (llama.cpp: --ctx-size, llama_cpp.server: --n_ctx; vLLM: "
                "--max-model-len; Ollama: num_ctx)",
                endpoint=url,
                model=self._model,
            )
        if status == 408:
            return ModelTimeoutError(f"{url} timed out the request (408): {detail}", endpoint=url)
        return ModelRequestError(f"{url} rejected the request ({status}): {detail}", endpoint=url, status=status)


#: A base URL that ends with an API version (``/v1``, ``/v1beta/openai``, ``/api/v1``): where OpenAI-compatible
#: servers answer. Without one, a 404 is most likely the missing ``/v1``, not a missing model.
_VERSIONED = re.compile(r"/v\d+[a-z0-9]*(/[A-Za-z0-9_.-]+)?/?$")

#: The body of a 5xx that is a refused request, not a failing server: pydantic's validation of the request body, as
#: llama-cpp-python's server reports it ("1 validation error: {'type': 'int_parsing', 'loc': ('body', 'top_k'), ...").
_REQUEST_INVALID = re.compile(r"validation errors?:?\s.*'loc': \('body'", re.DOTALL)


def _detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return exc.message


def _logprobs(raw: Any) -> tuple[TokenLogprob, ...] | None:
    content = getattr(raw, "content", None) if raw is not None else None
    if not content:
        return None
    return tuple(
        TokenLogprob(
            token=str(t.token),
            logprob=float(t.logprob),
            top=tuple((str(a.token), float(a.logprob)) for a in (getattr(t, "top_logprobs", None) or [])),
        )
        for t in content
    )


def _reasoning(message: Any) -> str | None:
    """The thinking a server with a reasoning parser returns beside the answer: ``reasoning_content`` (vLLM,
    SGLang, llama.cpp's server, DeepSeek's API) or ``reasoning`` (Ollama, OpenRouter, newer vLLM). ``None`` when
    absent or empty; reasoning left inline in the text is split out by the client (``agentmesh.models.reasoning``)."""
    for name in ("reasoning_content", "reasoning"):
        value = getattr(message, name, None)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _detail_count(usage: Any, details: str, name: str) -> int:
    """``usage.<details>.<name>`` (OpenAI's cached prompt tokens, reasoning tokens), 0 when the server omits it."""
    value = getattr(getattr(usage, details, None), name, None)
    return int(value) if isinstance(value, int) and value > 0 else 0
