"""Team optimisation: run a graph with its whole candidate team over a data set, score each agent, keep the best.

``agentmesh optimize dylan_mmlu --data items.jsonl --top-k 4`` runs the full team on every item (each item its
own stored run, several at once: :mod:`agentmesh.optimize.items`), reads each run's Agent Importance Scores (the
graph's ``dylan_importance`` node, dylan.md §4), averages them per agent over the items (§4.3), ranks the agents
and writes the graph again with only the top k in the team. A job is identified by the graph, the model and the
item: running the same command again skips the items whose run succeeded and resumes the ones that were cut short
(their finished model calls are served from the store, never paid twice).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from agentmesh._sync import blocking
from agentmesh.datasets import Item, matches_gold
from agentmesh.errors import AgentmeshError, ConfigError
from agentmesh.models import ModelClient
from agentmesh.models.providers.base import Provider
from agentmesh.optimize.items import RETRY_FAILED, Executor, ItemRun, Progress, as_items, run_items
from agentmesh.runtime.arguments import resolve_graph
from agentmesh.spec.graph import GraphSpec
from agentmesh.spec.operators import FunctionParams, OperatorParams, RoundsParams
from agentmesh.store import Store
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
    per_agent_exact: dict[str, Fraction] = field(default_factory=dict)
    """The same scores exactly, so that the dataset means (and ties between them) are exact (dylan.md §4.3)."""
    per_node: dict[str, float] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    reused: bool = False
    error: str | None = None
    shared_credit: bool = False  # no agent of the last layer gave the final answer: all of them got the credit

    @property
    def correct(self) -> bool | None:
        return None if self.gold is None or self.error else matches_gold(self.answer, self.gold)


class EveryItemFailed(AgentmeshError):
    """No item of an optimize job could be scored: no ranking, no team. ``items`` are the job's items with their
    runs and errors, for ``optimize --json``, which printed nothing when every item failed (a partly failed job
    prints its failed items)."""

    def __init__(self, message: str, items: list[ItemResult], **context: Any) -> None:
        super().__init__(message, **context)
        self.items = items


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
    exact: dict[str, Fraction] = field(default_factory=dict)
    """``scores`` as exact fractions: what the ranking compared, so that equal means are told apart from close ones."""
    groups: dict[str, list[str]] = field(default_factory=dict)
    """Per team field of the node (``agents``; ``writers`` and ``judges``), its candidates: each kept its top k."""

    @property
    def failed(self) -> list[ItemResult]:
        return [i for i in self.items if i.error]

    @property
    def tied_at_cut(self) -> list[str]:
        """The agents left out whose mean importance equals a kept agent's of the same team: the top k cut through
        a tie there, and the candidates' order alone decided who stayed (:func:`select_team`)."""
        out: list[str] = []
        for labels in self.groups.values():
            kept = {self.exact[a] for a in labels if a in self.team}
            out += [a for a in self.ranking if a in labels and a not in self.team and self.exact[a] in kept]
        return out

    @property
    def shared_credit(self) -> list[ItemResult]:
        """Items where no agent of the last layer gave the final answer, so the credit was shared by all of them
        (dylan.md §4.4; the reference divides by zero there)."""
        return [i for i in self.items if i.shared_credit]

    @property
    def unanswered(self) -> list[ItemResult]:
        """Items whose run succeeded without a final answer: no reply held one the agents' parser could read (a
        small model's usual outcome), so the answer counts wrong and the credit went to replies without one."""
        return [i for i in self.items if not i.error and i.answer is None]

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
            if isinstance(target.params, RoundsParams) and target.params.ratings is None:
                # importance flows backwards through the ratings (dylan.md §4): without them every agent of a layer
                # gets the same share, and the "top k" would be the first k by slot, chosen from nothing
                raise ConfigError(
                    f"graph {spec.name!r}: node {name!r} scores the agents of {source!r}, which asks them for no "
                    f"ratings, so every agent's importance would be the same; add 'ratings: {{}}' to node "
                    f"{source!r} (as graphs/dylan_mmlu.yaml does) so that each layer rates the previous one",
                    graph=spec.name,
                    node=source,
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
    # named by the k of each team (what --top-k said, and the default file's name): a writers + judges graph kept
    # as top 3 of each was "_top6", so its runs were under another name than the file they came from
    kept = {sum(label in set(team) for label in labels) for labels in groups.values()}
    k = kept.pop() if len(kept) == 1 else len(team)
    return spec.model_copy(
        update={"name": f"{spec.name}_top{k}", "nodes": nodes, "agents": agents, "description": description}
    )


def check_top_k(spec: GraphSpec, top_k: int) -> tuple[str, str]:
    """(the importance node, the team node) of ``spec`` once ``top_k`` is known to make a team it can run.

    Checked before any run, by ``aoptimize`` and by ``agentmesh optimize`` before it opens the store: ``top_k``
    must lie between 1 and the candidates of each team, and the graph written with a team of that size must load.
    A team of one under a consensus stop (``dylan_mmlu --top-k 1``) cannot: the job ran every item, then wrote a
    graph that ``agentmesh run`` refused ("consensus needs 2 agents"). Any team of the size has the same shape, so
    the first ``top_k`` of each team stand for the one the job will choose."""
    score_node, source = importance_node(spec)
    groups = team_groups(spec.nodes[source].params)
    smallest = min(len(labels) for labels in groups.values())
    per = " per team (" + ", ".join(groups) + ")" if len(groups) > 1 else ""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= smallest:
        raise ConfigError(
            f"top_k (--top-k) must be an integer between 1 and the {smallest} candidates of {source!r}{per}, "
            f"got {top_k!r}"
        )
    stand_in = [label for labels in groups.values() for label in labels[:top_k]]
    problems = optimized_spec(spec, source, stand_in).problems()
    if problems:
        found = "; ".join(f"{problem.field}: {problem.message}" for problem in problems)
        raise ConfigError(
            f"top_k (--top-k) {top_k}: graph {spec.name!r} with a team of {top_k}{per} would not be a valid graph "
            f"({found}); choose a larger team, or change the graph",
            graph=spec.name,
        )
    return score_node, source


async def aoptimize(
    graph: str | Path | GraphSpec,
    items: Sequence[Item | Mapping[str, Any]],
    *,
    top_k: int,
    model: str | Provider | ModelClient | None = None,
    store: Store | str | None = None,
    concurrency: int = 4,
    progress: Progress | None = None,
    executor: Executor = "local",
    ray_address: str | None = None,
    ray_cpus_per_item: float = 1.0,
    imports: Sequence[str] | None = None,
    on_call: Callable[[], None] | None = None,
) -> OptimizeResult:
    """Run the job (see the module docstring) and return what it found; failed items are reported, not raised.

    How items run (``concurrency``, ``executor="ray"`` with ``ray_address``, ``ray_cpus_per_item`` and
    ``imports``), and ``on_call``, are :func:`agentmesh.optimize.items.run_items`'s."""
    spec = resolve_graph(graph)
    score_node, source = check_top_k(spec, top_k)
    groups = team_groups(spec.nodes[source].params)
    candidates = [label for labels in groups.values() for label in labels]
    items = as_items(items, spec, what="optimize")
    ran_items = await run_items(
        spec,
        items,
        kind="optimize",
        model=model,
        store=store,
        concurrency=concurrency,
        progress=progress,
        executor=executor,
        ray_address=ray_address,
        ray_cpus_per_item=ray_cpus_per_item,
        imports=imports,
        on_call=on_call,
    )
    job = ran_items.job
    results = [_importance_of(spec, score_node, run, item) for run, item in zip(ran_items.items, items, strict=True)]
    scored = [r for r in results if not r.error]
    if not scored:
        raise EveryItemFailed(
            f"optimize {spec.name}: every item failed; first error: {results[0].error}{RETRY_FAILED}",
            results,
            graph=spec.name,
            job=job,
        )
    # exact means: averaging the per-item floats could split agents whose mean importance is the same number
    means = mean_importance([r.per_agent_exact or {a: Fraction(v) for a, v in r.per_agent.items()} for r in scored])
    exact = {a: means.get(a, Fraction(0)) for a in candidates}
    scores = {a: float(v) for a, v in exact.items()}
    ranking = select_team(exact, len(candidates))
    chosen = {a for labels in groups.values() for a in select_team({x: exact[x] for x in labels}, top_k)}
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
        exact=exact,
        groups=groups,
    )


def _importance_of(spec: GraphSpec, score_node: str, run: ItemRun, item: Item) -> ItemResult:
    """An item's run read as DyLAN reads it: the importance node's per-agent and per-node scores, the answer."""
    out = ItemResult(
        line=run.line, run_id=run.run_id, gold=item.gold, calls=run.calls, reused=run.reused, error=run.error
    )
    if run.error or run.outputs is None:
        return out
    scores = (run.outputs.get(score_node) or {}).get("importance")
    if not scores:
        out.error = f"run {run.run_id}: node {score_node!r} produced no importance scores"
        return out
    out.per_agent = {str(k): float(v) for k, v in scores["per_agent"].items()}
    exact = scores.get("per_agent_exact")
    if isinstance(exact, dict) and set(exact) == set(scores["per_agent"]):
        out.per_agent_exact = {str(k): Fraction(str(v)) for k, v in exact.items()}
    out.per_node = {str(k): float(v) for k, v in scores["per_node"].items()}
    out.ran = [str(k) for k in scores.get("ran", out.per_node)]
    out.shared_credit = bool(scores.get("fallback"))
    out.answer = (run.outputs.get(spec.output_node()) or {}).get("answer")
    return out


def optimize(graph: str | Path | GraphSpec, items: Sequence[Item | Mapping[str, Any]], **kwargs: Any) -> OptimizeResult:
    """Blocking :func:`aoptimize`, for scripts without an event loop."""
    return blocking(
        aoptimize(graph, items, **kwargs), name="agentmesh.optimize.optimize", async_name="agentmesh.optimize.aoptimize"
    )
