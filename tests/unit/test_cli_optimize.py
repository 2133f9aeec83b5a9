"""``agentmesh optimize`` as printed: what the command says about a job, beyond what its result holds (the job
itself is :mod:`tests.unit.test_optimize`'s and :mod:`tests.unit.test_dylan_code`'s)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.messages import CallContext
from agentmesh.models.registry import register_provider
from agentmesh.spec.loader import dump_graph
from tests._cli import run_cli
from tests.unit.test_dylan_code import BROKEN, PROMPT, STYLES, WRITERS, Team, graph
from tests.unit.test_sejury import HUMAN, item_scored

#: The docstring of the items whose final code never runs: no agent of the last layer gives the final answer.
SHARED = "Return the sum of a and b."


class ByItem:
    """The DyLAN code team, writing runnable code in every layer on most items, but code that cannot even be parsed
    after the first layer on the items whose prompt has :data:`SHARED`: their final answer is a first-layer
    implementation, so the last layer's credit is shared by all of its agents (dylan.md §4.4)."""

    def __init__(self) -> None:
        self.fine = Team(lambda agent, layer: STYLES[WRITERS.index(agent)])
        self.broken = Team(lambda agent, layer: BROKEN if layer > 1 else STYLES[WRITERS.index(agent)])

    def __call__(self, request: ModelRequest, context: CallContext) -> str:
        team = self.broken if SHARED in request.messages[-1].content else self.fine
        return team(request, context)


@register_provider("sharedcredit")
def _shared_credit(ref: Any, limits: Any, options: Any) -> ScriptedModel:
    return ScriptedModel(respond=ByItem())


def test_optimize_names_the_items_whose_credit_went_to_the_whole_last_layer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "code.yaml").write_text(dump_graph(graph(rounds=2, ranker=None)))
    prompts = [PROMPT.replace("Return a + b.", SHARED), PROMPT, PROMPT.replace("Return a + b.", SHARED)]
    record = {"entry_point": "add", "test": "", "canonical_solution": ""}
    data = tmp_path / "humaneval.jsonl"
    data.write_text(
        "".join(json.dumps({"task_id": f"T/{i}", "prompt": p, **record}) + "\n" for i, p in enumerate(prompts))
    )
    monkeypatch.setenv("COLUMNS", "200")
    args = ["optimize", str(tmp_path / "code.yaml"), "--data", str(data), "--top-k", "2", "--model", "sharedcredit:x"]
    args += ["--db", f"sqlite:///{tmp_path / 'runs.db'}", "--out", str(tmp_path / "best.yaml")]

    code, stdout, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 0, stderr
    said = " ".join(stdout.split())
    assert (
        "on 2 of 3 items no agent of the last layer gave the final answer, so all of them shared its credit "
        "(lines 1, 3)"
    ) in said

    code, stdout, stderr = run_cli([*args, "--json"], capsys, monkeypatch)  # every run reused: the same items
    assert code == 0, stderr
    items = json.loads(stdout)["items"]
    assert [(i["line"], i["shared_credit"]) for i in items] == [(1, True), (2, False), (3, True)]
    assert "shared its credit" not in stdout  # the JSON alone: scripts read it


def test_the_jury_options_on_a_dylan_graph_are_refused_not_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--top-k`` on a jury was refused, but ``--profile`` and the others on a DyLAN graph did nothing, silently."""
    db = tmp_path / "runs.db"
    args = [
        "optimize",
        "dylan_mmlu",
        "--data",
        str(tmp_path / "items.jsonl"),
        "--top-k",
        "2",
        "--db",
        f"sqlite:///{db}",
    ]
    code, _, err = run_cli([*args, "--profile", "apr", "--no-held-out"], capsys, monkeypatch)
    said = " ".join(err.split())
    assert (
        code == 2
        and "--profile, --no-held-out: options of an SE-Jury graph's calibration; graph 'dylan_mmlu' has no jury"
        in said
    ), said
    code, _, err = run_cli([*args, "--calibration-size", "5"], capsys, monkeypatch)
    assert code == 2 and "--calibration-size: options of an SE-Jury" in " ".join(err.split())
    # the defaults written out are given all the same: "--profile conala" passed, as if it applied
    defaults = ["--profile", "conala", "--human-key", "human", "--calibration-size", "20", "--held-out"]
    code, _, err = run_cli([*args, *defaults], capsys, monkeypatch)
    said = " ".join(err.split())
    assert code == 2 and "--profile, --human-key, --calibration-size, --held-out: options of an SE-Jury" in said, said
    assert not db.exists()


def _down(request: ModelRequest, context: CallContext) -> str:
    raise RuntimeError("the model server went away")


@register_provider("serverdown")
def _server_down(ref: Any, limits: Any, options: Any) -> ScriptedModel:
    return ScriptedModel(respond=_down)


def test_optimize_json_gives_the_failed_items_when_every_item_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partly failed job printed its JSON with the failed items; one whose every item failed printed nothing on
    stdout (the error on stderr alone), so a script had no run ids to show or resume."""
    (tmp_path / "code.yaml").write_text(dump_graph(graph(rounds=2, ranker=None)))
    record = {"prompt": PROMPT, "entry_point": "add", "test": "", "canonical_solution": ""}
    data = tmp_path / "humaneval.jsonl"
    data.write_text("".join(json.dumps({"task_id": f"T/{i}", **record}) + "\n" for i in range(2)))
    args = ["optimize", str(tmp_path / "code.yaml"), "--data", str(data), "--top-k", "2", "--model", "serverdown:x"]
    args += ["--db", f"sqlite:///{tmp_path / 'runs.db'}", "--out", str(tmp_path / "best.yaml"), "--json"]

    code, stdout, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 1
    assert "every item failed" in stderr  # the error stays where errors go
    report = json.loads(stdout)
    assert report["team"] == [] and report["optimized_graph"] is None and report["job"]
    assert "every item failed" in report["error"]
    assert [i["line"] for i in report["items"]] == [1, 2]
    assert all(i["run_id"] and "went away" in i["error"] for i in report["items"])
    assert not (tmp_path / "best.yaml").exists()


def test_optimize_json_on_a_jury_gives_the_failed_calibration_items(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SE-Jury's calibration with fewer than 2 items scored ended on its error with nothing on stdout, though DyLAN's
    job whose every item failed prints its JSON: it prints the calibration's document with no team, every item's
    run and error, and the error under 'error'."""
    data = tmp_path / "labelled.jsonl"
    lines = [{"query": f"t {k}", "artifact": f"code ITEM-{k}", "reference": "r", "human": HUMAN[k]} for k in range(3)]
    data.write_text("".join(json.dumps(line) + "\n" for line in lines))
    args = ["optimize", "sejury", "--data", str(data), "--model", "serverdown:x", "--json"]
    args += ["--db", f"sqlite:///{tmp_path / 'runs.db'}", "--out", str(tmp_path / "team.yaml")]

    code, stdout, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 1
    assert "0 of 3 items were scored" in stderr  # the error stays where errors go
    report = json.loads(stdout)
    assert report["team"] == [] and report["team_graph_file"] is None and report["jobs"]
    assert "0 of 3 items were scored" in report["error"]
    assert [i["line"] for i in report["calibration_items"]] == [1, 2, 3]
    assert all(i["run_id"] and "went away" in i["error"] for i in report["calibration_items"])
    assert not (tmp_path / "team.yaml").exists()

    @register_provider("jurycli")
    def _factory(ref: Any, limits: Any, options: Any) -> ScriptedModel:
        return ScriptedModel(respond=item_scored)

    code, stdout, stderr = run_cli([*args[:5], "jurycli:x", *args[6:]], capsys, monkeypatch)
    assert code == 0, stderr
    chosen = json.loads(stdout)
    assert chosen["error"] is None and chosen.keys() == report.keys()  # one shape, failed or not
