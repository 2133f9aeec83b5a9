"""Optimisation jobs and batches on Ray (``--executor ray``): a real Ray started on this machine, its workers running
the items and writing to the one store (a SQLite file; Postgres too when ``$AGENTMESH_TEST_PG`` is set). The
scripted DyLAN team is a provider the workers import (``tests/_dylan_team.py``); a batch's model is a script file.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url

from agentmesh import plugins
from agentmesh.cli import batch as batch_module
from agentmesh.datasets import read_items
from agentmesh.errors import AgentmeshError, ConfigError
from agentmesh.models import ModelClient, ScriptedModel
from agentmesh.optimize import items as items_module
from agentmesh.optimize import job as job_module
from agentmesh.optimize import optimize
from agentmesh.plugins import import_plugins
from agentmesh.spec import load_graph
from agentmesh.spec.loader import dump_graph
from agentmesh.spec.operators import RoundsParams
from agentmesh.store import Store
from tests._cli import interrupted, run_cli
from tests._dylan_team import EXPECTED, Team
from tests.unit.test_optimize import four_agent_graph, write_items

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None,
        reason="Ray is not installed: pip install 'agentmesh[ray]' to run the Ray executor's tests (dev has it)",
    ),
]

TEAM_PLUGIN = str(Path(__file__).resolve().parents[1] / "_dylan_team.py")
MODEL = "dylanteam:x"
RANKING = ["mathematician", "historian", "economist", "doctor"]


def _nothing_runs_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runtime's entry points fail in this process: whatever ran an item ran it in a Ray worker."""

    async def here(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an item ran in the driver, not in a Ray worker")

    monkeypatch.setattr(items_module, "arun", here)
    monkeypatch.setattr(items_module, "aresume", here)


@pytest.fixture(autouse=True)
def team_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """The team's provider imported here (the job's id names the model) and, through ``imported()``, in the workers:
    as in a command's process, what this test imports is all the workers import (not every test's before it)."""
    monkeypatch.setattr(plugins, "_imported", [])
    import_plugins([TEAM_PLUGIN])


def test_the_cli_runs_a_job_on_a_ray_it_starts_and_stops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    assert not ray.is_initialized()
    graph = tmp_path / "team.yaml"
    graph.write_text(dump_graph(four_agent_graph()))
    out = tmp_path / "best.yaml"
    monkeypatch.setenv("COLUMNS", "160")
    _nothing_runs_here(monkeypatch)
    args = ["--import", TEAM_PLUGIN, "optimize", str(graph), "--data", str(write_items(tmp_path / "items.jsonl", 2))]
    args += ["--top-k", "2", "-m", MODEL, "--db", f"sqlite:///{tmp_path / 'runs.db'}", "--out", str(out)]
    code, stdout, stderr = run_cli([*args, "--executor", "ray", "--ray-cpus", "0.5"], capsys, monkeypatch)
    assert code == 0, stderr
    rows = re.findall(r"\b(mathematician|historian|economist|doctor)\b\s+│?\s*([0-9.]+)", stdout)
    assert [agent for agent, _ in rows[:4]] == RANKING and rows[0][1] == "1.9583"
    params = load_graph(out).nodes["dylan"].params
    assert isinstance(params, RoundsParams) and params.agents == ["mathematician", "historian"]
    assert not ray.is_initialized(), "the Ray the job started is shut down with it"


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _check_ranked(result: Any) -> None:
    assert not result.failed, [i.error for i in result.failed]
    for agent, value in EXPECTED.items():
        assert result.scores[agent] == pytest.approx(float(value), abs=1e-12)
    assert result.ranking == RANKING and result.team == ["mathematician", "historian"]


def _ray_job_then_local(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = four_agent_graph()
    items = read_items(write_items(tmp_path / "items.jsonl", 3), spec)
    with monkeypatch.context() as patch:
        _nothing_runs_here(patch)
        result = optimize(spec, items, top_k=2, model=MODEL, store=url, concurrency=3, executor="ray")
    _check_ranked(result)
    assert result.accuracy == pytest.approx(1 / 3) and {i.calls for i in result.items} == {11}
    with Store(url) as store:
        runs = store.list_runs(graph="dylan_mmlu")
        assert sorted(r.id for r in runs) == sorted(str(i.run_id) for i in result.items)
        assert {r.status for r in runs} == {"succeeded"} and {r.meta["optimize"]["job"] for r in runs} == {result.job}
        assert all(len(store.events(r.id, kind="model_call")) == 11 for r in runs)
    # the same job run here finds every item done: the store, not the executor, is what a job resumes from
    again = optimize(spec, items, top_k=2, model=MODEL, store=url)
    assert all(i.reused for i in again.items) and again.scores == result.scores


def test_items_run_as_ray_tasks_into_a_sqlite_store(
    local_ray: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ray_job_then_local(f"sqlite:///{tmp_path / 'runs.db'}", tmp_path, monkeypatch)


def test_items_run_as_ray_tasks_into_a_postgres_store(
    local_ray: None, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ray_job_then_local(postgres_url, tmp_path, monkeypatch)


def test_a_run_cut_short_here_is_resumed_in_a_worker_without_repeating_a_call(
    local_ray: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = four_agent_graph()
    items = read_items(write_items(tmp_path / "items.jsonl", 3), spec)
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    crashing = ModelClient(ScriptedModel(respond=Team(fail_on="Question 1?")), reference=MODEL)  # the same job
    first = optimize(spec, items, top_k=2, model=crashing, store=db, concurrency=1)
    (failed,) = first.failed
    with Store(db) as store:
        assert len(store.events(str(failed.run_id), kind="model_call")) == 4  # layer 1 done, layer 2 crashed
    _nothing_runs_here(monkeypatch)
    second = optimize(spec, items, top_k=2, model=MODEL, store=db, executor="ray")
    _check_ranked(second)
    assert [i.line for i in second.items if i.reused] == [1, 3]
    resumed = second.items[1]
    assert resumed.run_id == failed.run_id and resumed.calls == 11  # the run's calls, four of them made here
    with Store(db) as store:
        calls = store.events(str(failed.run_id), kind="model_call")
        assert store.get_run(str(failed.run_id)).status == "succeeded"
    keys = [(e.node, e.agent, e.round, e.call_index) for e in calls if not e.error]
    assert len(keys) == len(set(keys)) == 11  # no finished call was made twice


def test_a_worker_that_cannot_import_the_modules_fails_each_item_saying_so(local_ray: None, tmp_path: Path) -> None:
    spec = four_agent_graph()
    items = read_items(write_items(tmp_path / "items.jsonl", 2), spec)
    missing = str(tmp_path / "gone.py")
    with pytest.raises(AgentmeshError, match=rf"every item failed; first error: in the Ray worker: --import {missing}"):
        optimize(
            spec, items, top_k=2, model=MODEL, store=f"sqlite:///{tmp_path / 'r.db'}", executor="ray", imports=[missing]
        )


def test_what_ray_cannot_take_is_refused_before_anything_runs(tmp_path: Path) -> None:
    spec = four_agent_graph()
    items = read_items(write_items(tmp_path / "items.jsonl", 1), spec)
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    with pytest.raises(ConfigError, match="on Ray, give the model as a reference string"):
        optimize(spec, items, top_k=2, model=ScriptedModel(respond=Team()), store=db, executor="ray")
    with pytest.raises(ConfigError, match=r"a Ray cluster \(--ray-address\) spans machines .* SQLite file"):
        optimize(spec, items, top_k=2, model=MODEL, store=db, executor="ray", ray_address="ray://nowhere:10001")
    with Store(db) as store:
        assert store.list_runs() == []


def test_a_password_in_the_store_url_is_not_handed_to_ray(postgres_url: str, tmp_path: Path) -> None:
    spec = four_agent_graph()
    items = read_items(write_items(tmp_path / "items.jsonl", 1), spec)
    with_password = make_url(postgres_url).set(password="hunter2").render_as_string(hide_password=False)
    with pytest.raises(ConfigError, match="holds a password") as info:
        optimize(spec, items, top_k=2, model=MODEL, store=with_password, executor="ray")
    assert "hunter2" not in str(info.value)


async def test_a_stopped_job_leaves_its_workers_runs_interrupted_and_resumable(local_ray: None, tmp_path: Path) -> None:
    spec = four_agent_graph()
    items = read_items(write_items(tmp_path / "items.jsonl", 2), spec)
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    job = asyncio.create_task(
        job_module.aoptimize(spec, items, top_k=2, model="slowteam:x", store=db, concurrency=2, executor="ray")
    )
    with Store(db) as store:
        for _ in range(600):  # until both workers have made a call or two
            await asyncio.sleep(0.05)
            runs = store.list_runs()
            if len(runs) == 2 and all(store.events(r.id, kind="model_call") for r in runs):
                break
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        runs = store.list_runs()
        assert len(runs) == 2 and {r.status for r in runs} == {"interrupted"}
        made = {r.id: len(store.events(r.id, kind="model_call")) for r in runs}
    assert all(0 < n < 11 for n in made.values())
    # the job run again resumes them, each from where it was stopped
    again = await job_module.aoptimize(spec, items, top_k=2, model="slowteam:x", store=db, executor="ray")
    _check_ranked(again)
    assert sorted(str(i.run_id) for i in again.items) == sorted(made)


def test_ctrl_c_stops_a_ray_job_leaving_its_runs_interrupted_and_says_how_to_go_on(tmp_path: Path) -> None:
    graph = tmp_path / "team.yaml"
    graph.write_text(dump_graph(four_agent_graph()))
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    items = str(write_items(tmp_path / "items.jsonl", 3))
    args = ["-I", TEAM_PLUGIN, "optimize", str(graph), "--data", items, "-k", "2", "-m", "slowteam:x", "--db", db]

    def calling(store: Store) -> bool | None:  # two items running in workers, each with a call made
        runs = store.list_runs()
        return (len(runs) == 2 and all(store.events(r.id, kind="model_call") for r in runs)) or None

    ray_args = [*args, "--executor", "ray", "--concurrency", "2", "--ray-cpus", "0.5"]
    code, message = interrupted(ray_args, tmp_path, db, calling, "two items running")
    assert code == 130, message
    assert "interrupted: 0 of 3 items had finished; run the same command again to go on" in message
    with Store(db) as store:
        assert {r.status for r in store.list_runs()} == {"interrupted"}


# --- batches: run --input-file --executor ray ------------------------------------------------------------------------


def _batch_files(tmp_path: Path, *, delay_s: float = 0.0) -> tuple[str, str]:
    script = tmp_path / "debaters.yaml"
    script.write_text(f"delay_s: {delay_s}\nrules:\n  - {{agent: debater, template: '\\boxed{{51}}'}}\n")
    items = tmp_path / "items.jsonl"
    lines = [
        '{"question": "What is 17*3?", "answer": "51"}',
        '{"question": "What is 2+2?", "answer": "4"}',
        '{"question": "What is 50+1?", "answer": "51"}',
    ]
    items.write_text("\n".join(lines) + "\n")
    return f"scripted:{script}", str(items)


def test_a_batch_runs_its_lines_as_ray_tasks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, items = _batch_files(tmp_path)
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    monkeypatch.setenv("COLUMNS", "160")

    async def here(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a line ran in the driver, not in a Ray worker")

    monkeypatch.setattr(batch_module, "arun", here)
    args = ["run", "debate", "--input-file", items, "-m", model, "--db", db, "--max-calls", "2"]
    code, out, err = run_cli([*args, "--executor", "ray", "--ray-cpus", "0.5"], capsys, monkeypatch)
    assert code == 0, err
    assert "accuracy: 2 of 3 labelled items right (66.7%)" in out
    assert "3 items · 0 failed · 6 calls" in err  # the calls each worker made, told when its run ended
    with Store(db) as store:
        runs = store.list_runs()
    assert len(runs) == 3 and {r.status for r in runs} == {"succeeded"}
    assert {r.totals["calls"] for r in runs} == {2}  # the --max-calls budget went with each line to its worker
    assert all(r.stop_reason and r.stop_reason.startswith("budget") for r in runs)
    assert len({r.meta["batch"]["id"] for r in runs}) == 1 and sorted(r.meta["batch"]["line"] for r in runs) == [
        1,
        2,
        3,
    ]


def test_one_run_is_not_sent_to_ray(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run_cli(["run", "debate", "-i", "question=q", "--executor", "ray"], capsys, monkeypatch)
    assert code == 2 and "--executor ray runs the items of an --input-file on Ray; one run runs here" in " ".join(
        err.split()
    )


def test_ctrl_c_stops_a_ray_batch_names_the_runs_it_cut_short_and_they_resume_here(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, items = _batch_files(tmp_path, delay_s=5.0)
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    args = ["run", "debate", "--input-file", items, "-m", model, "--db", db, "-c", "2"]

    def running(store: Store) -> bool | None:  # two lines running in workers (their first calls take 5 s)
        runs = store.list_runs()
        return (len(runs) == 2 and all(r.status == "running" for r in runs)) or None

    code, message = interrupted([*args, "--executor", "ray", "--ray-cpus", "0.5"], tmp_path, db, running, "two running")
    assert code == 130, message
    with Store(db) as store:
        runs = store.list_runs()
    assert len(runs) == 2 and {r.status for r in runs} == {"interrupted"}
    assert "interrupted: 0 of 3 items had finished, 2 runs were cut short and 1 never started" in message
    assert all(r.id[:12] in message for r in runs)
    batch = runs[0].meta["batch"]["id"]
    fast, _ = _batch_files(tmp_path)
    code, _, err_text = run_cli(["resume", "--batch", batch, "-m", fast, "--db", db], capsys, monkeypatch)
    assert code == 0, err_text
    with Store(db) as store:
        assert {r.status for r in store.list_runs()} == {"succeeded"}
