"""An output file (``agentmesh export -o``, ``report -o``...) whose write fails is not left truncated.

``agentmesh export RUN -o /full/disk/run.json`` said "cannot write ...: No space left on device" and left an empty
run.json, which ``agentmesh import`` then refused as "not valid JSON"; over an earlier export, that export was lost.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from agentmesh.cli._common import write_output
from agentmesh.errors import ConfigError


def _fill_the_disk_halfway(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Path.write_text

    def half(self: Path, text: str, *args: Any, **kwargs: Any) -> int:
        real(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half)


def test_a_failed_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run.json"
    _fill_the_disk_halfway(monkeypatch)
    with pytest.raises(ConfigError, match="No space left on device"):
        write_output(out, '{"run": "x"}')
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_keeps_the_file_it_would_have_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run.json"
    out.write_text('{"run": "earlier"}')
    out.chmod(0o640)
    _fill_the_disk_halfway(monkeypatch)
    with pytest.raises(ConfigError, match="No space left on device"):
        write_output(out, '{"run": "later"}')
    monkeypatch.undo()
    assert out.read_text() == '{"run": "earlier"}' and list(tmp_path.iterdir()) == [out]
    write_output(out, '{"run": "later"}')  # replaced whole, with the mode it had
    assert out.read_text() == '{"run": "later"}' and out.stat().st_mode & 0o777 == 0o640
