"""The one client layer every model call goes through.

A :class:`ModelClient` wraps a provider with what all providers share: the endpoint's process-wide limits
(slots, requests/min, tokens/min), a per-attempt timeout, retries with exponential backoff and full jitter that
honour ``Retry-After``, token usage (estimated and flagged when the server omits it), cost from the price table,
and observers that see every attempt as it completes (the runtime records them in the store there, so a
finished call is durable before the next one starts).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

from agentmesh._sync import blocking
from agentmesh._text import lone_surrogate, mend_lone_surrogates
from agentmesh.errors import ModelError, ModelTimeoutError
from agentmesh.models._tokens import estimate_prompt_tokens, estimate_tokens, reserve_tokens
from agentmesh.models.limits import EndpointLimiter, limiter_for
from agentmesh.models.messages import (
    CallContext,
    CallRecord,
    Choice,
    ModelRequest,
    ModelResponse,
    Usage,
)
from agentmesh.models.pricing import cost_usd
from agentmesh.models.providers.base import Provider
from agentmesh.models.reasoning import split_reasoning
from agentmesh.models.settings import EndpointLimits, Price

T = TypeVar("T")

CallObserver = Callable[[CallRecord], Awaitable[None] | None]
"""Called with every attempt (failed ones too) as it completes; may be sync or async."""

#: Longest ``Retry-After`` we honour; a server asking for more is treated as down (the error is raised).
MAX_RETRY_AFTER_S = 300.0


def _is_retryable(exc: BaseException) -> bool:
    if not isinstance(exc, ModelError) or not exc.retryable:
        return False
    return exc.retry_after is None or exc.retry_after <= MAX_RETRY_AFTER_S


class _Backoff:
    """Tenacity wait: the server's ``Retry-After`` when given, else exponential backoff with full jitter."""

    def __init__(self, limits: EndpointLimits) -> None:
        self._jitter = wait_random_exponential(multiplier=max(limits.backoff_initial_s, 1e-3), max=limits.backoff_max_s)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ModelError) and exc.retry_after is not None:
            return max(exc.retry_after, 0.0)
        return float(self._jitter(state))


class ModelClient:
    """A provider plus limits, retries, usage, cost and observers.

    Build one with :func:`agentmesh.models.get_model` from a reference string, or directly around a provider
    (``ModelClient(ScriptedModel(...))``).
    """

    def __init__(
        self,
        provider: Provider,
        *,
        reference: str | None = None,
        limits: EndpointLimits | None = None,
        price: Price | None = None,
        observers: Sequence[CallObserver] = (),
    ) -> None:
        self.provider = provider
        self.reference = reference or f"{provider.name}:{provider.model_name}"
        self.limits: EndpointLimits = limits or provider.default_limits()
        self.price = price
        self._observers = list(observers)
        provider.use_limits(self.limits)
        self._limiter: EndpointLimiter = limiter_for(provider.endpoint, self.limits)

    def add_observer(self, observer: CallObserver) -> None:
        self._observers.append(observer)

    async def complete(
        self,
        request: ModelRequest,
        context: CallContext | None = None,
        *,
        observer: CallObserver | None = None,
        admitted: Callable[[], None] | None = None,
    ) -> ModelResponse:
        """Answer ``request``, retrying transient failures; raise the last :class:`ModelError` otherwise.

        When retries run out, the raised error says how many attempts were made (``context['attempts']``).
        ``admitted`` is called when an attempt has its endpoint's slot, just before it is sent: what it raises
        ends the call unsent (a run's budget spent while the call waited behind others for the endpoint).
        """
        ctx = context or CallContext()
        observers = [*self._observers, *([observer] if observer else [])]
        request_hash = request.request_hash()
        number = 1
        try:
            try:
                # The first attempt runs outside tenacity: setting up its retry loop costs more per call (~35 µs)
                # than the rest of this method, and most calls succeed at once.
                return await self._observed_attempt(request, ctx, 1, observers, request_hash, admitted)
            except ModelError as exc:
                if not _is_retryable(exc) or self.limits.max_retries < 1:
                    raise
                first_failure = exc
            retrying = AsyncRetrying(
                stop=stop_after_attempt(self.limits.max_retries + 1),
                retry=retry_if_exception(_is_retryable),
                wait=_Backoff(self.limits),
                reraise=True,
            )
            async for attempt in retrying:
                number = attempt.retry_state.attempt_number
                with attempt:
                    if number == 1:
                        # tenacity's attempt 1 is the one that already failed above (and was observed): handing
                        # it its error makes tenacity wait and retry exactly as if it had made that attempt itself
                        raise first_failure
                    return await self._observed_attempt(request, ctx, number, observers, request_hash, admitted)
        except ModelError as exc:
            if (exc.retryable or number > 1) and "attempts" not in exc.context:
                exc.context["attempts"] = number
                exc.message = f"{exc.message} (gave up after {number} attempt{'s' if number != 1 else ''})"
                exc.args = (exc.message,)
            _say_where(exc, ctx)
            raise
        raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover

    async def _observed_attempt(
        self,
        request: ModelRequest,
        ctx: CallContext,
        number: int,
        observers: Sequence[CallObserver],
        request_hash: str,
        admitted: Callable[[], None] | None = None,
    ) -> ModelResponse:
        """One attempt, reported to the observers whether it succeeds or fails."""
        record = functools.partial(
            CallRecord,
            reference=self.reference,
            context=ctx,
            request=request,
            attempt=number,
            request_hash=request_hash,
        )
        started = time.perf_counter()
        try:
            response = await self._attempt(request, ctx, number, admitted)
        except ModelError as exc:
            failed = record(
                error=str(exc),
                error_type=type(exc).__name__,
                latency_s=time.perf_counter() - started,
                finished_at=datetime.now(UTC),
            )
            await _notify(observers, failed)
            raise
        await _notify(observers, record(response=response, latency_s=response.latency_s, finished_at=datetime.now(UTC)))
        return response

    async def _attempt(
        self, request: ModelRequest, ctx: CallContext, number: int, admitted: Callable[[], None] | None = None
    ) -> ModelResponse:
        reserved = reserve_tokens(request)
        await self._limiter.admit(reserved)
        used = reserved
        try:
            if admitted is not None:
                try:
                    admitted()
                except BaseException:
                    used = 0  # never sent
                    raise
            started = time.perf_counter()
            try:
                result = await _within(self.limits.timeout_s, self.provider.complete(request, ctx))
            except TimeoutError as exc:
                raise ModelTimeoutError(
                    f"{self.reference}: no answer from {self.provider.endpoint} within "
                    f"{self.limits.timeout_s:g} s (endpoint timeout_s){timeout_hint(self.provider.endpoint)}",
                    endpoint=self.provider.endpoint,
                    timeout_s=self.limits.timeout_s,
                ) from exc
            latency = time.perf_counter() - started
            choices = [_answer_apart(_whole_text(c)) for c in result.choices]
            usage = self._usage(request, result.usage, choices)
            used = usage.total_tokens
        finally:
            self._limiter.done(reserved, used)
        cost = 0.0 if self.provider.free else cost_usd(self.price, usage)
        return ModelResponse(
            model=result.model or self.provider.model_name,
            choices=tuple(choices),
            usage=usage,
            latency_s=latency,
            cost_usd=cost,
            attempts=number,
        )

    @staticmethod
    def _usage(request: ModelRequest, reported: Usage | None, choices: Sequence[Choice]) -> Usage:
        if reported is not None:
            return reported
        return Usage(
            prompt_tokens=estimate_prompt_tokens(request) * max(1, len(choices)),
            completion_tokens=sum(estimate_tokens(c.text) + estimate_tokens(c.reasoning or "") for c in choices),
            estimated=True,
        )

    def complete_sync(self, request: ModelRequest, context: CallContext | None = None) -> ModelResponse:
        """Blocking form for scripts and notebooks without an event loop."""
        return blocking(self.complete(request, context), name="ModelClient.complete_sync", async_name="client.complete")

    async def aclose(self) -> None:
        await self.provider.aclose()

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"reference": self.reference, **self.provider.describe()}
        info["limits"] = self.limits.model_dump(exclude_none=True)
        if self.provider.free:
            info["price"] = "free"
        elif self.price is not None:
            cached = "" if self.price.cached_input is None else f" (${self.price.cached_input:g}/M cached)"
            info["price"] = f"${self.price.input:g}/M in{cached}, ${self.price.output:g}/M out"
        else:
            info["price"] = "unknown (cost recorded as n/a; set prices: in the config file)"
        return info


def _say_where(exc: ModelError, ctx: CallContext) -> None:
    """Put the call's place in its run (node, agent, round) at the head of ``exc``: the run's error and the line
    the CLI prints named the model and the problem but not which of a graph's calls met it (a prompt too long for
    the window is one agent's, in one round). Its failed attempts' events carry the place in their own fields."""
    if ctx.node is None or "node" in exc.context:
        return
    where = f"node {ctx.node!r}"
    if ctx.agent is not None:
        where += f": agent {ctx.agent!r}"
    if ctx.round:  # (round 0: a node outside any rounds)
        where += f", round {ctx.round}"
    exc.context.update(node=ctx.node, agent=ctx.agent, round=ctx.round or None)
    exc.message = f"{where}: {exc.message}"
    exc.args = (exc.message,)


def timeout_hint(endpoint: str) -> str:
    """What to change after a timeout, and where: a model that is slow rather than down (a long prompt on a CPU,
    a queue of requests ahead) answers within a longer ``timeout_s``, set under the endpoint's key (the first key
    :meth:`~agentmesh.models.settings.ModelSettings.limits_for` looks up)."""
    return (
        f"; if the model is slow rather than down (a long prompt on a CPU, requests queued ahead), give it longer in "
        f'the config file (.agentmesh/config.yaml, or $AGENTMESH_CONFIG): \'endpoints: {{"{endpoint}": '
        "{timeout_s: 600}}'"
    )


class _Expiry:
    """The timer of :func:`_within`: cancels the task once, and remembers that it did."""

    __slots__ = ("fired", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.fired = False

    def __call__(self) -> None:
        self.fired = True
        self.task.cancel()


async def _within(seconds: float, awaitable: Awaitable[T]) -> T:
    """``awaitable``'s result, or :class:`TimeoutError` after ``seconds``: ``asyncio.timeout`` for one await.

    The same mechanism (a timer that cancels this task; the cancellation turned into ``TimeoutError`` only when
    it was the timer's and nobody else's, by the task's cancel count), without ``asyncio.timeout``'s context
    manager: its two coroutines, state checks and task lookups cost 5-13 µs an attempt, paid on every model call
    (this costs ~3). Not ``wait_for``: that wraps the awaitable in a task of its own.
    """
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("a model call's timeout needs a running task")
    loop = asyncio.get_running_loop()
    expiry = _Expiry(task)
    handle = loop.call_at(loop.time() + seconds, expiry)
    try:
        result = await awaitable
    except asyncio.CancelledError:
        if expiry.fired and task.uncancel() == 0:
            raise TimeoutError from None  # the timer's cancellation, and only the timer's
        raise
    finally:
        handle.cancel()
    if expiry.fired:
        # the timer fired but the awaitable swallowed the cancellation and answered: keep the answer, and take
        # the timer's cancel request back so the task's cancel count stays balanced (as asyncio.timeout does)
        task.uncancel()
    return result


def _whole_text(choice: Choice) -> Choice:
    """``choice`` with lone surrogates in its text replaced by U+FFFD: a server that cuts an emoji in half at
    ``max_tokens`` sends ``"\\ud83d"`` in its JSON, which decodes to a string no encoder accepts, so the answer could
    be neither stored, checkpointed nor printed, and the run failed. ``isascii`` is O(1): ASCII replies cost no scan."""
    fixed: dict[str, str] = {}
    for field in ("text", "reasoning"):
        value = getattr(choice, field)
        if value is not None and lone_surrogate(value) is not None:
            fixed[field] = mend_lone_surrogates(value)
    return choice.model_copy(update=fixed) if fixed else choice


def _answer_apart(choice: Choice) -> Choice:
    """``choice`` with inline reasoning moved out of its text (unless its provider reported it apart)."""
    if choice.reasoning is not None:
        return choice
    reasoning, answer = split_reasoning(choice.text)
    if reasoning is None:
        return choice
    return choice.model_copy(update={"text": answer, "reasoning": reasoning or None})


async def _notify(observers: Sequence[CallObserver], record: CallRecord) -> None:
    for observer in observers:
        result = observer(record)
        if inspect.isawaitable(result):
            await result
