"""Team optimisation: run a graph with its whole candidate team over a data set, score each agent, keep the best.

``agentmesh optimize dylan_mmlu --data items.jsonl --top-k 4`` runs the full team on every item (each item its
own stored run, several at once), reads each run's Agent Importance Scores (the graph's ``dylan_importance``
node, dylan.md §4), averages them per agent over the items (§4.3), ranks the agents and writes the graph again
with only the top k in the team. A job is identified by the graph, the model and the item: running the same
command again skips the items whose run succeeded and resumes the ones that were cut short (their finished
model calls are served from the store, never paid twice).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from agentmesh._sync import blocking
from agentmesh.datasets import Item, matches_gold
from agentmesh.errors import AgentmeshError, ConfigError
from agentmesh.models import ModelClient, get_model, load_settings
from agentmesh.models.providers.base import Provider
from agentmesh.plugins import imported
from agentmesh.runtime.on_ray import RunOnRay, job_payload, new_run_id, run_there, start_ray, worker_db_url
from agentmesh.runtime.run import DEFAULT_MODEL, RunResult, aresume, arun, resolve_graph, stored_outputs
from agentmesh.spec.graph import GraphSpec
from agentmesh.spec.operators import FunctionParams, OperatorParams
from agentmesh.store import RunStatus, Store
from agentmesh.systems.dylan.importance import agent_labels, mean_importance, select_team

IMPORTANCE_FUNCTIONS = frozenset({"dylan_importance"})


@dataclass
class ItemResult:
    """One item of the job: its run, the team's answer, and the agents' importance on it."""

    line: int
    run_id: str | None = None
    answer: Any = None
    gold: str | None = None
    calls: int = 0
    per_agent: dict[str, float] = field(default_factory=dict)
    per_node: dict[str, float] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    reused: bool = False
    error: str | None = None

    @property
    def correct(self) -> bool | None:
        return None if self.gold is None or self.error else matches_gold(self.answer, self.gold)


@dataclass
class OptimizeResult:
    """What a job found: per-agent mean importance, the ranking, the selected team and the graph that uses it."""

    graph: str
    job: str
    source: str
    candidates: list[str]
    scores: dict[str, float]
    ranking: list[str]
    team: list[str]
    optimized: GraphSpec
    items: list[ItemResult]
    node_means: dict[str, float]
    layers: int

    @property
    def failed(self) -> list[ItemResult]:
        return [i for i in self.items if i.error]

    @property
    def accuracy(self) -> float | None:
        judged = [i.correct for i in self.items if i.correct is not None]
        return sum(judged) / len(judged) if judged else None


def importance_node(spec: GraphSpec) -> tuple[str, str]:
    """(the importance node, the rounds node it scores) of a graph; a clear error when it has none."""
    for name, node in spec.nodes.items():
        params = node.params
        if isinstance(params, FunctionParams) and params.function in IMPORTANCE_FUNCTIONS:
            source = str(params.args.get("source", "dylan"))
            target = spec.nodes.get(source)
            if target is None or not target.params.team_fields():
                raise ConfigError(
                    f"graph {spec.name!r}: node {name!r} scores {source!r}, which is not a node with a team "
                    "('rounds', 'dylan_code')",
                    graph=spec.name,
                    node=name,
                )
            return name, source
    raise ConfigError(
        f"graph {spec.name!r} computes no agent importance: add a node "
        "'{op: function, function: dylan_importance, args: {source: <rounds node>}}' (as graphs/dylan_mmlu.yaml "
        "does) to optimise its team",
        graph=spec.name,
    )


def team_groups(params: OperatorParams) -> dict[str, list[str]]:
    """Per team field of a node, its agents' labels (as the importance scores name them)."""
    fields = params.team_fields()
    labels = list(agent_labels([a for agents in fields.values() for a in agents]))
    groups: dict[str, list[str]] = {}
    for field_name, agents in fields.items():
        groups[field_name], labels = labels[: len(agents)], labels[len(agents) :]
    return groups


def optimized_spec(spec: GraphSpec, source: str, team: Sequence[str], *, note: str = "") -> GraphSpec:
    """The graph with only ``team`` (agent labels, in candidate order) in node ``source``; unused cards dropped."""
    params = spec.nodes[source].params
    fields, groups = params.team_fields(), team_groups(params)
    known = [label for labels in groups.values() for label in labels]
    unknown = [t for t in team if t not in known]
    if unknown:
        raise ConfigError(f"unknown agent(s) {unknown} for node {source!r}; candidates: {known}")
    update = {
        field_name: [name for name, label in zip(fields[field_name], labels, strict=True) if label in set(team)]
        for field_name, labels in groups.items()
    }
    nodes = dict(spec.nodes)
    nodes[source] = nodes[source].model_copy(update={"params": params.model_copy(update=update)})
    used = {agent for node in nodes.values() for _, agent in node.params.agents_used()}
    agents = {k: v for k, v in spec.agents.items() if k in used}
    description = note + (f" The graph it was selected from: {spec.description}" if spec.description else "")
    return spec.model_copy(
        update={"name": f"{spec.name}_top{len(team)}", "nodes": nodes, "agents": agents, "description": description}
    )


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _stored_outputs(store: Store, spec: GraphSpec, run_id: str) -> dict[str, Any]:
    """A finished run's node outputs, read from its last checkpoint."""
    outputs = stored_outputs(store, spec, run_id)
    if outputs is None:
        raise AgentmeshError(f"run {run_id} has no checkpoint to read its outputs from", run=run_id)
    return outputs


Progress = Callable[[ItemResult, int, int], None]
"""Told of each finished item: (its result, items done, items in all)."""


async def aoptimize(
    graph: str | Path | GraphSpec,
    items: Sequence[Item],
    *,
    top_k: int,
    model: str | Provider | ModelClient | None = None,
    store: Store | str | None = None,
    concurrency: int = 4,
    progress: Progress | None = None,
    executor: Literal["local", "ray"] = "local",
    ray_address: str | None = None,
    ray_cpus_per_item: float = 1.0,
    imports: Sequence[str] | None = None,
) -> OptimizeResult:
    """Run the job (see the module docstring) and return what it found; failed items are reported, not raised.

    ``executor="ray"`` runs the items as Ray tasks (:mod:`agentmesh.runtime.on_ray`): on a Ray started on
    this machine for the job, or on the cluster at ``ray_address`` (which needs a Postgres store). There ``model``
    must be a reference string (each worker builds its own client), and the workers import ``imports`` (module
    names or ``.py`` files; by default what :func:`agentmesh.plugins.import_plugins` imported here) so that the
    operators, functions, parsers and providers registered in them are known there too. ``concurrency`` is the
    number of items in flight; each takes ``ray_cpus_per_item`` of Ray's CPUs (a fraction packs several I/O-bound
    items per core)."""
    spec = resolve_graph(graph)
    score_node, source = importance_node(spec)
    params = spec.nodes[source].params
    groups = team_groups(params)
    candidates = [label for labels in groups.values() for label in labels]
    smallest = min(len(labels) for labels in groups.values())
    if not 1 <= top_k <= smallest:
        per = " per team (" + ", ".join(groups) + ")" if len(groups) > 1 else ""
        raise ConfigError(f"--top-k must be between 1 and the {smallest} candidates of {source!r}{per}, got {top_k}")
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
    if executor not in ("local", "ray"):
        raise ConfigError(f"executor must be 'local' or 'ray', got {executor!r}")
    if executor == "ray" and not (model is None or isinstance(model, str)):
        raise ConfigError(
            "on Ray, give the model as a reference string (each worker builds its own client from it), not a "
            f"{type(model).__name__} object; a provider of your own registers by name in a module given to --import"
        )
    client = model if isinstance(model, ModelClient) else get_model(model or spec.model or DEFAULT_MODEL)
    db = store if isinstance(store, Store) else Store(store)
    job = _digest({"spec": spec.spec_hash(), "model": client.reference})
    release: Callable[[], None] | None = None
    try:
        start: StartRun
        if executor == "ray":
            shared = job_payload(
                spec,
                model if isinstance(model, str) else spec.model or DEFAULT_MODEL,  # (checked above: not an object)
                load_settings(),
                worker_db_url(db, cluster=ray_address is not None),
                imported() if imports is None else imports,
                ray_cpus_per_item,
            )
            run_on_ray, release = start_ray(ray_address, ray_cpus_per_item)
            start = _on_ray(shared, run_on_ray, db, job)
        else:
            start = _in_process(db, spec, client, job)
        previous = _previous_runs(db, spec.name, job)
        gate = asyncio.Semaphore(concurrency)
        done = 0

        async def one(item: Item) -> ItemResult:
            nonlocal done
            key = _digest(item.inputs)
            out = ItemResult(line=item.line, gold=item.gold)
            async with gate:
                try:
                    await _run_item(db, spec, start, item, key, previous.get(key), out, score_node)
                except Exception as exc:  # one bad item must not sink the job; its run records the failure
                    out.error = str(exc) if isinstance(exc, AgentmeshError) else f"{type(exc).__name__}: {exc}"
            done += 1
            if progress is not None:
                progress(out, done, len(items))
            return out

        results = list(await asyncio.gather(*(one(item) for item in items)))
    finally:
        if release is not None:
            release()
        if not isinstance(model, ModelClient | Provider):
            await client.aclose()
        if not isinstance(store, Store):
            db.close()
    scored = [r for r in results if not r.error]
    if not scored:
        raise AgentmeshError(f"optimize {spec.name}: every item failed; first error: {results[0].error}")
    means = mean_importance([{a: Fraction(v) for a, v in r.per_agent.items()} for r in scored])
    scores = {a: float(means.get(a, Fraction(0))) for a in candidates}
    ranking = select_team(scores, len(candidates))
    chosen = {a for labels in groups.values() for a in select_team({x: scores[x] for x in labels}, top_k)}
    team = [a for a in candidates if a in chosen]  # the top k of each team (writers and judges apart)
    ran = {k for r in scored for k in r.ran}  # nodes no item reached are left out of the picture
    node_means = {k: sum(r.per_node.get(k, 0.0) for r in scored) / len(scored) for k in sorted(ran)}
    listed = ", ".join(f"{a} {scores[a]:.3f}" for a in ranking)
    sizes = " + ".join(str(len(g)) for g in groups.values())
    note = (
        f"Team optimised by `agentmesh optimize` (job {job}) on {len(scored)} items: top {top_k} of {sizes} by "
        f"mean Agent Importance Score ({listed})."
    )
    return OptimizeResult(
        graph=spec.name,
        job=job,
        source=source,
        candidates=candidates,
        scores=scores,
        ranking=ranking,
        team=team,
        optimized=optimized_spec(spec, source, team, note=note),
        items=results,
        node_means=node_means,
        layers=max((int(k.split(",")[0]) for r in scored for k in r.per_node), default=1),
    )


def _previous_runs(db: Store, graph: str, job: str) -> dict[str, tuple[str, RunStatus]]:
    found: dict[str, tuple[str, RunStatus]] = {}
    for record in reversed(db.list_runs(graph=graph, limit=1_000_000)):  # oldest first: the newest wins
        tag = record.meta.get("optimize") or {}
        if tag.get("job") == job and tag.get("item"):
            found[str(tag["item"])] = (record.id, record.status)
    return found


StartRun = Callable[[Item, str, "tuple[str, RunStatus] | None", ItemResult], Awaitable[Mapping[str, Any]]]
"""Runs an item (or resumes its cut-short run), sets the result's ``run_id`` (as soon as the run is stored: a
failed item still names it) and ``calls``, and returns the run's node outputs."""


async def _run_item(
    db: Store,
    spec: GraphSpec,
    start: StartRun,
    item: Item,
    key: str,
    previous: tuple[str, RunStatus] | None,
    out: ItemResult,
    score_node: str,
) -> None:
    outputs: Mapping[str, Any]
    if previous is not None and previous[1] == RunStatus.SUCCEEDED:
        out.run_id, out.reused = previous[0], True
        outputs = await asyncio.to_thread(_stored_outputs, db, spec, previous[0])
        out.calls = int((await asyncio.to_thread(db.get_run, previous[0])).totals.get("calls", 0))
    else:
        outputs = await start(item, key, previous, out)
    scores = (outputs.get(score_node) or {}).get("importance")
    if not scores:
        raise AgentmeshError(f"run {out.run_id}: node {score_node!r} produced no importance scores", run=out.run_id)
    out.per_agent = {str(k): float(v) for k, v in scores["per_agent"].items()}
    out.per_node = {str(k): float(v) for k, v in scores["per_node"].items()}
    out.ran = [str(k) for k in scores.get("ran", out.per_node)]
    out.answer = (outputs.get(spec.output_node()) or {}).get("answer")


def _meta(job: str, key: str, item: Item) -> dict[str, Any]:
    """What tags an item's run as the job's: how a later run of the job finds it (:func:`_previous_runs`)."""
    return {"optimize": {"job": job, "item": key, "line": item.line}}


def _in_process(db: Store, spec: GraphSpec, client: ModelClient, job: str) -> StartRun:
    """Items run here, on this event loop (the default executor)."""

    async def start(item: Item, key: str, previous: tuple[str, RunStatus] | None, out: ItemResult) -> Mapping[str, Any]:
        def started(kind: str, data: dict[str, Any]) -> None:
            if kind == "start":
                out.run_id = str(data["run_id"])

        result: RunResult
        if previous is not None:
            out.run_id = previous[0]
            result = await aresume(previous[0], store=db, model=client, listeners=[started])
        else:
            meta = _meta(job, key, item)
            result = await arun(spec, item.inputs, model=client, store=db, meta=meta, listeners=[started])
        out.run_id, out.calls = result.run_id, result.calls
        return result.outputs

    return start


def _on_ray(shared: Mapping[str, Any], run_on_ray: RunOnRay, db: Store, job: str) -> StartRun:
    """Items run as Ray tasks (:mod:`agentmesh.runtime.on_ray`), each under a run id chosen here."""

    async def start(item: Item, key: str, previous: tuple[str, RunStatus] | None, out: ItemResult) -> Mapping[str, Any]:
        out.run_id = previous[0] if previous is not None else new_run_id()
        try:
            result = await run_there(
                run_on_ray,
                db,
                shared,
                out.run_id,
                resume=previous is not None,
                inputs=item.inputs,
                meta=_meta(job, key, item),
            )
        except AgentmeshError as exc:
            out.run_id = exc.context.get("run")  # None: the worker failed before storing the run
            raise
        out.calls = result.calls
        return result.outputs

    return start


def optimize(graph: str | Path | GraphSpec, items: Sequence[Item], **kwargs: Any) -> OptimizeResult:
    """Blocking :func:`aoptimize`, for scripts without an event loop."""
    return blocking(
        aoptimize(graph, items, **kwargs), name="agentmesh.optimize.optimize", async_name="agentmesh.optimize.aoptimize"
    )
