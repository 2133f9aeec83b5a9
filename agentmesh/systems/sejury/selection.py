"""SE-Jury's team selection and ensembling (sejury.md §3 step 2, §4): pure functions over judges' scores.

SE-Jury calls five judge strategies on a small calibration set labelled by humans, enumerates every team of judges,
keeps the team whose ensemble correlates best with the humans, and from then on calls only that team and averages
its scores. Everything here is the maths of that choice, exactly as the released v2 scripts compute it (the paper's
body could not be read; §0), including the quirks that change which team wins:

* candidates are ``itertools.combinations`` of the judge list, size ascending, a single judge never a candidate,
  and (v2) only teams holding an S1 variant;
* the selection-time ensemble (mean, rounded mean, or a 0/1 threshold) differs per dataset in the release, and so
  does the final one: both are settings (:class:`JuryConfig`), with the release's four profiles by name;
* the criterion is ``(Kendall τ_b + Spearman ρ) / 2`` with scipy's defaults (v1: ``round((τ + r + ρ)/3, 3)``);
* the pick is Python's ``max``: ties go to the earliest team, and a NaN score (a constant ensemble) in first place
  can never be beaten. That last quirk is kept only as ``nan_policy="reference"``; the default counts NaN as -inf.

The correlations are scipy's (the release's, and the vectors were computed with it), so figures match to the ulp.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentmesh.parsers.scores import ScoreScale, apply_scale

__all__ = [
    "PROFILES",
    "Aggregation",
    "Candidate",
    "Correlations",
    "Criterion",
    "JuryConfig",
    "NanPolicy",
    "Selection",
    "aggregate",
    "calibration_split",
    "candidate_teams",
    "correlations",
    "criterion_score",
    "pick",
    "scale_scores",
    "select_team",
    "team_mean",
]

Aggregation = Literal["mean", "round", "binary"]
Criterion = Literal["tau_rho", "tau_r_rho_3dp"]
NanPolicy = Literal["neg_inf", "reference"]

JUDGES = ("S1_1", "S1_2", "S2", "S3", "S4", "S5")
"""The release's six judge lists in enumeration order: S1 without and with the reference, S2 to S5 (§2)."""


class JuryConfig(BaseModel):
    """How a jury is calibrated and applied (sejury.md §4). Defaults: the release's CoNaLa profile (v2).

    The release computes the ensemble differently per dataset (§4 step 3's table); :data:`PROFILES` holds the four
    by name, so that a user picks ``card2code`` rather than re-deriving which aggregation goes where.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    judges: tuple[str, ...] = JUDGES
    """The judges, in enumeration order: candidates are ``itertools.combinations`` of this list."""
    scale: ScoreScale = "to_1_5_rounded"
    """Each judge's raw 0-100 score on the human scale (§3 step 2); ``none`` = scores given on that scale."""
    selection_aggregation: Aggregation = "mean"
    """The team's ensemble on the calibration items when teams are compared."""
    final_aggregation: Aggregation = "round"
    """The team's ensemble on every other item: the score SE-Jury reports."""
    criterion: Criterion = "tau_rho"
    """``tau_rho``: (Kendall τ_b + Spearman ρ)/2 (v2); ``tau_r_rho_3dp``: round((τ + Pearson r + ρ)/3, 3) (v1)."""
    team_must_contain_any_of: tuple[str, ...] | None = ("S1_1", "S1_2")
    """v2 keeps only teams holding one of these judges; ``None`` = any team (v1)."""
    min_team_size: int = Field(default=2, ge=1)
    """The smallest team considered (the release: 2, a single judge is never a team)."""
    nan_policy: NanPolicy = "neg_inf"
    """A constant ensemble's score is NaN: ``neg_inf`` ranks it last; ``reference`` keeps Python ``max``'s quirk."""
    n_calibration: int = Field(default=20, ge=2)
    """Calibration items drawn from a labelled set (§4 step 1: 20)."""
    seed: int = 12345
    """The seed of the calibration draw (the release's)."""

    @model_validator(mode="after")
    def _consistent(self) -> JuryConfig:
        if len(set(self.judges)) != len(self.judges):
            raise ValueError(f"judges must be distinct, got {list(self.judges)}")
        if len(self.judges) < self.min_team_size:
            raise ValueError(
                f"{len(self.judges)} judge(s) cannot form a team of at least {self.min_team_size} (min_team_size)"
            )
        must = self.team_must_contain_any_of
        if must is not None and not set(must).intersection(self.judges):
            raise ValueError(
                f"team_must_contain_any_of names {list(must)}, none of which is among judges {list(self.judges)}: "
                "no team could qualify"
            )
        return self

    @classmethod
    def profile(cls, name: str, **overrides: Any) -> JuryConfig:
        """The release's settings for one dataset (``conala``, ``card2code``, ``summarization``, ``apr``, ``v1``)."""
        try:
            settings = PROFILES[name]
        except KeyError:
            raise ValueError(f"unknown SE-Jury profile {name!r}; expected one of {sorted(PROFILES)}") from None
        return cls.model_validate({**settings, **overrides})


PROFILES: dict[str, dict[str, Any]] = {
    "conala": {"selection_aggregation": "mean", "final_aggregation": "round"},
    "card2code": {"selection_aggregation": "round", "final_aggregation": "round"},
    "summarization": {
        "judges": ("S1_1", "S1_2", "S2", "S3", "S4"),  # S5 has no summarization prompt (§2)
        "selection_aggregation": "round",
        "final_aggregation": "mean",
    },
    "apr": {"scale": "to_0_1", "selection_aggregation": "binary", "final_aggregation": "binary"},
    "v1": {
        "judges": ("S1_2", "S2", "S3", "S4", "S5"),  # v1 had one S1, the one with the reference
        "selection_aggregation": "round",
        "final_aggregation": "round",
        "criterion": "tau_r_rho_3dp",
        "team_must_contain_any_of": None,
    },
}
"""§4 step 3's table: the selection-time and final ensembles of the release, per dataset."""


def calibration_split(n_items: int, n_calibration: int = 20, seed: int = 12345) -> list[int]:
    """The calibration items' indices, in draw order: ``random.seed(seed); random.sample(range(N), n)`` (§4 step 1).

    A private ``random.Random`` draws the same sequence without touching the process's global generator.
    """
    if not 0 < n_calibration <= n_items:
        raise ValueError(f"cannot draw {n_calibration} calibration item(s) from {n_items}")
    return random.Random(seed).sample(range(n_items), n_calibration)


def scale_scores(raw: Sequence[float], scale: ScoreScale) -> list[float]:
    """Each raw 0-100 score on the human scale, per judge and before any ensembling (§3 step 2)."""
    return [apply_scale(value, scale) for value in raw]


def team_mean(scores: Mapping[str, Sequence[float]], team: Sequence[str]) -> list[float]:
    """The members' element-wise arithmetic mean (no weights: §1 step 3), summed in team order as numpy's axis-0
    mean does, so that a rounded mean lands on the same side of .5 as the release's."""
    columns = [scores[judge] for judge in team]
    n_items = len(columns[0])
    if any(len(column) != n_items for column in columns):
        lengths = {judge: len(scores[judge]) for judge in team}
        raise ValueError(f"judges scored different numbers of items: {lengths}")
    means = []
    for i in range(n_items):
        total = 0.0
        for column in columns:
            total += column[i]
        means.append(total / len(columns))
    return means


def aggregate(means: Sequence[float], mode: Aggregation) -> list[float]:
    """A team's ensemble from its mean: ``mean`` as is, ``round`` (Python's, half to even), ``binary`` (> 0.5)."""
    if mode == "mean":
        return list(means)
    if mode == "round":
        return [float(round(m)) for m in means]
    return [1.0 if m > 0.5 else 0.0 for m in means]


@dataclass(frozen=True)
class Correlations:
    """Kendall τ_b, Spearman ρ (average ranks) and Pearson r of an ensemble against human labels; NaN when either
    side is constant, as scipy gives."""

    kendall: float
    spearman: float
    pearson: float


def correlations(human: Sequence[float], predicted: Sequence[float]) -> Correlations:
    """scipy's ``kendalltau`` (τ_b), ``spearmanr`` and ``pearsonr`` with their defaults (§4 step 4)."""
    if len(human) != len(predicted):
        raise ValueError(f"{len(human)} human label(s) against {len(predicted)} score(s)")
    if len(human) < 2:
        raise ValueError(f"correlations need at least 2 items, got {len(human)}")
    from scipy import stats  # deferred: scipy costs ~0.3 s to import and only calibration needs it

    with warnings.catch_warnings():  # a constant side gives NaN (counted by nan_policy), not a warning per team
        warnings.simplefilter("ignore")
        tau = float(stats.kendalltau(human, predicted).statistic)
        rho = float(stats.spearmanr(human, predicted).statistic)
        r = float(stats.pearsonr(human, predicted).statistic)
    return Correlations(kendall=tau, spearman=rho, pearson=r)


def criterion_score(corr: Correlations, criterion: Criterion) -> float:
    """v2: ``(τ_b + ρ) / 2``; v1: ``round((τ + r + ρ) / 3, 3)`` (§4 step 4). NaN propagates."""
    if criterion == "tau_rho":
        return (corr.kendall + corr.spearman) / 2
    value = (corr.kendall + corr.pearson + corr.spearman) / 3
    return value if math.isnan(value) else round(value, 3)


def candidate_teams(
    judges: Sequence[str], min_team_size: int = 2, must_contain_any_of: Sequence[str] | None = None
) -> list[tuple[str, ...]]:
    """Every team of at least ``min_team_size`` judges, size ascending then in ``judges`` order (§4 step 2)."""
    required = None if must_contain_any_of is None else set(must_contain_any_of)
    teams = []
    for size in range(min_team_size, len(judges) + 1):
        for team in combinations(judges, size):
            if required is None or required.intersection(team):
                teams.append(team)
    return teams


@dataclass(frozen=True)
class Candidate:
    """One team on the calibration items: its member mean, its selection-time ensemble, and their agreement with
    the humans."""

    team: tuple[str, ...]
    mean: list[float]
    ensemble: list[float]
    correlations: Correlations
    score: float

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, NaN written as ``None`` (JSON has no NaN)."""
        return {
            "team": list(self.team),
            "score": _finite(self.score),
            "kendall": _finite(self.correlations.kendall),
            "spearman": _finite(self.correlations.spearman),
            "pearson": _finite(self.correlations.pearson),
            "mean": self.mean,
            "ensemble": self.ensemble,
        }


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value


def pick(candidates: Sequence[Candidate], nan_policy: NanPolicy = "neg_inf") -> Candidate:
    """The winning team (§4 step 5): the first candidate whose score is strictly above every earlier one.

    ``reference`` is Python ``max`` exactly: a NaN first can never be beaten (``x > nan`` is false) and a later NaN
    never wins; ``neg_inf`` ranks NaN below every number, so a constant ensemble wins only when all are constant.
    """
    if not candidates:
        raise ValueError("no candidate team: add judges or lower min_team_size")
    best = candidates[0]
    for candidate in candidates[1:]:
        if _rank(candidate.score, nan_policy) > _rank(best.score, nan_policy):
            best = candidate
    return best


def _rank(score: float, nan_policy: NanPolicy) -> float:
    return -math.inf if nan_policy == "neg_inf" and math.isnan(score) else score


@dataclass(frozen=True)
class Selection:
    """The outcome of calibration: every candidate in enumeration order and the chosen team."""

    config: JuryConfig
    candidates: list[Candidate]
    selected: Candidate
    per_judge: dict[str, list[float]]
    """Each judge's scores on the calibration items after ``scale``."""
    human: list[float]

    @property
    def team(self) -> tuple[str, ...]:
        """The chosen judges, in the configured judge order."""
        return self.selected.team

    @property
    def runner_up(self) -> Candidate | None:
        """What the pick rule returns once the chosen team is removed: how close the choice was."""
        rest = [c for c in self.candidates if c is not self.selected]
        return pick(rest, self.config.nan_policy) if rest else None

    @property
    def tied_at_max(self) -> list[tuple[str, ...]]:
        """Every team whose score equals the chosen one's: the choice among them was by enumeration order alone."""
        top = self.selected.score
        if math.isnan(top):
            return [c.team for c in self.candidates if math.isnan(c.score)]
        return [c.team for c in self.candidates if c.score == top]

    def ensemble(self, scores: Mapping[str, Sequence[float]]) -> list[float]:
        """The team's final score on items (already on the human scale): its mean, then ``final_aggregation``."""
        return aggregate(team_mean(scores, self.team), self.config.final_aggregation)

    def to_json(self) -> dict[str, Any]:
        """What a calibration run saves: the config, the team and the whole candidate table."""
        runner = self.runner_up
        return {
            "config": self.config.model_dump(mode="json"),
            "team": list(self.team),
            "score": _finite(self.selected.score),
            "kendall": _finite(self.selected.correlations.kendall),
            "spearman": _finite(self.selected.correlations.spearman),
            "runner_up": runner.to_json() if runner else None,
            "tied_at_max": [list(t) for t in self.tied_at_max],
            "human": self.human,
            "per_judge": self.per_judge,
            "candidates": [c.to_json() for c in self.candidates],
        }


def select_team(
    human: Sequence[float], raw_scores: Mapping[str, Sequence[float]], config: JuryConfig | None = None
) -> Selection:
    """Calibrate a jury (§4 steps 2-5): map each judge's raw scores, score every candidate team, pick one.

    ``raw_scores`` maps each judge of ``config.judges`` to its raw scores on the calibration items, aligned with
    ``human``. Judges missing from it are an error (a team cannot be scored without them); extra keys are ignored.
    """
    config = config or JuryConfig()
    missing = [j for j in config.judges if j not in raw_scores]
    if missing:
        raise ValueError(f"no calibration scores for judge(s) {missing}; got {sorted(raw_scores)}")
    per_judge = {judge: scale_scores(raw_scores[judge], config.scale) for judge in config.judges}
    for judge, column in per_judge.items():
        if len(column) != len(human):
            raise ValueError(f"judge {judge} scored {len(column)} calibration item(s); there are {len(human)} labels")
    candidates = []
    for team in candidate_teams(config.judges, config.min_team_size, config.team_must_contain_any_of):
        mean = team_mean(per_judge, team)
        ensemble = aggregate(mean, config.selection_aggregation)
        corr = correlations(human, ensemble)
        candidates.append(Candidate(team, mean, ensemble, corr, criterion_score(corr, config.criterion)))
    selected = pick(candidates, config.nan_policy)
    return Selection(config, candidates, selected, per_judge, [float(h) for h in human])
