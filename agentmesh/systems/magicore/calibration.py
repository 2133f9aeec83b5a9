"""mu and sigma for a MAgICoRe graph, measured on a calibration set as one resumable job (magicore.md §2.4).

The difficulty test turns each sample's reward ``R = ORM + prod(PRM)`` into ``z = (R - mu) / sigma``: mu and sigma
are the mean and population std of the *first* sample's R over the problems. The reference computes them over
the evaluation set itself (transductive); online, the same statistic over a held-out calibration set drawn like
the problems to come, with the same Solver and the same reward source, is what a graph can carry. The scale is the
reward source's: an LLM judge standing in for the reward models and a trained reward model give different R, so
a graph's mu/sigma are only valid for the reward source (and, with judges, the model) they were measured with.

Each problem is its own stored run of a *calibration graph*: the graph's magicore node with its op swapped for
``magicore_first_sample`` (:func:`agentmesh.systems.magicore.graph.magicore_first_sample_operator`), which draws
the Solver's sample 0 and scores it, nothing else. The job goes through
:func:`agentmesh.optimize.items.run_items`: running it again reuses finished runs and resumes cut-short ones
(finished calls are never paid twice), the runs can be shown and replayed like any other, and a job can run on Ray.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentmesh._sync import blocking
from agentmesh.datasets import Item
from agentmesh.errors import AgentmeshError, ConfigError
from agentmesh.models import ModelClient
from agentmesh.models.providers.base import Provider
from agentmesh.optimize.items import RETRY_FAILED, Executor, ItemRun, as_items, digest, run_items
from agentmesh.runtime.arguments import resolve_graph
from agentmesh.runtime.operators.registry import get_function
from agentmesh.spec.graph import GraphSpec
from agentmesh.spec.node import NodeSpec
from agentmesh.store import Store
from agentmesh.systems.magicore.graph import FIRST_SAMPLE_OP, MagicoreParams
from agentmesh.systems.magicore.scoring import normalisation_stats

__all__ = [
    "CalibratedItem",
    "Calibration",
    "CalibrationFailed",
    "acalibrate",
    "calibrate",
    "calibration_graph",
    "check_enough",
    "magicore_node",
    "use_reward_functions",
    "with_calibration",
]

Progress = Callable[[ItemRun, int, int], None]

_NO_SPREAD = 1e-9
"""sigma at most this (relative to max(1, |mu|)) counts as 0: the rewards do not spread."""


def magicore_node(spec: GraphSpec, node: str | None = None, *, purpose: str = "calibration") -> str:
    """The name of ``spec``'s magicore node: ``node`` when given (checked), else the only one. ``purpose`` says
    what needs it, in the error."""
    found = [name for name, n in spec.nodes.items() if n.op == "magicore"]
    if node is not None:
        if node not in found:
            raise ConfigError(
                f"graph {spec.name!r} has no magicore node {node!r}; its magicore nodes: {found or 'none'}",
                graph=spec.name,
            )
        return node
    if len(found) != 1:
        raise ConfigError(
            f"graph {spec.name!r} has {len(found)} magicore nodes ({found}); {purpose} needs exactly one, or name "
            "it (node=...)"
            if found
            else f"graph {spec.name!r} has no magicore node (op: magicore), which {purpose} needs"
            + (
                " (an SE-Jury or DyLAN graph chooses its team with `agentmesh optimize`)"
                if purpose == "calibration"
                else ""
            ),
            graph=spec.name,
        )
    return found[0]


def _params(spec: GraphSpec, node: str) -> MagicoreParams:
    params = spec.nodes[node].params
    assert isinstance(params, MagicoreParams)
    return params


def calibration_graph(spec: GraphSpec, node: str | None = None) -> GraphSpec:
    """The graph a calibration job runs: the magicore node alone, as ``magicore_first_sample``, with its agents.

    Named ``<graph>_calibration`` so its runs are told apart from the graph's own in ``agentmesh runs``.
    """
    name = magicore_node(spec, node)
    params = _params(spec, name)
    used = {agent for _, agent in params.agents_used()}
    return GraphSpec(
        name=f"{spec.name}_calibration",
        description=f"First Solver sample of each problem, scored: what mu/sigma of {spec.name!r} are made of.",
        inputs=spec.inputs,
        agents={k: v for k, v in spec.agents.items() if k in used},
        nodes={name: NodeSpec(op=FIRST_SAMPLE_OP, description=spec.nodes[name].description, params=params)},
        output=name,
        model=spec.model,
    )


class CalibrationValueError(ConfigError, ValueError):
    """A ``mu``/``sigma`` that cannot calibrate: a :class:`~agentmesh.errors.ConfigError`, still the ``ValueError``
    that pydantic's check of ``sigma`` raised before."""


def with_calibration(spec: GraphSpec | str | Path, mu: float, sigma: float, node: str | None = None) -> GraphSpec:
    """``spec`` (a spec, a shipped graph's name or a file) with its magicore node's ``mu``/``sigma`` set: a graph
    that carries its calibration. A ``mu`` or ``sigma`` that is not a finite number, or a ``sigma`` not above 0, is
    refused: every z-score of the difficulty test divides by sigma, and a NaN made every problem silently easy."""
    spec = resolve_graph(spec)
    for label, value in (("mu", mu), ("sigma", sigma)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise CalibrationValueError(f"with_calibration: {label} must be a finite number, got {value!r}")
    if sigma <= 0:
        raise CalibrationValueError(f"with_calibration: sigma must be above 0 (z = (R - mu) / sigma), got {sigma!r}")
    name = magicore_node(spec, node, purpose="with_calibration")
    params = MagicoreParams.model_validate({**_params(spec, name).model_dump(), "mu": mu, "sigma": sigma})
    nodes = {**spec.nodes, name: spec.nodes[name].model_copy(update={"params": params})}
    return spec.model_copy(update={"nodes": nodes})


def use_reward_functions(spec: GraphSpec | str | Path, orm: str, prm: str, node: str | None = None) -> GraphSpec:
    """``spec`` with its magicore node scoring by the registered functions ``orm`` and ``prm`` (real reward
    models behind them) instead of the LLM judges standing in for them; the judges' cards leave the graph.

    The functions are looked up when the graph runs, so the module registering them must be imported first
    (``agentmesh -I my_rewards.py run ...``). A graph's mu/sigma belong to its reward source: calibrate again.
    ``spec`` may also be a shipped graph's name or a file.
    """
    spec = resolve_graph(spec)
    for label, value in (("orm", orm), ("prm", prm)):
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(
                f"use_reward_functions: {label} must be the name a function was registered under "
                f"(@register_function), got {value!r}"
            )
    name = magicore_node(spec, node, purpose="use_reward_functions")
    params = _params(spec, name)
    judges = {a for a in (params.orm_judge, params.prm_judge) if a is not None}
    new = MagicoreParams.model_validate(
        {**params.model_dump(), "orm_judge": None, "prm_judge": None, "orm_function": orm, "prm_function": prm}
    )
    nodes = {**spec.nodes, name: spec.nodes[name].model_copy(update={"params": new})}
    used = {a for n in nodes.values() for _, a in n.params.agents_used()}
    agents = {k: v for k, v in spec.agents.items() if k not in judges or k in used}
    return spec.model_copy(update={"nodes": nodes, "agents": agents})


@dataclass
class CalibratedItem:
    """One calibration problem: its run and its first sample's answer and reward (``None`` when it failed)."""

    line: int
    run_id: str | None
    calls: int = 0
    reused: bool = False
    answer: Any = None
    reward: float | None = None
    error: str | None = None
    orm_unreadable: bool = False
    """The ORM judge's reply held no score it could read: the ORM part of R is the neutral 0.5, not a judgement."""
    prm_unreadable: bool = False
    """The PRM judge's reply held no list of one score per step (a step's missing score counts 0.5); only counted
    when the sample has an answer, since without one the PRM takes no part in R."""


@dataclass
class Calibration:
    """What :func:`acalibrate` measured: ``mu``/``sigma`` over the first-sample rewards of the usable items."""

    graph: str
    node: str
    mu: float
    sigma: float
    job: str
    model: str
    items: list[CalibratedItem] = field(default_factory=list)
    calibrated: GraphSpec | None = None
    """The graph with its magicore node's ``mu``/``sigma`` set (:func:`with_calibration`)."""

    @property
    def failed(self) -> list[CalibratedItem]:
        return [i for i in self.items if i.error]

    @property
    def rewards(self) -> list[float]:
        return [i.reward for i in self.items if i.reward is not None]

    def fallbacks(self) -> str:
        """What of the rewards is a fallback rather than a judgement, in one sentence ('' when none is): samples
        with no answer the Solver's parser could read (R is then the ORM score alone) and judge replies that could
        not be read (counted 0.5). A mu and sigma made of those measure the format, not the reward source: with
        SmolLM2 and the judges every reward is one, and the user saw only "all rewards are 0.5"."""
        scored = [i for i in self.items if i.reward is not None]
        parts = []
        for what, hit in (
            ("no answer the Solver's parser could read, so R is the ORM score alone", lambda i: i.answer is None),
            ("an ORM judge reply with no score it could read (counted 0.5)", lambda i: i.orm_unreadable),
            ("a PRM judge reply without one score per step (a missing one counted 0.5)", lambda i: i.prm_unreadable),
        ):
            lines = [i.line for i in scored if hit(i)]
            if lines:
                shown = ", ".join(map(str, lines[:10])) + (", ..." if len(lines) > 10 else "")
                parts.append(f"{what}: {len(lines)} of {len(scored)} (line{'s' if len(lines) > 1 else ''} {shown})")
        return "; ".join(parts)

    @property
    def inputs(self) -> dict[str, float]:
        """The graph inputs that apply this calibration to a run (they override the node's ``mu``/``sigma``)."""
        return {"mu": self.mu, "sigma": self.sigma}

    @property
    def cli_args(self) -> str:
        """The same as ``agentmesh run`` options: ``-i mu=... -i sigma=...`` (``repr``: the exact floats)."""
        return f"-i mu={self.mu!r} -i sigma={self.sigma!r}"

    def to_json(self) -> dict[str, Any]:
        return {
            "graph": self.graph,
            "node": self.node,
            "mu": self.mu,
            "sigma": self.sigma,
            "n": len(self.rewards),
            "job": self.job,
            "model": self.model,
            "cli_args": self.cli_args,
            "items": [
                {
                    "line": i.line,
                    "run_id": i.run_id,
                    "reused": i.reused,
                    "answer": i.answer,
                    "R": i.reward,
                    "orm_unreadable": i.orm_unreadable,
                    "prm_unreadable": i.prm_unreadable,
                    "error": i.error,
                }
                for i in self.items
            ],
        }


class CalibrationFailed(AgentmeshError):
    """No ``mu``/``sigma`` could be measured (fewer than 2 rewards, or no spread among them). ``items`` are the
    problems with their runs, rewards and errors, ``job`` and ``model`` the job's, for ``calibrate --json``, which
    printed nothing on stdout then (a calibration with some failed problems prints them)."""

    def __init__(self, message: str, items: list[CalibratedItem], *, job: str, model: str, **context: Any) -> None:
        super().__init__(message, job=job, **context)
        self.items = items
        self.model = model

    def to_json(self, graph: str, node: str) -> dict[str, Any]:
        """The document :meth:`Calibration.to_json` gives, with no ``mu``, ``sigma`` or ``cli_args``."""
        found = Calibration(graph, node, math.nan, math.nan, str(self.context.get("job")), self.model, self.items)
        return found.to_json() | {"mu": None, "sigma": None, "cli_args": None}


def _function_sources(params: MagicoreParams) -> dict[str, str | None]:
    """A digest of each reward function's source, part of what identifies a calibration job.

    A job reuses its finished runs, whose stored outputs hold the rewards; a graph names its reward functions,
    not their code, so after an edit to a function's body the job would hand back the old function's rewards.
    With the source in the job's key an edited function makes a new job. ``None`` when the source cannot be
    read (a function built at run time, a C extension): the name alone identifies it then.
    """
    out: dict[str, str | None] = {}
    for name in (params.orm_function, params.prm_function):
        if name is None:
            continue
        try:
            out[name] = digest(inspect.getsource(get_function(name)))
        except (ConfigError, OSError, TypeError):
            out[name] = None
    return out


def check_enough(spec: GraphSpec, items: Sequence[Item]) -> None:
    """Refuse fewer than 2 problems (no spread can be measured over one): ``agentmesh calibrate`` checks it before
    it opens the store, which otherwise was left behind empty."""
    if len(items) < 2:
        raise ConfigError(f"calibration of {spec.name}: needs at least 2 problems, got {len(items)}")


def _item(run: ItemRun, node: str) -> CalibratedItem:
    out = CalibratedItem(line=run.line, run_id=run.run_id, calls=run.calls, reused=run.reused)
    if run.error or run.outputs is None:
        out.error = run.error or "the run produced no outputs"
        return out
    result = run.outputs.get(node) or {}
    value = result.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        out.error = f"node {node!r} gave no reward (value {value!r})"
        return out
    out.answer, out.reward = result.get("answer"), float(value)
    unreadable = (result.get("magicore") or {}).get("unreadable") or {}
    out.orm_unreadable = bool(unreadable.get("orm"))
    out.prm_unreadable = bool(unreadable.get("prm")) and out.answer is not None
    return out


async def acalibrate(
    graph: str | Path | GraphSpec,
    items: Sequence[Item | Mapping[str, Any]],
    *,
    node: str | None = None,
    model: str | Provider | ModelClient | None = None,
    store: Store | str | None = None,
    concurrency: int = 4,
    progress: Progress | None = None,
    executor: Executor = "local",
    ray_address: str | None = None,
    ray_cpus_per_item: float = 1.0,
    imports: Sequence[str] | None = None,
    on_call: Callable[[], None] | None = None,
) -> Calibration:
    """Measure ``mu``/``sigma`` of ``graph``'s magicore node over ``items`` (see the module docstring).

    ``items`` are the graph's inputs per problem (:func:`agentmesh.datasets.read_items` reads a JSONL file of
    them, or of MATH/GSM8K/MMLU-style records). Failed items are reported in the result, not raised; fewer than
    two usable rewards, or rewards that are all equal (sigma 0: the reward source does not tell the samples
    apart), raise :class:`CalibrationFailed` (an :class:`AgentmeshError`, with the items). How items run
    (``concurrency``, Ray), and ``on_call``, are :func:`agentmesh.optimize.items.run_items`'s.
    """
    spec = resolve_graph(graph)
    name = magicore_node(spec, node)
    job_spec = calibration_graph(spec, name)
    items = as_items(items, spec, what="calibration", allow_empty=True)  # (dicts as a file's lines)
    check_enough(spec, items)
    done = await run_items(
        job_spec,
        items,
        kind="calibrate",
        job_key={"reward_functions": _function_sources(_params(spec, name))},
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
    scored = [_item(run, name) for run in done.items]
    rewards = [i.reward for i in scored if i.reward is not None]
    if len(rewards) < 2:
        first_error = next((i.error for i in scored if i.error), "no item")
        raise CalibrationFailed(
            f"calibration of {spec.name}: {len(rewards)} of {len(scored)} problems were scored (at least 2 are "
            f"needed); first error: {first_error}{RETRY_FAILED if any(i.error for i in scored) else ''}",
            scored,
            job=done.job,
            model=done.model,
        )
    mu, sigma = normalisation_stats(rewards)
    found = Calibration(graph=spec.name, node=name, mu=mu, sigma=sigma, job=done.job, model=done.model, items=scored)
    # equal rewards can leave rounding noise in sigma (three rewards of 0.2: mean 0.20000000000000004, sigma
    # 3e-17), which would blow every z-score up to +-1e16: below a relative 1e-9 there is no spread to speak of
    if not sigma > _NO_SPREAD * max(1.0, abs(mu)):
        why = found.fallbacks()
        raise CalibrationFailed(
            f"calibration of {spec.name}: all {len(rewards)} first-sample rewards are {rewards[0]:.6g}, so sigma is 0 "
            "and no z-score can be formed; the reward source does not tell these samples apart (use more or more "
            "varied problems, or another reward source)" + (f". Of these rewards: {why}" if why else ""),
            scored,
            job=done.job,
            model=done.model,
        )
    found.calibrated = with_calibration(spec, mu, sigma, name)
    return found


def calibrate(graph: str | Path | GraphSpec, items: Sequence[Item | Mapping[str, Any]], **kwargs: Any) -> Calibration:
    """Blocking :func:`acalibrate`, for scripts without an event loop."""
    return blocking(
        acalibrate(graph, items, **kwargs),
        name="agentmesh.systems.magicore.calibrate",
        async_name="agentmesh.systems.magicore.acalibrate",
    )
