"""SE-Jury on agentmesh: the shipped jury graph, a calibrated team's graph, calibration and its edge cases.

The judges are scripted (each agent answers by rule, scores read off the item), so every figure is known: the
maths itself is checked against the paper's vectors in ``test_sejury_paper.py``.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import agentmesh
from agentmesh.datasets import Item, read_items
from agentmesh.errors import AgentmeshError, ConfigError
from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.messages import CallContext
from agentmesh.models.registry import register_provider
from agentmesh.runtime.arguments import resolve_graph
from agentmesh.spec import load_graph
from agentmesh.spec.loader import dump_graph, graph_from_data
from agentmesh.store import RunStatus, Store
from agentmesh.systems.sejury import JuryConfig, calibration_split, pick, select_team
from agentmesh.systems.sejury.jury import acalibrate, jury_nodes, team_graph
from agentmesh.systems.sejury.selection import Candidate, Correlations
from tests._cli import run_cli

INPUTS = {"query": "Reverse a list xs.", "artifact": "xs[::-1]  # ITEM-0", "reference": "list(reversed(xs))"}

FIXED = {
    "s1_no_ref": "70 [END] Works for lists.",
    "s1_ref": "90 [END] Same as the reference.",
    "s2_verifier": "80 [END] The reasons hold.",
    "s3_equivalence": "50 [END] Unclear for tuples.",
    "s4_key_points": "KEY: reverse the order; return a list",
    "s4_verifier": "100 [END] Covers both points.",
    "s5_tests": "TESTS: [] -> []; [1,2] -> [2,1]",
    "s5_reasoner": "It would pass most of them.",  # no score: counts 0 (the release's rule), flagged unparsed
}


def fixed(request: ModelRequest, context: CallContext) -> str:
    assert context.agent is not None
    return FIXED[context.agent]


def prompts(model: ScriptedModel) -> dict[str, str]:
    return {str(c.context.agent): c.prompt for c in model.calls}


def test_the_shipped_jury_calls_every_judge_and_averages_them(tmp_path: Path) -> None:
    model = ScriptedModel(respond=fixed)
    result = agentmesh.run("sejury", INPUTS, model=model, store=f"sqlite:///{tmp_path / 'j.db'}")

    assert result.status == "succeeded"
    assert result.calls == 8  # S1_1, S1_2 (= S2's first step), S2, S3, S4 x2, S5 x2
    verdict = result.outputs["jury"]
    assert verdict["raw"] == {"S1_1": 70, "S1_2": 90, "S2": 80, "S3": 50, "S4": 100, "S5": 0}
    assert verdict["scaled"] == {"S1_1": 4, "S1_2": 5, "S2": 4, "S3": 3, "S4": 5, "S5": 1}  # round(1 + s/25)
    assert verdict["mean"] == pytest.approx(22 / 6)
    assert result.answer == 4 and verdict["unparsed"] == ["S5"]
    seen = prompts(model)
    # second steps see what the spec says they see, and nothing else
    assert FIXED["s1_ref"] in seen["s2_verifier"] and INPUTS["reference"] not in seen["s2_verifier"]
    assert FIXED["s4_key_points"] in seen["s4_verifier"] and INPUTS["query"] not in seen["s4_verifier"]
    assert INPUTS["reference"] not in seen["s4_verifier"]
    assert FIXED["s5_tests"] in seen["s5_reasoner"] and INPUTS["reference"] not in seen["s5_reasoner"]
    assert INPUTS["reference"] not in seen["s1_no_ref"] and INPUTS["reference"] in seen["s1_ref"]


@pytest.mark.parametrize(
    ("task", "marker"), [("code", "solves the problem completely"), ("patch", "Think twice"), ("summary", "adequacy")]
)
def test_the_rubric_follows_the_task(tmp_path: Path, task: str, marker: str) -> None:
    spec = resolve_graph("sejury")
    if task == "summary":  # S5 has no summary prompt: a team without it
        spec = team_graph(spec, ["S1_1", "S1_2", "S2", "S3", "S4"])
    model = ScriptedModel(respond=fixed)
    agentmesh.run(spec, {**INPUTS, "task": task}, model=model, store=f"sqlite:///{tmp_path / 'j.db'}")
    assert marker in prompts(model)["s1_no_ref"]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({**INPUTS, "task": "essay"}, "input 'task' is 'essay'; expected one of code, patch, summary"),
        ({**INPUTS, "task": "summary"}, "judge(s) ['S5'] do not score summaries"),
        ({**INPUTS, "artifact": "  "}, "input(s) ['artifact'] are empty"),
    ],
)
def test_inputs_the_judges_cannot_score_are_refused_before_any_call(
    tmp_path: Path, inputs: dict[str, str], message: str
) -> None:
    model = ScriptedModel(respond=fixed)
    with pytest.raises(AgentmeshError, match=re.escape(message)):
        agentmesh.run("sejury", inputs, model=model, store=f"sqlite:///{tmp_path / 'j.db'}")
    assert model.calls == []


@pytest.mark.parametrize(
    ("team", "agents", "calls", "nodes"),
    [
        (["S1_1", "S3"], {"s1_no_ref", "s3_equivalence"}, 2, ["check", "prepare", "judges", "jury"]),
        (["S1_2", "S2"], {"s1_ref", "s2_verifier"}, 2, ["check", "prepare", "judges", "jury"]),
        (["S1_2", "S4"], {"s1_ref", "s4_key_points", "s4_verifier"}, 3, ["check", "prepare", "judges", "jury"]),
        (["S1_1", "S1_2"], {"s1_no_ref", "s1_ref"}, 2, ["check", "prepare", "jury"]),  # 'judges' left empty
        # S2 needs S1-with-reference's reply, which runs without counting in the team's mean
        (["S1_1", "S2"], {"s1_no_ref", "s1_ref", "s2_verifier"}, 3, ["check", "prepare", "judges", "jury"]),
    ],
)
def test_a_teams_graph_makes_only_the_teams_calls(
    tmp_path: Path, team: list[str], agents: set[str], calls: int, nodes: list[str]
) -> None:
    spec = team_graph(resolve_graph("sejury"), team, aggregation="mean")
    assert set(spec.agents) == agents and list(spec.nodes) == nodes
    assert spec.name == "sejury_" + "_".join(team).lower()
    reloaded = graph_from_data(yaml.safe_load(dump_graph(spec)), base_dir=tmp_path)
    assert reloaded == spec  # the team's graph is a YAML file like any other
    model = ScriptedModel(respond=fixed)
    result = agentmesh.run(spec, INPUTS, model=model, store=f"sqlite:///{tmp_path / 'j.db'}")
    assert result.calls == calls and {str(c.context.agent) for c in model.calls} == agents
    scaled = [round(1 + int(FIXED[spec.nodes["jury"].params.args["judges"][j]].split()[0]) / 25) for j in team]
    assert result.answer == pytest.approx(sum(scaled) / len(scaled))


def test_a_team_graph_refuses_unknown_judges_and_graphs_without_a_jury() -> None:
    with pytest.raises(ConfigError, match=r"unknown judge\(s\) \['S9'\]"):
        team_graph(resolve_graph("sejury"), ["S1_1", "S9"])
    with pytest.raises(ConfigError, match="graph 'debate' has no jury"):
        jury_nodes(resolve_graph("debate"))


# --- calibration ---------------------------------------------------------------------------------------------------

HUMAN = [5, 1, 4, 2, 3, 5, 1, 3, 4, 2]
"""Labels of ten items; S1_1 and S4 track them, the other judges do not."""


def item_scored(request: ModelRequest, context: CallContext) -> str:
    prompt = "\n".join(m.content for m in request.messages if isinstance(m.content, str))
    found = re.search(r"ITEM-(\d+)", prompt)
    agent = str(context.agent)
    if agent in ("s4_key_points", "s5_tests"):
        return f"notes for ITEM-{found.group(1) if found else '?'}"
    k = int(found.group(1)) if found else 0
    human = HUMAN[k]
    if agent in ("s1_no_ref", "s4_verifier"):
        return f"{(human - 1) * 25} [END] tracks the label"
    return f"{(k * 37) % 101} [END] noise"


def labelled(tmp_path: Path) -> list[Item]:
    path = tmp_path / "labelled.jsonl"
    lines = [
        {"query": f"task {k}", "artifact": f"code ITEM-{k}", "reference": f"gold ITEM-{k}", "human": h}
        for k, h in enumerate(HUMAN)
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return read_items(path, resolve_graph("sejury"), keep={"human"})


async def test_calibration_picks_the_judges_that_agree_with_humans_and_checks_them_on_held_out_items(
    tmp_path: Path,
) -> None:
    items = labelled(tmp_path)
    config = JuryConfig(judges=("S1_1", "S1_2", "S3", "S4"), n_calibration=6)
    db = f"sqlite:///{tmp_path / 'j.db'}"
    told: list[str] = []
    model = ScriptedModel(respond=item_scored)
    found = await acalibrate(
        "sejury", items, config=config, model=model, store=db, progress=lambda phase, *_: told.append(phase)
    )

    assert found.team == ("S1_1", "S4")
    assert found.selection.selected.score == pytest.approx(1.0)
    chosen = calibration_split(10, 6, 12345)
    assert [i.line for i in found.calibration] == [items[i].line for i in chosen]
    assert sorted(i.line for i in found.held_out) == sorted(items[i].line for i in range(10) if i not in chosen)
    assert told == ["calibration"] * 6 + ["held-out"] * 4
    # the calibration ran the configured judges only (S1_2, S3, S4's two steps, S1_1: 5 calls per item), the
    # held-out items only the team (S1_1, S4's two steps: 3 calls per item)
    assert sum(i.calls for i in found.calibration) == 6 * 5 and sum(i.calls for i in found.held_out) == 4 * 3
    assert set(found.team_graph.agents) == {"s1_no_ref", "s4_key_points", "s4_verifier"}
    assert found.test is not None and found.test.kendall == pytest.approx(1.0)
    assert [i.score for i in found.held_out] == [float(HUMAN[i]) for i in range(10) if i not in chosen]
    payload = json.loads(json.dumps(found.to_json()))
    assert payload["team"] == ["S1_1", "S4"] and payload["test"]["n"] == 4
    # every team of 2+ of the 4 judges (11) that holds an S1 variant: all but (S3, S4)
    assert len(payload["candidates"]) == len(found.selection.candidates) == 10

    again = await acalibrate("sejury", items, config=config, model=ScriptedModel(respond=item_scored), store=db)
    assert all(i.reused for i in [*again.calibration, *again.held_out])  # the same job: nothing is paid twice
    assert again.team == found.team


async def test_calibration_refuses_missing_labels_and_unknown_judges(tmp_path: Path) -> None:
    items = labelled(tmp_path)
    model = ScriptedModel(respond=item_scored)
    with pytest.raises(ConfigError, match=r"line 1: no human label 'grade'"):
        await acalibrate("sejury", items, human_key="grade", model=model, store=f"sqlite:///{tmp_path / 'a.db'}")
    with pytest.raises(ConfigError, match=r"judge\(s\) \['S7'\] that graph 'sejury' does not have"):
        await acalibrate(
            "sejury",
            items,
            config=JuryConfig(judges=("S1_1", "S7"), team_must_contain_any_of=None),
            model=model,
            store=f"sqlite:///{tmp_path / 'a.db'}",
        )
    assert model.calls == []
    bad = [Item(line=1, inputs=items[0].inputs, extra={"human": "excellent"}), *items[1:]]
    with pytest.raises(ConfigError, match="line 1: human label 'human' is 'excellent'; expected a number"):
        await acalibrate("sejury", bad, model=model, store=f"sqlite:///{tmp_path / 'a.db'}")
    with Store(f"sqlite:///{tmp_path / 'a.db'}") as store:
        assert store.list_runs() == []


# --- selection edge cases the vectors do not reach -----------------------------------------------------------------


def candidate(team: tuple[str, ...], score: float) -> Candidate:
    return Candidate(team, [], [], Correlations(score, score, score), score)


def test_nan_policies() -> None:
    """A constant ensemble's NaN: first in line, the reference's ``max`` keeps it; counted as -inf, it loses."""
    teams = [candidate(("A", "B"), math.nan), candidate(("A", "C"), 0.2), candidate(("B", "C"), math.nan)]
    assert pick(teams, "reference").team == ("A", "B")
    assert pick(teams, "neg_inf").team == ("A", "C")
    later = [candidate(("A", "B"), 0.1), candidate(("A", "C"), math.nan)]
    assert pick(later, "reference").team == ("A", "B") == pick(later, "neg_inf").team
    all_nan = [candidate(("A", "B"), math.nan), candidate(("A", "C"), math.nan)]
    assert pick(all_nan, "neg_inf").team == ("A", "B")


def test_a_constant_team_is_never_chosen_over_an_informative_one() -> None:
    human = [1, 2, 3, 4]
    scores = {"S1": [50, 50, 50, 50], "S2": [50, 50, 50, 50], "S3": [0, 25, 50, 100]}
    config = JuryConfig(judges=("S1", "S2", "S3"), team_must_contain_any_of=("S1",), scale="to_1_5")
    chosen = select_team(human, scores, config)
    assert math.isnan(chosen.candidates[0].score)  # (S1, S2): constant
    assert chosen.team == ("S1", "S3")
    reference = select_team(human, scores, config.model_copy(update={"nan_policy": "reference"}))
    assert reference.team == ("S1", "S2") and reference.to_json()["score"] is None


def test_the_pictures_axis_labels_never_run_together() -> None:
    """Over the whole -1..1 range a label per tenth was 18 px apart: "-1.0-0.9-0.8" read as one string."""
    from agentmesh.viz.jury import jury_svg

    human = [1, 2, 3, 4]
    scores = {"S1": [0, 25, 50, 100], "S2": [100, 50, 25, 0], "S3": [0, 30, 50, 90]}
    config = JuryConfig(judges=("S1", "S2", "S3"), team_must_contain_any_of=("S1",), scale="to_1_5")
    svg = jury_svg("picture", select_team(human, scores, config), None, 0)
    labels = [(float(x), text) for x, text in re.findall(r'<text x="([\d.]+)" y="84"[^>]*>(-?\d\.\d)</text>', svg)]
    assert labels[0][1] == "-1.0" and labels[-1][1] == "1.0" and "0.0" in [t for _, t in labels]
    assert all(b - a >= 30 for (a, _), (b, _) in itertools.pairwise(labels))
    assert svg.count('stroke="#e5e7eb"') == 20  # a grid line every tenth still, the zero line apart


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"judges": ("S1", "S1")}, "judges must be distinct"),
        ({"judges": ("S1",)}, "cannot form a team of at least 2"),
        ({"judges": ("S1", "S2"), "team_must_contain_any_of": ("S9",)}, "names ['S9'], none of which is among judges"),
        ({"selection_aggregation": "median"}, "selection_aggregation"),
    ],
)
def test_config_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        JuryConfig.model_validate(kwargs)


def test_a_team_needs_only_one_of_the_required_judges() -> None:
    config = JuryConfig(judges=("S1_1", "S3", "S4"))  # the default asks for S1_1 or S1_2
    teams = [c.team for c in select_team([1, 2, 3], {j: [0, 50, 100] for j in config.judges}, config).candidates]
    assert teams == [("S1_1", "S3"), ("S1_1", "S4"), ("S1_1", "S3", "S4")]


def test_profiles_and_split_errors() -> None:
    assert JuryConfig.profile("apr").final_aggregation == "binary"
    assert "S5" not in JuryConfig.profile("summarization").judges
    assert JuryConfig.profile("v1").team_must_contain_any_of is None
    with pytest.raises(ValueError, match="unknown SE-Jury profile 'hs'"):
        JuryConfig.profile("hs")
    with pytest.raises(ValueError, match="cannot draw 20 calibration item"):
        calibration_split(10, 20)
    with pytest.raises(ValueError, match=r"judge\(s\) \['S2'\]"):
        select_team([1, 2], {"S1": [0, 100]}, JuryConfig(judges=("S1", "S2"), team_must_contain_any_of=None))


# --- the command line ----------------------------------------------------------------------------------------------


def test_optimize_calibrates_a_jury_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    @register_provider("jurytest")
    def _factory(ref: Any, limits: Any, options: Any) -> ScriptedModel:
        return ScriptedModel(respond=item_scored)

    labelled(tmp_path)  # writes labelled.jsonl
    out = tmp_path / "team.yaml"
    monkeypatch.setenv("COLUMNS", "160")
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    args = ["optimize", "sejury", "--data", str(tmp_path / "labelled.jsonl"), "--model", "jurytest:x", "--db", db]
    code, stdout, stderr = run_cli([*args, "--calibration-size", "6", "--out", str(out)], capsys, monkeypatch)
    assert code == 0, stderr
    assert "team: S1_1 + S4" in stdout
    assert re.search(r"on 4 held-out items: Kendall τ 1\.000, Spearman ρ 1\.000", stdout)
    chosen = load_graph(out)
    assert set(chosen.agents) == {"s1_no_ref", "s4_key_points", "s4_verifier"}
    svg = out.with_suffix(".svg").read_text()
    assert svg.startswith("<svg") and "S1_1 + S4" in svg and "S5 alone" in svg

    # the chosen team scores new items as a graph of its own
    code, stdout, stderr = run_cli(
        [
            "run",
            str(out),
            "-i",
            "query=q",
            "-i",
            "artifact=code ITEM-2",
            "-i",
            "reference=r",
            "--model",
            "jurytest:x",
            "--db",
            db,
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, stderr
    assert "4" in stdout  # item 2's label

    code, _, stderr = run_cli([*args, "--top-k", "2"], capsys, monkeypatch)
    assert code == 2 and "not --top-k" in stderr
    # fewer labelled items than --calibration-size: all calibrate, and the missing held-out check is explained
    code, stdout, stderr = run_cli([*args, "--out", str(tmp_path / "all.yaml")], capsys, monkeypatch)
    assert code == 0, stderr
    assert "no held-out check: all 10 labelled items calibrated" in " ".join(stdout.split())
    code, _, stderr = run_cli([*args, "--human-key", "grade"], capsys, monkeypatch)
    said = " ".join(stderr.split())
    assert code == 2 and "unknown input(s) human" in said  # the label is not where --human-key says
    assert "the human label is read from the field 'grade' (--human-key)" in said  # and says which field it read
    extra = tmp_path / "extra.jsonl"  # a line with its label and a field the graph lacks: no word on --human-key
    extra.write_text(json.dumps({"query": "q", "artifact": "a", "reference": "r", "human": 3, "model": "m"}) + "\n")
    code, _, stderr = run_cli(["optimize", "sejury", "--data", str(extra), *args[4:]], capsys, monkeypatch)
    assert code == 2 and "unknown input(s) model" in " ".join(stderr.split()) and "--human-key" not in stderr
    one = tmp_path / "one.jsonl"  # too few labelled items: the error names the file that has too few
    one.write_text(json.dumps({"query": "q", "artifact": "a", "reference": "r", "human": 3}) + "\n")
    code, _, stderr = run_cli(["optimize", "sejury", "--data", str(one), *args[4:]], capsys, monkeypatch)
    assert code == 2 and f"{one}: calibration needs at least 2 labelled items, got 1" in " ".join(stderr.split())

    # a bad label is named with its file (an error saying "line 3" alone did not say of which), before any run
    lines = (tmp_path / "labelled.jsonl").read_text().splitlines()
    for n, (label, problem) in enumerate(
        [('"good"', "is 'good'; expected a number"), ("NaN", "is nan; expected a finite number")]
    ):
        bad = tmp_path / f"bad{n}.jsonl"
        third = json.dumps({**json.loads(lines[2]), "human": "LABEL"}).replace('"LABEL"', label)
        bad.write_text("\n".join([*lines[:2], third, *lines[3:]]) + "\n")
        code, _, stderr = run_cli(["optimize", "sejury", "--data", str(bad), *args[4:]], capsys, monkeypatch)
        assert code == 2 and f"bad{n}.jsonl:3: human label 'human' {problem}" in " ".join(stderr.split())

    # judges that cannot score a line (S5 on a summary) are refused by file:line before any run; each item's run
    # was stored failed with that message
    summary = tmp_path / "summary.jsonl"
    summary.write_text("\n".join([*lines[:1], json.dumps({**json.loads(lines[1]), "task": "summary"}), *lines[2:]]))
    code, _, stderr = run_cli(["optimize", "sejury", "--data", str(summary), *args[4:]], capsys, monkeypatch)
    assert code == 2 and "summary.jsonl:2: sejury: judge(s) ['S5'] do not score summaries" in " ".join(stderr.split())
    with Store(db) as store:
        assert all(r.status == RunStatus.SUCCEEDED for r in store.list_runs(limit=1000))


def test_the_command_line_offers_every_profile() -> None:
    from agentmesh.cli.optimize import Profile
    from agentmesh.systems.sejury import PROFILES

    assert {p.value for p in Profile} == set(PROFILES)


def test_the_scorers_read_a_score_as_the_release_does_without_clipping() -> None:
    """sejury.md §3: the first ``(\\d+)\\s*[END]`` read as an int, 0 when nothing matches; "a stricter parser changes
    results". The shared card clipped to 0..100, so a judge's "150 [END]" scored 100 (5 on the human scale, not 7)."""
    from agentmesh.parsers.registry import parse
    from agentmesh.spec.loader import load_agent

    card = load_agent(Path(agentmesh.__file__).parent.parent / "agents" / "sejury" / "scorer.yaml")
    assert card.parser is not None
    assert [parse(card.parser, text).value for text in ("150 [END] overshoots", "85/100 [END]", "no score")] == [
        150,
        100,
        0,
    ]
