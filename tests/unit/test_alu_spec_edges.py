"""ALU edge cases the shipped worked examples do not cover (alu.md §3.2, §3.4, §4.2-§4.4, §5, §6, §9.2).

The vectors live in ``tests/unit/spec_edges/alu_examples.json``, in exactly the format of ``alu_examples.json``
(expected values computed by hand from the spec), and are checked by the same functions as the paper's vectors
(:mod:`tests.unit.test_alu_paper`):

* ``F_unresolved_numbered_two_critics``: a lexical position tie (``Tom`` / ``Tom Riddle``) broken by id, an
  accent-folded alias, a one-letter alias below ``min_alias_len``, a semantic tie broken by id and a score equal
  to ``tau_sem`` kept, ``m`` cutting only semantic candidates, an unmappable audit reply (M = S), numbered
  rewrites with an empty item, two critic samples averaged exactly, ``j = 2``, a blank composer reply.
* ``G_no_rewrites``: the auditor says "None" about an answer that names the target (forced flag); blank rewrites
  give K = 0 and a refusal after 3 calls.
* ``H_unparsed_pass``: no whole-word hit (``Anne`` is not ``Ann``), a blank audit reply with
  ``on_unresolved = pass``: the vanilla answer after 2 calls.
* ``K_versions_separator``: target life spans, ``---`` blocks, J = K < j, the reference mode's prompts.
* ``L_hf_checker_none_of_them``: "None of them" with v naming the target is flagged by default; the released
  local checker's substring test calls it clean and rates k copies of v.
* ``I_parser_edges`` and ``J_metric_edges``: parsers, the gate on exact fractions, metrics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit import test_alu_paper as paper

pytestmark = pytest.mark.paper

VECTORS = Path(__file__).parent / "spec_edges" / "alu_examples.json"


def _of_kind(kind: str) -> list[Any]:
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))["vectors"]
    return [pytest.param(v, id=v["id"]) for v in vectors if v["kind"] == kind]


@pytest.mark.parametrize("vector", _of_kind("pipeline"))
async def test_edge_pipeline(vector: dict[str, Any]) -> None:
    await paper.test_pipeline_vector(vector)


@pytest.mark.parametrize("vector", [p for p in _of_kind("pipeline") if "reference_compat" in p.values[0]])
async def test_edge_pipeline_reference_compat(vector: dict[str, Any]) -> None:
    await paper.test_pipeline_vector_reference_compat(vector)


@pytest.mark.parametrize("vector", _of_kind("parsers"))
def test_edge_parsers(vector: dict[str, Any]) -> None:
    paper.test_audit_cases(vector)
    paper.test_selection_cases(vector)
    paper.test_erase_cases_through_alu(vector)


@pytest.mark.parametrize("vector", _of_kind("metrics"))
def test_edge_metrics(vector: dict[str, Any]) -> None:
    paper.test_metrics_vector(vector)
