"""``agentmesh run <jury graph> --input-file labelled.jsonl``: the held-out labelled lines of an SE-Jury calibration
scored through a batch. Their human label (``human``, the field ``optimize --human-key`` reads by default) was
refused as an unknown input; it is kept aside as a gold answer is, checked before any run, given per item in
``--json`` and compared with the jury's scores in the summary, in the figures of ``optimize``'s held-out check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.messages import CallContext
from agentmesh.models.registry import register_provider
from agentmesh.runtime.arguments import resolve_graph
from agentmesh.spec.loader import dump_graph
from agentmesh.store import Store
from agentmesh.systems.sejury import JuryConfig
from agentmesh.systems.sejury.jury import team_graph
from tests._cli import run_cli
from tests.unit.test_sejury import HUMAN, item_scored


@register_provider("jurybatch")
def _jury(ref: Any, limits: Any, options: Any) -> ScriptedModel:
    return ScriptedModel(respond=item_scored)


def _line(k: int, **more: Any) -> str:
    return json.dumps({"query": f"task {k}", "artifact": f"code ITEM-{k}", "reference": "r", **more}) + "\n"


def test_a_team_graph_scores_labelled_lines_and_compares_them_with_the_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = JuryConfig.profile("conala")
    team = tmp_path / "sejury_team.yaml"  # as optimize writes it: the team S1_1 + S4 (they track the labels)
    chosen = team_graph(
        resolve_graph("sejury"), ["S1_1", "S4"], scale=config.scale, aggregation=config.final_aggregation
    )
    team.write_text(dump_graph(chosen))
    data = tmp_path / "labelled.jsonl"
    data.write_text("".join(_line(k, human=HUMAN[k]) for k in range(4)) + _line(4))  # the last one unlabelled
    monkeypatch.setenv("COLUMNS", "200")
    args = ["run", str(team), "--input-file", str(data), "--model", "jurybatch:x"]
    args += ["--db", f"sqlite:///{tmp_path / 'runs.db'}"]

    code, stdout, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 0, stderr
    said = " ".join(stdout.split())
    assert (
        "agreement with the human labels on 4 labelled items: Kendall τ 1.000, Spearman ρ 1.000, Pearson r 1.000"
        in said
    )

    code, stdout, stderr = run_cli([*args, "--json"], capsys, monkeypatch)
    assert code == 0, stderr
    outcomes = json.loads(stdout)
    assert [o["human"] for o in outcomes] == [*HUMAN[:4], None]
    assert [o["result"]["answer"] for o in outcomes] == HUMAN[:5]  # the team's scores, the labels kept out
    assert all("human" not in o["inputs"] for o in outcomes)

    # a label that is not a number is refused by file and line before any run, as a calibration refuses it
    data.write_text(_line(0, human=3) + _line(1, human="good"))
    code, _, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 2 and "labelled.jsonl:2: human label 'human' is 'good'; expected a number" in " ".join(
        stderr.split()
    )


class Flaky:
    """:func:`item_scored`, but every call on ITEM-1 fails while :attr:`down` is set."""

    def __init__(self) -> None:
        self.down = True

    def __call__(self, request: ModelRequest, context: CallContext) -> str:
        if self.down and "ITEM-1" in request.messages[-1].content:
            raise RuntimeError("the model server went away")
        return item_scored(request, context)


def test_resume_batch_of_labelled_lines_reads_them_again_and_scores_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``resume --batch`` reads the batch's file again for lines with no run: it must keep the labels aside as the
    batch did (it refused them as unknown inputs), and score the resumed runs with the labels they were tagged
    with."""
    flaky = Flaky()

    @register_provider("juryflaky")
    def _factory(ref: Any, limits: Any, options: Any) -> ScriptedModel:
        return ScriptedModel(respond=flaky)

    data = tmp_path / "labelled.jsonl"
    data.write_text("".join(_line(k, human=HUMAN[k]) for k in range(3)))
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    monkeypatch.setenv("COLUMNS", "200")
    args = ["run", "sejury", "--input-file", str(data), "--model", "juryflaky:x", "--db", db, "--json"]
    code, stdout, _ = run_cli(args, capsys, monkeypatch)
    outcomes = json.loads(stdout)
    assert code == 1 and [o["status"] for o in outcomes] == ["succeeded", "failed", "succeeded"]
    with Store(db) as store:  # line 3's run gone: resume --batch starts the line again from the file
        store.delete_runs([outcomes[2]["run_id"]], force=True)
    flaky.down = False
    code, stdout, stderr = run_cli(["resume", "--batch", outcomes[0]["batch"], "--db", db], capsys, monkeypatch)
    assert code == 0, stderr
    said = " ".join(stdout.split())
    assert "agreement with the human labels on 2 labelled items: Kendall τ 1.000, Spearman ρ 1.000" in said, said
