"""What a stored run produced, read back: its node outputs (from its last checkpoint, or an imported run's
record), its final answer, the answers a listing shows; and whether it is an ``agentmesh ask`` call (one model
call, no graph) rather than a graph run.

Apart from :mod:`agentmesh.runtime.run` because the commands that look back at runs (``runs``, ``show``, replay,
reports) read these without running anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agentmesh.errors import AgentmeshError
from agentmesh.runtime.compile import node_outputs
from agentmesh.runtime.operators.basic import answer_of
from agentmesh.spec.graph import GraphSpec
from agentmesh.spec.loader import stored_graph
from agentmesh.store import RunRecord, RunStatus, Store


def is_ask_call(record: RunRecord) -> bool:
    """Whether ``record`` is an ``agentmesh ask`` call: one model call with no graph, so nothing to resume, replay
    or fork (reading its stored spec said "(stored spec): expected a mapping", as if the store were damaged)."""
    return record.graph == "ask" and "spec" not in record.meta


def ask_call_refusal(run_ids: Sequence[str], what: str) -> str:
    """Why the ``agentmesh ask`` calls ``run_ids`` cannot be given to ``what`` (resume, replay...)."""
    runs = ", ".join(run_ids)
    one = len(run_ids) == 1
    return (
        f"run {runs} {'is one' if one else 'are'} 'agentmesh ask' call{'' if one else 's'}, not a graph "
        f"run{'' if one else 's'}: there is nothing to {what}; ask again"
    )


def stored_outputs(store: Store, spec: GraphSpec, run_id: str) -> dict[str, Any] | None:
    """A run's node outputs as its last checkpoint holds them, or as an imported run carries them (its
    ``final_outputs`` event); ``None`` when neither exists."""
    saved = store.checkpointer().get_tuple({"configurable": {"thread_id": run_id, "checkpoint_ns": ""}})
    if saved is not None:
        return node_outputs(spec, dict(saved.checkpoint["channel_values"]))
    carried = store.events(run_id, kind="final_outputs")
    return dict(carried[-1].data) if carried and isinstance(carried[-1].data, dict) else None


def stored_answers(store: Store, records: Iterable[RunRecord]) -> dict[str, Any]:
    """The final answer of each run that ended with one (succeeded, or stopped with its best answer so far), by
    run id, read from the run's last checkpoint with the spec it ran: what ``agentmesh runs`` lists and a batch is
    scored on long after it ran. Runs that failed, were interrupted or are running have none, and so does a run
    whose spec cannot be read here (an operator of the user's own, its module not imported): a listing never
    fails on one run."""
    specs: dict[str | None, GraphSpec | None] = {}
    out: dict[str, Any] = {}
    for record in records:
        if record.status not in (RunStatus.SUCCEEDED, RunStatus.STOPPED):
            continue
        if record.spec_hash not in specs:  # a batch's runs share one spec: read it once
            stored = record.meta.get("spec")
            try:
                specs[record.spec_hash] = stored_graph(dict(stored), record.id) if isinstance(stored, Mapping) else None
            except AgentmeshError:
                specs[record.spec_hash] = None
        spec = specs[record.spec_hash]
        if spec is None:
            if is_ask_call(record):  # ``agentmesh ask``: one call, its reply
                out.update(_ask_answer(store, record.id))
            continue
        try:
            outputs = stored_outputs(store, spec, record.id)
        except AgentmeshError:
            continue
        if outputs is not None:
            out[record.id] = final_answer(spec, outputs)["answer"]
    return out


def _ask_answer(store: Store, run_id: str) -> dict[str, Any]:
    """The reply of an ``agentmesh ask`` run (no graph: its one call's text), so a listing shows it beside the
    graphs' answers rather than "-"."""
    for event in reversed(store.events(run_id, kind="model_call")):
        choices = (event.response or {}).get("choices") or []
        if choices and choices[0].get("text") is not None:
            return {run_id: choices[0]["text"]}
    return {}


def final_answer(spec: GraphSpec, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The output node's answer; when the run stopped before it, the best answer so far (the majority of the
    latest node that has answers).

    A node the budget stopped before it got any answer (``stopped``, neither ``answers`` nor an ``answer``) counts
    as not run: a ``call`` so cut outputs ``answer: None``, and a run whose budget ran out just before its last call
    answered None, not the vote it had already reached. (One that answers when stopped, as ALU fails closed with
    its refusal, is taken at its word.)"""
    order = [spec.output_node(), *reversed(list(spec.nodes))]
    for name in order:
        out = outputs.get(name)
        if not out or not isinstance(out, Mapping):  # (an imported or hand-edited run's node result, unchecked)
            continue
        if out.get("stopped") and not out.get("answers") and out.get("answer") is None:
            continue
        if "answer" in out:
            return {k: out.get(k) for k in ("answer", "value", "text")}
        if out.get("answers"):
            return answer_of(list(out["answers"]))
    return {"answer": None, "value": None, "text": None}
