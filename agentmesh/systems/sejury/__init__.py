"""SE-Jury (Zhou et al., ASE 2025; sejury.md): an ensemble of LLM judges scoring software artifacts.

The judges are agent cards (``agents/sejury/``) in a generic graph (``graphs/sejury.yaml``); this package holds
what only SE-Jury defines: parsing and mapping each judge's score into one (:mod:`.functions`), and choosing the
team on a human-labelled calibration set (:mod:`.selection`, pure maths), and running that calibration over a data
set (:mod:`.jury`: :func:`calibrate`, :func:`acalibrate`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentmesh._builtins import import_module
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

if TYPE_CHECKING:  # at run time, __getattr__ imports them on first use
    from agentmesh.systems.sejury.jury import (
        Calibration,
        acalibrate,
        calibrate,
    )

#: Names of :mod:`.jury`, imported on first use (PEP 562): it runs its problems as a job
#: (:mod:`agentmesh.optimize.items`: the runtime's runs, LangGraph, Ray's glue), and this package is imported whenever a
#: registry first looks up a shipped name -- ``agentmesh graph validate`` imported LangGraph for it.
_LAZY = frozenset({"Calibration", "acalibrate", "calibrate"})

__all__ = [
    "PROFILES",
    "Calibration",
    "Candidate",
    "Correlations",
    "JuryConfig",
    "Selection",
    "acalibrate",
    "aggregate",
    "calibrate",
    "calibration_split",
    "candidate_teams",
    "correlations",
    "criterion_score",
    "functions",
    "pick",
    "scale_scores",
    "select_team",
    "team_mean",
]


def __getattr__(name: str) -> Any:
    """Import a name of :mod:`.jury` on first use, then keep it here."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module("agentmesh.systems.sejury.jury"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The lazy names too, before their first use."""
    return sorted({*globals(), *__all__})
