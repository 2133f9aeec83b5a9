"""The options that every command running many runs shares (``optimize``, ``calibrate``, ``eval alu``, ``run``,
``resume``) are one definition each: same flags, same type and bounds, same default and the same help, so that
``--model`` or ``--concurrency`` cannot drift apart between commands again (``optimize`` said "default: local"
where ``run`` said, rightly, "the graph's model, else 'local'")."""

from __future__ import annotations

from typing import Any

import pytest
from typer.main import get_command

from agentmesh.cli._common import Executor
from agentmesh.cli._job import JobOptions
from agentmesh.cli.app import app

JOBS = ["optimize", "calibrate", "eval alu", "run"]


def _params(command: str) -> dict[str, Any]:
    group: Any = get_command(app)
    for word in command.split():
        group = group.commands[word]
    return {p.name: p for p in group.params}


def _shape(param: Any) -> tuple[Any, ...]:
    return (tuple(param.opts), tuple(param.secondary_opts), param.default, param.help, getattr(param, "min", None))


@pytest.mark.parametrize("name", ["model", "executor", "ray_address", "ray_cpus", "db", "as_json"])
def test_a_shared_option_reads_and_behaves_the_same_in_every_job_command(name: str) -> None:
    shapes = {command: _shape(_params(command)[name]) for command in JOBS}
    assert len(set(shapes.values())) == 1, shapes


def test_concurrency_is_one_flag_with_one_bound_and_default_in_each_command_noun_aside() -> None:
    found = {command: _params(command)["concurrency"] for command in [*JOBS, "resume"]}
    for command, param in found.items():
        assert (param.opts, param.min, param.show_default) == (["--concurrency", "-c"], 1, False), command
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
