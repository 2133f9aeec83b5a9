"""What the job commands (``optimize`` on DyLAN and SE-Jury graphs, ``calibrate``) share besides their options
(:mod:`agentmesh.cli._job`): how their ``--out`` is named when not given, and how a failed item is said."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentmesh.cli._job import out_file, print_failures
from agentmesh.errors import ConfigError
from agentmesh.optimize.job import ItemResult
from agentmesh.systems.magicore.calibration import CalibratedItem
from agentmesh.systems.sejury.jury import ScoredItem


def test_the_default_out_is_named_after_the_graph_file_else_the_built_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy of a shipped graph keeps the shipped one's name: its job must write beside it under the copy's own
    file name, not over the file the shipped graph's job writes."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_copy.yaml").write_text("name: dylan_mmlu\n")
    assert out_file(None, "my_copy.yaml", "dylan_mmlu", "_top2.yaml") == Path("my_copy_top2.yaml")
    assert out_file(None, "magicore", "magicore", "_calibrated.yaml") == Path("magicore_calibrated.yaml")
    given = tmp_path / "team.yaml"
    assert out_file(given, "my_copy.yaml", "sejury", "_team.yaml") == given
    missing = tmp_path / "nowhere" / "team.yaml"
    with pytest.raises(ConfigError) as caught:  # checked as --out, before any run
        out_file(missing, "sejury", "sejury", "_team.yaml")
    assert str(caught.value) == f"--out {missing}: folder {missing.parent} does not exist"


def test_a_failed_item_names_its_line_run_and_error_after_every_job(capsys: pytest.CaptureFixture[str]) -> None:
    print_failures(
        [
            ItemResult(line=3, run_id="r1", error="model said [no]"),  # optimize (DyLAN)
            ScoredItem(line=5, human=1.0, run_id="r2", error="timed out"),  # optimize (SE-Jury)
            CalibratedItem(line=7, run_id="r3", error="no reward"),  # calibrate
            ItemResult(line=9, run_id=None, error="input 'x' is missing"),  # refused before its run was stored
        ]
    )
    said = capsys.readouterr().err.splitlines()
    assert said[:4] == [
        "line 3 failed (run r1): model said [no]",  # the error's brackets are text, not markup
        "line 5 failed (run r2): timed out",
        "line 7 failed (run r3): no reward",
        "line 9 failed (no run stored): input 'x' is missing",  # it said "(run None)"
    ]
    # the runs are stored, and the same command resumes them: it was not said (a server down failed them all)
    assert " ".join(" ".join(said[4:]).split()) == (
        "once the cause is fixed, run the same command again: finished items are kept and the failed runs resume "
        "without repeating a finished call"
    )


def test_no_retry_is_offered_when_no_failed_item_has_a_stored_run(capsys: pytest.CaptureFixture[str]) -> None:
    print_failures([ItemResult(line=9, run_id=None, error="input 'x' is missing")])
    assert capsys.readouterr().err.splitlines() == ["line 9 failed (no run stored): input 'x' is missing"]
