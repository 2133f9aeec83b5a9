"""The model files people write by hand -- a scripted model's script and the settings file -- read as UTF-8 with
a clear error when they are not: a Latin-1 file was a ``UnicodeDecodeError`` traceback (``-m scripted:file.yaml``,
``$AGENTMESH_CONFIG``), where a graph file of the same bytes already named the file, the line and the byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentmesh.errors import ConfigError
from agentmesh.models.providers.scripted import ScriptedModel
from agentmesh.models.settings import load_settings


def test_a_scripted_model_file_that_is_not_utf8_names_the_file_line_and_byte(tmp_path: Path) -> None:
    script = tmp_path / "latin1.yaml"
    script.write_bytes("rules:\n  - {prompt: caf\xe9, responses: [x]}\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"{script}:2: not UTF-8 text \(byte 0xe9\); save the file as UTF-8"):
        ScriptedModel.from_yaml(script)
    script.write_bytes("rules:\n  - {prompt: caf\xe9, responses: [x]}\n".encode())
    assert ScriptedModel.from_yaml(script) is not None  # the same text in UTF-8 loads


def test_a_settings_file_that_is_not_utf8_names_the_file_line_and_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.yaml"
    config.write_bytes("aliases:\n  lab: openai:m@http://h:1/v1\n  caf\xe9: local\n".encode("latin-1"))
    monkeypatch.setenv("AGENTMESH_CONFIG", str(config))
    with pytest.raises(ConfigError, match=rf"{config}:3: not UTF-8 text \(byte 0xe9\); save the file as UTF-8"):
        load_settings()
    config.write_bytes(b"aliases:\n  lab: openai:m@http://h:1/v1\n")
    assert "lab" in load_settings().aliases
