"""The command line as the README shows it, where a new user found it print what it should not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests._cli import run_cli

PASSWORD = "pw-Hunter2-secret"


@pytest.mark.parametrize("as_json", [False, True])
def test_models_never_prints_back_a_password_written_in_a_server_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    """`agentmesh models` refused such a reference with its error masked, but its table's first column showed the
    reference as typed, password and all (README: "a server URL with a user or password in it is refused")."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    ref = f"openai:qwen@http://lab:{PASSWORD}@10.0.0.5:8000/v1"
    code, out, err = run_cli(["models", ref, *(["--json"] if as_json else [])], capsys, monkeypatch)
    assert code == 0
    assert PASSWORD not in out + err
    assert "puts a user name or password in the server URL" in out
    if as_json:
        (row,) = json.loads(out)
        assert row["reference"] == "openai:qwen@http://lab:[redacted]@10.0.0.5:8000/v1"
