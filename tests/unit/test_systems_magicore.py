"""``agentmesh calibrate`` on MAgICoRe with the LLM judges standing in for the reward models, as a user meets it:
the mu and sigma it prints against a hand computation, what it says when some of the rewards are the fallback of a
reply nobody could read (and, when all are, why sigma is 0), and a bad data line named against the user's graph."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests._cli import run_cli

#: Problem P1: two steps, boxed 4; the ORM judge says 80, the PRM judge [0.5, 0.5]: R = 0.8 + 0.25 = 1.05.
#: P2: one step, boxed 6; ORM 60, PRM gives two scores for one step (unreadable; the step counts 0.5): R = 1.1.
#: P3: one step, boxed 8; ORM reply unreadable (0.5), PRM again two for one: R = 0.5 + 0.5 = 1.0.
SCRIPT = r"""
rules:
  - {agent: solver, prompt: 'P1', template: "Step 1: 2+2=4.\nStep 2: done. \\boxed{4}"}
  - {agent: solver, prompt: 'P2', template: "Step 1: 3+3=6. \\boxed{6}"}
  - {agent: solver, template: "Step 1: 4+4=8. \\boxed{8}"}
  - {agent: orm_judge, prompt: 'P1', template: "80 [END]"}
  - {agent: orm_judge, prompt: 'P2', template: "60 [END]"}
  - {agent: orm_judge, template: "a fine solution"}
  - {agent: prm_judge, template: "[0.5, 0.5]"}
"""

#: What SmolLM2 does with the judges (README): no boxed answer, no readable score, R = 0.5 everywhere.
UNREADABLE = """
rules:
  - {agent: solver, template: "The answer is four."}
  - {template: "I think it is good."}
"""


def _problems(path: Path) -> Path:
    path.write_text("".join(json.dumps({"question": f"What is {n}+{n}? P{n - 1}"}) + "\n" for n in (2, 3, 4)))
    return path


def test_calibrate_prints_mu_and_sigma_and_says_which_rewards_are_fallbacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "judges.yaml").write_text(SCRIPT)
    monkeypatch.setenv("COLUMNS", "250")
    args = ["calibrate", "magicore", "--data", str(_problems(tmp_path / "p.jsonl"))]
    args += ["--model", f"scripted:{tmp_path / 'judges.yaml'}", "--db", f"sqlite:///{tmp_path / 'r.db'}"]
    args += ["--out", str(tmp_path / "cal.yaml")]
    code, stdout, stderr = run_cli([*args, "--json"], capsys, monkeypatch)
    assert code == 0, stderr
    found = json.loads(stdout)
    assert [i["R"] for i in found["items"]] == pytest.approx([1.05, 1.1, 1.0])
    assert found["mu"] == pytest.approx(1.05)
    assert found["sigma"] == pytest.approx(math.sqrt((0.05**2 + 0.05**2) / 3))
    assert [(i["orm_unreadable"], i["prm_unreadable"]) for i in found["items"]] == [
        (False, False),
        (False, True),
        (True, True),
    ]

    code, stdout, stderr = run_cli(args, capsys, monkeypatch)  # every run reused
    assert code == 0, stderr
    said = " ".join(stdout.split())
    assert "mu = 1.05, sigma = 0.0408248 over 3 first samples" in said
    assert "an ORM judge reply with no score it could read (counted 0.5): 1 of 3 (line 3)" in said
    assert "a PRM judge reply without one score per step (a missing one counted 0.5): 2 of 3 (lines 2, 3)" in said


def test_rewards_all_equal_because_nothing_could_be_read_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """sigma 0 was refused saying only "all 3 first-sample rewards are 0.5": the reason, that no sample had an
    answer and no judge reply a score, is what the user can act on (a bigger model, reward functions)."""
    (tmp_path / "smol.yaml").write_text(UNREADABLE)
    monkeypatch.setenv("COLUMNS", "250")
    args = ["calibrate", "magicore", "--data", str(_problems(tmp_path / "p.jsonl"))]
    args += ["--model", f"scripted:{tmp_path / 'smol.yaml'}", "--db", f"sqlite:///{tmp_path / 'r.db'}"]
    code, _, stderr = run_cli([*args, "--out", str(tmp_path / "cal.yaml")], capsys, monkeypatch)
    said = " ".join(stderr.split())
    assert code == 1  # the calibration ran and could not calibrate: a failure of the work
    assert "all 3 first-sample rewards are 0.5, so sigma is 0" in said
    assert "no answer the Solver's parser could read, so R is the ORM score alone: 3 of 3 (lines 1, 2, 3)" in said
    assert "an ORM judge reply with no score it could read (counted 0.5): 3 of 3 (lines 1, 2, 3)" in said
    assert "PRM" not in said  # without an answer the PRM takes no part in R
    assert not (tmp_path / "cal.yaml").exists()


def test_a_bad_line_is_named_against_the_graph_the_user_gave(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """It named "graph 'magicore_calibration'", the internal graph the job runs, which the user never gave."""
    data = tmp_path / "p.jsonl"
    data.write_text(json.dumps({"questoin": "What is 2+2?"}) + "\n")
    args = ["calibrate", "magicore", "--data", str(data), "--db", f"sqlite:///{tmp_path / 'r.db'}"]
    code, _, stderr = run_cli(args, capsys, monkeypatch)
    said = " ".join(stderr.split())
    assert code == 2
    assert f"{data}:1: graph 'magicore': missing input 'question'" in said and "magicore_calibration" not in said


def test_a_run_says_how_many_judge_replies_were_counted_neutral(tmp_path: Path) -> None:
    """k = 2: the ORM judge cannot be read on sample 0 (0.5), reads 80 on sample 1; the PRM judge writes no list on
    either (both steps 0.5). Both samples answer 51, so the problem is easy at once and the answer is 51 -- chosen on
    one readable score of four. The stop reason said "easy at once; answer '51'" and nothing of that."""
    from agentmesh.models import ModelRequest, ScriptedModel
    from agentmesh.models.messages import CallContext
    from agentmesh.runtime import run
    from tests.unit.test_magicore_graph import spec

    def respond(request: ModelRequest, context: CallContext) -> str:
        if context.agent == "solver":
            return "Step 1: add.\nStep 2: so \\boxed{51}."
        if context.agent == "orm_judge":
            return "17*3 = 54" if context.call_index == 0 else "80 [END]"
        return "no list here"

    result = run(spec(k=2), {"question": "q"}, model=ScriptedModel(respond=respond), store=f"sqlite:///{tmp_path}/r.db")
    out = result.outputs["magicore"]
    assert out["answer"] == "51"
    assert out["magicore"]["unreadable_judge_replies"] == {"orm": [1, 2], "prm": [2, 2]}
    assert out["stop"].endswith("(judge replies without a readable score, counted 0.5: ORM 1 of 2, PRM 2 of 2)")


@pytest.mark.parametrize(
    "command",
    [
        ["calibrate", "magicore", "--data", "{problems}"],
        ["optimize", "sejury", "--data", "{labelled}"],
    ],
    ids=["magicore", "sejury"],
)
def test_one_item_is_refused_before_the_store_is_opened(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both calibrations need two items at least; they said so after opening the store, and left an empty
    database file behind at --db."""
    (tmp_path / "p.jsonl").write_text(json.dumps({"question": "What is 2+2?"}) + "\n")
    labelled = {"query": "Sum.", "artifact": "def f(x): return sum(x)", "reference": "sum", "human": 4}
    (tmp_path / "l.jsonl").write_text(json.dumps(labelled) + "\n")
    args = [
        a.replace("{problems}", str(tmp_path / "p.jsonl")).replace("{labelled}", str(tmp_path / "l.jsonl"))
        for a in command
    ]
    db = tmp_path / "runs.db"
    code, stdout, stderr = run_cli(
        [*args, "--model", "scripted:none.yaml", "--db", f"sqlite:///{db}"], capsys, monkeypatch
    )
    assert code == 2, stdout
    assert "at least 2" in " ".join(stderr.split()) and "got 1" in stderr
    assert not db.exists()
