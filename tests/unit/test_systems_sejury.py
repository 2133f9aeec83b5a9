"""``agentmesh optimize`` on an SE-Jury graph, as a user meets it: what the summary says about judge replies
nobody could read, and about a held-out check too small to correlate. Scripted judges whose scores are chosen per
item, so that every figure is known by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.messages import CallContext
from agentmesh.models.registry import register_provider
from tests._cli import run_cli

#: Each artifact's raw score from every judge, and its human label: every judge ranks the items as people do.
RAW = {"ART1": 95, "ART2": 10, "ART3": 30, "ART4": 80}
HUMAN = {"ART1": 5, "ART2": 1, "ART3": 2, "ART4": 4}


def _judges(request: ModelRequest, context: CallContext) -> str:
    """Every judge gives the artifact's raw score, but S3 (the equivalence judge) writes no ``NN [END]`` on ART3."""
    prompt = "\n".join(m.content for m in request.messages)
    if context.agent == "s4_key_points":
        return "1. sums the list"
    if context.agent == "s5_tests":
        return "assert f([1, 2]) == 3"
    found = re.search(r"ART\d", prompt)
    assert found is not None, prompt
    if context.agent == "s3_equivalence" and found.group() == "ART3":
        return "I cannot tell whether they are equivalent."
    return f"{RAW[found.group()]} [END] as judged"


@register_provider("qa_jury")
def _jury(ref: Any, limits: Any, options: Any) -> ScriptedModel:
    return ScriptedModel(respond=_judges)


def _labelled(path: Path) -> Path:
    lines = [
        {"query": f"Sum a list ({art}).", "artifact": f"def f(x): ...  # {art}", "reference": "def f(x): return sum(x)"}
        | {"human": HUMAN[art]}
        for art in RAW
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_unparsed_judge_replies_and_a_held_out_check_too_small_to_correlate_are_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four labelled items, three drawn for calibration (seed 12345 draws lines 4, 3, 1), one held out.

    S3's reply on line 3 has no score: it counts 0 (the release's rule), so S3 alone maps to 1 where the human said
    2. The table showed the teams' figures with nothing to say that one was made of an unreadable reply (it was in
    --json only); and with one held-out item the promised held-out check was simply missing from the output."""
    monkeypatch.setenv("COLUMNS", "200")
    data = _labelled(tmp_path / "labelled.jsonl")
    args = ["optimize", "sejury", "--data", str(data), "--model", "qa_jury:x", "--calibration-size", "3"]
    args += ["--db", f"sqlite:///{tmp_path / 'runs.db'}", "--out", str(tmp_path / "team.yaml")]

    code, stdout, stderr = run_cli([*args, "--json"], capsys, monkeypatch)
    assert code == 0, stderr
    found = json.loads(stdout)
    assert [i["line"] for i in found["calibration_items"]] == [4, 3, 1]
    assert [(i["line"], i["unparsed"]) for i in found["calibration_items"]] == [(4, []), (3, ["S3"]), (1, [])]
    assert found["per_judge"]["S3"] == [4, 1, 5]  # 80 -> 4.2 -> 4; 0 -> 1; 95 -> 4.8 -> 5
    assert [i["line"] for i in found["held_out_items"]] == [2] and found["test"] is None

    code, stdout, stderr = run_cli(args, capsys, monkeypatch)  # every run reused
    assert code == 0, stderr
    said = " ".join(stdout.split())
    assert "unparsed replies on the calibration items, scored 0 as in the release: S3 on 1 of 3 (line 3)" in said
    assert "no held-out check: 1 of 1 held-out item(s) scored; a correlation needs at least 2" in said


def test_calibration_items_with_one_human_label_are_refused_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every correlation with a constant label is undefined: every team scored n/a, the first enumerated was
    written out as "the team", and the command said only "46 teams tie at the top" after running every judge."""
    data = tmp_path / "labelled.jsonl"
    _labelled(data)
    data.write_text(data.read_text().replace('"human": 5', '"human": 3').replace('"human": 1', '"human": 3'))
    data.write_text(data.read_text().replace('"human": 2', '"human": 3').replace('"human": 4', '"human": 3'))
    db = tmp_path / "runs.db"
    args = ["optimize", "sejury", "--data", str(data), "--model", "qa_jury:x", "--db", f"sqlite:///{db}"]
    code, stdout, stderr = run_cli([*args, "--out", str(tmp_path / "team.yaml")], capsys, monkeypatch)
    said = " ".join(stderr.split())
    assert code == 2, stdout
    assert "the 4 calibration items (lines 1, 2, 3, 4) all have the human label 3" in said
    assert not db.exists() and not (tmp_path / "team.yaml").exists()


class _FailsOnArt1:
    def __call__(self, request: ModelRequest, context: CallContext) -> str:
        if "ART1" in request.messages[-1].content:
            raise RuntimeError("the model server went away")
        return _judges(request, context)


@register_provider("qa_jury_fails")
def _jury_fails(ref: Any, limits: Any, options: Any) -> ScriptedModel:
    return ScriptedModel(respond=_FailsOnArt1())


def test_a_calibration_left_with_one_label_by_failed_items_says_no_team_was_chosen_on_evidence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Labels 5, 3, 3 differ, but the item labelled 5 fails: the two scored items both say 3, every team scores n/a,
    and the first enumerated team is kept. The summary said "46 teams tie at the top"; now it says why."""
    monkeypatch.setenv("COLUMNS", "250")
    data = tmp_path / "labelled.jsonl"
    _labelled(data)
    lines = data.read_text().splitlines()[:3]
    data.write_text("\n".join(lines).replace('"human": 1', '"human": 3').replace('"human": 2', '"human": 3') + "\n")
    args = ["optimize", "sejury", "--data", str(data), "--model", "qa_jury_fails:x"]
    args += ["--db", f"sqlite:///{tmp_path / 'runs.db'}", "--out", str(tmp_path / "team.yaml")]
    code, stdout, stderr = run_cli(args, capsys, monkeypatch)
    said = " ".join(stdout.split())
    assert code == 1, stderr
    assert "line 1 failed" in " ".join(stderr.split())
    assert (
        "no team's agreement with the humans could be measured (the 2 scored calibration items all have the human "
        "label 3): the team below is the first enumerated, not one chosen on evidence"
    ) in said
    assert "teams tie at the top" not in said


def test_a_team_graph_describes_the_verdict_it_computes() -> None:
    """The apr profile's team graph maps each judge to 0-1 and votes 0/1, but its verdict node still said "Each
    judge's score on the 1-5 scale (rounded per judge), the team's mean, rounded": the file a user reads to know
    what the team computes said what it does not."""
    import agentmesh
    from agentmesh.systems.sejury import JuryConfig
    from agentmesh.systems.sejury.jury import team_graph

    shipped = agentmesh.resolve_graph("sejury")
    apr = JuryConfig.profile("apr")
    described = team_graph(shipped, ["S1_1", "S3"], scale=apr.scale, aggregation=apr.final_aggregation)
    text = described.nodes["jury"].description
    assert "0-1 scale (raw/100)" in text and "1 above 0.5, else 0" in text and "1-5" not in text
    conala = JuryConfig.profile("conala")
    same = team_graph(shipped, ["S1_1", "S3"], scale=conala.scale, aggregation=conala.final_aggregation)
    assert same.nodes["jury"].description == shipped.nodes["jury"].description


def test_the_verdicts_text_names_the_judges_whose_reply_held_no_score() -> None:
    """With the embedded model most judges write no ``NN [END]``: the run's reply read "1 (mean 1.33 of S1_1 1,
    S1_2 1, ...)", as if those judges had given the lowest grade. S3's reply here has no score: it maps to 1
    (raw 0), and the text says that it was not read."""
    from agentmesh.systems.sejury.functions import sejury_verdict

    outputs = {
        "judges": {
            "answers": [
                {"agent": "s1_no_ref", "value": 80, "ok": True},
                {"agent": "s3_equivalence", "value": 0, "ok": False},
            ]
        }
    }
    verdict = sejury_verdict(outputs, {}, judges={"S1_1": "s1_no_ref", "S3": "s3_equivalence"})
    assert verdict["scaled"] == {"S1_1": 4, "S3": 1} and verdict["answer"] == 2  # mean 2.5, half to even
    assert verdict["unparsed"] == ["S3"]
    assert verdict["text"] == "2 (mean 2.5 of S1_1 4, S3 1; no score in the reply of S3: scored 0, as in the release)"


def test_a_held_out_check_with_one_label_says_why_it_is_n_a(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--calibration-size 2 draws lines 4 and 3 (labels 4 and 2); lines 1 and 2, held out, are both labelled 3. The
    held-out line read "Kendall τ n/a, Spearman ρ n/a, Pearson r n/a" with nothing to say why."""
    monkeypatch.setenv("COLUMNS", "250")
    data = _labelled(tmp_path / "labelled.jsonl")
    data.write_text(data.read_text().replace('"human": 5', '"human": 3').replace('"human": 1', '"human": 3'))
    args = ["optimize", "sejury", "--data", str(data), "--model", "qa_jury:x", "--calibration-size", "2"]
    args += ["--db", f"sqlite:///{tmp_path / 'runs.db'}", "--out", str(tmp_path / "team.yaml")]
    code, stdout, stderr = run_cli(args, capsys, monkeypatch)
    said = " ".join(stdout.split())
    assert code == 0, stderr
    assert (
        "on 2 held-out items: Kendall τ n/a, Spearman ρ n/a, Pearson r n/a (n/a: every human label is 3, so there is "
        "nothing to correlate)"
    ) in said
