"""ALU's worked examples (``alu_examples.json``, alu.md §8, format §12.3): every vector of the file is a case,
whatever its id; keys a test does not know are ignored.

* ``pipeline`` vectors run one query through :func:`agentmesh.systems.alu.run_alu` with scripted agents (the
  vector's ``replies``) and a scripted semantic scorer (its ``semantic_scores``): lexical hits, semantic
  candidates, shortlist, audit, candidates, critic samples and scores, selection, composer input, decision,
  final answer and the calls per role must be the expected ones. A ``reference_compat`` block is checked by a
  second run in that mode (the released code's calls, composer input and answer).
* ``parsers`` vectors: ``audit_cases`` (§4.2, with the released checker's substring verdict) and the gate of
  ``selection_cases`` (§5). Their erase cases and critic samples are checked by ``test_parsers_paper.py``; the
  ALU wrappers are checked on them here too.
* ``metrics`` vectors: ROUGE-L recall, leak rate, the multiple-choice accuracies and the exact KS test (§9.2).

Rationals are compared as :class:`~fractions.Fraction`, floats within 1e-9.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import pytest

from agentmesh.parsers import parse_critic_ratings
from agentmesh.systems.alu import (
    AluConfig,
    ScriptedAgents,
    ScriptedScorer,
    Target,
    TargetSnapshot,
    aggregate_critic,
    gate,
    ks_2samp_exact,
    leak_rate,
    leaks,
    mcq_scores,
    parse_audit,
    parse_erase,
    reference_hf_check,
    rouge_l_recall,
    run_alu,
)
from agentmesh.systems.alu.metrics import mean
from agentmesh.systems.alu.registry import snapshot_of_records
from tests._paper import vectors_of_kind

pytestmark = pytest.mark.paper

TOL = 1e-9


def _vectors(kind: str) -> list[Any]:
    return vectors_of_kind("alu", kind)


def _frac(value: Any) -> Fraction | None:
    return None if value is None else Fraction(str(value))


def _close(actual: Fraction | float, expected: Any, what: str) -> None:
    if isinstance(expected, str) and not isinstance(actual, float):  # an exact rational: exactly
        assert Fraction(actual) == Fraction(expected), f"{what}: {actual} != {expected}"
    elif isinstance(expected, str):  # a float computed in floating point (the KS p-value) against a rational
        assert abs(actual - float(Fraction(expected))) <= TOL, f"{what}: {actual} != {expected}"
    else:
        assert abs(float(actual) - float(expected)) <= TOL, f"{what}: {float(actual)} != {expected}"


def _snapshot(inputs: Mapping[str, Any], min_alias_len: int) -> TargetSnapshot:
    """The active targets of the vector: all of them, unless records carry a life span (§3.1), then those active
    at ``inputs.version`` (default: the latest version any record mentions)."""
    records = list(inputs.get("targets") or [])
    return snapshot_of_records(records, inputs.get("version"), min_alias_len=min_alias_len, name="examples")


def _config(vector: dict[str, Any], **overrides: Any) -> AluConfig:
    return AluConfig.from_json({**(vector.get("config") or {}), **overrides})


def _scripted(vector: dict[str, Any], config: AluConfig, extract: Any = None) -> ScriptedAgents:
    replies = dict(vector["inputs"].get("replies") or {})
    critic = replies.get("critic")
    if isinstance(critic, list):  # the first critic_samples entries are used (§12.3)
        replies["critic"] = critic[: config.critic_samples]
    if extract is not None:
        replies["critic_extract"] = extract
    return ScriptedAgents(replies)


# --- pipeline ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", _vectors("pipeline"))
async def test_pipeline_vector(vector: dict[str, Any]) -> None:
    config = _config(vector)
    inputs = vector["inputs"]
    snapshot = _snapshot(inputs, config.min_alias_len)
    scorer = ScriptedScorer(
        inputs.get("semantic_scores") or {}, tau_sem=0.35 if config.tau_sem is None else config.tau_sem
    )
    script = _scripted(vector, config)
    result = await run_alu(inputs["query"], snapshot, script.agents(), scorer, config)
    expected = vector["expected"]
    out = result.to_json()
    short = out["shortlist"]
    for key in ("lexical_hits", "semantic_candidates", "shortlist"):
        if key in expected:
            assert short[key] == expected[key], key
    if "audit" in expected:
        if expected["audit"] is None:
            assert result.audit is None
        else:
            assert result.audit is not None
            got = result.audit.to_json()
            for key, value in expected["audit"].items():
                if key in got:
                    assert got[key] == value, f"audit.{key}"
    if "candidates" in expected:  # a step that did not run may be written null or []
        assert (result.candidates or []) == (expected["candidates"] or [])
    if expected.get("critic") is not None:
        want = expected["critic"]
        for sample, spec in zip(result.critic_samples, want.get("samples") or [], strict=True):
            if "status" in spec:
                assert sample.status == spec["status"]
            if "raw" in spec:
                assert sample.raw == [_frac(v) for v in spec["raw"]] if spec["raw"] is not None else sample.raw is None
        if "scores" in want:
            assert result.scores == [_frac(v) for v in want["scores"]]
    if expected.get("selection") is not None:
        assert result.selection is not None
        _check_selection(result.selection.to_json(), expected["selection"])
    if "composer_input_blocks" in expected:
        assert (result.composer_input_blocks or []) == (expected["composer_input_blocks"] or [])
    for key in ("decision", "final_response"):
        if key in expected:
            assert out[key] == expected[key], key
    _check_calls(out["calls"], script, expected.get("calls") or {})


def _check_selection(got: Mapping[str, Any], want: Mapping[str, Any]) -> None:
    for key in ("ranking", "top", "decision"):
        if key in want:
            assert got[key] == want[key], key
    for key in ("top_sum", "gate_sum", "mean"):
        if key in want:
            assert _frac(got[key]) == _frac(want[key]), key


def _check_calls(got: Mapping[str, int], script: ScriptedAgents, want: Mapping[str, Any]) -> None:
    for role, count in want.items():
        if role == "total":
            assert got["total"] == count, "total calls"
            continue
        assert got.get(role, 0) == count, f"calls to {role}"
        if role in script.requests:
            assert script.calls(role) == count, f"scripted {role} asked {script.calls(role)} times"


@pytest.mark.parametrize("vector", _vectors("pipeline"))
async def test_pipeline_vector_reference_compat(vector: dict[str, Any]) -> None:
    reference = vector.get("reference_compat")
    if not isinstance(reference, Mapping):
        pytest.skip("no reference_compat block")
    path = str(reference.get("path", "openai_only"))
    mode: bool | str = "hf_checker" if "hf" in path else True
    config = _config(vector, reference_compat=mode)
    inputs = vector["inputs"]
    snapshot = _snapshot(inputs, config.min_alias_len)
    script = _scripted(vector, config, extract=reference.get("scripted_critic_extract"))
    result = await run_alu(inputs["query"], snapshot, script.agents(), ScriptedScorer({}), config)
    out = result.to_json()
    if "targets_in_prompts" in reference:
        assert out["targets_in_prompts"] == reference["targets_in_prompts"]
        for role in ("audit", "erase", "critic", "composer"):
            for request in script.requests[role]:
                assert [t.id for t in request.targets] == reference["targets_in_prompts"], role
    if "composer_input_blocks" in reference:
        assert (result.composer_input_blocks or []) == (reference["composer_input_blocks"] or [])
    if "final_response" in reference:
        assert result.final_response == reference["final_response"]
    _check_calls(out["calls"], script, reference.get("calls") or {})
    verdict = reference.get("hf_checker_path_audit")
    if isinstance(verdict, str) and isinstance((inputs.get("replies") or {}).get("audit"), str):
        # the released local checker's substring test on the same audit reply ("clean (...)" / "flagged (...)")
        assert verdict.split()[0] == reference_hf_check(inputs["replies"]["audit"])


# --- parsers: audit and gate ---------------------------------------------------------------------------------------


def _parsers_vectors() -> list[Any]:
    return _vectors("parsers")


@pytest.mark.parametrize("vector", _parsers_vectors())
def test_audit_cases(vector: dict[str, Any]) -> None:
    config = vector.get("config") or {}
    min_alias_len = int(config.get("min_alias_len", 2))
    by_id = {t.id: t for t in (Target.from_json(r) for r in config.get("targets") or [])}
    cases = vector.get("inputs", {}).get("audit_cases") or []
    wants = vector.get("expected", {}).get("audit_cases") or []
    for i, (case, want) in enumerate(zip(cases, wants, strict=True)):
        shortlisted = [by_id[int(t)] for t in case["shortlist"]]
        got = parse_audit(
            case["reply"],
            shortlisted,
            case.get("vanilla", ""),
            force_flag_lexical=case.get("force_flag_lexical", "response"),
            on_unresolved=case.get("on_unresolved", "erase"),
            min_alias_len=min_alias_len,
        ).to_json()
        for key, value in want.items():
            if key in got:
                assert got[key] == value, f"audit case {i}: {key}"
        if "released_code_hf_check" in case:
            assert reference_hf_check(case["reply"]) == case["released_code_hf_check"], f"audit case {i}: hf check"


@pytest.mark.parametrize("vector", _parsers_vectors())
def test_selection_cases(vector: dict[str, Any]) -> None:
    cases = vector.get("inputs", {}).get("selection_cases") or []
    wants = vector.get("expected", {}).get("selection_cases") or []
    for i, (case, want) in enumerate(zip(cases, wants, strict=True)):
        k = int(case["K"])
        samples = [parse_critic_ratings(reply, k) for reply in case["critic_replies"]]
        scores = aggregate_critic(samples, k)
        if "scores" in want:
            assert scores == [_frac(v) for v in want["scores"]], f"selection case {i}: scores"
        selection = gate(scores, int(case.get("j", 3)), Fraction(str(case.get("tau", "4"))))
        _check_selection(selection.to_json(), want)


@pytest.mark.parametrize("vector", _parsers_vectors())
def test_erase_cases_through_alu(vector: dict[str, Any]) -> None:
    cases = vector.get("inputs", {}).get("erase_cases") or []
    wants = vector.get("expected", {}).get("erase_cases") or []
    for case, want in zip(cases, wants, strict=True):
        assert parse_erase(case["reply"], int(case["k"])) == want


# --- metrics -------------------------------------------------------------------------------------------------------


def _stemmers() -> list[Any]:
    """No stemming always (the vectors avoid words stemming changes); the real Porter stemmer when installed."""
    out: list[Any] = [None]
    try:
        from agentmesh.systems.alu.metrics import porter_stemmer

        out.append(porter_stemmer())
    except ImportError:
        pass
    return out


@pytest.mark.parametrize("vector", _vectors("metrics"))
def test_metrics_vector(vector: dict[str, Any]) -> None:
    config = vector.get("config") or {}
    inputs = vector.get("inputs") or {}
    expected = vector.get("expected") or {}
    refusal = config.get("refusal_text")
    if "rouge_items" in inputs:
        for stemmer in _stemmers():
            recalls = [rouge_l_recall(i["reference"], i["prediction"], stemmer=stemmer) for i in inputs["rouge_items"]]
            for key in ("rougeL_recall", "rougeL_recall_float"):  # either may be absent from a vector
                if key in expected:
                    for got, want in zip(recalls, expected[key], strict=True):
                        _close(got, want, key)
            average = mean(recalls)
            assert average is not None or not recalls
            if "rougeL_recall_mean" in expected and average is not None:
                _close(average, expected["rougeL_recall_mean"], "rougeL_recall_mean")
            if "rougeL_recall_mean_float" in expected and average is not None:
                _close(average, expected["rougeL_recall_mean_float"], "rougeL_recall_mean_float")
    if "leak_items" in inputs:
        items = [
            (i["answer"], Target(0, i["target"], tuple(i.get("aliases") or ()), i.get("description")))
            for i in inputs["leak_items"]
        ]
        min_alias_len = int(config.get("min_alias_len", 2))
        if "leaks" in expected:
            assert [leaks(a, t, min_alias_len) for a, t in items] == expected["leaks"]
        if "leak_rate" in expected:
            rate = leak_rate(items, min_alias_len)
            assert rate is not None
            _close(rate, expected["leak_rate"], "leak_rate")
    if "mcq_items" in inputs:
        items = inputs["mcq_items"]
        scores = mcq_scores(
            [i["response"] for i in items], [i["gold"] for i in items], int(config.get("n_options", 4)), refusal
        )
        if "mcq_parsed" in expected:
            assert list(scores.parsed) == expected["mcq_parsed"]
        if "mcq_correct" in expected:
            assert scores.correct == expected["mcq_correct"]
        if "mcq_abstain" in expected:
            assert scores.abstained == expected["mcq_abstain"]
        for key in ("acc_strict", "acc_random_fill", "abstain_rate"):
            if key in expected:
                _close(getattr(scores, key), expected[key], key)
    if "ks_cases" in inputs:
        for case, want in zip(inputs["ks_cases"], expected.get("ks") or [{}] * len(inputs["ks_cases"]), strict=True):
            got = ks_2samp_exact(case["system"], case["reference"])
            if "statistic" in want:
                _close(got.statistic, want["statistic"], "ks statistic")
            if "pvalue" in want:
                _close(got.pvalue, want["pvalue"], "ks pvalue")
