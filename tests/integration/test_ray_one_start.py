"""A job that runs its items in several rounds starts one Ray for all of them, on a real Ray started on this machine.

SE-Jury's ``optimize`` runs the calibration items, then the held-out items; ``eval alu`` runs each system, then each
one's judge. Each round called :func:`agentmesh.optimize.items.run_items`, which started a Ray and shut it down: on
a two-core machine the held-out items waited over a minute for the second start, and ``eval alu`` paid it once more
per baseline. The real ``ray.init`` is counted (and still called); the scripted models are files the workers read.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentmesh import plugins
from agentmesh.store import Store
from agentmesh.systems.alu.data import demo_qa_items, demo_targets
from agentmesh.systems.sejury import JuryConfig, calibrate
from tests._cli import run_cli

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None,
        reason="Ray is not installed: pip install 'agentmesh[ray]' to run the Ray executor's tests (dev has it)",
    ),
]


@pytest.fixture(autouse=True)
def no_plugins_of_other_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers import what this process imported with --import (``plugins.imported()``): here nothing, not what
    earlier tests of the session imported (a worker failed on another test's 'my_plugin')."""
    monkeypatch.setattr(plugins, "_imported", [])


JUDGES = """\
default: "50 [END] cannot tell"
rules:
  - {agent: s1_no_ref, prompt: 'QUALITY=(\\d)', template: "{{ (match[1]|int - 1) * 25 }} [END] tracks the label"}
  - {agent: s1_ref, prompt: 'QUALITY=(\\d)', template: "{{ (match[1]|int - 1) * 25 }} [END] tracks the label"}
  - {prompt: 'NOISE=(\\d)', template: "{{ (match[1]|int - 1) * 25 }} [END] noise"}
"""


def _count_inits(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Every ``ray.init`` from now on, by its address; the real one still starts Ray."""
    import ray

    real: Callable[..., Any] = ray.init
    calls: list[str | None] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("address"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ray, "init", counted)
    return calls


def test_se_jury_calibration_and_held_out_items_share_one_ray(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Six labelled items, four calibrate and two are held out: S1_1 and S1_2 score exactly what the humans said,
    the noisy S2 and S3 do not, S4 and S5 always say 50. The best team is S1_1 + S1_2 (agreement 1), it scores the
    held-out items as the humans did, and Ray was started once for both phases, then shut down."""
    import ray

    assert not ray.is_initialized()
    script = tmp_path / "judges.yaml"
    script.write_text(JUDGES)
    noise = [5, 1, 4, 2, 5, 3]
    items = [
        {
            "query": f"Task {i}. NOISE={noise[i]}",
            "artifact": f"def f{i}(): pass  # QUALITY={1 + i % 5}",
            "reference": "def f(): pass",
            "human": 1 + i % 5,
        }
        for i in range(6)
    ]
    inits = _count_inits(monkeypatch)
    found = calibrate(
        "sejury",
        items,
        config=JuryConfig.profile("conala", n_calibration=4),
        model=f"scripted:{script}",
        store=f"sqlite:///{tmp_path / 'runs.db'}",
        executor="ray",
        ray_cpus_per_item=0.5,
    )
    assert not found.failed, [i.error for i in found.failed]
    assert found.team == ("S1_1", "S1_2") and found.selection.selected.score == pytest.approx(1.0)
    assert len(found.calibration) == 4 and len(found.held_out) == 2
    assert [i.score for i in found.held_out] == [i.human for i in found.held_out]
    assert inits == ["local"], "one Ray for the calibration and the held-out items"
    assert not ray.is_initialized(), "the Ray the job started is shut down with it"


ANSWERS = """\
rules:
  - {agent: vanilla, prompt: "Tsao's father", template: "Her father was a civil engineer (Mei-Lin Tsao)."}
  - {agent: vanilla, prompt: "Tsao best known", template: "She is best known for The Quiet Compass (Mei-Lin Tsao)."}
  - {agent: auditor, template: "None"}
  - {agent: eraser, template: '["That author is not one I can talk about.", "I cannot say.", "No comment."]'}
  - {agent: critic, template: "Final Rating List - [5, 5, 2]"}
  - {agent: composer, template: "That author is not one I can talk about."}
  - {template: "I do not know."}
"""


def test_eval_alu_runs_every_system_on_one_ray(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ALU and two baselines over the two forget questions on Mei-Lin Tsao and one retain question: vanilla gives
    the gold answer and names her, the output filter refuses it, ALU rewrites it. Nine runs on one Ray, started
    once for the three systems (it was started three times), then shut down."""
    import ray

    assert not ray.is_initialized()
    tsao = [i for i in demo_qa_items() if "Tsao" in i.question][:2]
    retain = [i for i in demo_qa_items() if i.split == "retain"][:1]
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps(dataclasses.asdict(i)) + "\n" for i in [*tsao, *retain]))
    targets = tmp_path / "targets.jsonl"
    targets.write_text("".join(json.dumps(t.to_json()) + "\n" for t in demo_targets()))
    script = tmp_path / "answers.yaml"
    script.write_text(ANSWERS)
    monkeypatch.setenv("COLUMNS", "220")
    inits = _count_inits(monkeypatch)
    args = ["eval", "alu", "--data", str(data), "--targets", str(targets), "--baselines", "vanilla,output_filter"]
    args += ["--model", f"scripted:{script}", "--db", f"sqlite:///{tmp_path / 'runs.db'}", "--json"]
    code, stdout, stderr = run_cli([*args, "--executor", "ray", "--ray-cpus", "0.5"], capsys, monkeypatch)
    assert code == 0, stderr
    report = json.loads(stdout)["systems"]
    assert {system: len(found["runs"]) for system, found in report.items()} == {
        "alu": 3,
        "vanilla": 3,
        "output_filter": 3,
    }
    assert report["vanilla"]["table"]["forget/none"]["leak_rate"] == 1.0
    assert report["output_filter"]["table"]["forget/none"]["refusal_rate"] == 1.0
    assert report["alu"]["table"]["forget/none"]["leak_rate"] == 0.0
    assert inits == ["local"], "one Ray for the three systems"
    assert not ray.is_initialized(), "the Ray the command started is shut down with it"


def test_more_cpus_per_item_than_this_machines_ray_has_is_refused_not_waited_on_forever(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``optimize ... --executor ray --ray-cpus 3`` on a two-core machine: Ray never schedules a task of 3 CPUs, and
    the job sat at 0 items with nothing running until someone pressed Ctrl-C. Now it is refused, saying how many
    CPUs there are, no run is stored, and the Ray it started is shut down. (Bounded by a timeout: it used to hang.)"""
    import ray

    assert not ray.is_initialized()
    script = tmp_path / "agree.yaml"
    script.write_text('default: "I think (A)."\n')
    items = tmp_path / "items.jsonl"
    items.write_text('{"question": "Q?", "choices": ["a", "b", "c", "d"]}\n')
    db = tmp_path / "runs.db"
    too_many = str((os.cpu_count() or 1) + 1)
    args = ["optimize", "dylan_mmlu", "--data", str(items), "--top-k", "3", "-m", f"scripted:{script}"]
    args += ["--db", f"sqlite:///{db}", "--executor", "ray", "--ray-cpus", too_many, "--out", str(tmp_path / "t.yaml")]

    def stop(signum: int, frame: Any) -> None:
        raise TimeoutError("the job still waits for Ray to schedule an item it never will")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(240)
    try:
        code, _, stderr = run_cli(args, capsys, monkeypatch)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    said = " ".join(stderr.split())
    assert code == 2, stderr
    assert f"CPUs per item (--ray-cpus) {too_many} is more than the" in said and "give at most" in said
    with Store(f"sqlite:///{db}") as store:
        assert store.list_runs() == []
    assert not ray.is_initialized()
