"""The command line's exit status: 2 when the command as given cannot work, 1 when its work was attempted and
failed (:mod:`agentmesh.cli._exit`).

Every :class:`AgentmeshError` exited 2, so a run whose model server went away mid-way said the same as a mistyped
graph, while a batch with a failed item said 1: a script could not tell "fix the command" from "the work failed,
resume it"."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import agentmesh
from agentmesh.cli._exit import FAILED, USAGE, error_exit_code
from agentmesh.errors import AgentmeshError
from agentmesh.store import Store
from tests._cli import run_cli

#: What each error class agentmesh defines means for the exit status: the test below fails when a new class is
#: added without being placed here (decide, then add it).
EXPECTED: dict[str, int] = {
    # the command as given cannot work
    "ConfigError": USAGE,
    "SpecError": USAGE,
    "CalibrationValueError": USAGE,
    "ScriptError": USAGE,
    "ModelConfigError": USAGE,
    "UnknownProviderError": USAGE,
    "InvalidModelReferenceError": USAGE,
    "MissingAPIKeyError": USAGE,
    "MissingExtraError": USAGE,
    "AuthenticationError": USAGE,
    "ModelNotFoundError": USAGE,
    "StoreError": USAGE,
    "RunNotFoundError": USAGE,
    "BatchNotFoundError": USAGE,
    "JobNotFoundError": USAGE,
    "TargetSetNotFoundError": USAGE,
    "SchemaVersionError": USAGE,
    # the work was attempted and failed
    "AgentmeshError": FAILED,
    "ModelError": FAILED,
    "ServerUnreachableError": FAILED,
    "ModelTimeoutError": FAILED,
    "RateLimitedError": FAILED,
    "ServerError": FAILED,
    "ContextLengthError": FAILED,
    "ModelRequestError": FAILED,
    "MalformedResponseError": FAILED,
    "ScriptExhaustedError": FAILED,
    "ScriptIncompleteError": FAILED,
    "NotRecordedError": FAILED,
    "DatabaseFailedError": FAILED,
    "RunDeletedError": FAILED,
    "RunError": FAILED,
    "ReplayDivergence": FAILED,
    "SandboxError": FAILED,
    "BudgetExhausted": FAILED,
    "EveryItemFailed": FAILED,  # an optimize job none of whose items could be scored
    "CalibrationFailed": FAILED,  # SE-Jury's and MAgICoRe's calibration that could measure nothing
}


def _every_error_class() -> dict[str, type[AgentmeshError]]:
    """Every subclass of :class:`AgentmeshError` defined in agentmesh's modules (all of them imported)."""
    for module in pkgutil.walk_packages(agentmesh.__path__, "agentmesh."):
        if module.name.startswith(("agentmesh.viz", "agentmesh.sandbox._launcher")):
            continue  # (optional drawing libraries; the sandbox's child-side launcher)
        try:
            importlib.import_module(module.name)
        except ImportError:  # an optional extra this environment lacks
            continue
    found: dict[str, type[AgentmeshError]] = {}
    todo: list[type[AgentmeshError]] = [AgentmeshError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("agentmesh"):
            found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found


def test_every_error_class_has_its_exit_status_decided() -> None:
    classes = _every_error_class()
    assert set(classes) == set(EXPECTED), "place each new error class in EXPECTED (and in agentmesh/cli/_exit.py)"
    for name, cls in classes.items():
        exc = cls.__new__(cls)  # (their constructors differ; the status depends on the class only)
        assert error_exit_code(exc) == EXPECTED[name], name


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTMESH_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return f"sqlite:///{tmp_path / 'runs.db'}"


def test_a_run_whose_model_server_is_unreachable_exits_1(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "http://127.0.0.1:9/v1"  # discard port: nothing listens there
    config = tmp_path / "config.yaml"
    config.write_text(f"endpoints:\n  {url}: {{max_retries: 0, timeout_s: 5}}\n")
    args = ["run", "debate", "-i", "question=What is 2*3?", "-m", f"openai:m@{url}", "--db", db]
    monkeypatch.setenv("AGENTMESH_CONFIG", str(config))
    code, _, err = run_cli(args, capsys, monkeypatch)
    said = " ".join(err.split())
    assert code == 1, said
    assert "cannot reach the model server at http://127.0.0.1:9/v1" in said and "agentmesh resume" in said
    with Store(db) as store:
        (run,) = store.list_runs()
    assert run.status == "failed"


def test_a_run_whose_scripted_model_runs_out_of_rules_exits_1(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "round1.yaml"  # round 1 disagrees, round 2 has no rule: the run fails at run time
    script.write_text("rules:\n  - {agent: debater, round: 1, responses: ['\\boxed{1}', '\\boxed{2}', '\\boxed{3}']}\n")
    args = ["run", "debate", "-i", "question=q", "-m", f"scripted:{script}", "--db", db]
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == 1 and "no rule left" in err, err


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ("name: broken\nagents:\n  a: {prompt: hi}\nnodes:\n  n: {op: call, agent: nobody}\n", "nobody"),
        ("name: broken\nnodes: [\n", "broken.yaml"),
    ],
)
def test_a_malformed_graph_exits_2(
    graph: str,
    expected: str,
    db: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(graph)
    code, _, err = run_cli(
        ["run", str(path), "-i", "question=q", "-m", "scripted:none", "--db", db], capsys, monkeypatch
    )
    assert code == 2 and expected in err, err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "debate", "-i", "question=q", "-m", "nosuch:model"], "unknown model provider 'nosuch'"),
        (["run", "debate", "-i", "question=q", "-m", "openai:gpt-4o-mini"], "OPENAI_API_KEY"),
        (["show", "f00dfeed"], "no run 'f00dfeed'"),
        (["resume", "--batch", "f00dfeed"], "no batch 'f00dfeed'"),
    ],
)
def test_a_command_that_cannot_work_as_given_exits_2(
    args: list[str],
    expected: str,
    db: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with Store(db):  # (an existing, empty database: the commands that only read refuse a missing one)
        pass
    code, _, err = run_cli([*args, "--db", db], capsys, monkeypatch)
    assert code == 2 and expected in " ".join(err.split()), err


def test_a_wrong_setting_of_the_embedded_model_exits_2(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``$AGENTMESH_LLAMA_THREADS`` not a number: a setting to fix (2), not a call that failed (it said 1)."""
    pytest.importorskip("llama_cpp")
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"never loaded: the thread count is read first")
    monkeypatch.setenv("AGENTMESH_LLAMA_THREADS", "two")
    code, _, err = run_cli(
        ["run", "debate", "-i", "question=q", "-m", f"llamacpp:{gguf}", "--db", db], capsys, monkeypatch
    )
    said = " ".join(err.split())
    assert code == 2, said
    assert "$AGENTMESH_LLAMA_THREADS must be a whole number of threads, at least 1; got 'two'" in said
