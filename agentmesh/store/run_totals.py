"""What a run cost: its ``totals`` (calls, tokens, cost, estimated usage, failed attempts), zero when it is created
and summed from its ``model_call`` events when it finishes.

Apart from the run's writes (:mod:`agentmesh.store.run_lifecycle`) because the sum is where the store decides what a
run's figures mean -- an answered call without a price makes the run's cost unknown, not a partial sum -- and
listings, reports and exports all read those figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from agentmesh.store.records import EventKind
from agentmesh.store.statements import Statement, Tx

__all__ = ["running_totals", "summed_totals", "zero_totals"]


def zero_totals() -> dict[str, Any]:
    """The totals of a run that has made no call yet."""
    return {
        "calls": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cost_usd": 0.0,
        "estimated_tokens": False,
        "errors": 0,
    }


def summed_totals(tx: Tx, run_id: str) -> dict[str, Any]:
    """The totals of the run's ``model_call`` events so far, read in ``tx`` (the one that finishes the run, with
    its row locked, so that no event is added between the sum and the run's end)."""
    agg = tx.execute(_CALL_TOTALS, {"run_id": run_id, "kind": EventKind.MODEL_CALL.value}).fetchone()
    return _totals(agg)


def running_totals(conn: sa.Connection, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The totals of each of ``run_ids``' ``model_call`` events so far, by run id (one query): what a listing shows
    for a run still marked running, whose stored totals are summed only when it ends. ``agentmesh runs`` and
    ``show`` said "0 calls, 0 tokens" for every run of a batch in progress, and for one a SIGKILL left running,
    beside a timeline of its calls. A run without a call is left out (its stored zeros are right)."""
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(run_ids), _IDS_AT_ONCE):  # a long listing (runs -n 5000) within SQLite's limits
        chunk = list(run_ids[start : start + _IDS_AT_ONCE])
        rows = conn.execute(_RUNS_CALL_TOTALS, {"run_ids": chunk, "kind": EventKind.MODEL_CALL.value})
        out.update((str(row[0]), _totals(row[1:])) for row in rows)
    return out


def _totals(agg: Sequence[Any]) -> dict[str, Any]:
    return {
        "calls": int(agg[0]),
        "prompt_tokens": int(agg[1]),
        "completion_tokens": int(agg[2]),
        "total_tokens": int(agg[3]),
        # unknown when an answered call's price is (a model missing from the price table): a sum of the
        # others would pass for the run's cost, "$0" beside an embedded model's free calls. Failed attempts
        # cost what they recorded, if anything: none answered (or no call at all) is $0, not unknown
        "cost_usd": None if int(agg[7]) else float(agg[4] or 0.0),
        "estimated_tokens": bool(agg[5]),
        "errors": int(agg[6]),
    }


_SUMS = (
    "COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
    "COALESCE(SUM(total_tokens), 0), SUM(cost_usd), "
    "COALESCE(MAX(CASE WHEN usage_estimated THEN 1 ELSE 0 END), 0), "
    "COALESCE(SUM(CASE WHEN error IS NOT NULL THEN 1 ELSE 0 END), 0), "
    "COALESCE(SUM(CASE WHEN error IS NULL AND cost_usd IS NULL THEN 1 ELSE 0 END), 0) "
)
_CALL_TOTALS = Statement(f"SELECT {_SUMS}FROM events WHERE run_id = :run_id AND kind = :kind")
#: Run ids in one query of :func:`running_totals` (SQLite before 3.32 takes at most 999 parameters).
_IDS_AT_ONCE = 500
_RUNS_CALL_TOTALS = sa.text(
    f"SELECT run_id, {_SUMS}FROM events WHERE run_id IN :run_ids AND kind = :kind GROUP BY run_id"
).bindparams(sa.bindparam("run_ids", expanding=True))
