"""Calibrating a MAgICoRe graph's mu/sigma (magicore.md §2.4) on a scripted model: each problem's first Solver
sample is drawn and scored by the graph's own cards as a stored, resumable run; mu/sigma are the mean and
population std of the rewards; the result applies to a run as inputs or as a graph with them set.

The script gives problem ``p<n>`` an ORM judge score of ``s<n>`` / 100 and a PRM judge score of 0.5 per step (two
steps): R = s/100 + 0.25.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from agentmesh.cli.calibrate import calibrate as calibrate_command
from agentmesh.datasets import Item, read_items
from agentmesh.errors import AgentmeshError, ConfigError
from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.messages import CallContext
from agentmesh.runtime import arun
from agentmesh.runtime.arguments import resolve_graph
from agentmesh.runtime.operators import register_function
from agentmesh.runtime.replay import areplay
from agentmesh.spec import load_graph
from agentmesh.spec.loader import dump_graph, graph_from_data
from agentmesh.store import Store
from agentmesh.systems.magicore import (
    acalibrate,
    calibrate,
    calibration_graph,
    normalisation_stats,
    use_reward_functions,
    with_calibration,
)
from agentmesh.systems.magicore.graph import FIRST_SAMPLE_OP, MagicoreParams

ORM = {"p1": 40, "p2": 60, "p3": 90, "p4": 70, "p5": 10}
_PROBLEM = re.compile(r"problem (p\d)")


def respond(request: ModelRequest, context: CallContext) -> str:
    prompt = request.messages[-1].content
    problem = _PROBLEM.search(prompt)
    assert problem is not None, prompt
    if context.agent == "solver":
        return f"Step 1: look at {problem.group(1)}.\nStep 2: so the answer is \\boxed{{{problem.group(1)[1]}}}."
    if context.agent == "orm_judge":
        return f"{ORM[problem.group(1)]} [END]"
    if context.agent == "prm_judge":
        return "[0.5, 0.5]"
    raise AssertionError(f"calibration calls no {context.agent}")


def problems(tmp_path: Path, names: Sequence[str] = ("p1", "p2", "p3")) -> Path:
    path = tmp_path / "problems.jsonl"
    path.write_text("".join(json.dumps({"question": f"Solve problem {n}."}) + "\n" for n in names), encoding="utf-8")
    return path


def items(tmp_path: Path, names: Sequence[str] = ("p1", "p2", "p3")) -> list[Item]:
    return read_items(problems(tmp_path, names), resolve_graph("magicore"))


def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


def expected(names: Sequence[str]) -> tuple[float, float]:
    return normalisation_stats([ORM[n] / 100 + 0.25 for n in names])


async def test_calibration_scores_each_first_sample_and_returns_mu_sigma(tmp_path: Path) -> None:
    model = ScriptedModel(respond=respond)
    told: list[tuple[int, int]] = []
    found = await acalibrate(
        "magicore",
        items(tmp_path),
        model=model,
        store=db(tmp_path),
        progress=lambda item, done, total: told.append((done, total)),
    )
    mu, sigma = expected(["p1", "p2", "p3"])
    assert found.mu == pytest.approx(mu, abs=1e-12) and found.sigma == pytest.approx(sigma, abs=1e-12)
    assert found.graph == "magicore" and found.node == "magicore" and not found.failed
    assert found.rewards == pytest.approx([0.65, 0.85, 1.15])
    assert [i.answer for i in found.items] == ["1", "2", "3"] and sorted(told) == [(1, 3), (2, 3), (3, 3)]
    # only the Solver's first sample and its two scores: no Reviewer, no Refiner, one sample per problem
    calls = [(str(c.context.agent), c.context.round, c.context.call_index) for c in model.calls]
    assert Counter(a for a, _, _ in calls) == {"solver": 3, "orm_judge": 3, "prm_judge": 3}
    assert all((r, s) == (0, 0) for _, r, s in calls)  # the record keys of a full run's sample 0
    assert found.inputs == {"mu": found.mu, "sigma": found.sigma}
    assert found.cli_args == f"-i mu={found.mu!r} -i sigma={found.sigma!r}"
    with Store(db(tmp_path)) as store:
        runs = store.list_runs(graph="magicore_calibration")
        assert len(runs) == 3 and all(r.status == "succeeded" for r in runs)
        assert {r.id for r in runs} == {i.run_id for i in found.items}
    payload = json.loads(json.dumps(found.to_json()))
    assert payload["n"] == 3 and [i["R"] for i in payload["items"]] == pytest.approx([0.65, 0.85, 1.15])

    # the calibrated graph carries mu/sigma in its node; everything else is the graph as it was
    assert found.calibrated is not None
    params = found.calibrated.nodes["magicore"].params
    assert isinstance(params, MagicoreParams) and (params.mu, params.sigma) == (found.mu, found.sigma)
    assert found.calibrated.agents == resolve_graph("magicore").agents


async def test_calibration_is_resumable_and_its_runs_replay(tmp_path: Path) -> None:
    first = await acalibrate("magicore", items(tmp_path), model=ScriptedModel(respond=respond), store=db(tmp_path))
    model = ScriptedModel(respond=respond)
    again = await acalibrate("magicore", items(tmp_path, ["p1", "p2", "p3", "p4"]), model=model, store=db(tmp_path))
    assert [i.reused for i in again.items] == [True, True, True, False]
    assert len(model.calls) == 3  # only the new problem was paid for
    assert [i.run_id for i in again.items[:3]] == [i.run_id for i in first.items]
    assert (again.mu, again.sigma) == pytest.approx(expected(["p1", "p2", "p3", "p4"]))
    report = await areplay(str(first.items[0].run_id), store=db(tmp_path))
    assert report.identical and report.calls_made == 0 and report.served == 3


async def test_the_calibration_applies_to_a_run_as_inputs_or_in_the_graph(tmp_path: Path) -> None:
    found = await acalibrate("magicore", items(tmp_path), model=ScriptedModel(respond=respond), store=db(tmp_path))
    assert found.calibrated is not None
    spec = graph_from_data(json.loads(json.dumps(found.calibrated.model_dump(mode="json"))))  # a round trip
    for graph, inputs in (
        ("magicore", {"question": "Solve problem p3.", **found.inputs}),
        (spec, {"question": "Solve problem p3."}),
    ):
        result = await arun(graph, inputs, model=ScriptedModel(respond=respond), store=db(tmp_path))
        out = result.outputs["magicore"]["magicore"]
        # eight samples, all "3" with R = 1.15: z = (1.15 - mu) / sigma, the calibration's own z of problem p3
        z = (1.15 - found.mu) / found.sigma
        assert out["rounds"][0]["mean_z_of_majority_matches"] == pytest.approx(z)
        assert out["stop_reason"] == "easy" and result.answer == "3"


async def test_reward_functions_calibrate_too(tmp_path: Path) -> None:
    @register_function("test_magicore_cal_orm")
    def orm(question: str, solutions: Sequence[str]) -> list[float]:
        return [ORM[_PROBLEM.findall(question)[-1]] / 100 for _ in solutions]

    @register_function("test_magicore_cal_prm")
    def prm(question: str, steps: Sequence[str]) -> list[float]:
        return [1.0 for _ in steps]

    graph = use_reward_functions(resolve_graph("magicore"), "test_magicore_cal_orm", "test_magicore_cal_prm")
    params = graph.nodes["magicore"].params
    assert isinstance(params, MagicoreParams) and params.orm_judge is None and params.prm_judge is None
    assert set(graph.agents) == {"solver", "reviewer", "refiner"}  # the judges' cards left with them
    written = graph_from_data(yaml.safe_load(dump_graph(graph)))  # and it dumps to a file that loads
    assert written.nodes["magicore"].params == params
    model = ScriptedModel(respond=respond)
    found = await acalibrate(graph, items(tmp_path), model=model, store=db(tmp_path))
    assert (found.mu, found.sigma) == pytest.approx(normalisation_stats([1.4, 1.6, 1.9]))
    assert Counter(str(c.context.agent) for c in model.calls) == {"solver": 3}

    # the functions' code is part of the job: an edited function is a new job, not the old rewards handed back
    again = await acalibrate(graph, items(tmp_path), model=ScriptedModel(respond=respond), store=db(tmp_path))
    assert all(i.reused for i in again.items)

    @register_function("test_magicore_cal_prm")
    def prm_edited(question: str, steps: Sequence[str]) -> list[float]:
        return [0.5 for _ in steps]

    edited = await acalibrate(graph, items(tmp_path), model=ScriptedModel(respond=respond), store=db(tmp_path))
    assert not any(i.reused for i in edited.items) and edited.job != found.job
    assert (edited.mu, edited.sigma) == pytest.approx(normalisation_stats([0.65, 0.85, 1.15]))
    assert set(calibration_graph(graph).agents) == {"solver", "reviewer", "refiner"}


async def test_calibration_refuses_what_cannot_give_a_z_score(tmp_path: Path) -> None:
    model = ScriptedModel(respond=respond)
    with pytest.raises(ConfigError, match="needs at least 2 problems, got 1"):
        await acalibrate("magicore", items(tmp_path, ["p1"]), model=model, store=db(tmp_path))
    with pytest.raises(ConfigError, match="no magicore node"):
        await acalibrate("debate", items(tmp_path), model=model, store=db(tmp_path))
    with pytest.raises(ConfigError, match="no magicore node 'solve'"):
        calibration_graph(resolve_graph("magicore"), "solve")
    assert model.calls == []
    same = [Item(line=n, inputs={"question": "Solve problem p5."}) for n in (1, 2, 3)]
    # three rewards of 0.35 leave rounding noise in sigma (mean 0.35000000000000003): still no spread
    assert 0 < normalisation_stats([0.35] * 3)[1] < 1e-15
    with pytest.raises(AgentmeshError, match=r"all 3 first-sample rewards are 0\.35, so sigma is 0"):
        await acalibrate("magicore", same, model=model, store=db(tmp_path))


async def test_failed_problems_are_reported_and_too_few_scores_raise(tmp_path: Path) -> None:
    def flaky(request: ModelRequest, context: CallContext) -> str:
        if "p2" in request.messages[-1].content and context.agent == "solver":
            raise RuntimeError("the server fell over")
        return respond(request, context)

    found = await acalibrate(
        "magicore", items(tmp_path, ["p1", "p2", "p3"]), model=ScriptedModel(respond=flaky), store=db(tmp_path)
    )
    assert [i.line for i in found.failed] == [2] and found.failed[0].run_id is not None
    assert (found.mu, found.sigma) == pytest.approx(expected(["p1", "p3"]))
    with pytest.raises(AgentmeshError, match="1 of 2 problems were scored"):
        await acalibrate(
            "magicore",
            items(tmp_path, ["p1", "p2"]),
            model=ScriptedModel(respond=flaky),
            store=f"sqlite:///{tmp_path / 'other.db'}",
        )


def test_calibration_graph_runs_only_the_first_sample_op() -> None:
    graph = calibration_graph(load_graph(Path(__file__).resolve().parents[2] / "graphs" / "magicore_mmlu.yaml"))
    assert graph.name == "magicore_mmlu_calibration" and graph.output == "magicore"
    assert [n.op for n in graph.nodes.values()] == [FIRST_SAMPLE_OP]
    assert set(graph.agents) == {"solver", "reviewer", "refiner", "orm_judge", "prm_judge"}
    moved = with_calibration(resolve_graph("magicore"), 0.7, 0.2)
    params = moved.nodes["magicore"].params
    assert isinstance(params, MagicoreParams) and (params.mu, params.sigma) == (0.7, 0.2)
    with pytest.raises(ValueError, match="sigma"):
        with_calibration(resolve_graph("magicore"), 0.7, 0.0)


def test_the_blocking_form_runs_outside_an_event_loop(tmp_path: Path) -> None:
    found = calibrate("magicore", items(tmp_path), model=ScriptedModel(respond=respond), store=db(tmp_path))
    assert (found.mu, found.sigma) == pytest.approx(expected(["p1", "p2", "p3"]))


def test_the_command_prints_mu_sigma_and_writes_the_calibrated_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "script.yaml"
    lines = [
        "rules:",
        "  - agent: solver",
        '    responses: ["Step 1: add.\\nStep 2: so \\\\boxed{51}."]',
        "    cycle: true",
    ]
    for n, score in enumerate((40, 60, 90)):
        lines += ["  - agent: orm_judge", f"    prompt: 'problem p{n + 1}'", f"    responses: ['{score} [END]']"]
    lines += ["  - agent: prm_judge", "    responses: ['[0.5, 0.5]']", "    cycle: true"]
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    app = typer.Typer()
    app.command()(calibrate_command)
    out = tmp_path / "mine.yaml"
    args = ["magicore", "--data", str(problems(tmp_path)), "-m", f"scripted:{script}", "--db", db(tmp_path)]
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, [*args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    mu, sigma = expected(["p1", "p2", "p3"])
    flat = " ".join(result.output.split())
    assert f"magicore: mu = {mu:.6g}, sigma = {sigma:.6g} over 3 first samples" in flat
    assert f"agentmesh run magicore -i question=... -i mu={mu!r} -i sigma={sigma!r}" in flat
    params = load_graph(out).nodes["magicore"].params
    assert isinstance(params, MagicoreParams) and (params.mu, params.sigma) == pytest.approx((mu, sigma))
    result = CliRunner().invoke(app, [*args, "--json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert all(i["reused"] for i in payload["items"]) and payload["calibrated_graph"] == str(out)
    assert math.isclose(payload["mu"], mu) and math.isclose(payload["sigma"], sigma)
    # a graph given as a file: the calibrated graph is named after the file (a copy of a shipped graph keeps the
    # shipped graph's name, which must not pick the file a calibration of the shipped one would write)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_copy.yaml").write_text(dump_graph(resolve_graph("magicore")), encoding="utf-8")
    result = CliRunner().invoke(app, ["my_copy.yaml", *args[1:]])
    assert result.exit_code == 0, result.output
    assert "agentmesh run my_copy.yaml -i question=..." in " ".join(result.output.split())
    assert (tmp_path / "my_copy_calibrated.yaml").is_file() and not (tmp_path / "magicore_calibrated.yaml").exists()


def test_the_printed_commands_import_the_modules_that_register_the_reward_functions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``agentmesh -I my_rewards.py calibrate my_magicore.yaml`` printed "agentmesh run my_magicore.yaml ...",
    which fails without the module that registers the reward functions."""

    @register_function("test_magicore_cli_orm")
    def orm(question: str, solutions: Sequence[str]) -> list[float]:
        return [ORM[_PROBLEM.findall(question)[-1]] / 100 for _ in solutions]

    @register_function("test_magicore_cli_prm")
    def prm(question: str, steps: Sequence[str]) -> list[float]:
        return [1.0 for _ in steps]

    graph = tmp_path / "my_magicore.yaml"
    graph.write_text(
        dump_graph(use_reward_functions(resolve_graph("magicore"), "test_magicore_cli_orm", "test_magicore_cli_prm"))
    )
    script = tmp_path / "script.yaml"
    script.write_text('rules:\n  - {agent: solver, template: "Step 1: add.\\nStep 2: \\\\boxed{5}."}\n')
    monkeypatch.setattr("agentmesh.cli.calibrate.imported", lambda: ("/home/me/my rewards.py",))
    monkeypatch.setenv("COLUMNS", "300")
    app = typer.Typer()
    app.command()(calibrate_command)
    args = [str(graph), "--data", str(problems(tmp_path)), "-m", f"scripted:{script}", "--db", db(tmp_path)]
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "out.yaml")])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert f"agentmesh -I '/home/me/my rewards.py' run {graph} -i question=... -i mu=" in flat
    assert f"(run it: agentmesh -I '/home/me/my rewards.py' run {tmp_path / 'out.yaml'} -i question=...)" in flat


def test_progress_counts_problems_as_the_interrupted_message_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The progress said "3/3 items" where an interrupt says "of 3 problems"."""
    from tests._cli import run_cli

    script = tmp_path / "script.yaml"
    script.write_text('rules:\n  - {agent: solver, template: "Step 1: add.\\nStep 2: \\\\boxed{5}."}\n')

    @register_function("test_magicore_progress_orm")
    def orm(question: str, solutions: Sequence[str]) -> list[float]:
        return [ORM[_PROBLEM.findall(question)[-1]] / 100 for _ in solutions]

    @register_function("test_magicore_progress_prm")
    def prm(question: str, steps: Sequence[str]) -> list[float]:
        return [1.0 for _ in steps]

    graph = tmp_path / "g.yaml"
    graph.write_text(
        dump_graph(
            use_reward_functions(resolve_graph("magicore"), "test_magicore_progress_orm", "test_magicore_progress_prm")
        )
    )
    args = ["calibrate", str(graph), "--data", str(problems(tmp_path)), "-m", f"scripted:{script}"]
    code, _, stderr = run_cli([*args, "--db", db(tmp_path), "-o", str(tmp_path / "o.yaml")], capsys, monkeypatch)
    assert code == 0, stderr
    assert "3/3 problems" in stderr and "items" not in stderr


@pytest.mark.parametrize(
    ("names", "down", "error"),
    [
        (["p1", "p2"], True, "0 of 2 problems were scored"),  # every problem failed (the model server down)
        (["p5", "p5"], False, "so sigma is 0"),  # every problem scored alike: no spread
    ],
)
def test_calibrate_json_says_what_happened_when_no_mu_sigma_could_be_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, names: list[str], down: bool, error: str
) -> None:
    """calibrate --json printed nothing on stdout when no mu/sigma could be measured (the error on stderr alone),
    so a script had no run to show or resume: it prints the problems' runs and errors, no mu, sigma or graph, and
    the error under 'error' (None when the calibration succeeded), exit 1."""

    def answer(request: ModelRequest, context: CallContext) -> str:
        if down:
            raise RuntimeError("the model server went away")
        return respond(request, context)

    from agentmesh.models.registry import register_provider

    @register_provider("calibrationdown")
    def _factory(ref: object, limits: object, options: object) -> ScriptedModel:
        return ScriptedModel(respond=answer)

    app = typer.Typer()
    app.command()(calibrate_command)
    out = tmp_path / "mine.yaml"
    args = ["magicore", "--data", str(problems(tmp_path, names)), "-m", "calibrationdown:x", "--db", db(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--json", "-o", str(out)])
    assert result.exit_code == 1 and isinstance(result.exception, AgentmeshError)
    payload = json.loads(result.stdout)
    assert error in payload["error"] and payload["job"] and payload["calibrated_graph"] is None
    assert payload["mu"] is None and payload["sigma"] is None and payload["cli_args"] is None
    assert [i["line"] for i in payload["items"]] == [1, 2] and all(i["run_id"] for i in payload["items"])
    assert all(("went away" in (i["error"] or "")) is down for i in payload["items"])
    assert all((i["R"] is None) is down for i in payload["items"])
    assert not out.exists()
