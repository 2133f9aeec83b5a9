"""``magicore``: the MAgICoRe controller as a graph operator, on the graph's models (magicore.md §4-§5, §10).

The controller (:mod:`.controller`) is pure and takes five components; this module builds them from the graph's
agent cards, so every call goes through the run context: recorded in the store as it completes, served back on
resume and replay, counted against the run's budget. Record keys are ``(node, agent, round, slot)``:

===========  ==========================================  ===================================================
component    agent (param)                               round / slot
===========  ==========================================  ===================================================
Solver       ``solver``                                  0 / sample index (k calls, same prompt, ``index``)
Reviewer     ``reviewer``                                n + 1 / sample index (round n's refinements)
Refiner      ``refiner``                                 n + 1 / sample index
ORM          ``orm_judge`` (or ``orm_function``)         iteration / sample index
PRM          ``prm_judge`` (or ``prm_function``)         iteration / sample index
===========  ==========================================  ===================================================

**Reward models.** The paper's ORM (InternLM2-7B-Reward) and PRM (Math-Shepherd) are trained reward models. Two
ways to supply them:

* ``orm_function`` / ``prm_function`` name functions registered with ``@register_function``: ``fn(question,
  solutions) -> list[float]`` (one probability per solution: the sigmoid of a reward model's raw score) and
  ``fn(question, steps) -> list[float]`` (one per step), each in [0, 1] (anything else is refused by name), sync or
  async — the place to call a served reward endpoint;
* ``orm_judge`` / ``prm_judge`` name agent cards: an **LLM judge standing in** for a reward model when none is
  served (``agents/magicore/orm_judge.yaml``: a 0-100 score, divided by 100; ``prm_judge.yaml``: a JSON array of
  per-step probabilities). This is not the paper's method: the judge's scale differs from the reward models', so
  ``mu`` and ``sigma`` (§2.4) must be calibrated with the same judges (:func:`.calibrate_async` on a calibration
  set, or :func:`.normalisation_stats` over the first sample's reward of each problem). An unparsable judge reply
  counts as 0.5 (no evidence either way) and is logged.

``mu``/``sigma`` come from the node's parameters; the graph's inputs ``mu``/``sigma``, when given, win (one graph,
several calibrations). The whole loop runs as one step of the graph: finished calls are in the store, so a
resumed run repeats none of them. A spent budget ends the run the usual way (``BudgetExhausted`` reaches the
runtime, which records it as the stop reason); the output's ``stop`` says how the controller ended otherwise.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from numbers import Real
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from agentmesh.errors import ConfigError
from agentmesh.runtime.context import AgentAnswer, RunError
from agentmesh.runtime.held_warnings import warn
from agentmesh.runtime.operators import NodeRun, operator
from agentmesh.runtime.operators.registry import NodeOutput, get_function
from agentmesh.spec.operators import OperatorParams
from agentmesh.systems.magicore.controller import (
    MagicoreConfig,
    MagicoreResult,
    OutcomeRM,
    ParseAnswer,
    ProcessRM,
    Sample,
    call_site,
    score_solutions,
    solve_async,
)
from agentmesh.systems.magicore.scoring import Answer

__all__ = [
    "FIRST_SAMPLE_OP",
    "LETTERS",
    "AgentRefiner",
    "AgentReviewer",
    "AgentSolver",
    "FunctionORM",
    "FunctionPRM",
    "JudgeORM",
    "JudgePRM",
    "MagicoreParams",
    "inline_choices",
    "magicore_operator",
]

log = logging.getLogger(__name__)

FIRST_SAMPLE_OP = "magicore_first_sample"
"""The operator a calibration job runs in place of ``magicore`` (:func:`magicore_first_sample_operator`)."""

NEUTRAL = 0.5
"""The score an unparsable LLM-judge reply counts as: no evidence either way."""


class MagicoreParams(OperatorParams):
    """MAgICoRe on one problem: Solver samples, reward scoring, difficulty test, Reviewer/Refiner rounds, vote."""

    solver: str
    reviewer: str
    refiner: str
    orm_judge: str | None = Field(default=None, description="Agent standing in for the ORM (LLM judge, 0-100).")
    orm_function: str | None = Field(default=None, description="Registered fn(question, solutions) -> scores.")
    prm_judge: str | None = Field(default=None, description="Agent standing in for the PRM (JSON per-step list).")
    prm_function: str | None = Field(default=None, description="Registered fn(question, steps) -> step scores.")
    k: int = Field(default=40, ge=1, description="Solver samples; also the top-k of the final vote.")
    max_rounds: int = Field(default=3, ge=1, description="Refinement rounds at most (T).")
    mu: float = Field(description="Mean first-sample reward of the evaluation/calibration set (§2.4).")
    sigma: float = Field(gt=0, description="Population std of the same rewards (§2.4).")
    reference_compat: bool = Field(
        default=False, description="refine.py's loop: every round runs, easy rounds restart from iteration 0 (§4.5)."
    )
    quality_threshold: float = 0.0
    confidence_threshold: float = 0.5
    combine: Literal["or", "and"] = "or"
    question_input: str = Field(default="question", description="The graph input holding the problem text.")
    choices_input: str | None = Field(
        default=None,
        description="A graph input holding the options as a list (MMLU-style data): when given, they are written "
        "into the question inline, as the reference's multiple-choice data has them.",
    )

    outputs: ClassVar[frozenset[str] | None] = frozenset(
        {"answer", "answers", "value", "text", "votes", "magicore", "stop"}
    )

    @model_validator(mode="after")
    def _one_source_each(self) -> MagicoreParams:
        for what in ("orm", "prm"):
            judge, fn = getattr(self, f"{what}_judge"), getattr(self, f"{what}_function")
            if (judge is None) == (fn is None):
                raise ValueError(f"magicore: give exactly one of {what}_judge (an agent) and {what}_function")
        names = [a for _, a in self.agents_used()]
        if len(set(names)) != len(names):
            raise ValueError(
                f"magicore: solver, reviewer, refiner and the judges must be different agents (got {names}); "
                "their calls are recorded by agent"
            )
        return self

    def agents_used(self) -> list[tuple[str, str]]:
        used = [("solver", self.solver), ("reviewer", self.reviewer), ("refiner", self.refiner)]
        if self.orm_judge:
            used.append(("orm_judge", self.orm_judge))
        if self.prm_judge:
            used.append(("prm_judge", self.prm_judge))
        return used

    def functions_used(self) -> list[tuple[str, str]]:
        """The reward functions the node calls, so that a name nobody registered fails before the run is stored,
        not at the node after the Solver's k calls."""
        return [
            (field, name)
            for field, name in (("orm_function", self.orm_function), ("prm_function", self.prm_function))
            if name
        ]

    def provides_for(self, field_path: str) -> frozenset[str]:
        return {
            "solver": frozenset({"index"}),
            "reviewer": frozenset({"solution"}),
            "refiner": frozenset({"solution", "feedback"}),
            "orm_judge": frozenset({"solution"}),
            "prm_judge": frozenset({"steps"}),
        }.get(field_path, frozenset())


# --- components on the run's agents ----------------------------------------------------------------------------------


class _Agent:
    def __init__(self, run: NodeRun, agent: str) -> None:
        self.run, self.agent = run, agent

    async def ask(self, round: int, slot: int, extra: dict[str, Any]) -> AgentAnswer:
        ctx = self.run.ctx
        p = self.run.params
        assert isinstance(p, MagicoreParams)
        # every card sees the question the controller works on (with its options inline, when given apart)
        shown = {"question": _question(self.run, p)} if p.choices_input else {}
        variables = ctx.variables(self.run.outputs, ctx.spec.agents[self.agent], {**shown, **extra})
        return await ctx.ask(node=self.run.call_node, agent=self.agent, slot=slot, round=round, variables=variables)


class AgentSolver(_Agent):
    """k calls of the Solver card (``index`` = 0..k-1 in its prompt); each reply is one solution."""

    async def sample(self, question: str, k: int) -> list[str]:
        replies = await asyncio.gather(*(self.ask(0, i, {"index": i}) for i in range(k)))
        return [r.text for r in replies]


class AgentReviewer(_Agent):
    """The Reviewer card on one scored solution (``solution`` in its prompt); the feedback is the reply text."""

    async def review(self, question: str, scored_solution: str) -> str:
        site = call_site()
        return (await self.ask(site.iteration, site.index, {"solution": scored_solution})).text


class AgentRefiner(_Agent):
    """The Refiner card (``solution``, ``feedback``); the reply is the complete new solution."""

    async def refine(self, question: str, scored_solution: str, feedback: str) -> str:
        site = call_site()
        return (await self.ask(site.iteration, site.index, {"solution": scored_solution, "feedback": feedback})).text


class JudgeORM(_Agent):
    """LLM judge **standing in for the ORM** (not the paper's reward model): a 0-100 score / 100 per solution.

    ``unreadable`` counts the replies that gave no usable score (each counted :data:`NEUTRAL`), so that what is
    built on the scores can say how much of them is that fallback rather than a judgement."""

    def __init__(self, run: NodeRun, agent: str) -> None:
        super().__init__(run, agent)
        self.unreadable = self.replies = 0

    async def score(self, question: str, solutions: Sequence[str]) -> list[float]:
        iteration = call_site().iteration
        replies = await asyncio.gather(*(self.ask(iteration, i, {"solution": s}) for i, s in enumerate(solutions)))
        # a reply the card's parser could not read is no evidence, whatever fallback value the parser gives it
        scores = [
            _unit_or_none(r.value if r.ok else None, scale=100.0, what=f"{self.agent} (ORM judge)") for r in replies
        ]
        self.unreadable += sum(score is None for score in scores)
        self.replies += len(scores)
        return [NEUTRAL if score is None else score for score in scores]


class JudgePRM(_Agent):
    """LLM judge **standing in for the PRM** (not Math-Shepherd): one probability per step, from a JSON array.

    A list too short is padded with :data:`NEUTRAL`, one too long cut, so there is one score per step (§5.1).
    ``unreadable`` counts the replies whose list was missing, of the wrong length or held an unusable score.
    """

    def __init__(self, run: NodeRun, agent: str) -> None:
        super().__init__(run, agent)
        self.unreadable = self.replies = 0

    async def score_steps(self, question: str, steps: Sequence[str]) -> list[float]:
        site = call_site()
        reply = await self.ask(site.iteration, site.index, {"steps": list(steps)})
        values = reply.value if isinstance(reply.value, list) else None
        if values is None:
            warn(log, "%s (PRM judge): no JSON array in the reply; every step counts as %s", self.agent, NEUTRAL)
            values = []
        elif len(values) != len(steps):
            warn(log, "%s (PRM judge): %d scores for %d steps", self.agent, len(values), len(steps))
        found = [_unit_or_none(v, scale=1.0, what=f"{self.agent} (PRM judge)") for v in values[: len(steps)]]
        self.replies += 1
        if len(values) != len(steps) or None in found:
            self.unreadable += 1
        scores = [NEUTRAL if score is None else score for score in found]
        return scores + [NEUTRAL] * (len(steps) - len(scores))


def _unit_or_none(value: Any, *, scale: float, what: str) -> float | None:
    """A judge's score on the unit interval; ``None`` (logged) for one that cannot be read: it counts as
    :data:`NEUTRAL`, and the judge counts it as unreadable."""
    if value is None:
        warn(log, "%s: no score its card's parser could read in the reply; counts as %s", what, NEUTRAL)
        return None
    try:
        x = float(value) / scale
    except (TypeError, ValueError):
        warn(log, "%s: unusable score %r; counts as %s", what, value, NEUTRAL)
        return None
    if math.isnan(x):
        return None
    return min(1.0, max(0.0, x))


class FunctionORM:
    """A registered ``fn(question, solutions) -> scores`` (sync or async): e.g. a served reward endpoint."""

    def __init__(self, name: str, node: str) -> None:
        self.name, self.node = name, node
        self.fn = get_function(name, node=node)

    async def score(self, question: str, solutions: Sequence[str]) -> list[float]:
        out = self.fn(question, list(solutions))
        return reward_scores(
            await out if inspect.isawaitable(out) else out,
            expected=len(solutions),
            what=f"node {self.node!r}: ORM function {self.name!r}",
            per="solution",
        )


class FunctionPRM:
    """A registered ``fn(question, steps) -> step scores`` (sync or async)."""

    def __init__(self, name: str, node: str) -> None:
        self.name, self.node = name, node
        self.fn = get_function(name, node=node)

    async def score_steps(self, question: str, steps: Sequence[str]) -> list[float]:
        out = self.fn(question, list(steps))
        return reward_scores(
            await out if inspect.isawaitable(out) else out,
            expected=None,  # a PRM's own segmentation may score another number of steps (Math-Shepherd's tags)
            what=f"node {self.node!r}: PRM function {self.name!r}",
            per="step",
        )


def reward_scores(result: Any, *, expected: int | None, what: str, per: str) -> list[float]:
    """A reward function's result checked as the difficulty test needs it: one finite number per ``per`` item,
    each a probability in [0, 1] (the ORM's the sigmoid of the paper's reward model, the PRM's a step's
    probability of being right; 0 and 1 included, which a float32 sigmoid reaches). Anything else is refused
    naming the function: a raw reward-model logit (say 3.2), or an ORM list one short, would otherwise be combined
    into R = ORM + prod(PRM) silently, and the z-scores and votes built on it would be wrong with nothing to show.
    ``expected`` is the count required (``None``: any, as for a PRM, whose own segmentation decides)."""
    interval = "[0, 1]"
    if isinstance(result, str | bytes | Mapping) or not isinstance(result, Iterable):
        raise RunError(
            f"{what} returned {type(result).__name__} {result!r:.80}; expected a list of scores in {interval}, one "
            f"per {per}",
        )
    scores = list(result)
    if expected is not None and len(scores) != expected:
        raise RunError(f"{what} returned {len(scores)} scores for {expected} {per}(s); expected one per {per}")
    out: list[float] = []
    for i, x in enumerate(scores):
        value = float(x) if isinstance(x, Real) and not isinstance(x, bool) else math.nan  # (numpy's floats too)
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise RunError(
                f"{what} returned {x!r} for {per} {i}; expected a probability in {interval} (a reward model's raw "
                "score goes through a sigmoid first, as magicore.md's ORM does)",
            )
        out.append(value)
    return out


# --- the operator ---------------------------------------------------------------------------------------------------


def _calibration(run: NodeRun, p: MagicoreParams) -> tuple[float, float]:
    mu, sigma = p.mu, p.sigma
    inputs = run.ctx.inputs
    if inputs.get("mu") is not None:
        mu = float(inputs["mu"])
    if inputs.get("sigma") is not None:
        sigma = float(inputs["sigma"])
    return mu, sigma


def _answers(result: MagicoreResult, p: MagicoreParams) -> list[dict[str, Any]]:
    last = result.rounds[-1] if result.rounds else None
    samples: Sequence[Sample] = last.top_k if last else ()
    return [
        {
            "agent": p.solver if s.iteration == 0 else p.refiner,
            "slot": i,
            "text": s.text,
            "value": s.pred,
            "key": s.pred,
            "R": s.reward,
        }
        for i, s in enumerate(samples)
    ]


def _text_of(answer: Answer, answers: list[dict[str, Any]]) -> str | None:
    return next((a["text"] for a in answers if a["key"] == answer), None) if answer is not None else None


def _question(run: NodeRun, p: MagicoreParams) -> str:
    question = run.ctx.inputs.get(p.question_input)
    if not isinstance(question, str) or not question.strip():
        raise ConfigError(
            f"node {run.name!r}: magicore needs the problem text in graph input {p.question_input!r} "
            "(parameter question_input)",
            node=run.name,
        )
    choices = run.ctx.inputs.get(p.choices_input) if p.choices_input else None
    if choices:
        if not isinstance(choices, list) or len(choices) > len(LETTERS):
            raise ConfigError(
                f"node {run.name!r}: graph input {p.choices_input!r} must be a list of at most {len(LETTERS)} "
                f"options (the answers are read as letters {', '.join(LETTERS)}), got {choices!r}",
                node=run.name,
            )
        return inline_choices(question, [str(c) for c in choices])
    return question


LETTERS = "ABCDE"
"""The letters MAgICoRe's multiple-choice parser reads (§2.2)."""


def inline_choices(question: str, choices: Sequence[str]) -> str:
    """``question`` with its options inline, in the reference's test-data form (magicore.md §7: MMLU, SAT)::

        <question> The options are: A)1 B)2 C)3 D)4
        Your final answer should be chosen from A, B, C or D.

    MMLU-style data keeps the options apart (``choices``); the Solver, Reviewer, Refiner and judges all read
    the question, so the options go into it once, here.
    """
    letters = LETTERS[: len(choices)]
    options = " ".join(f"{letter}){text}" for letter, text in zip(letters, choices, strict=True))
    among = letters[0] if len(letters) == 1 else f"{', '.join(letters[:-1])} or {letters[-1]}"
    return f"{question.rstrip()} The options are: {options}\nYour final answer should be chosen from {among}."


def _parser(run: NodeRun, p: MagicoreParams) -> ParseAnswer:
    solver_card = run.ctx.spec.agents[p.solver]

    def parse_answer(text: str) -> Answer:
        # the Solver card's parser reads every solution, the Refiner's too (the reference has one parser per task);
        # a failed parse that still yields a string is an answer (MAgICoRe's "N/A" for multiple choice, §2.2)
        parsed = solver_card.parser(text)
        if parsed.ok:
            return parsed.normalized or (parsed.value if isinstance(parsed.value, str) else None) or None
        return parsed.value if isinstance(parsed.value, str) and parsed.value else None

    return parse_answer


def _reward_models(run: NodeRun, p: MagicoreParams) -> tuple[OutcomeRM, ProcessRM]:
    orm: OutcomeRM = JudgeORM(run, p.orm_judge) if p.orm_judge else FunctionORM(str(p.orm_function), run.name)
    prm: ProcessRM = JudgePRM(run, p.prm_judge) if p.prm_judge else FunctionPRM(str(p.prm_function), run.name)
    return orm, prm


@operator("magicore", params=MagicoreParams)
async def magicore_operator(run: NodeRun) -> NodeOutput:
    """Run MAgICoRe on the graph's question with the node's agents; the answer is the controller's."""
    p = run.params
    assert isinstance(p, MagicoreParams)
    question = _question(run, p)
    mu, sigma = _calibration(run, p)
    try:
        config = MagicoreConfig(
            mu=mu,
            sigma=sigma,
            k=p.k,
            max_rounds=p.max_rounds,
            reference_compat=p.reference_compat,
            quality_threshold=p.quality_threshold,
            confidence_threshold=p.confidence_threshold,
            combine=p.combine,
        )
    except ValueError as exc:
        raise ConfigError(f"node {run.name!r}: {exc}", node=run.name) from exc
    orm, prm = _reward_models(run, p)
    try:
        result = await solve_async(
            question,
            config,
            solver=AgentSolver(run, p.solver),
            reviewer=AgentReviewer(run, p.reviewer),
            refiner=AgentRefiner(run, p.refiner),
            orm=orm,
            prm=prm,
            parse_answer=_parser(run, p),
        )
    except ValueError as exc:  # a component broke the protocol (e.g. a reward function returned too few scores)
        raise RunError(f"node {run.name!r}: magicore: {exc}", node=run.name) from exc
    answers = _answers(result, p)
    last_votes = result.rounds[-1].votes if result.rounds else {}
    unreadable = _unreadable(orm, prm)
    out: NodeOutput = {
        "answer": result.answer,
        "value": result.answer,
        "text": _text_of(result.answer, answers),
        "answers": answers,
        "votes": dict(last_votes),
        "magicore": {**result.to_json(), "unreadable_judge_replies": unreadable},
        "stop": _why(result) + _said(unreadable),
    }
    return out


def _unreadable(orm: OutcomeRM, prm: ProcessRM) -> dict[str, list[int]]:
    """Per LLM judge, [replies it could not read, replies]: the rewards the difficulty test and the vote were
    built on are that much the neutral fallback, not a judgement."""
    return {
        label: [judge.unreadable, judge.replies]
        for label, judge in (("orm", orm), ("prm", prm))
        if isinstance(judge, JudgeORM | JudgePRM) and judge.replies
    }


def _said(unreadable: dict[str, list[int]]) -> str:
    """The stop reason's note of the judge replies counted 0.5 (with a small model, most of them): the answer a
    run shows was then chosen on little or no judgement, and the run said nothing of it."""
    parts = [f"{label.upper()} {n} of {total}" for label, (n, total) in unreadable.items() if n]
    return f" (judge replies without a readable score, counted {NEUTRAL}: {', '.join(parts)})" if parts else ""


@operator(FIRST_SAMPLE_OP, params=MagicoreParams)
async def magicore_first_sample_operator(run: NodeRun) -> NodeOutput:
    """The Solver's first sample of the question, scored by the node's reward models: what mu/sigma are made of.

    MAgICoRe's mu and sigma are the mean and population std of ``R = ORM + prod(PRM)`` of each problem's first
    sample (§2.4); a calibration job (:mod:`.calibration`) runs this operator, in place of ``magicore``, on a
    magicore node's own parameters and agents, so the sample is drawn by the same Solver card (slot 0, ``index``
    0) and scored by the same reward source as the runs it calibrates. Its output's ``value`` is that R.
    """
    p = run.params
    assert isinstance(p, MagicoreParams)
    question = _question(run, p)
    orm, prm = _reward_models(run, p)
    text = (await AgentSolver(run, p.solver).ask(0, 0, {"index": 0})).text  # the record key of sample 0
    try:
        (sample,) = await score_solutions(question, [text], orm=orm, prm=prm, parse_answer=_parser(run, p))
    except ValueError as exc:
        raise RunError(f"node {run.name!r}: magicore: {exc}", node=run.name) from exc
    # what of R is a fallback rather than a judgement: a calibration says so (all of it, with SmolLM2 and the judges)
    unreadable = {
        "orm": isinstance(orm, JudgeORM) and orm.unreadable > 0,
        "prm": isinstance(prm, JudgePRM) and prm.unreadable > 0,
    }
    return {
        "answer": sample.pred,
        "value": sample.reward,
        "text": sample.text,
        "magicore": {"first_sample": sample.to_json(), "unreadable": unreadable},
        "stop": f"magicore calibration: first sample scored, R = {sample.reward:.4g}",
    }


def _why(result: MagicoreResult) -> str:
    rounds, refined = len(result.rounds), result.n_refinement_rounds
    if result.stop_reason == "easy":
        when = "easy at once" if refined == 0 else f"easy after {refined} refinement round(s)"
    else:
        when = f"{rounds} round(s) run, {refined} with refinement"
    return f"magicore: {when}; answer {result.answer!r}"
