"""Running the ``agentmesh`` command line in-process from tests, through its real entry point."""

from __future__ import annotations

import sys

import pytest

from agentmesh.cli import main


def run_cli(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    """``agentmesh <args>`` via :func:`agentmesh.cli.main`: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["agentmesh", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
