"""``-i key=@file`` with a file that is not UTF-8 said "cannot read FILE (UnicodeDecodeError)": neither what is
wrong in it nor what to do. It names the byte, where it is, and says to save the file as UTF-8 (as a bad line of
an --input-file does)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._cli import run_cli


def test_an_input_file_that_is_not_utf8_is_named_with_its_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "latin1.txt").write_bytes("What is 2+2? Caf\xe9".encode("latin-1"))
    db = tmp_path / "runs.db"
    code, _, err = run_cli(
        ["run", "debate", "-i", "question=@latin1.txt", "--db", f"sqlite:///{db}"], capsys, monkeypatch
    )
    said = " ".join(err.split())
    assert code == 2, said
    assert "cannot read latin1.txt (not UTF-8 text: byte 0xe9 at offset 16; save it as UTF-8)" in said, said
    assert not db.exists()
