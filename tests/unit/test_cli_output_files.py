"""The files commands write (:func:`agentmesh.cli._common.writable` and ``write_output``): one pair of functions for
every command, each keeping what it says. A job command (``optimize``, ``calibrate``) checks its ``--out`` and
``--svg`` before its runs, and a file it then cannot write says the runs are kept; ``graph show``, ``report`` and
``export`` make the file's folder and name the file they could not write."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agentmesh.cli._common import writable, write_output
from agentmesh.errors import ConfigError
from tests._cli import run_cli


def test_writable_refuses_a_directory_and_a_missing_folder_naming_the_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--out .*: is a directory; expected a file name$"):
        writable(tmp_path, "--out")
    missing = tmp_path / "nowhere" / "team.yaml"
    with pytest.raises(ConfigError) as caught:
        writable(missing, "--svg")
    assert str(caught.value) == f"--svg {missing}: folder {missing.parent} does not exist"
    assert writable(tmp_path / "team.yaml", "--out") == tmp_path / "team.yaml"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_writable_refuses_a_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match=r"^--out .*team.yaml: not writable$"):
            writable(folder / "team.yaml", "--out")
    finally:
        folder.chmod(0o700)


def test_write_output_makes_the_folder_and_names_a_file_it_cannot_write(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "graph.svg"
    write_output(deep, "<svg/>")
    assert deep.read_text(encoding="utf-8") == "<svg/>"
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as caught:
        write_output(blocker / "graph.svg", "<svg/>")  # its folder would be a file
    assert str(caught.value).startswith(f"cannot write {blocker / 'graph.svg'}: ")
    assert caught.value.context == {"file": str(blocker / "graph.svg")}


def test_a_job_file_that_cannot_be_written_says_the_runs_are_kept_and_makes_no_folder(tmp_path: Path) -> None:
    """The folder :func:`writable` saw is gone when the job ends: the job's error, not a new folder."""
    gone = tmp_path / "gone" / "team.yaml"
    with pytest.raises(ConfigError) as caught:
        write_output(gone, "nodes: {}", "--out")
    said = str(caught.value)
    assert said.startswith(f"--out {gone}: cannot write it (")
    assert said.endswith(
        "); every run is stored: run the same command again with another --out to write it without repeating a call"
    )
    assert not gone.parent.exists()


def test_calibrate_refuses_an_out_in_a_missing_folder_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {n}+{n}?"}) + "\n" for n in (2, 3)))
    db = tmp_path / "r.db"
    out = tmp_path / "nowhere" / "cal.yaml"
    args = ["calibrate", "magicore", "--data", str(data), "--db", f"sqlite:///{db}", "--out", str(out)]
    code, _, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 2
    assert f"--out {out}: folder {out.parent} does not exist" in " ".join(stderr.split())
    assert not db.exists()  # refused before the store was opened
