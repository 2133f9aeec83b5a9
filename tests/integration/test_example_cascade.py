"""``examples/model_cascade.py``: an operator of the user's own, registered by importing their module and used from
YAML. Scripted tiers make the escalation exact: agreeing cheap samples answer alone (2 calls); disagreeing ones, or
ones without an answer, hand the question to the strong agent (2 more calls), whose answer is the run's."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentmesh.errors import ScriptExhaustedError
from agentmesh.models import ScriptedModel
from agentmesh.runtime import resume, run
from agentmesh.spec import load_graph
from agentmesh.store import Store

REPO = Path(__file__).resolve().parents[2]
GRAPH = REPO / "examples" / "cascade.yaml"


@pytest.fixture(scope="module")
def example() -> Any:
    spec = importlib.util.spec_from_file_location("model_cascade", REPO / "examples" / "model_cascade.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)  # registers the "cascade" operator
    return module


def tiers(cheap: list[str], strong: str = "\\boxed{51}") -> ScriptedModel:
    return ScriptedModel(
        [{"agent": "cheap", "responses": cheap}, {"agent": "strong", "template": strong, "optional": True}]
    )


@pytest.mark.parametrize(
    ("cheap", "calls", "tier", "answer"),
    [
        (["\\boxed{51}", "\\boxed{51}"], 2, 0, "51"),  # the cheap samples agree: no escalation
        (["\\boxed{50}", "\\boxed{51}"], 4, 1, "51"),  # they disagree: the strong agent answers
        (["I am not sure.", "Me neither."], 4, 1, "51"),  # no answer at all: escalate too
    ],
)
def test_the_cheap_tier_answers_when_it_agrees_with_itself(
    example: Any, tmp_path: Path, cheap: list[str], calls: int, tier: int, answer: str
) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    model = tiers(cheap)
    result = run(GRAPH, {"question": "What is 17*3?"}, model=model, store=db)
    model.assert_complete()
    assert (result.calls, result.outputs["answer"]["tier"], result.answer) == (calls, tier, answer)
    with Store(db) as store:
        made = [(e.agent, e.call_index) for e in store.events(result.run_id, kind="model_call")]
    assert sorted(made) == [("cheap", 0), ("cheap", 1), ("strong", 2), ("strong", 3)][:calls]


def test_a_resumed_cascade_makes_no_call_twice(example: Any, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    broken = ScriptedModel([{"agent": "cheap", "responses": ["\\boxed{50}", "\\boxed{51}"]}])  # no strong rule
    with pytest.raises(ScriptExhaustedError):
        run(GRAPH, {"question": "q"}, model=broken, store=db)
    with Store(db) as store:
        (failed,) = store.list_runs()
    fixed = ScriptedModel([{"agent": "strong", "template": "\\boxed{7}"}])  # only the strong agent may be asked
    result = resume(failed.id, store=db, model=fixed)
    assert result.answer == "7" and result.outputs["answer"]["tier"] == 1
    assert [c.context.agent for c in fixed.calls] == ["strong", "strong"]  # the cheap calls were served


def test_the_strong_tier_can_have_its_own_model(example: Any) -> None:
    spec = example.with_strong_model(load_graph(GRAPH), "openai:gpt-4o-mini")
    assert spec.agents["strong"].model == "openai:gpt-4o-mini" and spec.agents["cheap"].model is None


def test_the_yaml_needs_the_users_module_and_validates_with_it(tmp_path: Path) -> None:
    def validate(*first: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "agentmesh", *first, "graph", "validate", str(GRAPH)]
        return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120)

    without = validate()
    assert without.returncode == 2 and "unknown operator 'cascade'" in " ".join(without.stderr.split())
    with_it = validate("--import", str(REPO / "examples" / "model_cascade.py"))
    assert with_it.returncode == 0, with_it.stderr
    assert "graph cascade, 1 node, 2 agents" in with_it.stdout


def test_runs_lists_the_users_runs_without_their_module(example: Any, tmp_path: Path) -> None:
    """``agentmesh runs`` reads each run's answer with the spec it ran; a spec using an operator whose module is not
    imported cannot be read, and the listing still works (the answer is then unknown), rather than failing."""
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    result = run(GRAPH, {"question": "What is 17*3?"}, model=tiers(["\\boxed{51}", "\\boxed{51}"]), store=db)

    def runs(*first: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "agentmesh", *first, "runs", "--db", db, "--json"]
        return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120)

    without, with_it = runs(), runs("--import", str(REPO / "examples" / "model_cascade.py"))
    assert without.returncode == 0 and with_it.returncode == 0, without.stderr + with_it.stderr
    assert [(r["id"], r["answer"]) for r in json.loads(without.stdout)] == [(result.run_id, None)]
    assert [(r["id"], r["answer"]) for r in json.loads(with_it.stdout)] == [(result.run_id, "51")]

    # show (and report) still tell the run's calls, saying why its nodes' kinds are missing
    command = [sys.executable, "-m", "agentmesh", "show", result.run_id, "--db", db]
    shown = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120, env=_wide())
    assert shown.returncode == 0, shown.stderr
    assert "its spec cannot be read here" in shown.stderr and "unknown operator 'cascade'" in shown.stderr
    assert "cheap[0] → \\boxed{51}" in shown.stdout and "cheap[1] → \\boxed{51}" in shown.stdout


def _wide() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200"}


def test_the_script_says_what_is_missing_without_a_traceback(tmp_path: Path) -> None:
    """The docstring's hosted strong tier without a key: one line on stderr saying which variable to set."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    cheap = tmp_path / "cheap.yaml"
    cheap.write_text("rules:\n  - {responses: ['The answer is 50.', 'The answer is 51.']}\n")  # disagree: escalate
    command = [
        sys.executable,
        str(REPO / "examples" / "model_cascade.py"),
        *("-q", "What is 17*3?", "-m", f"scripted:{cheap}", "--strong", "openai:gpt-4o-mini"),
        *("--db", f"sqlite:///{tmp_path / 'runs.db'}"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120, env=env)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "error: openai:gpt-4o-mini: environment variable OPENAI_API_KEY is not set" in " ".join(done.stderr.split())
    with Store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        assert store.list_runs() == []  # the strong tier's model was checked before the cheap tier was asked
