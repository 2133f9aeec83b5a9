"""MAgICoRe edge cases the shipped worked examples do not cover (magicore.md §2.5, §3, §4.2, §4.5, §5.1).

The vectors live in ``tests/unit/spec_edges/magicore_examples.json``, in exactly the format of
``magicore_examples.json`` (their expected values were computed by hand from the spec), and are checked by the
same functions as the paper's vectors (:mod:`tests.unit.test_magicore_paper`):

* ``E_nan_quality_stop``: hard at round 0 (4-way uniform mass), then every refined sample leaves the frozen
  majority, so Q is NaN and the loop stops; ``"12"`` and ``"12.0"`` are different vote keys; a no-answer sample
  sits in the top-k but is skipped in the vote; equal rewards keep pool order (S_n before its refinements).
* ``T_ties_uniform3``: majority tie (first seen wins); Q < 0 but the ORM mass is exactly uniform over three
  answers (``None`` counts as one), conf = 0.5000000000000002, not low; a zero PRM mass vanishes; a vote tie goes
  to the answer whose best sample ranks first.
* ``X_hard_until_max_rounds``: hard at every round, refined ``max_rounds`` times; the answer is the last round's
  vote with no further check; a 4-way vote tie.
* ``Y_majority_is_no_answer``: M = ``None`` (matches only ``None``); Q < 0 but both confidences high.
* display rounding, segmentation with a triple line break and ``Step 20``, one PRM score too many in the
  rendering, zero masses in the confidence, the population std.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_magicore_paper import test_solve_vector_through_the_graph as _check_through_graph
from tests.unit.test_magicore_paper import test_vector as _check_vector

pytestmark = pytest.mark.paper

VECTORS = Path(__file__).parent / "spec_edges" / "magicore_examples.json"


def _params(*, solve_only: bool = False) -> list[Any]:
    params = []
    for vector in json.loads(VECTORS.read_text(encoding="utf-8"))["vectors"]:
        if vector["kind"] == "solve":
            for mode in ("intended", "reference_compat"):
                params.append(pytest.param(vector, mode, id=f"{vector['id']}-{mode}"))
        elif not solve_only:
            params.append(pytest.param(vector, None, id=vector["id"]))
    return params


@pytest.mark.parametrize(("vector", "mode"), _params())
def test_edge_vector(vector: dict[str, Any], mode: str | None) -> None:
    _check_vector(vector, mode)


@pytest.mark.parametrize(("vector", "mode"), _params(solve_only=True))
def test_edge_vector_through_the_graph(vector: dict[str, Any], mode: str, tmp_path: Path) -> None:
    _check_through_graph(vector, mode, tmp_path)
