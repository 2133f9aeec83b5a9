"""The MAgICoRe controller (magicore.md §4.5, §4.6): Solver samples → easy: weighted vote; hard: review and refine.

The controller is deterministic; everything that needs a model comes in through five small protocols
(:class:`Solver`, :class:`Reviewer`, :class:`Refiner`, :class:`OutcomeRM`, :class:`ProcessRM`), so the same code
runs on scripted components in tests and on served models in a graph (:mod:`agentmesh.systems.magicore.agents`).
A component may be synchronous or ``async``: each call's result is awaited when it is awaitable. Per round the
k Reviewer → Refiner chains of a hard problem are independent, so they run concurrently.

Two loop semantics (§4.5):

* **intended** (default, §4.6): stop at the first round whose samples pass the difficulty test; refined samples
  are carried forward; the answer is the RM-weighted vote over the top k of ``S_n + Refine(S_n)`` (hard round)
  or over ``S_n`` (the round that stopped).
* **reference_compat**: what ``refine.py`` does — every round up to ``max_rounds`` runs, and a round judged easy
  hands the *iteration-0* samples to the next round (quirk 9.5), so a problem refined once and then judged easy
  is re-judged on its original samples and refined again. The final answer is the last round's.

The majority M is the plain most frequent iteration-0 answer and is never updated; mu and sigma are inputs (§2.4).
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias, TypeVar, cast

from agentmesh._sync import blocking
from agentmesh.parsers.math import extract_boxed
from agentmesh.systems.magicore.scoring import (
    Answer,
    DifficultyTest,
    Equivalent,
    as_json_keys,
    difficulty_test,
    first_most_common,
    magicore_equivalent,
    masses_by_answer,
    normalisation_stats,
    prm_product,
    reward,
    top_k,
    weighted_vote,
)
from agentmesh.systems.magicore.steps import render_solution, split_steps

__all__ = [
    "CallSite",
    "MagicoreConfig",
    "MagicoreResult",
    "OutcomeRM",
    "ProcessRM",
    "Refiner",
    "Reviewer",
    "RoundRecord",
    "Sample",
    "Solver",
    "calibrate_async",
    "call_site",
    "refine_loop",
    "score_solutions",
    "solve",
    "solve_async",
]

T = TypeVar("T")
MaybeAwaitable: TypeAlias = T | Awaitable[T]
ParseAnswer = Callable[[str], Answer]


# --- the components ---------------------------------------------------------------------------------------------------


class Solver(Protocol):
    """Samples ``k`` independent solutions (the reference: temperature 0.8, top-p 0.95, ``Step 1:`` pre-filled)."""

    def sample(self, question: str, k: int) -> MaybeAwaitable[Sequence[str]]: ...


class Reviewer(Protocol):
    """Writes step-by-step feedback on a solution whose steps carry ``(Score: n/10)`` marks (§4.2)."""

    def review(self, question: str, scored_solution: str) -> MaybeAwaitable[str]: ...


class Refiner(Protocol):
    """Writes a complete new solution from the scored solution and the Reviewer's feedback (§4.3)."""

    def refine(self, question: str, scored_solution: str, feedback: str) -> MaybeAwaitable[str]: ...


class OutcomeRM(Protocol):
    """Outcome reward model: one score in (0, 1) per full solution (§5.3, sigmoid of InternLM2-Reward)."""

    def score(self, question: str, solutions: Sequence[str]) -> MaybeAwaitable[Sequence[float]]: ...


class ProcessRM(Protocol):
    """Process reward model: one probability in [0, 1] per step (§5.2, Math-Shepherd); steps from §5.1."""

    def score_steps(self, question: str, steps: Sequence[str]) -> MaybeAwaitable[Sequence[float]]: ...


@dataclass(frozen=True)
class CallSite:
    """Where a component call sits: ``iteration`` (0 = the Solver's samples, n + 1 = round n's refinements) and
    ``index``, the sample's position in that iteration (0 for a call about the whole batch).

    The protocols stay minimal (a Reviewer sees a question and a solution, nothing else), but a component that
    records its calls needs a stable key for each: with k concurrent Reviewer → Refiner chains, completion order
    is not deterministic. The controller sets this context variable around every component call (each chain
    runs in its own task, so each sees its own); a component reads it with :func:`call_site`.
    """

    iteration: int
    index: int


_CALL_SITE: ContextVar[CallSite | None] = ContextVar("magicore_call_site", default=None)


def call_site() -> CallSite:
    """The :class:`CallSite` of the component call being made (``CallSite(0, 0)`` outside the controller)."""
    return _CALL_SITE.get() or CallSite(0, 0)


@contextmanager
def _at(iteration: int, index: int) -> Iterator[None]:
    token = _CALL_SITE.set(CallSite(iteration, index))
    try:
        yield
    finally:
        _CALL_SITE.reset(token)


async def _resolve(value: MaybeAwaitable[T]) -> T:
    if inspect.isawaitable(value):
        return cast(T, await value)
    return value


# --- samples, configuration, records ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One scored solution.

    ``prm_steps`` is what enters the reward: the PRM's step scores, or ``(0.0,)`` when no answer was parsed
    (§2.3: a solution without an answer must not win on its reasoning). ``step_scores`` are the PRM's scores
    whatever the answer — what the Reviewer and Refiner are shown (the reference scores every text for
    rendering, answer or not); ``None`` means "same as ``prm_steps``".
    """

    id: str
    text: str
    pred: Answer
    orm: float
    prm_steps: tuple[float, ...]
    iteration: int = 0
    """0 = a Solver sample; n + 1 = written by the Refiner in round n."""
    parent: str | None = None
    """The id of the sample this one refines."""
    feedback: str | None = None
    """The Reviewer's feedback the Refiner used."""
    step_scores: tuple[float, ...] | None = None

    @property
    def prm_product(self) -> float:
        return prm_product(self.prm_steps)

    @property
    def reward(self) -> float:
        """``R = ORM + ∏ PRM`` (§2.3)."""
        return reward(self.orm, self.prm_steps)

    @property
    def shown_scores(self) -> tuple[float, ...]:
        return self.step_scores if self.step_scores is not None else self.prm_steps

    def rendered(self) -> str:
        """The solution with a ``(Score: S/10)`` after each step: what the Reviewer and Refiner see (§4.2)."""
        return render_solution(self.text, self.shown_scores)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pred": self.pred,
            "orm": self.orm,
            "prm_steps": list(self.prm_steps),
            "R": self.reward,
            "iteration": self.iteration,
            **({"parent": self.parent} if self.parent is not None else {}),
        }


@dataclass(frozen=True)
class MagicoreConfig:
    """The controller's knobs, with the reference defaults (§10). ``mu``/``sigma`` have none: see §2.4."""

    mu: float
    sigma: float
    k: int = 40
    """Samples per problem; also how many samples the final vote keeps (top-k of the pool)."""
    max_rounds: int = 3
    """T: refinement rounds at most (``refine.py --iter``)."""
    reference_compat: bool = False
    quality_threshold: float = 0.0
    confidence_threshold: float = 0.5
    combine: Literal["or", "and"] = "or"

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"MagicoreConfig: k must be at least 1, got {self.k}")
        if self.max_rounds < 1:
            raise ValueError(f"MagicoreConfig: max_rounds must be at least 1, got {self.max_rounds}")
        if not (math.isfinite(self.mu) and math.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(
                f"MagicoreConfig: mu must be finite and sigma positive (got mu={self.mu!r}, sigma={self.sigma!r}); "
                "measure them with `agentmesh calibrate GRAPH --data problems.jsonl` (in Python: "
                "normalisation_stats over first-sample rewards; magicore.md §2.4)"
            )


@dataclass(frozen=True)
class RoundRecord:
    """One executed round: the difficulty test on the round's samples, what was refined and the vote."""

    n: int
    samples: tuple[Sample, ...]
    """S_n, the samples the test judged."""
    test: DifficultyTest
    refined: tuple[Sample, ...]
    """Refine(S_n) when the round was hard, else empty."""
    top_k: tuple[Sample, ...]
    """The samples the vote used, best first."""
    votes: dict[str, float]
    answer: Answer

    @property
    def hard(self) -> bool:
        return self.test.hard

    def to_json(self) -> dict[str, Any]:
        t = self.test
        return {
            "n": self.n,
            "mean_z_of_majority_matches": t.mean_z_or_none,
            "n_majority_matches": t.n_majority_matches,
            "orm_entropy_nats": _finite(t.orm_entropy),
            "orm_conf": _finite(t.orm_conf),
            "prm_entropy_nats": _finite(t.prm_entropy),
            "prm_conf": _finite(t.prm_conf),
            "cond1_majority_quality_ok": t.quality_ok,
            "hard": t.hard,
            "refined_this_round": bool(self.refined),
            "samples": [s.to_json() for s in self.samples],
            "refined": [{**s.to_json(), "feedback": s.feedback} for s in self.refined],
            "top_k_used_for_vote": [{"id": s.id, "pred": s.pred, "R": s.reward} for s in self.top_k],
            "weighted_votes": dict(self.votes),
            "answer_after_round": self.answer,
        }


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else x


@dataclass(frozen=True)
class MagicoreResult:
    """A problem's outcome: the answer, the frozen majority and every executed round."""

    answer: Answer
    majority: Answer
    rounds: tuple[RoundRecord, ...]
    stop_reason: Literal["easy", "max_rounds"]
    """``easy``: a round passed the difficulty test (intended loop); ``max_rounds``: every round ran."""
    reference_compat: bool = False
    iter0: tuple[Sample, ...] = field(default=())

    @property
    def n_refinement_rounds(self) -> int:
        return sum(1 for r in self.rounds if r.refined)

    def to_json(self) -> dict[str, Any]:
        orm_mass, prm_mass = masses_by_answer(self.iter0)
        return {
            "answer": self.answer,
            "majority": self.majority,
            "stop_reason": self.stop_reason,
            "reference_compat": self.reference_compat,
            "n_refinement_rounds": self.n_refinement_rounds,
            "iter0_orm_mass_by_answer": as_json_keys(orm_mass),
            "iter0_prm_mass_by_answer": as_json_keys(prm_mass),
            "rounds": [r.to_json() for r in self.rounds],
        }


# --- scoring ----------------------------------------------------------------------------------------------------------


def _parse_default(text: str) -> Answer:
    answer = extract_boxed(text)
    return answer if answer else None


async def score_solutions(
    question: str,
    texts: Sequence[str],
    *,
    orm: OutcomeRM,
    prm: ProcessRM,
    parse_answer: ParseAnswer = _parse_default,
    iteration: int = 0,
    ids: Sequence[str] | None = None,
    parents: Sequence[str | None] | None = None,
    feedback: Sequence[str | None] | None = None,
) -> list[Sample]:
    """Parse and score solutions (§2.3, §4.4): one ORM batch, one PRM pass per text.

    A text whose parsed answer is falsy gets ``prm_steps = (0,)`` (its reward is then the ORM score alone);
    its real step scores are still kept for display, as the reference renders them.
    """
    texts = list(texts)
    preds = [parse_answer(t) for t in texts]
    with _at(iteration, 0):
        orm_scores: list[float] = list(await _resolve(orm.score(question, texts)))
    if len(orm_scores) != len(texts):
        raise ValueError(f"OutcomeRM returned {len(orm_scores)} scores for {len(texts)} solutions")

    async def steps_of(index: int, text: str) -> Sequence[float]:
        with _at(iteration, index):
            return await _resolve(prm.score_steps(question, split_steps(text)))

    step_lists: list[Sequence[float]] = await asyncio.gather(*(steps_of(i, t) for i, t in enumerate(texts)))
    samples = []
    for i, (text, pred, o, steps) in enumerate(zip(texts, preds, orm_scores, step_lists, strict=True)):
        shown = tuple(float(p) for p in steps)
        samples.append(
            Sample(
                id=ids[i] if ids is not None else f"i{iteration}-{i}",
                text=text,
                pred=pred,
                orm=float(o),
                prm_steps=shown if pred else (0.0,),
                iteration=iteration,
                parent=parents[i] if parents is not None else None,
                feedback=feedback[i] if feedback is not None else None,
                step_scores=shown,
            )
        )
    return samples


async def _refine_all(
    question: str,
    samples: Sequence[Sample],
    iteration: int,
    *,
    reviewer: Reviewer,
    refiner: Refiner,
    orm: OutcomeRM,
    prm: ProcessRM,
    parse_answer: ParseAnswer,
) -> list[Sample]:
    """Review and refine every sample (§4.1: all k, no pre-selection), then re-score the new solutions (§4.4)."""

    async def chain(index: int, sample: Sample) -> tuple[str, str]:
        shown = sample.rendered()
        with _at(iteration, index):
            fb: str = await _resolve(reviewer.review(question, shown))
            return fb, await _resolve(refiner.refine(question, shown, fb))

    outs = await asyncio.gather(*(chain(i, s) for i, s in enumerate(samples)))
    return await score_solutions(
        question,
        [text for _, text in outs],
        orm=orm,
        prm=prm,
        parse_answer=parse_answer,
        iteration=iteration,
        parents=[s.id for s in samples],
        feedback=[fb for fb, _ in outs],
    )


# --- the loop ---------------------------------------------------------------------------------------------------------


async def refine_loop(
    question: str,
    iter0: Sequence[Sample],
    config: MagicoreConfig,
    *,
    reviewer: Reviewer,
    refiner: Refiner,
    orm: OutcomeRM,
    prm: ProcessRM,
    parse_answer: ParseAnswer = _parse_default,
    equivalent: Equivalent = magicore_equivalent,
) -> MagicoreResult:
    """The coarse-to-fine loop from already-scored Solver samples (§4.5, §4.6); see the module docstring."""
    if not iter0:
        raise ValueError("refine_loop: no iteration-0 samples (the Solver returned nothing)")
    s0 = tuple(iter0)
    majority = first_most_common([s.pred for s in s0])
    current = s0
    rounds: list[RoundRecord] = []
    for n in range(config.max_rounds):
        # In a thread: the default majority match may wait up to 5 s per pair on sympy (scoring.magicore_equivalent),
        # which must not stall the other coroutines of the event loop.
        test = await asyncio.to_thread(
            difficulty_test,
            current,
            majority,
            config.mu,
            config.sigma,
            equivalent=equivalent,
            quality_threshold=config.quality_threshold,
            confidence_threshold=config.confidence_threshold,
            combine=config.combine,
        )
        refined: tuple[Sample, ...] = ()
        if test.hard:
            refined = tuple(
                await _refine_all(
                    question,
                    current,
                    n + 1,
                    reviewer=reviewer,
                    refiner=refiner,
                    orm=orm,
                    prm=prm,
                    parse_answer=parse_answer,
                )
            )
            pool = top_k(current + refined, config.k)
        else:
            pool = top_k(current, config.k)
        answer, votes = weighted_vote(pool)
        rounds.append(RoundRecord(n, current, test, refined, tuple(pool), votes, answer))
        if not test.hard:
            if not config.reference_compat:
                return MagicoreResult(answer, majority, tuple(rounds), "easy", False, s0)
            current = s0  # refine.py copies the ITERATION-0 samples forward (quirk 9.5)
        else:
            current = refined
    return MagicoreResult(rounds[-1].answer, majority, tuple(rounds), "max_rounds", config.reference_compat, s0)


async def solve_async(
    question: str,
    config: MagicoreConfig,
    *,
    solver: Solver,
    reviewer: Reviewer,
    refiner: Refiner,
    orm: OutcomeRM,
    prm: ProcessRM,
    parse_answer: ParseAnswer = _parse_default,
    equivalent: Equivalent = magicore_equivalent,
) -> MagicoreResult:
    """MAgICoRe on one problem (§4.6): ``config.k`` Solver samples, scored, then :func:`refine_loop`.

    ``parse_answer`` turns a reply into an answer (default: the last ``\\boxed{}``, §2.2; use
    :func:`agentmesh.parsers.choice.extract_choice_letter`-style parsers for multiple choice).
    """
    with _at(0, 0):
        texts: list[str] = list(await _resolve(solver.sample(question, config.k)))
    iter0 = await score_solutions(question, texts, orm=orm, prm=prm, parse_answer=parse_answer, iteration=0)
    return await refine_loop(
        question,
        iter0,
        config,
        reviewer=reviewer,
        refiner=refiner,
        orm=orm,
        prm=prm,
        parse_answer=parse_answer,
        equivalent=equivalent,
    )


def solve(
    question: str,
    config: MagicoreConfig,
    *,
    solver: Solver,
    reviewer: Reviewer,
    refiner: Refiner,
    orm: OutcomeRM,
    prm: ProcessRM,
    parse_answer: ParseAnswer = _parse_default,
    equivalent: Equivalent = magicore_equivalent,
) -> MagicoreResult:
    """:func:`solve_async` for synchronous callers (scripts, tests); inside a running event loop, a clear error."""
    return blocking(
        solve_async(
            question,
            config,
            solver=solver,
            reviewer=reviewer,
            refiner=refiner,
            orm=orm,
            prm=prm,
            parse_answer=parse_answer,
            equivalent=equivalent,
        ),
        name="agentmesh.systems.magicore.solve",
        async_name="agentmesh.systems.magicore.solve_async",
    )


async def calibrate_async(
    questions: Sequence[str],
    *,
    solver: Solver,
    orm: OutcomeRM,
    prm: ProcessRM,
    parse_answer: ParseAnswer = _parse_default,
) -> tuple[float, float]:
    """``(mu, sigma)`` for :class:`MagicoreConfig` from one scored Solver sample per question (§2.4).

    The reference takes the first of each problem's k samples over the evaluation set itself (transductive);
    running this on a held-out calibration set with the same Solver and reward models gives the online
    equivalent. Use the same reward source as the runs it calibrates: LLM-judge scores and trained reward models
    live on different scales.
    """
    if not questions:
        raise ValueError("calibrate_async: no questions")

    async def first_reward(question: str) -> float:
        with _at(0, 0):
            texts: list[str] = list(await _resolve(solver.sample(question, 1)))
        if not texts:
            raise ValueError(f"calibrate_async: the Solver returned no sample for {question[:60]!r}")
        (sample,) = await score_solutions(question, texts[:1], orm=orm, prm=prm, parse_answer=parse_answer)
        return sample.reward

    rewards = await asyncio.gather(*(first_reward(q) for q in questions))
    return normalisation_stats(rewards)
