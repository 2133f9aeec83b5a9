"""OpenTelemetry spans of a run, only when the application set OpenTelemetry up (DESIGN: no telemetry; optional spans
following the GenAI semantic conventions when configured).

agentmesh never configures OpenTelemetry itself and sends nothing anywhere. When ``opentelemetry-api`` is installed
and the application has set a tracer provider (``trace.set_tracer_provider(...)``, or an auto-instrumentation
agent did), each run gets a span tree that any OpenTelemetry backend (Jaeger, Tempo, Phoenix, Langfuse...) shows:

* ``agentmesh.run <graph>`` -- the whole run (its id, graph, model, how it ended, calls, tokens, cost);
* ``agentmesh.node <node>`` -- each execution of a node (a round of a ``rounds`` node is one);
* ``chat <model>`` -- each model call attempt, a CLIENT span with the GenAI conventions' attributes
  (``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.*``, ``gen_ai.response.*``,
  ``gen_ai.usage.*``, ``error.type``) and agentmesh's (run, node, agent, round, call index, attempt, cost).

Prompts and replies are not put on spans: they may hold what a user would not send to a tracing backend, and the
store already keeps them (redacted). Without a configured provider :func:`tracing` returns ``None`` and no span
code runs at all: a run costs what it cost before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from agentmesh.models.messages import CallRecord
from agentmesh.models.reference import parse_reference
from agentmesh.store._redact import mask_secrets

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

_PROVIDERS = {"openai": "openai", "llamacpp": "llama_cpp", "local": "llama_cpp", "scripted": "agentmesh.scripted"}


def tracing() -> Tracing | None:
    """The run's tracing when OpenTelemetry is installed and an application set a tracer provider, else ``None``."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None  # nobody set one up: OpenTelemetry's defaults, which would drop every span anyway
    from agentmesh import __version__

    return Tracing(provider.get_tracer("agentmesh", __version__))


class Tracing:
    """The spans of one run (see the module docstring)."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    @contextmanager
    def run(self, *, graph: str, run_id: str, model: str, resumed: bool) -> Iterator[Span]:
        """The run's span, current while the graph executes (nodes and calls become its children)."""
        attributes: dict[str, Any] = {
            "agentmesh.run.id": run_id,
            "agentmesh.graph": graph,
            "agentmesh.model": model,
            "agentmesh.run.resumed": resumed,
        }
        with (
            self.tracer.start_as_current_span(
                f"agentmesh.run {graph}", attributes=attributes, record_exception=False, set_status_on_exception=False
            ) as span,
            _recording_exceptions(span),
        ):
            yield span

    @contextmanager
    def node(self, *, name: str, op: str, iteration: int) -> Iterator[Span]:
        """A node's execution, current while its operator runs (its model calls become children)."""
        attributes: dict[str, Any] = {"agentmesh.node": name, "agentmesh.node.op": op}
        if iteration:
            attributes["agentmesh.node.iteration"] = iteration
        with (
            self.tracer.start_as_current_span(
                f"agentmesh.node {name}", attributes=attributes, record_exception=False, set_status_on_exception=False
            ) as span,
            _recording_exceptions(span),
        ):
            yield span

    def call(self, record: CallRecord) -> None:
        """A model call attempt as a CLIENT span, from its start to its end (a :data:`CallObserver`)."""
        from opentelemetry.trace import SpanKind, Status, StatusCode

        end_ns = int(record.finished_at.timestamp() * 1e9) if record.finished_at is not None else None
        start_ns = None if end_ns is None else end_ns - int(record.latency_s * 1e9)
        attributes = call_attributes(record)
        model = attributes.get("gen_ai.request.model") or record.reference
        span = self.tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes, start_time=start_ns)
        if record.error is not None:
            span.set_status(Status(StatusCode.ERROR, mask_secrets(record.error)[:500]))
        span.end(end_time=end_ns)


@contextmanager
def _recording_exceptions(span: Span) -> Iterator[None]:
    """What OpenTelemetry's ``record_exception`` does, with the exception's message and traceback masked as the
    store masks them: an error may quote a key (a server's "invalid key sk-..."), and spans leave the process."""
    try:
        yield
    except BaseException as exc:
        import traceback

        from opentelemetry.trace import Status, StatusCode

        message = mask_secrets(str(exc))
        span.add_event(
            "exception",
            {
                "exception.type": type(exc).__qualname__,
                "exception.message": message,
                "exception.stacktrace": mask_secrets("".join(traceback.format_exception(exc))),
                "exception.escaped": "False",
            },
        )
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {message}"))
        raise


def finish_run(span: Span, *, status: str, stop_reason: str | None, totals: dict[str, Any] | None) -> None:
    """What the run's span says of how it ended."""
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("agentmesh.run.status", status)
    if stop_reason:
        span.set_attribute("agentmesh.run.stop_reason", mask_secrets(stop_reason))
    for key in ("calls", "prompt_tokens", "completion_tokens", "cost_usd"):
        value = (totals or {}).get(key)
        if value is not None:
            span.set_attribute(f"agentmesh.run.{key}", value)
    if status != "succeeded":
        span.set_status(Status(StatusCode.ERROR, mask_secrets(stop_reason or status)))


def call_attributes(record: CallRecord) -> dict[str, Any]:
    """The GenAI semantic conventions' attributes of a model call (and agentmesh's), from its record."""
    ctx, sampling = record.context, record.request.sampling
    out: dict[str, Any] = {"gen_ai.operation.name": "chat"}
    try:
        ref = parse_reference(record.reference)
        provider, model, base_url = ref.provider, ref.target, ref.base_url
    except Exception:  # an alias or a reference of a provider registered elsewhere: say what is known
        provider, model, base_url = record.reference.split(":", 1)[0], record.reference, None
    out["gen_ai.provider.name"] = _PROVIDERS.get(provider, provider)
    out["gen_ai.request.model"] = model or record.reference  # "local": the embedded default, named by its reference
    if base_url:
        parts = urlsplit(base_url)
        if parts.hostname:
            out["server.address"] = parts.hostname
        if parts.port:
            out["server.port"] = parts.port
    for name, value in (
        ("temperature", sampling.temperature),
        ("top_p", sampling.top_p),
        ("max_tokens", sampling.max_tokens),
        ("seed", sampling.seed),
    ):
        if value is not None:
            out[f"gen_ai.request.{name}"] = value
    if sampling.n != 1:
        out["gen_ai.request.choice.count"] = sampling.n
    response = record.response
    if response is not None:
        out["gen_ai.response.model"] = response.model
        out["gen_ai.response.finish_reasons"] = [c.finish_reason or "unknown" for c in response.choices]
        out["gen_ai.usage.input_tokens"] = response.usage.prompt_tokens
        out["gen_ai.usage.output_tokens"] = response.usage.completion_tokens
        if response.usage.cached_prompt_tokens:  # (both included in the counts above, as the conventions ask)
            out["gen_ai.usage.cache_read.input_tokens"] = response.usage.cached_prompt_tokens
        if response.usage.reasoning_tokens:
            out["gen_ai.usage.reasoning.output_tokens"] = response.usage.reasoning_tokens
        if response.cost_usd is not None:
            out["agentmesh.cost_usd"] = response.cost_usd
    if record.error is not None:
        out["error.type"] = record.error_type or "error"
    agentmesh = {
        "agentmesh.run.id": ctx.run_id,
        "agentmesh.node": ctx.node,
        "agentmesh.agent": ctx.agent,
        "agentmesh.round": ctx.round,
        "agentmesh.call_index": ctx.call_index,
        "agentmesh.attempt": record.attempt,
    }
    out.update({k: v for k, v in agentmesh.items() if v is not None})
    return out
