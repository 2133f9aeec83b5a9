"""MAgICoRe's worked examples (``magicore_examples.json``, magicore.md §6): every vector of the file is a case.

Vectors are read from ``$AGENTMESH_EXAMPLES_DIR`` (default ``../shared/papers``) whatever their id, dispatched on
``kind``, and keys a check does not know are ignored. Kinds:

* ``solve`` — the whole controller (:func:`agentmesh.systems.magicore.solve`) on scripted components: the Solver
  returns one text per iteration-0 candidate, each carrying a ``[[id]]`` marker; the ORM, the PRM and the answer
  parser answer by that marker with the vector's ``orm``, ``prm_steps`` and ``pred``; the Refiner answers by the
  marker of the sample it refines (``from`` → ``to``), so refining the same sample twice gives the same text.
  Checked once with the intended loop (``expected.intended``) and once with ``reference_compat=True``
  (``expected.reference_compat``), each when the vector gives it. The sample records' ``prm_product``, ``R``
  and ``z`` are recomputed and compared, never fed.
  Every ``solve`` vector is also run through ``graphs/magicore.yaml`` (the ``magicore`` operator) on a scripted
  model, with registered reward functions answering by marker (:func:`test_solve_vector_through_the_graph`).
* ``normalisation``, ``render_solution``, ``display_score``, ``segment_steps``, ``confidence`` — the pure
  functions of §2.4, §4.2, §5.1 and §2.5.

A vector of a kind this file does not know is reported as a skip, not silently passed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.messages import CallContext
from agentmesh.parsers.math import extract_boxed
from agentmesh.runtime import run
from agentmesh.runtime.operators import register_function
from agentmesh.spec import GraphSpec, load_graph
from agentmesh.systems.magicore import (
    MagicoreConfig,
    Sample,
    add_step_lines,
    confidence,
    display_score,
    n_scored_steps,
    normalisation_stats,
    prm_input,
    prm_product,
    render_solution,
    reward,
    solve,
    z_score,
)
from agentmesh.systems.magicore.graph import MagicoreParams
from tests._paper import examples_dir, load_vectors

pytestmark = pytest.mark.paper

REPO = Path(__file__).resolve().parents[2]
TOL = 1e-9
KNOWN_KINDS = {"solve", "normalisation", "render_solution", "display_score", "segment_steps", "confidence"}
_MARKER = re.compile(r"\[\[(.+?)\]\]")


def _cases() -> list[Any]:
    vectors = load_vectors("magicore")
    if vectors is None:
        reason = f"{examples_dir() / 'magicore_examples.json'} not found (set AGENTMESH_EXAMPLES_DIR)"
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=reason), id="missing")]
    params = []
    for index, vector in enumerate(vectors):
        vid = str(vector.get("id", f"#{index}"))
        if vector.get("kind") == "solve":
            expected = vector.get("expected") or {}
            modes = [m for m in ("intended", "reference_compat") if isinstance(expected.get(m), Mapping)]
            for mode in modes or ["intended"]:
                params.append(pytest.param(vector, mode, id=f"{vid}-{mode}"))
        else:
            params.append(pytest.param(vector, None, id=vid))
    if not params:
        return [pytest.param(None, None, marks=pytest.mark.skip(reason="the file has no vectors"), id="none")]
    return params


def _same(actual: Any, expected: Any, what: str) -> None:
    """Strings, ints, booleans and null exactly; floats within TOL; lists and dicts item by item."""
    if isinstance(expected, Mapping):
        assert isinstance(actual, Mapping), f"{what}: expected a mapping, got {actual!r}"
        assert set(actual) == set(expected), f"{what}: keys {sorted(actual)} != {sorted(expected)}"
        for key in expected:
            _same(actual[key], expected[key], f"{what}[{key!r}]")
    elif isinstance(expected, list):
        assert isinstance(actual, Sequence) and not isinstance(actual, str), f"{what}: expected a list, got {actual!r}"
        assert len(actual) == len(expected), f"{what}: {len(actual)} items != {len(expected)}: {actual!r}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _same(a, e, f"{what}[{i}]")
    elif isinstance(expected, bool) or expected is None or isinstance(expected, str):
        assert actual == expected and type(actual) is type(expected), f"{what}: {actual!r} != {expected!r}"
    elif isinstance(expected, int | float):
        assert isinstance(actual, int | float) and not isinstance(actual, bool), f"{what}: {actual!r} not a number"
        if isinstance(expected, int) and isinstance(actual, int):
            assert actual == expected, f"{what}: {actual} != {expected}"
        else:
            assert math.isclose(actual, expected, rel_tol=0.0, abs_tol=TOL), f"{what}: {actual!r} != {expected!r}"
    else:  # pragma: no cover - JSON has no other types
        assert actual == expected, what


def _check_known(actual: Mapping[str, Any], expected: Mapping[str, Any], what: str) -> None:
    """Compare the keys of ``expected`` that ``actual`` computes; other expected keys are not ours to check."""
    for key, value in expected.items():
        if key in actual:
            _same(actual[key], value, f"{what}.{key}")


# --- scripted components for `solve` vectors --------------------------------------------------------------------------


def _text(record_id: str) -> str:
    return f"Step 1: [[{record_id}]] work on the problem.\nStep 2: conclude."


def _marker(text: str) -> str:
    found = _MARKER.search(text)
    assert found, f"no [[id]] marker in {text!r}"
    return found.group(1)


class _Script:
    """Solver, Reviewer, Refiner, ORM, PRM and answer parser of one vector, all answering by sample marker."""

    def __init__(self, inputs: Mapping[str, Any]) -> None:
        self.iter0 = list(inputs.get("iter0_candidates") or [])
        self.outputs = list(inputs.get("scripted_refiner_outputs") or [])
        self.records: dict[str, Mapping[str, Any]] = {str(r["id"]): r for r in self.iter0}
        self.records.update({str(r["to"]): r for r in self.outputs})
        self.by_from = {str(r["from"]): r for r in self.outputs}
        self.refined: list[str] = []

    def sample(self, question: str, k: int) -> list[str]:
        return [_text(str(r["id"])) for r in self.iter0]

    def review(self, question: str, scored_solution: str) -> str:
        return f"Feedback on [[{_marker(scored_solution)}]]: check the low-scored steps."

    def refine(self, question: str, scored_solution: str, feedback: str) -> str:
        source = _marker(scored_solution)
        assert source in self.by_from, f"the controller refined {source!r}, which the vector never refines"
        assert f"[[{source}]]" in feedback, "the Refiner must get the feedback on the sample it refines"
        self.refined.append(source)
        return _text(str(self.by_from[source]["to"]))

    def score(self, question: str, solutions: Sequence[str]) -> list[float]:
        return [float(self.records[_marker(t)]["orm"]) for t in solutions]

    def score_steps(self, question: str, steps: Sequence[str]) -> list[float]:
        return [float(p) for p in self.records[_marker(" ".join(steps))]["prm_steps"]]

    def parse(self, text: str) -> str | None:
        pred = self.records[_marker(text)]["pred"]
        return None if pred is None else str(pred)


def _vid(sample: Sample) -> str:
    return _marker(sample.text)


def _check_records(inputs: Mapping[str, Any], mu: float, sigma: float) -> None:
    """The sample records' derived values are what R = ORM + ∏PRM and z = (R - mu)/sigma give."""
    for r in list(inputs.get("iter0_candidates") or []):
        _check_known(_record_values(r, mu, sigma, with_z=True), r, f"candidate {r.get('id')}")
    for r in list(inputs.get("scripted_refiner_outputs") or []):
        _check_known(_record_values(r, mu, sigma, with_z=False), r, f"refined {r.get('to')}")


def _record_values(r: Mapping[str, Any], mu: float, sigma: float, *, with_z: bool) -> dict[str, Any]:
    steps = [float(p) for p in r["prm_steps"]]
    values: dict[str, Any] = {"prm_product": prm_product(steps), "R": reward(float(r["orm"]), steps)}
    if with_z:
        values["z"] = z_score(values["R"], mu, sigma)
    return values


def _reference_round(record: Mapping[str, Any]) -> dict[str, Any]:
    """A round as ``refine.py`` stores it, from the controller's JSON record of that round."""
    top = list(record["top_k_used_for_vote"])
    return {
        "n": record["n"],
        "cond1": "true" if record["cond1_majority_quality_ok"] else "false",
        "cond2": "false" if record["hard"] else "true",
        "need_refinement": "yes" if record["hard"] else "no",
        "top_k_pred": [t["pred"] for t in top],
        "top_k_R": [t["R"] for t in top],
        "answer": record["answer_after_round"],
    }


def _without_ids(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in t.items() if k != "id"} for t in entries]


def _compare_solve(
    data: Mapping[str, Any], expected: Mapping[str, Any], mode: str, ids: Mapping[str, str] | None
) -> None:
    """``data`` is the controller's JSON (:meth:`MagicoreResult.to_json`); ``ids`` maps its sample ids to the
    vector's (``None``: sample ids are not compared, only answers and rewards)."""
    if "majority_unweighted" in expected:
        _same(data["majority"], expected["majority_unweighted"], "majority_unweighted")
    for key in ("iter0_orm_mass_by_answer", "iter0_prm_mass_by_answer"):
        if key in expected:
            _same(data[key], expected[key], key)
    exp = expected[mode] if isinstance(expected.get(mode), Mapping) else {}
    rounds = list(data["rounds"])
    if "rounds" in exp:
        want_rounds = list(exp["rounds"])
        assert len(rounds) == len(want_rounds), (
            f"{mode}: {len(rounds)} rounds ran, expected {len(want_rounds)}: {[(r['n'], r['hard']) for r in rounds]}"
        )
        for i, want in enumerate(want_rounds):
            if mode == "intended":
                actual = dict(rounds[i])
                top = [dict(t) for t in actual["top_k_used_for_vote"]]
                if ids is not None:
                    actual["top_k_used_for_vote"] = [{**t, "id": ids[t["id"]]} for t in top]
                else:
                    actual["top_k_used_for_vote"] = _without_ids(top)
                    if "top_k_used_for_vote" in want:
                        want = {**want, "top_k_used_for_vote": _without_ids(want["top_k_used_for_vote"])}
            else:
                actual = _reference_round(rounds[i])
            _check_known(actual, want, f"{mode}.rounds[{i}]")
    if "final_answer" in exp:
        _same(data["answer"], exp["final_answer"], f"{mode}.final_answer")
    if "n_refinement_rounds" in exp:
        _same(data["n_refinement_rounds"], exp["n_refinement_rounds"], f"{mode}.n_refinement_rounds")


def _config(vector: Mapping[str, Any], mode: str) -> MagicoreConfig:
    config = vector.get("config") or {}
    k = int(config.get("k", len((vector.get("inputs") or {}).get("iter0_candidates") or [])))
    return MagicoreConfig(
        mu=float(config["mu"]),
        sigma=float(config["sigma"]),
        k=k,
        max_rounds=int(config.get("max_rounds", 3)),
        reference_compat=mode != "intended",
    )


def _check_solve(vector: Mapping[str, Any], mode: str) -> None:
    inputs = vector.get("inputs") or {}
    cfg = _config(vector, mode)
    _check_records(inputs, cfg.mu, cfg.sigma)
    script = _Script(inputs)
    result = solve(
        str(inputs.get("question", "")),
        cfg,
        solver=script,
        reviewer=script,
        refiner=script,
        orm=script,
        prm=script,
        parse_answer=script.parse,
    )
    ids = {s.id: _vid(s) for r in result.rounds for s in (*r.samples, *r.refined)}
    _compare_solve(result.to_json(), vector.get("expected") or {}, mode, ids)
    if not script.outputs:
        assert not script.refined, "a vector without scripted refiner outputs is never refined"


# --- the pure functions -----------------------------------------------------------------------------------------------


def _check_normalisation(vector: Mapping[str, Any]) -> None:
    inputs = vector.get("inputs") or {}
    expected = vector.get("expected") or {}
    first = {str(k): float(v) for k, v in (inputs.get("first_sample_R") or {}).items()}
    for pid, problem in (inputs.get("filler_problems") or {}).items():
        candidates = list(problem.get("candidates") or [])
        for r in candidates:
            _check_known(_record_values(r, 0.0, 1.0, with_z=False), r, f"{pid} candidate {r.get('id')}")
        if candidates and str(pid) in first:
            steps = [float(p) for p in candidates[0]["prm_steps"]]
            _same(reward(float(candidates[0]["orm"]), steps), first[str(pid)], f"{pid} first-sample R")
    mu, sigma = normalisation_stats(list(first.values()))
    if "mu" in expected:
        _same(mu, expected["mu"], "mu")
    if "sigma" in expected:
        _same(sigma, expected["sigma"], "sigma")
    for pid, problem in (inputs.get("filler_problems") or {}).items():
        for r in list(problem.get("candidates") or []):
            if "z" in r:
                _same(z_score(reward(float(r["orm"]), r["prm_steps"]), mu, sigma), r["z"], f"{pid} {r.get('id')} z")


def _check_confidence(vector: Mapping[str, Any]) -> None:
    inputs = vector.get("inputs") or {}
    expected = vector.get("expected") or {}
    conf = confidence([float(m) for m in inputs["masses"]])
    decimals = expected.get("decimals")
    if decimals is None:
        _same(conf, expected["conf"], "conf")
        # a value on the 0.5 threshold must land on the same side as the reference's float64 (§2.5)
        assert (conf < 0.5) == (float(expected["conf"]) < 0.5), f"conf {conf!r} vs {expected['conf']!r} at 0.5"
    else:
        _same(round(conf, int(decimals)), expected["conf"], f"round(conf, {decimals})")


@pytest.mark.parametrize(("vector", "mode"), _cases())
def test_vector(vector: dict[str, Any], mode: str | None) -> None:
    kind = vector.get("kind")
    inputs = vector.get("inputs") or {}
    expected = vector.get("expected") or {}
    if kind == "solve":
        assert mode is not None
        _check_solve(vector, mode)
    elif kind == "normalisation":
        _check_normalisation(vector)
    elif kind == "render_solution":
        rendered = render_solution(str(inputs["solution_text"]), [float(p) for p in inputs["prm_steps"]])
        _same(rendered, expected["rendered"], "rendered")
    elif kind == "display_score":
        _same(display_score(float(inputs["p"])), expected["score"], "score")
    elif kind == "segment_steps":
        segmented = add_step_lines(str(inputs["text"]))
        if "after_add_step_lines" in expected:
            _same(segmented, expected["after_add_step_lines"], "after_add_step_lines")
        if "prm_input" in expected:
            _same(prm_input(segmented), expected["prm_input"], "prm_input")
        if "n_scored_steps" in expected:
            _same(n_scored_steps(str(inputs["text"])), expected["n_scored_steps"], "n_scored_steps")
    elif kind == "confidence":
        _check_confidence(vector)
    else:
        pytest.skip(f"vector kind {kind!r} is not one of {sorted(KNOWN_KINDS)}")


# --- `solve` vectors through graphs/magicore.yaml ------------------------------------------------------------------


def _boxed_text(record_id: str, pred: Any) -> str:
    ending = "no answer." if pred is None else f"so the answer is \\boxed{{{pred}}}."
    return f"Step 1: [[{record_id}]] work on the problem.\nStep 2: {ending}"


class _GraphScript:
    """The scripted model behind the graph's Solver, Reviewer and Refiner cards (same rules as :class:`_Script`)."""

    def __init__(self, script: _Script) -> None:
        self.script = script

    def __call__(self, request: ModelRequest, context: CallContext) -> str:
        prompt = request.messages[-1].content
        if context.agent == "solver":
            record = self.script.iter0[int(context.call_index or 0)]
            return _boxed_text(str(record["id"]), record["pred"])
        if context.agent == "reviewer":
            return f"Feedback on [[{_marker(prompt)}]]: check the low-scored steps."
        if context.agent == "refiner":
            source = _marker(prompt)
            assert source in self.script.by_from, f"the graph refined {source!r}, which the vector never refines"
            self.script.refined.append(source)
            out = self.script.by_from[source]
            return _boxed_text(str(out["to"]), out["pred"])
        raise AssertionError(f"unexpected agent {context.agent!r}")


def _graph_for(cfg: MagicoreConfig) -> GraphSpec:
    graph = load_graph(REPO / "graphs" / "magicore.yaml")
    node = graph.nodes["magicore"]
    assert isinstance(node.params, MagicoreParams)
    params = node.params.model_copy(
        update={
            "k": cfg.k,
            "max_rounds": cfg.max_rounds,
            "mu": cfg.mu,
            "sigma": cfg.sigma,
            "reference_compat": cfg.reference_compat,
            "orm_judge": None,
            "prm_judge": None,
            "orm_function": "paper_magicore_orm",
            "prm_function": "paper_magicore_prm",
        }
    )
    agents = {k: v for k, v in graph.agents.items() if k in ("solver", "reviewer", "refiner")}
    return graph.model_copy(
        update={"agents": agents, "nodes": {"magicore": node.model_copy(update={"params": params})}}
    )


@pytest.mark.parametrize(
    ("vector", "mode"), [p for p in _cases() if p.values[0] is None or p.values[0].get("kind") == "solve"]
)
def test_solve_vector_through_the_graph(vector: dict[str, Any], mode: str, tmp_path: Path) -> None:
    """The same vector, run by the ``magicore`` operator of ``graphs/magicore.yaml`` on a scripted model: the
    Solver's replies are parsed by the card's parser, the reward models are registered functions answering by
    marker. Sample ids are the operator's own, so top-k lists are compared by answer and reward."""
    inputs = vector.get("inputs") or {}
    script = _Script(inputs)
    for record in script.records.values():
        pred = record["pred"]
        if pred is not None and extract_boxed(_boxed_text("x", pred)) != pred:
            pytest.skip(f"answer {pred!r} does not survive a \\boxed{{}} round trip; checked by test_vector only")
    cfg = _config(vector, mode)

    @register_function("paper_magicore_orm")
    def orm(question: str, solutions: Sequence[str]) -> list[float]:
        return script.score(question, solutions)

    @register_function("paper_magicore_prm")
    def prm(question: str, steps: Sequence[str]) -> list[float]:
        return script.score_steps(question, steps)

    result = run(
        _graph_for(cfg),
        {"question": str(inputs.get("question", ""))},
        model=ScriptedModel(respond=_GraphScript(script)),
        store=f"sqlite:///{tmp_path / 'runs.db'}",
    )
    assert result.status == "succeeded", result.stop_reason
    _compare_solve(result.outputs["magicore"]["magicore"], vector.get("expected") or {}, mode, None)
    exp = (vector.get("expected") or {}).get(mode) or {}
    if "final_answer" in exp:
        _same(result.answer, exp["final_answer"], "the run's answer")
