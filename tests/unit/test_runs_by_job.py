"""``agentmesh runs --job``: the runs of a job, by the id ``optimize``, ``calibrate`` and ``eval`` print. ``runs
--batch`` answered that id with "no batch", and nothing listed a job's runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentmesh.spec.loader import dump_graph
from tests._cli import run_cli
from tests.unit.test_cli_optimize import _shared_credit  # noqa: F401  (registers the sharedcredit provider)
from tests.unit.test_dylan_code import PROMPT, graph


def _optimize(tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str], mp: pytest.MonkeyPatch) -> str:
    """An ``optimize`` job of 2 items on ``model``; its job id as ``--json`` gives it."""
    (tmp_path / "code.yaml").write_text(dump_graph(graph(rounds=2, ranker=None)))
    data = tmp_path / "humaneval.jsonl"
    record = {"prompt": PROMPT, "entry_point": "add", "test": "", "canonical_solution": ""}
    data.write_text("".join(json.dumps({"task_id": f"T/{i}", **record}) + "\n" for i in range(2)))
    args = ["optimize", str(tmp_path / "code.yaml"), "--data", str(data), "--top-k", "2", "--model", model, "--json"]
    args += ["--db", f"sqlite:///{tmp_path / 'runs.db'}", "--out", str(tmp_path / f"{model[-1]}.yaml")]
    code, stdout, stderr = run_cli(args, capsys, mp)
    assert code == 0, stderr
    return str(json.loads(stdout)["job"])


def test_runs_lists_a_jobs_runs_by_the_id_the_job_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _optimize(tmp_path, "sharedcredit:x", capsys, monkeypatch)
    second = _optimize(tmp_path, "sharedcredit:y", capsys, monkeypatch)  # another model: another job
    assert first != second
    db = ["--db", f"sqlite:///{tmp_path / 'runs.db'}"]

    for given in (first, first[:8]):  # the id, or a unique prefix of it
        code, stdout, stderr = run_cli(["runs", "--job", given, "--json", *db], capsys, monkeypatch)
        assert code == 0, stderr
        listed = json.loads(stdout)
        assert [r["meta"]["optimize"]["job"] for r in listed] == [first, first]
        assert sorted(r["meta"]["optimize"]["line"] for r in listed) == [1, 2]

    code, stdout, stderr = run_cli(["runs", "--job", second, *db], capsys, monkeypatch)
    assert code == 0 and "runs (2)" in stdout, stderr

    # --batch with a job's id: said to be one, with the option that takes it, not a bare "no batch"
    code, _, stderr = run_cli(["runs", "--batch", first, *db], capsys, monkeypatch)
    said = " ".join(stderr.split())
    assert code != 0
    assert (
        f"{first} is a job's id (optimize, calibrate and eval print one), not a batch's: agentmesh runs --job" in said
    )

    code, _, stderr = run_cli(["runs", "--job", "nosuchjob", *db], capsys, monkeypatch)
    assert code != 0 and "no job 'nosuchjob' in sqlite:///" in " ".join(stderr.split())
