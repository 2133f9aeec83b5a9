"""What the store hands back: immutable records of runs and events, exportable as JSON.

They are pydantic models (frozen) rather than rows so callers get typed attributes, validation of what came
out of the database, and ``model_dump(mode="json")`` for ``agentmesh show --json`` and exports.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class RunStatus(StrEnum):
    """Where a run is. Every status but ``running`` is final and comes with a stop reason.

    A run that a stop policy or a budget ends early (consensus, a score threshold, ``--max-calls``...) has
    *succeeded*: it ends with its best answer so far, and its stop reason says why (``budget: 5 model calls``).
    ``stopped`` is never set by agentmesh's runtime; it is for applications that record runs of their own
    (:meth:`~agentmesh.store.Store.finish_run`) and stop them on purpose, and reads like ``succeeded`` where an
    answer is looked for.
    """

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    STOPPED = "stopped"


class EventKind(StrEnum):
    """The kinds of events agentmesh itself records (callers may record others)."""

    MODEL_CALL = "model_call"
    NODE_RESULT = "node_result"
    SCORE = "score"
    RATING = "rating"
    LOG = "log"


class RunRecord(BaseModel):
    """One run of a graph: what went in, how it ended, and what it cost.

    ``totals`` holds ``calls``, ``prompt_tokens``, ``completion_tokens``, ``total_tokens``, ``cost_usd``
    (``None`` when a call's price is unknown: a partial sum would pass for the run's cost), ``estimated_tokens``
    (some usage was estimated, not reported by the server) and ``errors`` (failed call attempts). It is computed
    from the run's events when it finishes.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    graph: str
    spec_hash: str | None
    inputs: dict[str, Any]
    status: RunStatus
    stop_reason: str | None
    parent_run_id: str | None
    model: str | None
    totals: dict[str, Any]
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    meta: dict[str, Any]
    schema_version: int


class EventRecord(BaseModel):
    """One thing that happened in a run, in order (``seq``): a model call attempt, a node result, a score..."""

    model_config = ConfigDict(frozen=True)

    id: int
    run_id: str
    seq: int
    kind: str
    node: str | None
    agent: str | None
    round: int | None
    call_index: int | None
    attempt: int | None
    request: Any
    request_hash: str | None
    response: Any
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    usage_estimated: bool
    latency_s: float | None
    cost_usd: float | None
    error: str | None
    data: Any
    created_at: datetime
    schema_version: int
