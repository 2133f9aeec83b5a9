"""What a run cost: its ``totals`` (calls, tokens, cost, estimated usage, failed attempts), zero when it is created
and summed from its ``model_call`` events when it finishes.

Apart from the run's writes (:mod:`agentmesh.store.run_lifecycle`) because the sum is where the store decides what a
run's figures mean -- an answered call without a price makes the run's cost unknown, not a partial sum -- and
listings, reports and exports all read those figures.
"""

from __future__ import annotations

from typing import Any

from agentmesh.store.records import EventKind
from agentmesh.store.statements import Statement, Tx

__all__ = ["summed_totals", "zero_totals"]


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


_CALL_TOTALS = Statement(
    "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
    "COALESCE(SUM(total_tokens), 0), SUM(cost_usd), "
    "COALESCE(MAX(CASE WHEN usage_estimated THEN 1 ELSE 0 END), 0), "
    "COALESCE(SUM(CASE WHEN error IS NOT NULL THEN 1 ELSE 0 END), 0), "
    "COALESCE(SUM(CASE WHEN error IS NULL AND cost_usd IS NULL THEN 1 ELSE 0 END), 0) "
    "FROM events WHERE run_id = :run_id AND kind = :kind"
)
