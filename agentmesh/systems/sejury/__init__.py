"""SE-Jury (Zhou et al., ASE 2025; sejury.md): an ensemble of LLM judges scoring software artifacts.

The judges are agent cards (``agents/sejury/``) in a generic graph (``graphs/sejury.yaml``); this package holds
what only SE-Jury defines: parsing and mapping each judge's score into one (:mod:`.functions`), and choosing the
team on a human-labelled calibration set (:mod:`.selection`, pure maths), and running that calibration over a data
set (:mod:`.jury`: :func:`calibrate`, :func:`acalibrate`).
"""

from agentmesh.systems.sejury import functions
from agentmesh.systems.sejury.jury import Calibration, acalibrate, calibrate
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
