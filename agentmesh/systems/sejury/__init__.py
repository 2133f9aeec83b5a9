"""SE-Jury (Zhou et al., ASE 2025; sejury.md): an ensemble of LLM judges scoring software artifacts.

The judges are agent cards (``agents/sejury/``) in a generic graph (``graphs/sejury.yaml``); this package holds
what only SE-Jury defines: parsing and mapping each judge's score into one (:mod:`.functions`), and choosing the
team on a human-labelled calibration set (:mod:`.selection`, pure maths), and running that calibration over a data
set (:mod:`.jury`: :func:`calibrate`, :func:`acalibrate`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentmesh._lazy import lazy_attributes
from agentmesh.systems.sejury import functions
from agentmesh.systems.sejury.selection import (
    PROFILES,
    Candidate,
    Correlations,
    JuryConfig,
    Selection,
    aggregate,
    calibration_split,
    candidate_teams,
    correlations,
    criterion_score,
    pick,
    scale_scores,
    select_team,
    team_mean,
)

if TYPE_CHECKING:  # at run time, __getattr__ imports them on first use (each as itself: exported)
    from agentmesh.systems.sejury.jury import Calibration as Calibration
    from agentmesh.systems.sejury.jury import acalibrate as acalibrate
    from agentmesh.systems.sejury.jury import calibrate as calibrate

#: Names of :mod:`.jury`, imported on first use (PEP 562): it runs its problems as a job
#: (:mod:`agentmesh.optimize.items`: the runtime's runs, LangGraph, Ray's glue), and this package is imported whenever a
#: registry first looks up a shipped name -- ``agentmesh graph validate`` imported LangGraph for it.
_LAZY = frozenset({"Calibration", "acalibrate", "calibrate"})

__all__ = [
    "PROFILES",
    "Candidate",
    "Correlations",
    "JuryConfig",
    "Selection",
    "aggregate",
    "calibration_split",
    "candidate_teams",
    "correlations",
    "criterion_score",
    "functions",
    "pick",
    "scale_scores",
    "select_team",
    "team_mean",
    *sorted(_LAZY),  # (each lazy name is written once, in _LAZY)
]


__getattr__, __dir__ = lazy_attributes(__name__, dict.fromkeys(_LAZY, "agentmesh.systems.sejury.jury"))
