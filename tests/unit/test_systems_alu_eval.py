"""``agentmesh eval alu`` on data that gives ALU nothing to forget: retain items only, and no --targets or
--target-set. Every system ran every item and the table measured nothing of unlearning ("targets: the forget items'
0"); it is refused before any run, as ``--mcq`` without targets already is."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from agentmesh.models import ScriptedModel
from agentmesh.models.registry import register_provider
from agentmesh.systems.alu.data import demo_qa_items, demo_targets
from tests._cli import run_cli


def test_retain_items_without_targets_are_refused_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    retain = [dataclasses.asdict(i) for i in demo_qa_items() if i.split == "retain"]
    data = tmp_path / "retain.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in retain), encoding="utf-8")
    db = tmp_path / "runs.db"
    args = ["eval", "alu", "--data", str(data), "--baselines", "vanilla", "--model", "scripted:none.yaml"]
    code, stdout, stderr = run_cli([*args, "--db", f"sqlite:///{db}"], capsys, monkeypatch)
    said = " ".join(stderr.split())
    assert code == 2, stdout
    assert f"--data {data}: no forget item names a target, so ALU would have nothing to forget" in said
    assert not db.exists()


def test_retain_items_with_a_targets_file_still_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With targets given, retain items alone are a fair question (does ALU leave unrelated answers alone?)."""
    retain = [dataclasses.asdict(i) for i in demo_qa_items() if i.split == "retain"]
    data = tmp_path / "retain.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in retain), encoding="utf-8")
    targets = tmp_path / "targets.jsonl"
    targets.write_text("".join(json.dumps(t.to_json()) + "\n" for t in demo_targets()), encoding="utf-8")
    script = tmp_path / "answers.yaml"
    script.write_text('default: "I do not know."\n', encoding="utf-8")
    args = ["eval", "alu", "--data", str(data), "--targets", str(targets), "--model", f"scripted:{script}"]
    code, stdout, stderr = run_cli([*args, "--db", f"sqlite:///{tmp_path / 'runs.db'}", "--json"], capsys, monkeypatch)
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["targets"]["count"] == 3
    assert report["systems"]["alu"]["table"]["retain/none"]["n"] == 4


def test_an_error_about_the_items_says_when_limit_cut_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo file has four retain items after its six forget ones: with --limit 3, many_shot has no shots, and
    the error said the file had no retain items ("add retain items"), which is not so."""
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps(dataclasses.asdict(i)) + "\n" for i in demo_qa_items()), encoding="utf-8")
    args = ["eval", "alu", "--data", str(data), "--attacks", "many_shot:2", "--limit", "3"]
    code, stdout, stderr = run_cli(
        [*args, "--model", "scripted:none.yaml", "--db", f"sqlite:///{tmp_path / 'r.db'}"], capsys, monkeypatch
    )
    said = " ".join(stderr.split())
    assert code == 2, stdout
    assert f"{data} (its first 3 items, --limit 3): attack many_shot:2 draws its shots from the retain items" in said


def test_naming_alu_among_the_baselines_runs_it_once() -> None:
    """The table lists alu beside its baselines, so --baselines alu,vanilla is what a user writes; it was refused
    as "unknown baseline 'alu'"."""
    from agentmesh.systems.alu.compared import parse_systems

    assert parse_systems("alu,vanilla") == ["alu", "vanilla"]
    assert parse_systems("vanilla,alu,icul") == ["alu", "vanilla", "icul"]
    with pytest.raises(ValueError, match="unknown baseline 'Vanilla'"):
        parse_systems("Vanilla")


def _icul_down(request: object, context: object) -> str:
    """Every agent says it does not know, but the ICUL baseline's calls fail (its server is down)."""
    if getattr(context, "agent", None) == "icul":
        raise RuntimeError("icul server down")
    return "I do not know." if getattr(context, "agent", None) != "auditor" else "None"


@register_provider("qa_icul_down")
def _icul_down_provider(ref: Any, limits: Any, options: Any) -> ScriptedModel:
    return ScriptedModel(respond=_icul_down)


def test_a_system_whose_every_run_failed_is_said_to_have_no_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failed runs are left out of the rows; with all of icul's failed, icul vanished from the table, and its line
    under it said "icul: 10 runs (0 reused)" as if it had run."""
    monkeypatch.setenv("COLUMNS", "250")
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps(dataclasses.asdict(i)) + "\n" for i in demo_qa_items()), encoding="utf-8")
    args = ["eval", "alu", "--data", str(data), "--baselines", "icul", "--model", "qa_icul_down:x"]
    code, stdout, stderr = run_cli([*args, "--db", f"sqlite:///{tmp_path / 'r.db'}"], capsys, monkeypatch)
    assert code == 1 and "icul server down" in stderr
    said = " ".join(stdout.split())
    assert "icul: 10 runs (0 reused, 10 failed, so it has no row in the table)" in said
    assert "alu: 10 runs (0 reused)," in said
    assert "│ icul" not in stdout
