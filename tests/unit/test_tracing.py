"""OpenTelemetry spans of a run, only once the application has set a tracer provider (GenAI conventions).

The tests give ``opentelemetry.trace.get_tracer_provider`` an SDK provider exporting to memory for their duration
(OpenTelemetry's global provider can be set only once per process, and must stay unset for the other tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from agentmesh.errors import ScriptExhaustedError
from agentmesh.models import ScriptedModel
from agentmesh.models.messages import CallContext, CallRecord, Choice, ModelRequest, ModelResponse, Usage
from agentmesh.runtime import run
from agentmesh.runtime.tracing import call_attributes, tracing

AGREE_IN_ROUND_2 = [
    {"agent": "debater", "round": 1, "responses": ["\\boxed{50}", "\\boxed{51}", "\\boxed{52}"]},
    {"agent": "debater", "round": 2, "template": "\\boxed{51}"},
]


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    return exporter


def by_name(spans: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return sorted((s for s in spans if s.name.startswith(prefix)), key=lambda s: s.start_time or 0)


def test_nothing_is_traced_until_the_application_sets_a_provider(tmp_path: Path) -> None:
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert tracing() is None
    result = run("debate", {"question": "q"}, model=ScriptedModel(AGREE_IN_ROUND_2), store=f"sqlite:///{tmp_path}/r.db")
    assert result.answer == "51"


def test_a_run_is_a_tree_of_run_node_and_model_call_spans(exported: InMemorySpanExporter, tmp_path: Path) -> None:
    result = run("debate", {"question": "q"}, model=ScriptedModel(AGREE_IN_ROUND_2), store=f"sqlite:///{tmp_path}/r.db")
    spans = exported.get_finished_spans()
    (root,) = by_name(spans, "agentmesh.run ")
    nodes = by_name(spans, "agentmesh.node ")
    calls = by_name(spans, "chat ")
    assert root.name == "agentmesh.run debate" and root.parent is None
    assert root.attributes is not None
    assert (
        root.attributes["agentmesh.run.id"] == result.run_id and root.attributes["agentmesh.run.status"] == "succeeded"
    )
    assert root.attributes["agentmesh.run.calls"] == 6 and "consensus" in str(
        root.attributes["agentmesh.run.stop_reason"]
    )
    assert [n.name for n in nodes] == ["agentmesh.node debate", "agentmesh.node debate", "agentmesh.node vote"]
    assert all(n.parent is not None and n.parent.span_id == root.context.span_id for n in nodes)
    assert len(calls) == 6 and {s.context.trace_id for s in spans} == {root.context.trace_id}

    for call in calls:
        attributes = call.attributes or {}
        assert call.kind is SpanKind.CLIENT and call.status.status_code is StatusCode.UNSET
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == "agentmesh.scripted"
        assert int(attributes["gen_ai.usage.input_tokens"]) > 0 and int(attributes["gen_ai.usage.output_tokens"]) > 0
        assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
        assert attributes["agentmesh.node"] == "debate" and attributes["agentmesh.agent"] == "debater"
        # a call is the child of the node execution (the round) that made it, and lies within it
        parent = next(n for n in nodes if call.parent is not None and n.context.span_id == call.parent.span_id)
        assert parent.start_time is not None and parent.end_time is not None
        assert call.start_time is not None and call.end_time is not None and call.start_time <= call.end_time
        assert parent.start_time - 5_000_000 <= call.start_time and call.end_time <= parent.end_time + 5_000_000
    rounds = [(c.attributes or {})["agentmesh.round"] for c in calls]
    assert sorted(rounds) == [1, 1, 1, 2, 2, 2]
    assert "gen_ai.input.messages" not in (calls[0].attributes or {})  # no prompt or reply on spans


def test_a_failed_call_and_run_are_errors(exported: InMemorySpanExporter, tmp_path: Path) -> None:
    model = ScriptedModel(AGREE_IN_ROUND_2[:1])  # nothing answers round 2
    with pytest.raises(ScriptExhaustedError):
        run("debate", {"question": "q"}, model=model, store=f"sqlite:///{tmp_path}/r.db")
    spans = exported.get_finished_spans()
    (root,) = by_name(spans, "agentmesh.run ")
    failed = [s for s in by_name(spans, "chat ") if s.status.status_code is StatusCode.ERROR]
    assert len(failed) == 3
    assert all((s.attributes or {})["error.type"] == "ScriptExhaustedError" for s in failed)
    assert root.status.status_code is StatusCode.ERROR
    assert any(e.name == "exception" for e in root.events)  # the run's exception, recorded on its span


def test_cached_prompt_and_thinking_tokens_are_span_attributes_when_reported() -> None:
    request = ModelRequest.of("q", max_tokens=64)
    usage = Usage(prompt_tokens=900, completion_tokens=300, cached_prompt_tokens=512, reasoning_tokens=200)
    response = ModelResponse(model="m", choices=(Choice(text="a", finish_reason="stop"),), usage=usage)
    record = CallRecord(
        reference="openai:m", context=CallContext(run_id="r"), request=request, response=response, attempt=1
    )
    attributes = call_attributes(record)
    assert attributes["gen_ai.usage.input_tokens"] == 900 and attributes["gen_ai.usage.output_tokens"] == 300
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 512
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 200
    plain = record.model_copy(update={"response": response.model_copy(update={"usage": Usage(prompt_tokens=9)})})
    assert not {"gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.reasoning.output_tokens"} & set(
        call_attributes(plain)
    )


def test_spans_never_carry_a_key_an_error_quotes(exported: InMemorySpanExporter) -> None:
    # An error that quotes a key (a server's "Incorrect API key provided: sk-...") went whole into the spans'
    # status and the recorded exception's message and stack trace, which leave the process for the backend.
    key = "sk-proj-Zq9Xw8Vu7Ts6Rq5Po4Nm3Lk2"
    traced = tracing()
    assert traced is not None
    with (
        pytest.raises(RuntimeError),
        traced.run(graph="g", run_id="r", model="scripted:x", resumed=False),
        traced.node(name="n", op="call", iteration=0),
    ):
        ctx = CallContext(run_id="r", node="n", agent="a")
        record = CallRecord(
            reference="openai:m", context=ctx, request=ModelRequest.of("q"), attempt=1, error=f"401: key {key}"
        )
        traced.call(record)
        raise RuntimeError(f"401 Unauthorized: Incorrect API key provided: {key}")
    spans = exported.get_finished_spans()
    assert len(spans) == 3
    text = repr(
        [
            (s.name, s.status.description, dict(s.attributes or {}), [dict(e.attributes or {}) for e in s.events])
            for s in spans
        ]
    )
    assert key not in text and "[redacted]" in text
    (node,) = by_name(spans, "agentmesh.node ")
    (event,) = node.events
    assert event.name == "exception" and (event.attributes or {})["exception.type"] == "RuntimeError"
    assert node.status.status_code is StatusCode.ERROR
