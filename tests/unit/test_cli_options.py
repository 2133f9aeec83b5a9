"""The options that every command running many runs shares (``optimize``, ``calibrate``, ``eval alu``, ``run``,
``resume``) are one definition each: same flags, same type and bounds, same default and the same help, so that
``--model`` or ``--concurrency`` cannot drift apart between commands again (``optimize`` said "default: local"
where ``run`` said, rightly, "the graph's model, else 'local'")."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.main import get_command

from agentmesh.cli._common import Executor
from agentmesh.cli._job import JobOptions
from agentmesh.cli.app import app
from agentmesh.errors import ConfigError
from tests._cli import run_cli

JOBS = ["optimize", "calibrate", "eval alu", "run"]


def _command(words: str) -> Any:
    """The click command ``agentmesh <words>``, asked of each group by name (a top-level command's module is
    imported on demand: the group's ``commands`` holds only a stand-in for it until then)."""
    command: Any = get_command(app)
    for word in words.split():
        command = command.get_command(typer.Context(command), word)
    return command


def _params(command: str) -> dict[str, Any]:
    return {p.name: p for p in _command(command).params}


def _shape(param: Any) -> tuple[Any, ...]:
    return (tuple(param.opts), tuple(param.secondary_opts), param.default, param.help, param.metavar)


@pytest.mark.parametrize("name", ["model", "executor", "ray_address", "ray_cpus", "db", "as_json"])
def test_a_shared_option_reads_and_behaves_the_same_in_every_job_command(name: str) -> None:
    shapes = {command: _shape(_params(command)[name]) for command in JOBS}
    assert len(set(shapes.values())) == 1, shapes


def test_concurrency_is_one_flag_with_one_bound_and_default_in_each_command_noun_aside() -> None:
    found = {command: _params(command)["concurrency"] for command in [*JOBS, "resume"]}
    for command, param in found.items():
        # (the bound is checked by number_option's parser, which the help's range says: see below)
        assert (param.opts, param.metavar, param.show_default) == (["--concurrency", "-c"], "<int range> [x>=1]", False)
        assert param.help.endswith(" at once (default 4)."), (command, param.help)
    # run declares no default (one run refuses -c); the others default to the 4 their help says
    assert {c: p.default for c, p in found.items()} == {c: None if c == "run" else 4 for c in found}


def test_limit_names_the_file_it_cuts() -> None:
    assert _params("run")["limit"].help == "Only the first N items of --input-file (a quick look first)."
    assert _params("eval alu")["limit"].help == "Only the first N items of --data (a quick look first)."


def test_job_options_become_the_job_functions_arguments() -> None:
    options = JobOptions(
        model="scripted:a.yaml",
        concurrency=3,
        executor=Executor.RAY,
        ray_address="auto",
        ray_cpus=0.25,
        db="sqlite:///x.db",
        as_json=True,
    )
    assert options.kwargs() == {
        "model": "scripted:a.yaml",
        "concurrency": 3,
        "executor": "ray",
        "ray_address": "auto",
        "ray_cpus_per_item": 0.25,
    }
    assert options.kwargs(model="judge:b")["model"] == "judge:b"  # eval alu's --judge-model
    assert options.kwargs(model=None)["model"] == "scripted:a.yaml"  # no --judge-model: --model
    local = JobOptions(
        model=None, concurrency=4, executor=Executor.LOCAL, ray_address=None, ray_cpus=None, db=None, as_json=False
    )
    assert local.kwargs() == {
        "model": None,
        "concurrency": 4,
        "executor": "local",
        "ray_address": None,
        "ray_cpus_per_item": 1.0,  # --ray-cpus not given
    }


def test_every_job_command_declares_every_job_option() -> None:
    """:meth:`JobOptions.given` reads each field from the command's parameter of the same name: an option added to
    JobOptions must be declared by every job command, or that command fails (this says which, before a user does)."""
    wanted = {f.name for f in fields(JobOptions)}
    assert {command: wanted - set(_params(command)) for command in JOBS} == {command: set() for command in JOBS}


def test_job_options_are_the_parsed_parameters_of_the_same_names() -> None:
    ctx = typer.Context(_command("optimize"), info_name="optimize")
    given = {"model": "m", "concurrency": 2, "executor": Executor.RAY, "ray_address": None, "ray_cpus": 0.5}
    ctx.params = {**given, "db": "sqlite:///x.db", "as_json": True, "top_k": 3}
    assert JobOptions.given(ctx) == JobOptions(**given, db="sqlite:///x.db", as_json=True)  # top_k is not one
    ctx.params["concurrency"] = None  # run's -c, not given: the default the others have
    assert JobOptions.given(ctx).concurrency == 4
    ctx.params["ray_address"] = "auto"
    ctx.params["executor"] = Executor.LOCAL
    with pytest.raises(ConfigError, match=r"^--ray-address auto, --ray-cpus 0\.5: the items run on Ray only with"):
        JobOptions.given(ctx)  # checked as a hand-built one is
    del ctx.params["ray_cpus"]
    with pytest.raises(TypeError, match="command 'optimize' has no parameter ray_cpus"):
        JobOptions.given(ctx)


@pytest.mark.parametrize(
    "command",
    [
        ["optimize", "dylan_mmlu", "--data", "items.jsonl", "--top-k", "2"],
        ["calibrate", "magicore", "--data", "items.jsonl"],
        ["eval", "alu", "--data", "items.jsonl"],
        ["run", "debate", "--input-file", "items.jsonl"],
    ],
    ids=["optimize", "calibrate", "eval alu", "run --input-file"],
)
def test_ray_options_without_the_ray_executor_are_refused_before_any_run(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every item ran here, silently, when ``--executor ray`` was forgotten beside ``--ray-address`` or
    ``--ray-cpus``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "items.jsonl").write_text('{"question": "What is 2*3?"}\n')
    db = tmp_path / "runs.db"
    args = [*command, "--ray-address", "auto", "-m", "scripted:none.yaml", "--db", f"sqlite:///{db}"]
    code, _, err = run_cli(args, capsys, monkeypatch)
    said = " ".join(err.split())
    assert code == 2 and "--ray-address auto: the items run on Ray only with --executor ray; add it" in said, said
    args = [*command, "--ray-cpus", "0.25", "-m", "scripted:none.yaml", "--db", f"sqlite:///{db}"]
    code, _, err = run_cli(args, capsys, monkeypatch)  # as --ray-address: each item's share of Ray's CPUs
    said = " ".join(err.split())
    assert code == 2 and "--ray-cpus 0.25: the items run on Ray only with --executor ray" in said, said
    assert not db.exists()


def _every_option() -> list[tuple[str, Any]]:
    """(command, option) for every option of every command, ``--help`` aside."""
    found: list[tuple[str, Any]] = []

    def walk(command: Any, path: str) -> None:
        if hasattr(command, "commands"):
            ctx = typer.Context(command)
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), f"{path} {name}".strip())
            return
        found.extend((path, p) for p in command.params if p.param_type_name == "option" and p.name != "help")

    walk(get_command(app), "")
    return found


def test_every_option_says_what_it_is_for() -> None:
    """``ask --max-tokens`` and ``--temperature`` had no help at all."""
    assert [f"{c} {p.opts[0]}" for c, p in _every_option() if not (p.help or "").strip()] == []


def test_no_option_states_its_default_twice() -> None:
    """``eval alu --attacks`` read "(default: none). [default: none]": typer shows a default unless told not to."""
    twice = [
        f"{c} {p.opts[0]}"
        for c, p in _every_option()
        if p.show_default and p.default not in (None, False, ()) and "(default" in (p.help or "")
    ]
    assert twice == []


def test_a_model_option_is_a_reference_or_alias_everywhere() -> None:
    helps = {c: p.help for c, p in _every_option() if p.opts == ["--model", "-m"]}
    assert set(helps) >= {"ask", "run", "resume", "replay", "optimize", "calibrate", "eval alu"}
    assert all(h.startswith("Model reference or alias") for h in helps.values()), helps


def test_the_settings_file_option_reads_the_same_where_it_exists() -> None:
    helps = {c: p.help for c, p in _every_option() if p.opts == ["--config"]}
    assert set(helps) == {"ask", "models"} and len(set(helps.values())) == 1, helps
    assert "$AGENTMESH_CONFIG, else .agentmesh/config.yaml" in helps["ask"]


def test_every_command_writing_a_file_takes_it_as_out() -> None:
    """``report`` took ``--html``, ``graph schema`` ``--output``, where ``optimize``, ``calibrate`` and ``export``
    take ``--out``: each now takes ``--out`` too (its old name still works)."""
    short_o = {c: p.opts for c, p in _every_option() if "-o" in p.opts}
    assert set(short_o) == {"optimize", "calibrate", "export", "report", "graph schema"}
    assert all("--out" in opts for opts in short_o.values()), short_o
    assert "--html" in short_o["report"] and "--output" in short_o["graph schema"]


def test_export_does_not_describe_json_as_instead_of_tables() -> None:
    param = _params("export")["as_json"]
    assert "tables" not in param.help and not param.show_default


def test_resume_says_what_it_needs_when_given_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given neither runs nor --batch, it said "(not both)", of two things that were not given."""
    code, _, err = run_cli(["resume", "--db", f"sqlite:///{tmp_path / 'runs.db'}"], capsys, monkeypatch)
    said = " ".join(err.split())
    assert code == 2 and "nothing to resume: give run ids (or unique prefixes), or --batch ID" in said, said
    assert "not both" not in said
    assert "never started" in _params("resume")["batch"].help  # what --batch does beyond resuming runs


def test_report_and_schema_write_where_out_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text("default: Paris\n")
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    code, out, err = run_cli(
        ["ask", "Capital of France?", "-m", "scripted:s.yaml", "--db", db, "--json"], capsys, monkeypatch
    )
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    code, _, err = run_cli(["report", run_id, "--out", "page.html", "--db", db], capsys, monkeypatch)
    assert code == 0, err
    assert "<html" in (tmp_path / "page.html").read_text().lower()
    code, _, err = run_cli(["graph", "schema", "--out", "schema.json"], capsys, monkeypatch)
    assert code == 0, err
    assert "properties" in json.loads((tmp_path / "schema.json").read_text())


def test_delete_says_what_it_needs_when_given_neither_runs_nor_a_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    code, _, err = run_cli(["delete", "-y", "--db", db], capsys, monkeypatch)
    said = " ".join(err.split())
    assert code == 2 and "nothing to delete: give run ids (or unique prefixes), or --batch ID" in said, said
    code, _, err = run_cli(["delete", "abc", "--batch", "b", "-y", "--db", db], capsys, monkeypatch)
    assert code == 2 and "give the runs to delete, or --batch ID, not both" in " ".join(err.split())


def test_report_says_what_it_needs_when_given_neither_a_run_nor_a_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    code, _, err = run_cli(["report", "-o", str(tmp_path / "r.html"), "--db", db], capsys, monkeypatch)
    said = " ".join(err.split())
    assert code == 2 and "nothing to report: give a run id (or a unique prefix), or --batch ID" in said, said
    code, _, err = run_cli(
        ["report", "abc", "--batch", "b", "-o", str(tmp_path / "r.html"), "--db", db], capsys, monkeypatch
    )
    assert code == 2 and "give a run, or --batch ID, not both" in " ".join(err.split())


@pytest.mark.parametrize("ray", [["--ray-address", "auto"], ["--ray-cpus", "0.5"]], ids=["address", "cpus"])
def test_one_run_refuses_the_ray_options_too(
    ray: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "runs.db"
    args = ["run", "debate", "-i", "question=q", *ray, "-m", "scripted:none.yaml", "--db", f"sqlite:///{db}"]
    code, _, err = run_cli(args, capsys, monkeypatch)
    said = " ".join(err.split())
    assert code == 2 and "runs the items of an --input-file on Ray; one run runs here" in said, said
    assert not db.exists()


def test_the_commands_reading_items_describe_the_same_formats() -> None:
    """``run --input-file``, ``optimize --data`` and ``calibrate --data`` read one reader's formats; their help
    named three different subsets of them (GSM8K and HumanEval each missing somewhere, run's naming none)."""
    helps = [_params("run")["input_file"].help, _params("optimize")["data"].help, _params("calibrate")["data"].help]
    for fmt in ("the graph's inputs", "MMLU", "MATH", "GSM8K", "HumanEval"):
        assert all(fmt in h for h in helps), (fmt, helps)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["run", "debate", "-c", "0"], "--concurrency must be a positive whole number (got 0)"),
        (["resume", "abc", "--concurrency", "-2"], "--concurrency must be a positive whole number (got -2)"),
        (["run", "debate", "-n", "0"], "--limit must be a positive whole number (got 0)"),
        (["run", "debate", "--limit", "1.5"], "--limit must be a positive whole number (got 1.5)"),
        (["run", "debate", "--ray-cpus", "0"], "--ray-cpus must be a number of at least 0.01 (got 0)"),
        (["run", "debate", "--ray-cpus", "nan"], "--ray-cpus must be a number of at least 0.01 (got 'nan')"),
        (["runs", "--limit", "abc"], "--limit must be a positive whole number (got 'abc')"),
        (["ask", "hi", "--max-tokens", "0"], "--max-tokens must be a positive whole number (got 0)"),
        (["ask", "hi", "--temperature", "2.5"], "--temperature must be a number from 0 to 2 (got 2.5)"),
        (
            ["optimize", "dylan_mmlu", "--data", "x.jsonl", "--top-k", "0"],
            "--top-k must be a positive whole number (got 0)",
        ),
        (
            ["optimize", "sejury", "--data", "x.jsonl", "--calibration-size", "1"],
            "--calibration-size must be a whole number of at least 2 (got 1)",
        ),
        (["calibrate", "magicore", "--data", "x.jsonl", "-c", "0"], "--concurrency must be a positive whole number"),
        (["eval", "alu", "--data", "x.jsonl", "-n", "0"], "--limit must be a positive whole number (got 0)"),
        (["targets", "add", "s", "--name", "x", "--id", "0"], "--id must be a positive whole number (got 0)"),
        (["targets", "list", "s", "--version", "-1"], "--version must be a whole number of at least 0 (got -1)"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_numeric_options_are_refused_as_budgets_are(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every numeric option out of its range (or not a number) is an agentmesh error naming the option, what it
    takes and what was given, exit 2, in the form of the budgets' (``--max-calls must be a positive whole number
    (got 0)``); they were typer's "Invalid value for '--concurrency' / '-c': Input should be greater than or equal
    to 1". Nothing is run or opened: the database at --db is never made."""
    db = tmp_path / "never.db"
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli([*args, "--db", f"sqlite:///{db}"], capsys, monkeypatch)
    assert code == 2, err
    assert " ".join(err.split()).startswith(f"error: {said}"), err
    assert out == "" and not db.exists()


@pytest.mark.parametrize(
    ("words", "option", "metavar"),
    [
        ("run", "concurrency", "<int range> [x>=1]"),
        ("run", "ray_cpus", "<float range> [x>=0.01]"),
        ("runs", "limit", "<int range> [x>=1]"),
        ("ask", "temperature", "<float range> [0.0<=x<=2.0]"),
        ("targets list", "version", "<int range> [x>=0]"),
    ],
)
def test_the_help_still_shows_the_range(words: str, option: str, metavar: str) -> None:
    """The range typer showed in the help is shown as it was."""
    param = _params(words)[option]
    assert param.metavar == metavar


def test_an_error_quoting_a_key_prints_it_masked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the store masks a key in a model reference; the command's own "error: ..." line printed it in clear
    monkeypatch.setenv("AGENTMESH_DB", f"sqlite:///{tmp_path / 'runs.db'}")
    key = "sk-qa-SECRETKEY1234567890abcd"
    code, out, err = run_cli(["ask", "hi", "-m", f"nope:x?api_key={key}"], capsys, monkeypatch)
    assert code == 2, err
    assert "unknown model provider 'nope'" in err, err
    assert "SECRETKEY" not in out + err and "[redacted]" in err, err
