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


def test_replay_gives_a_long_answer_on_one_short_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A code answer (dylan_code's, examples/dylan_humaneval.py's) is many lines: `agentmesh replay` printed it
    whole, then whole again as the recorded answer, burying the verdict."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    body = "\n".join(f"    total = total + {i}  # step {i}" for i in range(30))
    code_answer = f"def add(a, b):\n    total = a + b\n{body}\n    return total"
    (tmp_path / "coder.yaml").write_text(
        "rules:\n  - template: |-\n" + "".join(f"      {line}\n" for line in code_answer.splitlines())
    )
    (tmp_path / "one.yaml").write_text(
        "name: one\ninputs:\n  task: {type: string}\nagents:\n  coder: {prompt: '{{ task }}'}\n"
        "nodes:\n  write: {op: call, agent: coder}\n"
    )
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    code, out, err = run_cli(
        ["run", "one.yaml", "-i", "task=add", "-m", f"scripted:{tmp_path / 'coder.yaml'}", "--db", db, "--json"],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    code, out, err = run_cli(["replay", run_id, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    flat = " ".join(out.split())
    assert "identical: 1 call served, 0 made; answer def add(a, b): total = a + b" in flat
    assert "(recorded def add(a, b): total = a + b" in flat and flat.count("…") == 2
    assert "step 29" not in out and len(flat) < 400, out  # the verdict stays a line or two


def test_a_mistyped_input_value_is_echoed_short_and_with_any_key_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-i choices=...` that is not a JSON list was echoed whole in the error: a key pasted there (or into the
    @file it names) reached the terminal and the CI log, and an @file's whole text was printed back."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    key = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd"
    (tmp_path / "answers.yaml").write_text("default: 'The answer is (C).'\n")  # never reached: no call is made
    base = ["run", "dylan_mmlu", "-i", "question=Which planet is largest?", "-m", "scripted:answers.yaml"]
    code, out, err = run_cli([*base, "-i", f"choices={key}"], capsys, monkeypatch)
    assert code == 2
    flat = " ".join(err.split())
    assert key not in out + err and "-i choices='[redacted]': input 'choices'" in flat
    assert "is of type list; expected a JSON list like [1, 2]" in flat

    document = tmp_path / "choices.txt"
    document.write_text("Mars\n" + "Venus, Jupiter, Earth and many more planets\n" * 50)
    code, out, err = run_cli([*base, "-i", f"choices=@{document}"], capsys, monkeypatch)
    assert code == 2
    flat = " ".join(err.split())
    assert "-i choices='Mars Venus, Jupiter, Earth and many more planets Venus, Jup…'" in flat
    assert flat.count("many more planets") == 1
