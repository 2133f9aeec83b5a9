"""Calibrate an SE-Jury on labelled items and derive the graph that runs only the chosen team (sejury.md §4).

``agentmesh optimize sejury --data labelled.jsonl`` comes here. The release ran every judge on everything offline
and chose the teams afterwards; the paper's point is that only the team need run on the bulk of the data. So:

1. draw the calibration items (§4 step 1: 20, seeded) from the labelled set;
2. run every judge on them, each item its own stored, resumable run (:func:`agentmesh.optimize.items.run_items`);
3. choose the team (:func:`.selection.select_team`, the release's rule);
4. write the graph with the team's judges only (:func:`team_graph`): its runs make only the team's calls;
5. run that graph on the held-out labelled items and report its Kendall τ, Spearman ρ and Pearson r against the
   humans (§4 step 6), so the user sees what the team is worth before using it on unlabelled data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from agentmesh._sync import blocking
from agentmesh.datasets import Item
from agentmesh.errors import AgentmeshError, ConfigError
from agentmesh.models import ModelClient
from agentmesh.models.providers.base import Provider
from agentmesh.optimize.items import RETRY_FAILED, Executor, ItemRun, as_items, run_items
from agentmesh.runtime.arguments import open_store, resolve_graph
from agentmesh.runtime.on_ray import one_ray
from agentmesh.spec.graph import GraphSpec
from agentmesh.spec.node import NodeSpec
from agentmesh.spec.operators import FunctionParams, TeamParams
from agentmesh.store import Store
from agentmesh.systems.sejury.functions import sejury_check
from agentmesh.systems.sejury.selection import (
    Correlations,
    JuryConfig,
    Selection,
    calibration_split,
    correlations,
    select_team,
)

__all__ = [
    "BATCH_LABEL",
    "Calibration",
    "CalibrationFailed",
    "JuryNodes",
    "ScoredItem",
    "acalibrate",
    "batch_labels",
    "calibrate",
    "check_batch_labels",
    "check_items",
    "has_jury",
    "human_labels",
    "jury_nodes",
    "team_graph",
]

VERDICT = "sejury_verdict"
CHECK = "sejury_check"


@dataclass(frozen=True)
class JuryNodes:
    """Where a graph keeps its jury: the verdict node, its judges (name → agent), what each judge's agent needs
    first, and the check node if any."""

    verdict: str
    judges: dict[str, str]
    needs: dict[str, list[str]]
    check: str | None


def has_jury(spec: GraphSpec) -> bool:
    """Whether ``spec`` scores with an SE-Jury (a ``sejury_verdict`` node): what ``optimize`` calibrates."""
    return any(isinstance(n.params, FunctionParams) and n.params.function == VERDICT for n in spec.nodes.values())


def jury_nodes(spec: GraphSpec) -> JuryNodes:
    """The jury of a graph; a clear error for a graph without one (a graph not built like ``graphs/sejury.yaml``)."""
    verdict = check = None
    for name, node in spec.nodes.items():
        if isinstance(node.params, FunctionParams):
            if node.params.function == VERDICT:
                verdict = name
            elif node.params.function == CHECK:
                check = name
    if verdict is None:
        raise ConfigError(
            f"graph {spec.name!r} has no jury: add a node '{{op: function, function: {VERDICT}, args: {{judges: "
            "{S1_1: <agent>, ...}}}' (as graphs/sejury.yaml does) to calibrate its judges",
            graph=spec.name,
        )
    params = spec.nodes[verdict].params
    assert isinstance(params, FunctionParams)
    judges, needs = params.args.get("judges"), params.args.get("needs") or {}
    if not isinstance(judges, Mapping) or not judges or not all(isinstance(a, str) for a in judges.values()):
        raise ConfigError(
            f"graph {spec.name!r}: node {verdict!r}: 'judges' must map judge names to agents, got {judges!r}",
            graph=spec.name,
            node=verdict,
        )
    if not isinstance(needs, Mapping) or not all(isinstance(v, list) for v in needs.values()):
        raise ConfigError(
            f"graph {spec.name!r}: node {verdict!r}: 'needs' must map judge names to lists of agents, got {needs!r}",
            graph=spec.name,
            node=verdict,
        )
    unknown = sorted({a for a in [*judges.values(), *(a for v in needs.values() for a in v)] if a not in spec.agents})
    if unknown:
        raise ConfigError(
            f"graph {spec.name!r}: node {verdict!r} names agent(s) {unknown} that the graph does not define",
            graph=spec.name,
            node=verdict,
        )
    return JuryNodes(
        verdict,
        {str(k): str(v) for k, v in judges.items()},
        {str(k): [str(a) for a in v] for k, v in needs.items()},
        check,
    )


def team_graph(
    spec: GraphSpec,
    team: Sequence[str],
    *,
    scale: str | None = None,
    aggregation: str | None = None,
    note: str = "",
) -> GraphSpec:
    """``spec`` with only ``team``'s judges: their agents and the first steps they need, nothing else.

    A team node left with no agent is dropped and its predecessors are joined to its successors. The verdict
    node averages the team only, with ``scale`` and ``aggregation`` when given (a profile's final ensemble).
    """
    jury = jury_nodes(spec)
    unknown = [j for j in team if j not in jury.judges]
    if unknown or not team:
        raise ConfigError(f"unknown judge(s) {unknown or team} for graph {spec.name!r}; judges: {list(jury.judges)}")
    members = [j for j in jury.judges if j in set(team)]  # in the graph's order
    keep = {jury.judges[j] for j in members} | {a for j in members for a in jury.needs.get(j, [])}
    of_jury = set(jury.judges.values()) | {a for agents in jury.needs.values() for a in agents}
    drop = of_jury - keep
    nodes: dict[str, NodeSpec] = {}
    removed: list[str] = []
    for name, node in spec.nodes.items():
        params = node.params
        if isinstance(params, TeamParams):
            agents = [a for a in params.agents if a not in drop]
            if not agents:
                removed.append(name)
                continue
            params = params.model_copy(update={"agents": agents})
        elif name == jury.verdict:
            assert isinstance(params, FunctionParams)
            args = {
                **params.args,
                "judges": {j: jury.judges[j] for j in members},
                "needs": {j: jury.needs[j] for j in members if j in jury.needs},
                **({"scale": scale} if scale is not None else {}),
                **({"aggregation": aggregation} if aggregation is not None else {}),
            }
            if (args.get("scale"), args.get("aggregation")) != (
                params.args.get("scale"),
                params.args.get("aggregation"),
            ):
                # the shipped node says "the 1-5 scale ..., rounded": an apr team's graph maps to 0-1 and votes 0/1
                node = node.model_copy(update={"description": _verdict_description(args)})
            params = params.model_copy(update={"args": args})
        elif name == jury.check:
            assert isinstance(params, FunctionParams)
            params = params.model_copy(update={"args": {**params.args, "judges": members}})
        else:
            stranded = [a for _, a in params.agents_used() if a in drop]
            if stranded:
                raise ConfigError(
                    f"graph {spec.name!r}: node {name!r} calls judge agent(s) {stranded} outside the jury's team "
                    "nodes; put the judges in 'team' nodes",
                    graph=spec.name,
                    node=name,
                )
        nodes[name] = node.model_copy(update={"params": params})
    flow = nx.DiGraph(list(spec.edges))
    flow.add_nodes_from(spec.nodes)
    for name in removed:
        flow.add_edges_from((p, s) for p in flow.predecessors(name) for s in flow.successors(name))
        flow.remove_node(name)
    edges = [(a, b) for a, b in spec.edges if a in nodes and b in nodes]
    edges += [(a, b) for a, b in flow.edges if (a, b) not in edges]
    used = {agent for node in nodes.values() for _, agent in node.params.agents_used()}
    whole = members == list(jury.judges)
    description = (note + " " if note else "") + spec.description
    built = spec.model_copy(
        update={
            "name": spec.name if whole else f"{spec.name}_{'_'.join(members).lower()}",
            "description": description.strip(),
            "nodes": nodes,
            "edges": edges,
            "agents": {k: v for k, v in spec.agents.items() if k in used},
        }
    )
    problems = built.problems()
    if problems:
        raise ConfigError(
            f"the graph for team {members} is not valid: " + "; ".join(f"{p.field}: {p.message}" for p in problems)
        )
    return built


_SCALES = {
    "to_1_5_rounded": "on the human 1-5 scale (1 + raw/100*4, rounded per judge)",
    "to_1_5": "on the human 1-5 scale (1 + raw/100*4)",
    "to_0_1": "on the 0-1 scale (raw/100)",
    "none": "as the judge gave it",
}
_AGGREGATIONS = {"round": "rounded", "mean": "as is", "binary": "1 above 0.5, else 0"}


def _verdict_description(args: Mapping[str, Any]) -> str:
    """What a verdict node with these ``scale`` and ``aggregation`` does, for the team graph's node description."""
    scale = _SCALES.get(str(args.get("scale")), f"mapped by {args.get('scale')}")
    aggregation = _AGGREGATIONS.get(str(args.get("aggregation")), str(args.get("aggregation")))
    return (
        f"Each judge's score {scale}; the team's mean, {aggregation}. `needs` names the first steps each two-step "
        "judge reads, so that a calibrated team's graph keeps exactly what its judges need."
    )


@dataclass
class ScoredItem:
    """One labelled item: the human label, its run, each judge's raw score and the jury's score."""

    line: int
    human: float
    run_id: str | None = None
    calls: int = 0
    reused: bool = False
    raw: dict[str, float] = field(default_factory=dict)
    score: float | None = None
    unparsed: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "human": self.human,
            "run_id": self.run_id,
            "raw": self.raw,
            "score": self.score,
            "unparsed": self.unparsed,
            "error": self.error,
        }


@dataclass
class Calibration:
    """What calibrating found: the chosen team and its graph, the candidate table, and the held-out check."""

    graph: str
    config: JuryConfig
    selection: Selection
    team_graph: GraphSpec
    calibration: list[ScoredItem]
    held_out: list[ScoredItem]
    test: Correlations | None
    jobs: list[str]

    @property
    def team(self) -> tuple[str, ...]:
        return self.selection.team

    @property
    def failed(self) -> list[ScoredItem]:
        return [i for i in [*self.calibration, *self.held_out] if i.error]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (NaN as ``None``): the selection's table, the items and the held-out correlations."""
        test = None
        if self.test is not None:
            test = {k: _finite(v) for k, v in vars(self.test).items()} | {
                "n": sum(1 for i in self.held_out if i.score is not None)
            }
        return {
            "graph": self.graph,
            "team_graph": self.team_graph.name,
            "jobs": self.jobs,
            **self.selection.to_json(),
            "test": test,
            "calibration_items": [i.to_json() for i in self.calibration],
            "held_out_items": [i.to_json() for i in self.held_out],
        }


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value


class CalibrationFailed(AgentmeshError):
    """Fewer than 2 calibration items could be scored: no team can be chosen. ``items`` are the calibration items
    with their runs and errors and ``jobs`` the job's id, for ``optimize --json``, which printed nothing on stdout
    then (a calibration with some failed items prints them)."""

    def __init__(self, message: str, items: list[ScoredItem], jobs: list[str], **context: Any) -> None:
        super().__init__(message, **context)
        self.items = items
        self.jobs = jobs


Phase = Callable[[str, ItemRun, int, int], None]
"""Told of each finished item: (``calibration`` or ``held-out``, the item's run, done, in all)."""


async def acalibrate(
    graph: str | Path | GraphSpec,
    items: Sequence[Item | Mapping[str, Any]],
    *,
    config: JuryConfig | None = None,
    human_key: str = "human",
    evaluate: bool = True,
    model: str | Provider | ModelClient | None = None,
    store: Store | str | None = None,
    concurrency: int = 4,
    progress: Phase | None = None,
    executor: Executor = "local",
    ray_address: str | None = None,
    ray_cpus_per_item: float = 1.0,
    imports: Sequence[str] | None = None,
    on_call: Callable[[], None] | None = None,
) -> Calibration:
    """Calibrate the jury of ``graph`` on labelled ``items`` (see the module docstring) and return what it found.

    Each item's label is its ``human_key`` field (a number on the human scale). With more items than
    ``config.n_calibration``, that many are drawn (seeded, as the release draws them) and, with ``evaluate``, the
    team's graph then scores the rest; otherwise every item calibrates. Runs are stored and resumable: the same
    call again reuses finished runs and resumes cut-short ones. How items run (``concurrency``, Ray), and
    ``on_call``, are :func:`agentmesh.optimize.items.run_items`'s.
    """
    config = config or JuryConfig()
    spec = resolve_graph(graph)
    jury = jury_nodes(spec)
    unknown = [j for j in config.judges if j not in jury.judges]
    if unknown:
        raise ConfigError(
            f"the config names judge(s) {unknown} that graph {spec.name!r} does not have; its judges: "
            f"{list(jury.judges)}"
        )
    items = as_items(items, spec, keep=[human_key], what="calibration", allow_empty=True)  # (dicts as a file's lines)
    labels = check_items(spec, items, config=config, human_key=human_key)  # (at least 2 items among its checks)
    chosen = calibration_draw(len(items), config)
    drawn = set(chosen)
    rest = [i for i in range(len(items)) if i not in drawn]
    full = team_graph(spec, config.judges, scale=config.scale, aggregation=config.final_aggregation)
    shared: dict[str, Any] = {
        "model": model,
        "store": store,
        "concurrency": concurrency,
        "executor": executor,
        "ray_address": ray_address,
        "ray_cpus_per_item": ray_cpus_per_item,
        "imports": imports,
        "on_call": on_call,
    }

    def told(phase: str) -> Callable[[ItemRun, int, int], None] | None:
        if progress is None:
            return None
        report = progress
        return lambda item, done, total: report(phase, item, done, total)

    db = open_store(store)  # one store for both phases
    shared["store"] = db
    try:
        # one Ray for both phases: each started its own, and the held-out items waited for a second start
        with one_ray(executor, ray_address, db):
            first = await run_items(
                full, [items[i] for i in chosen], kind="calibrate", progress=told("calibration"), **shared
            )
            calibrated = [_scored(run, labels[i], jury.verdict) for run, i in zip(first.items, chosen, strict=True)]
            usable = [s for s in calibrated if not s.error]
            if len(usable) < 2:
                first_error = next((s.error for s in calibrated if s.error), "no item")
                raise CalibrationFailed(
                    f"calibration of {spec.name}: {len(usable)} of {len(calibrated)} items were scored; first error: "
                    f"{first_error}{RETRY_FAILED if any(s.error for s in calibrated) else ''}",
                    calibrated,
                    [first.job],
                    graph=spec.name,
                    job=first.job,
                )
            selection = select_team(
                [s.human for s in usable], {j: [s.raw[j] for s in usable] for j in config.judges}, config
            )
            note = (
                f"Team {list(selection.team)} chosen by `agentmesh optimize` (job {first.job}) on {len(usable)} "
                f"labelled items: (Kendall tau + Spearman rho)/2 = {selection.selected.score:.3f}."
            )
            chosen_graph = team_graph(
                spec, selection.team, scale=config.scale, aggregation=config.final_aggregation, note=note
            )
            held_out: list[ScoredItem] = []
            jobs = [first.job]
            test = None
            if evaluate and rest:
                second = await run_items(
                    chosen_graph, [items[i] for i in rest], kind="calibrate", progress=told("held-out"), **shared
                )
                jobs.append(second.job)
                held_out = [_scored(run, labels[i], jury.verdict) for run, i in zip(second.items, rest, strict=True)]
                scored = [s for s in held_out if s.score is not None]
                if len(scored) >= 2:
                    test = correlations([s.human for s in scored], [float(s.score or 0) for s in scored])
    finally:
        if not isinstance(store, Store):
            db.close()
    return Calibration(spec.name, config, selection, chosen_graph, calibrated, held_out, test, jobs)


def check_items(
    spec: GraphSpec,
    items: Sequence[Item],
    *,
    config: JuryConfig,
    human_key: str = "human",
    source: str | Path | None = None,
) -> list[float]:
    """Every item's human label (:func:`human_labels`), after checking that the judges of ``config`` can score
    every item as the graph's check node will (S5 on a summary, an unknown ``task``): refused here, before any
    run, rather than as one failed run per item. ``source`` (the data file) prefixes each error's line."""
    labels = human_labels(items, human_key, source)
    if len(items) < 2:  # here, before any store is opened: the command left an empty database behind
        where = f"{source}: " if source is not None else ""  # the command's --data file: which file had too few
        raise ConfigError(f"{where}calibration needs at least 2 labelled items, got {len(items)}")
    if jury_nodes(spec).check is not None:
        for item in items:
            try:
                sejury_check({}, item.inputs, judges=config.judges)
            except ConfigError as exc:
                where = f"{source}:{item.line}" if source is not None else f"line {item.line}"
                raise ConfigError(f"{where}: {exc}", line=item.line) from None
    if len(items) >= 2:
        chosen = calibration_draw(len(items), config)
        if len({labels[i] for i in chosen}) == 1:
            # every team's correlation with a constant label is NaN: the "chosen" team was the first enumerated, from
            # no evidence, after paying for every judge on every item; the draw is known before any run
            lines = ", ".join(str(items[i].line) for i in sorted(chosen))
            more = " or draw others (--calibration-size)" if len(chosen) < len(items) else ""
            raise ConfigError(
                f"{source or 'calibration'}: the {len(chosen)} calibration items (lines {lines}) all have the human "
                f"label {labels[chosen[0]]:g}, so no team's agreement with the humans can be measured (a correlation "
                f"with a constant label is undefined); label items of different quality{more}"
            )
    return labels


#: The field of a batch's line (``agentmesh run <jury graph> --input-file``) holding its human label: the field
#: ``optimize``'s ``--human-key`` reads by default. On a graph with a jury it is kept aside, as a gold answer is,
#: rather than refused as an unknown input: the held-out labelled lines can then be scored through a batch.
BATCH_LABEL = "human"


def batch_labels(spec: GraphSpec) -> frozenset[str]:
    """The fields a batch of ``spec`` keeps aside as human labels (:data:`BATCH_LABEL` on a graph with a jury,
    none on another: there the field is an unknown input, refused as before)."""
    return frozenset({BATCH_LABEL}) if has_jury(spec) else frozenset()


def check_batch_labels(items: Sequence[Item], source: str | Path) -> None:
    """Refuse, before any run, a batch line whose human label (:data:`BATCH_LABEL`, kept aside) is not a finite
    number, naming the file and line as a calibration's check does. Lines without a label are not labelled, and
    are fine."""
    for item in items:
        if BATCH_LABEL in item.extra:
            _label(item, BATCH_LABEL, source)


def calibration_draw(n_items: int, config: JuryConfig) -> list[int]:
    """The indices of the calibration items among ``n_items`` labelled ones, in draw order: ``config.n_calibration``
    drawn as the release draws them when there are more, else all of them."""
    if n_items > config.n_calibration:
        return calibration_split(n_items, config.n_calibration, config.seed)
    return list(range(n_items))


def human_labels(items: Sequence[Item], key: str = "human", source: str | Path | None = None) -> list[float]:
    """Every item's human label (its ``key`` field, a finite number), checked before anything runs.

    ``source`` (the data file) prefixes each error's line, ``labelled.jsonl:3: ...``: ``optimize`` checks the
    labels with it, since an error saying "line 3" alone does not say of which file."""
    return [_label(item, key, source) for item in items]


def _label(item: Item, key: str, source: str | Path | None = None) -> float:
    where = f"{source}:{item.line}" if source is not None else f"line {item.line}"
    value = {**item.extra, **item.inputs}.get(key)
    if isinstance(value, bool):  # (APR's 0/1 verdicts written as JSON booleans: there, not missing)
        raise ConfigError(
            f"{where}: human label {key!r} is {json.dumps(value)}; expected a number (for a yes/no verdict, 1 or 0)",
            line=item.line,
        )
    if value is None:
        raise ConfigError(
            f"{where}: no human label {key!r} (a number on the human scale, e.g. 1-5; --human-key names the field)",
            line=item.line,
        )
    try:
        label = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: human label {key!r} is {value!r}; expected a number", line=item.line) from None
    if not math.isfinite(label):  # JSON's NaN parses, and would make every correlation NaN without a word
        raise ConfigError(f"{where}: human label {key!r} is {value!r}; expected a finite number", line=item.line)
    return label


def _scored(run: ItemRun, human: float, verdict: str) -> ScoredItem:
    out = ScoredItem(line=run.line, human=human, run_id=run.run_id, calls=run.calls, reused=run.reused)
    if run.error or run.outputs is None:
        out.error = run.error or "the run produced no outputs"
        return out
    node = run.outputs.get(verdict) or {}
    raw = node.get("raw")
    if not isinstance(raw, Mapping):
        out.error = f"run {run.run_id}: node {verdict!r} gave no raw scores"
        return out
    out.raw = {str(k): float(v) for k, v in raw.items()}
    value = node.get("value")
    out.score = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    out.unparsed = [str(j) for j in node.get("unparsed") or []]
    return out


def calibrate(graph: str | Path | GraphSpec, items: Sequence[Item | Mapping[str, Any]], **kwargs: Any) -> Calibration:
    """Blocking :func:`acalibrate`, for scripts without an event loop."""
    return blocking(
        acalibrate(graph, items, **kwargs),
        name="agentmesh.systems.sejury.calibrate",
        async_name="agentmesh.systems.sejury.acalibrate",
    )
