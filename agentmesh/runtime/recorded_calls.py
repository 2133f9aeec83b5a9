"""A stored run's finished model calls, as the runtime reads them back: what a resume, a replay or a fork serves
instead of calling (keyed by where each call sits in the run), and how a new request is told apart from a recorded
one (the prompt diff a replay's divergence shows).

:mod:`agentmesh.runtime.context` serves these calls during a run; :mod:`agentmesh.runtime.recorded_model` serves
them to ``agentmesh ask`` and to a ``replay:`` model outside one. Nothing here imports SQLAlchemy: the store is
passed in.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentmesh.models.messages import ModelRequest, ModelResponse
from agentmesh.store._redact import REDACTED
from agentmesh.store.records import EventRecord

if TYPE_CHECKING:
    from agentmesh.store import Store

CallKey = tuple[str, str, int, int]
"""(node, agent, round, call index): where a call sits in a run; unique within the run."""


@dataclass(frozen=True)
class RecordedCall:
    """A finished model call of a stored run: what resume and replay serve back (and a fork copies)."""

    request_hash: str
    response: ModelResponse
    event: EventRecord


#: Event kinds holding finished model calls: made by the run, or served to a fork from its parent.
CALL_KINDS = ("model_call", "replayed_call")


def load_recorded(
    store: Store, run_id: str, *, keep: Callable[[EventRecord], bool] | None = None
) -> dict[CallKey, RecordedCall]:
    """The successful model calls of a run, by call key: what a resume or a replay serves instead of calling.

    ``keep`` selects some of them (a fork's prefix). Events come in order, so the last attempt of a key wins.
    """
    return index_recorded(store, run_id, keep=keep)[0]


def index_recorded(
    store: Store, run_id: str, *, keep: Callable[[EventRecord], bool] | None = None
) -> tuple[dict[CallKey, RecordedCall], dict[str, RecordedCall]]:
    """The successful model calls of a run by call key (see :func:`load_recorded`), and every one of them by
    request hash, the first of each, placed or not: a call made outside a graph (``agentmesh ask``) has no node
    or agent, so no key, but a ``replay:`` model still serves its prompt."""
    placed: dict[CallKey, RecordedCall] = {}
    by_hash: dict[str, RecordedCall] = {}
    for event in _call_events(store, run_id):
        if event.response is None or (keep is not None and not keep(event)):
            continue
        call = RecordedCall(event.request_hash or "", ModelResponse.model_validate(event.response), event)
        if event.request_hash:
            by_hash.setdefault(event.request_hash, call)
        if event.node is not None and event.agent is not None:
            placed[(event.node, event.agent, event.round or 0, event.call_index or 0)] = call
    return placed, by_hash


def _call_events(store: Store, run_id: str) -> Iterable[EventRecord]:
    return [e for e in store.events(run_id) if e.kind in CALL_KINDS]


def replayed_fields(event: EventRecord) -> dict[str, Any]:
    """A recorded call's fields for a ``replayed_call`` event: the same request and response, no cost of its own."""
    return {
        "node": event.node,
        "agent": event.agent,
        "round": event.round,
        "call_index": event.call_index,
        "attempt": event.attempt,
        "request": event.request,
        "request_hash": event.request_hash,
        "response": event.response,
        "prompt_tokens": event.prompt_tokens,
        "completion_tokens": event.completion_tokens,
        "total_tokens": event.total_tokens,
        "usage_estimated": event.usage_estimated,
        "latency_s": event.latency_s,
        "data": {"replayed_from": event.run_id, "event_seq": event.seq},
    }


def prompt_text(request: ModelRequest | Any) -> str:
    if isinstance(request, ModelRequest):
        return "\n".join(f"[{m.role}] {m.content}" for m in request.messages)
    messages = (request or {}).get("messages") or [] if isinstance(request, Mapping) else []
    return "\n".join(f"[{m.get('role')}] {m.get('content')}" for m in messages if isinstance(m, Mapping))


def quoted_a_secret(recorded: Any, request: ModelRequest) -> bool:
    """Whether a recorded call and a new one differ only because the run's own prompt quoted a secret.

    The store keeps a prompt with the secret masked (``[redacted]``) but the request hash of what was sent, so a
    replay, which builds the prompt from the masked inputs, sends the same text as the record and still cannot
    match the hash. Said as a changed graph or sampling, that sent people looking for an edit never made."""
    text = prompt_text(recorded)
    return REDACTED in text and text == prompt_text(request) and not _sampling_changes(recorded, request)


def _sampling_changes(recorded: Any, request: ModelRequest) -> dict[str, tuple[Any, Any]]:
    """The sampling fields whose recorded value differs from the request's, as (recorded, now); the record spells
    every field, unset ones as ``None``, which is no change."""
    before = recorded.get("sampling") if isinstance(recorded, Mapping) else None
    before = before if isinstance(before, Mapping) else {}
    now = request.to_json()["sampling"]
    return {k: (before.get(k), now.get(k)) for k in sorted({*before, *now}) if before.get(k) != now.get(k)}


def prompt_diff(recorded: Any, request: ModelRequest) -> str:
    """A unified diff from the recorded request's messages to the new one's (sampling changes noted too)."""
    before, after = prompt_text(recorded).splitlines(), prompt_text(request).splitlines()
    diff = "\n".join(difflib.unified_diff(before, after, "recorded prompt", "prompt now", lineterm="", n=2))
    if not diff and isinstance(recorded, Mapping):
        if quoted_a_secret(recorded, request):
            return (
                f"(same messages as stored: the secret is stored masked as {REDACTED}, so the prompt the run sent "
                f"cannot be rebuilt to check this call against)"
            )
        changes = _sampling_changes(recorded, request)
        diff = "(same messages; sampling " + (
            ", ".join(f"{k} recorded {was!r}, now {now!r}" for k, (was, now) in changes.items()) + ")"
            if changes
            else "the same too)"
        )
    return diff
