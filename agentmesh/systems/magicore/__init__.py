"""MAgICoRe (Chen et al., arXiv 2409.12147): multi-agent, iterative, coarse-to-fine refinement (magicore.md).

A Solver samples k solutions; an outcome and a process reward model score them; a difficulty test sends easy
problems to an RM-weighted vote and hard ones through Reviewer → Refiner rounds guided by per-step scores, until
the test says stop. This package holds what only MAgICoRe defines, as pure functions (:mod:`.scoring`,
:mod:`.steps`), the controller that runs the loop over injectable components (:mod:`.controller`), and the
``magicore`` graph operator that builds those components from a graph's agent cards (:mod:`.graph`), and the
calibration of a graph's ``mu``/``sigma`` as a resumable job over a problem set (:mod:`.calibration`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentmesh._lazy import lazy_attributes
from agentmesh.systems.magicore import graph
from agentmesh.systems.magicore.controller import (
    CallSite,
    MagicoreConfig,
    MagicoreResult,
    OutcomeRM,
    ProcessRM,
    Refiner,
    Reviewer,
    RoundRecord,
    Sample,
    Solver,
    calibrate_async,
    call_site,
    refine_loop,
    score_solutions,
    solve,
    solve_async,
)
from agentmesh.systems.magicore.scoring import (
    DifficultyTest,
    answer_masses,
    confidence,
    confidence_from_entropy,
    difficulty_test,
    entropy_nats,
    first_most_common,
    magicore_equivalent,
    masses_by_answer,
    normalisation_stats,
    prm_product,
    reward,
    top_k,
    weighted_vote,
    z_score,
)
from agentmesh.systems.magicore.steps import (
    add_step_lines,
    display_score,
    n_scored_steps,
    prm_input,
    render_solution,
    split_steps,
)

if TYPE_CHECKING:  # at run time, __getattr__ imports them on first use (each as itself: exported)
    from agentmesh.systems.magicore.calibration import CalibratedItem as CalibratedItem
    from agentmesh.systems.magicore.calibration import Calibration as Calibration
    from agentmesh.systems.magicore.calibration import acalibrate as acalibrate
    from agentmesh.systems.magicore.calibration import calibrate as calibrate
    from agentmesh.systems.magicore.calibration import calibration_graph as calibration_graph
    from agentmesh.systems.magicore.calibration import use_reward_functions as use_reward_functions
    from agentmesh.systems.magicore.calibration import with_calibration as with_calibration

#: Names of :mod:`.calibration`, imported on first use (PEP 562): it runs its problems as a job
#: (:mod:`agentmesh.optimize.items`: the runtime's runs, LangGraph, Ray's glue), and this package is imported whenever a
#: registry first looks up a shipped name -- ``agentmesh graph validate`` imported LangGraph for it.
_LAZY = frozenset(
    {
        "CalibratedItem",
        "Calibration",
        "acalibrate",
        "calibrate",
        "calibration_graph",
        "use_reward_functions",
        "with_calibration",
    }
)

__all__ = [
    "CallSite",
    "DifficultyTest",
    "MagicoreConfig",
    "MagicoreResult",
    "OutcomeRM",
    "ProcessRM",
    "Refiner",
    "Reviewer",
    "RoundRecord",
    "Sample",
    "Solver",
    "add_step_lines",
    "answer_masses",
    "calibrate_async",
    "call_site",
    "confidence",
    "confidence_from_entropy",
    "difficulty_test",
    "display_score",
    "entropy_nats",
    "first_most_common",
    "graph",
    "magicore_equivalent",
    "masses_by_answer",
    "n_scored_steps",
    "normalisation_stats",
    "prm_input",
    "prm_product",
    "refine_loop",
    "render_solution",
    "reward",
    "score_solutions",
    "solve",
    "solve_async",
    "split_steps",
    "top_k",
    "weighted_vote",
    "z_score",
    *sorted(_LAZY),  # (each lazy name is written once, in _LAZY)
]


__getattr__, __dir__ = lazy_attributes(__name__, dict.fromkeys(_LAZY, "agentmesh.systems.magicore.calibration"))
