"""ALU as a graph node: ``op: alu`` runs :func:`~agentmesh.systems.alu.pipeline.run_alu` with the graph's agent
cards as the five roles (``graphs/alu.yaml``).

Every agent call goes through the run context (:meth:`RunContext.ask`), so it is recorded as it completes,
served back on resume and replay, and counted against the run's budget; execution stays LangGraph's. Calls are
keyed ``(node, agent, round, slot)`` with one round per role (vanilla 1, auditor 2, eraser 3, critic 4, composer
5, extractor 6) and the slot numbering critic samples and parallel rewrites, so one card may play several roles.

The node's output is the final answer (``answer``/``text``/``value``), the ``decision`` and ``stop_reason``, and
``alu``: everything §12.2 asks to record (target set and version, lexical hits, semantic scores of S, S, audit
status and M, candidates, critic samples and scores, ranking, Top, decision, stop reason), which is also stored
as the node's ``node_result`` event.

Targets come from the graph input ``target_set`` when it is given, else from ``targets`` (a list of records with
the §3.1 fields, or of names). ``target_set`` names, in this order: a target set in **the run's store** (its
current version when the node runs, pinned for the run: the store records the version in ``target_pins`` and
the node's output says it in ``alu.target_set``, so a resumed run reads the same version and a replay, whose
scratch database gets the pinned targets copied in, reads the same targets), a set registered in this process,
or a JSONL file. Snapshots are cached by content (sets: by version), so a batch over one target list builds the
alias index and the embedding matrix once. The baselines read their targets the same way (:func:`read_targets`),
so a stored set is pinned for them too.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from agentmesh.errors import ConfigError, StoreError
from agentmesh.parsers import extract_json
from agentmesh.runtime.budget import BudgetExhausted
from agentmesh.runtime.operators.registry import NodeOutput, NodeRun, operator
from agentmesh.spec.operators import OperatorParams
from agentmesh.systems.alu.pipeline import (
    DEFAULT_REFUSAL,
    AluAgents,
    AluConfig,
    AuditRequest,
    ComposeRequest,
    CriticRequest,
    EraseRequest,
    ExtractRequest,
    run_alu,
)
from agentmesh.systems.alu.registry import (
    cached_store_snapshot,
    get_target_set,
    load_targets_jsonl,
    snapshot_from_store,
    targets_of_records,
)
from agentmesh.systems.alu.semantic import (
    FRESH_VECTORS,
    STORED_VECTORS,
    EmbeddingScorer,
    LexicalOnly,
    SemanticScorer,
    embedder_from_ref,
)
from agentmesh.systems.alu.targets import DEFAULT_MIN_ALIAS_LEN, TargetSnapshot

if TYPE_CHECKING:
    from agentmesh.store import Store

__all__ = ["AluParams", "alu_node", "read_targets", "snapshot_from_input", "stored_snapshot"]

_ROUNDS = {"vanilla": 1, "auditor": 2, "eraser": 3, "critic": 4, "composer": 5, "extractor": 6}
_TARGET_VARS = frozenset({"targets_block", "target_names", "targets_repr", "reference"})


class AluParams(OperatorParams):
    """``op: alu``: the agents playing each role and ALU's knobs (alu.md §12.1, defaults as there)."""

    vanilla: str = Field(default="vanilla", description="The model being unlearned (unguarded).")
    auditor: str = "auditor"
    eraser: str = "eraser"
    critic: str = "critic"
    composer: str = "composer"
    extractor: str | None = Field(
        default=None, description="reference_compat only: the released code's second call that lists the ratings."
    )
    query_from: str = Field(default="query", description="The graph input holding the question.")
    targets_from: str = Field(default="targets", description="The graph input holding target records or names.")
    target_set_from: str = Field(
        default="target_set",
        description="The graph input naming a target set (in the run's store, else registered in this process) "
        "or a JSONL file; used when it is non-empty.",
    )
    k: int = Field(default=5, ge=1)
    j: int = Field(default=3, ge=1)
    tau: float | str = Field(default="4", description="Gate threshold on the top-j mean (exact; '9/2' allowed).")
    m: int = Field(default=16, ge=0)
    tau_sem: float | None = Field(default=None, description="Semantic threshold; default the embedder's (0.35).")
    critic_samples: int = Field(default=1, ge=1)
    min_alias_len: int = Field(default=DEFAULT_MIN_ALIAS_LEN, ge=1)
    force_flag_lexical: Literal["response", "none"] = "response"
    on_unresolved: Literal["erase", "pass"] = "erase"
    erase_mode: Literal["single", "parallel"] = "single"
    member_min_score: float | str | None = None
    refusal_text: str = DEFAULT_REFUSAL
    embedder: str = Field(
        default="hashing",
        description="Semantic matcher: 'hashing' (no model), 'openai:<model>[@<base url>]' (/v1/embeddings) "
        "or 'none' (lexical hits only).",
    )
    reference_compat: bool | Literal["hf_checker"] = False

    outputs: ClassVar[frozenset[str] | None] = frozenset({"answer", "value", "text", "decision", "stop_reason", "alu"})

    def agents_used(self) -> list[tuple[str, str]]:
        used = [(role, getattr(self, role)) for role in ("vanilla", "auditor", "eraser", "critic", "composer")]
        return used + ([("extractor", self.extractor)] if self.extractor else [])

    def provides_for(self, field_path: str) -> frozenset[str]:
        """Each role's template variables (the slots of alu.md §4) beyond the graph inputs."""
        by_role: dict[str, frozenset[str]] = {
            "vanilla": frozenset({"query"}),
            "auditor": _TARGET_VARS | {"query", "vanilla"},
            "eraser": _TARGET_VARS | {"query", "vanilla", "k", "refusal_text"},
            "critic": _TARGET_VARS
            | {"query", "responses_block", "responses_repr", "candidates", "K", "sample", "target_present"},
            "composer": frozenset({"blocks", "block_list", "target_names", "targets_repr", "reference"}),
            "extractor": frozenset({"critic_reply", "n_candidates"}),
        }
        return by_role.get(field_path, frozenset())

    def config(self) -> AluConfig:
        return AluConfig(
            k=self.k,
            j=self.j,
            tau=Fraction(str(self.tau)),
            m=self.m,
            tau_sem=self.tau_sem,
            critic_samples=self.critic_samples,
            min_alias_len=self.min_alias_len,
            force_flag_lexical=self.force_flag_lexical,
            on_unresolved=self.on_unresolved,
            erase_mode=self.erase_mode,
            member_min_score=None if self.member_min_score is None else Fraction(str(self.member_min_score)),
            refusal_text=self.refusal_text,
            reference_compat=self.reference_compat,
        )


class _NodeAgents:
    """The roles as recorded agent calls of this node."""

    def __init__(self, run: NodeRun, params: AluParams) -> None:
        self.run = run
        self.params = params
        self._erase_slot = -1

    async def _ask(self, role: str, variables: dict[str, Any], slot: int = 0) -> str:
        agent = getattr(self.params, role)
        ctx = self.run.ctx
        card = ctx.spec.agents[agent]
        answer = await ctx.ask(
            node=self.run.call_node,
            agent=agent,
            slot=slot,
            round=_ROUNDS[role],
            variables=ctx.variables(self.run.outputs, card, variables),
        )
        return answer.text

    async def answer(self, query: str) -> str:
        return await self._ask("vanilla", {"query": query})

    async def audit(self, request: AuditRequest) -> str:
        return await self._ask("auditor", request.variables())

    async def erase(self, request: EraseRequest) -> str:
        self._erase_slot += 1  # parallel rewrites get slots 0..k-1 in the order they were started
        return await self._ask("eraser", request.variables(), slot=self._erase_slot)

    async def rate(self, request: CriticRequest) -> str:
        return await self._ask("critic", request.variables(), slot=request.sample)

    async def compose(self, request: ComposeRequest) -> str:
        return await self._ask("composer", request.variables())

    async def extract(self, request: ExtractRequest) -> list[int | float]:
        reply = await self._ask(
            "extractor", {"critic_reply": request.critic_reply, "n_candidates": request.n_candidates}
        )
        found = extract_json(reply, "array")
        if not isinstance(found, list):
            return []
        return [x for x in found if isinstance(x, int | float) and not isinstance(x, bool)]

    def agents(self) -> AluAgents:
        return AluAgents(self, self, self, self, self, extractor=self if self.params.extractor else None)


_snapshots: OrderedDict[str, TargetSnapshot] = OrderedDict()
_snapshots_lock = threading.Lock()
_KEEP = 16
"""Entries kept: a snapshot of an inline list is kept under its content's digest and under its input's
(:func:`_input_digest`), so 16 entries hold the last 8 lists, as before."""


def _input_digest(value: list[Any] | tuple[Any, ...], min_alias_len: int) -> str | None:
    """A key for an inline target list as it was given, before any check: the same list given again (every item of
    a batch, or the run's input check before its node, :mod:`~agentmesh.systems.alu.input_check`) is then found
    without checking its records again, which costs O(N) (1000 records: tens of milliseconds). ``None`` for a
    value that is not plain JSON (it is checked every time, and refused by the check)."""
    try:
        raw = json.dumps(value, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        return None
    return "input:" + hashlib.sha256(f"{min_alias_len}\n{raw}".encode()).hexdigest()[:32]


def snapshot_from_input(
    value: Any, min_alias_len: int = DEFAULT_MIN_ALIAS_LEN, *, store_read: bool = True
) -> TargetSnapshot:
    """A snapshot of the targets a graph input gives: records, names (ids 1..n in order), a JSONL path, or the
    name of a :class:`~agentmesh.systems.alu.registry.TargetSet` registered in this process (its current
    version, read once for the query; the run records the set's name and version).

    Cached by content: the same list in every item of a batch is indexed and embedded once, and checked once
    (:func:`_input_digest`). The snapshot is named ``inputs:<digest>`` (version 1), which the run records as its
    target set.

    ``store_read``: whether the caller looked in the run's store first (:func:`read_targets` does when the run
    has a store), so that a name found nowhere is not said to be missing from a store nobody read.
    """
    given: str | None = None  # an inline list's key as given (:func:`_input_digest`)
    if isinstance(value, str) and not Path(value).is_file():
        try:  # the set's current version, read once for this query (§3.1)
            return get_target_set(value).snapshot()
        except KeyError as exc:
            where = (
                f"no target set {value!r} in the run's store (see `agentmesh targets list`)"
                if store_read
                else f"the run has no store to read target set {value!r} from (run it with a store, or give its "
                "targets as a JSONL file or as the 'targets' input)"
            )
            raise ConfigError(f"ALU targets: {where}; {exc.args[0]}; and no file {value!r}") from None
    if isinstance(value, str | Path):
        try:  # a bad line fails the run with the file and line, not a traceback from inside the node
            targets = load_targets_jsonl(value)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"ALU targets: {exc}") from None
    elif isinstance(value, list | tuple):
        given = _input_digest(value, min_alias_len)
        if given is not None:
            with _snapshots_lock:
                known = _snapshots.get(given)
                if known is not None:
                    _snapshots.move_to_end(given)
                    return known
        # a name is the target of its position's id; a record is checked as a JSONL file's is, so its id is
        # optional too (a record without one failed with "item 2 is not a target record or a name (KeyError('id'))")
        records = [
            (f"item {i}", {"name": item, "id": i} if isinstance(item, str) else item) for i, item in enumerate(value, 1)
        ]
        try:
            targets = targets_of_records(records)
        except ValueError as exc:
            raise ConfigError(f"ALU targets: {exc} (each item is a name or a target record)") from None
    else:
        raise ConfigError(
            f"ALU targets: expected a list of target records or names, or a JSONL path; got {type(value).__name__}"
        )
    canonical = json.dumps([t.to_json() for t in targets], sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(f"{min_alias_len}\n{canonical}".encode()).hexdigest()[:16]
    with _snapshots_lock:
        found = _snapshots.get(digest)
        if found is None:
            found = TargetSnapshot(f"inputs:{digest}", 1, tuple(targets), min_alias_len)
            _snapshots[digest] = found
        else:
            _snapshots.move_to_end(digest)
        if given is not None:
            _snapshots[given] = found
        while len(_snapshots) > _KEEP:
            _snapshots.popitem(last=False)
        return found


async def stored_snapshot(
    store: Store | None, run_id: str, node: str, source: Any, min_alias_len: int = DEFAULT_MIN_ALIAS_LEN
) -> TargetSnapshot | None:
    """The snapshot of the target set named ``source`` in ``store``, at the version pinned for ``node`` of
    ``run_id`` (the current one the first time); ``None`` when there is no store or it has no such set.

    Shared by ``op: alu`` and the baselines' functions (:mod:`~agentmesh.systems.alu.baselines`), so every
    system reads a stored set alike: the pin is what makes a resumed run read the version it read before, and
    what a replay's scratch database gets copied in. Per query: one small read-and-pin write; the rows are read
    only for a version not cached yet (§3.5).
    """
    if store is None or not isinstance(source, str) or not source.strip():
        return None
    pin = await store.apin_target_set(run_id, node, source)
    if pin is None:
        return None
    set_id, version, created = pin
    key = (store.url, source, set_id, created, version, min_alias_len)
    found = cached_store_snapshot(key)
    if found is not None:
        return found
    return await asyncio.to_thread(snapshot_from_store, store, source, version, min_alias_len=min_alias_len, key=key)


async def read_targets(
    store: Store | None, run_id: str, node: str, source: Any, min_alias_len: int = DEFAULT_MIN_ALIAS_LEN
) -> TargetSnapshot:
    """The targets a graph input gives, in the order ``op: alu`` looks: a set of that name in the run's store
    (pinned, :func:`stored_snapshot`), else :func:`snapshot_from_input` (a set registered in this process, a
    JSONL file, records or names). Raises :class:`ConfigError` naming the input's value when none has it."""
    stored = await stored_snapshot(store, run_id, node, source, min_alias_len)
    return stored if stored is not None else snapshot_from_input(source, min_alias_len, store_read=store is not None)


async def _load_stored_vectors(run: NodeRun, snapshot: TargetSnapshot, scorer: EmbeddingScorer) -> None:
    """Hand a stored snapshot the profile vectors the store has for this embedder (``target_embeddings``), once
    per snapshot: the scorer then embeds only the targets without one (an ``openai:`` embedder is an HTTP call
    per batch of profiles, which a process reading a set version for the first time would otherwise repeat)."""
    embedder_id = scorer.embedder.id
    if run.ctx.store is None or f"embedding:{embedder_id}" in snapshot.derived:
        return  # the profile matrix is built already: the vectors are not needed any more
    key = f"{STORED_VECTORS}{embedder_id}"
    if key not in snapshot.derived:
        snapshot.derived[key] = await asyncio.to_thread(run.ctx.store.target_embeddings, snapshot.name, embedder_id)


async def _store_fresh_vectors(run: NodeRun, snapshot: TargetSnapshot, scorer: EmbeddingScorer) -> None:
    """Store the profile vectors this query had to compute, so other processes (and later versions: targets and
    their ids never change) read them instead. A cache: failing to write it does not fail the query."""
    fresh = snapshot.derived.pop(f"{FRESH_VECTORS}{scorer.embedder.id}", None)
    if not fresh or run.ctx.store is None:
        return
    try:
        await asyncio.to_thread(run.ctx.store.put_target_embeddings, snapshot.name, scorer.embedder.id, fresh)
    except StoreError:
        snapshot.derived.setdefault(f"{FRESH_VECTORS}{scorer.embedder.id}", fresh)  # the next query retries


@operator("alu", params=AluParams)
async def alu_node(run: NodeRun) -> NodeOutput:
    """One ALU query (alu.md §6). A budget that runs out mid-way ends in the refusal text: the vanilla answer
    may be the very leak the remaining steps were there to remove (fail closed)."""
    p = run.params
    assert isinstance(p, AluParams)
    inputs = run.ctx.inputs
    if p.query_from not in inputs:
        raise ConfigError(f"node {run.name!r}: the graph has no input {p.query_from!r} (query_from)", node=run.name)
    source = inputs.get(p.target_set_from) or inputs.get(p.targets_from)
    if source is None:
        raise ConfigError(
            f"node {run.name!r}: no targets: give the input {p.targets_from!r} (records or names) or "
            f"{p.target_set_from!r} (a target set in the store or this process, or a JSONL file)",
            node=run.name,
        )
    stored = await stored_snapshot(run.ctx.store, run.ctx.run_id, run.call_node, source, p.min_alias_len)
    snapshot = (
        stored
        if stored is not None
        else snapshot_from_input(source, p.min_alias_len, store_read=run.ctx.store is not None)
    )
    scorer: SemanticScorer
    try:
        scorer = LexicalOnly() if p.embedder == "none" else EmbeddingScorer(embedder_from_ref(p.embedder))
    except ValueError as exc:
        raise ConfigError(f"node {run.name!r}: {exc}", node=run.name) from exc
    if stored is not None and isinstance(scorer, EmbeddingScorer):
        await _load_stored_vectors(run, stored, scorer)
    config = p.config()
    try:
        result = await run_alu(str(inputs[p.query_from]), snapshot, _NodeAgents(run, p).agents(), scorer, config)
    except BudgetExhausted:
        reason = run.ctx.budget.exhausted() or "budget"
        await run.ctx.record_node(run.name, None, {"stop_reason": "budget", "final_response": config.refusal_text})
        return {
            "answer": config.refusal_text,
            "value": config.refusal_text,
            "text": config.refusal_text,
            "decision": "refused",
            "stop_reason": "budget",
            "stopped": reason,
        }
    if stored is not None and isinstance(scorer, EmbeddingScorer):
        await _store_fresh_vectors(run, stored, scorer)
    data = result.to_json()
    await run.ctx.record_node(run.name, None, data)
    final = result.final_response
    return {
        "answer": final,
        "value": final,
        "text": final,
        "decision": result.decision,
        "stop_reason": result.stop_reason,
        "alu": data,
    }
