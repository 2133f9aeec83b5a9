"""Ctrl-C during a job whose progress heartbeat is on (off a terminal: stderr is a pipe here) still exits 130 at
once, and the heartbeat says nothing after the job says it was interrupted.

The heartbeat is a thread printing "still working" lines while the calls are slow (:mod:`agentmesh.cli._progress`);
a thread left running (or joined without being told to stop) would hold the process after the interrupt, or print
"still working" under "interrupted". A real child process, as a user's Ctrl-C reaches one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from agentmesh.spec.loader import dump_graph
from tests.unit.test_optimize import four_agent_graph, write_items

#: The command line with the heartbeat every second (60 s in use), as ``from agentmesh.cli import main`` runs it.
_MAIN = "from agentmesh.cli import _progress; _progress.HEARTBEAT_S = 1.0; from agentmesh.cli import main; main()"


def _read(stream: IO[bytes], into: list[str], beat: threading.Event) -> None:
    for raw in stream:
        line = raw.decode(errors="replace")
        into.append(line)
        if "still working" in line:
            beat.set()


def test_ctrl_c_while_the_heartbeat_is_on_exits_130_at_once_and_it_says_nothing_after(tmp_path: Path) -> None:
    graph = tmp_path / "team.yaml"
    graph.write_text(dump_graph(four_agent_graph()))
    script = tmp_path / "hanging.yaml"
    script.write_text('delay_s: 60\ndefault: "I think (A)."\n')
    args = ["optimize", str(graph), "--data", str(write_items(tmp_path / "items.jsonl", 2)), "--top-k", "2"]
    args += ["-m", f"scripted:{script}", "--db", f"sqlite:///{tmp_path / 'runs.db'}"]
    env = {k: v for k, v in os.environ.items() if k != "AGENTMESH_CONFIG"}
    child = subprocess.Popen(
        [sys.executable, "-c", _MAIN, *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stderr is not None
    err: list[str] = []
    beat = threading.Event()
    reader = threading.Thread(target=_read, args=(child.stderr, err, beat), daemon=True)
    reader.start()
    try:
        assert beat.wait(120), "no heartbeat: " + "".join(err[-20:])
        child.send_signal(signal.SIGINT)
        pressed = time.monotonic()
        child.wait(timeout=60)
        took = time.monotonic() - pressed
        reader.join(timeout=10)
    finally:
        child.kill()
    said = "".join(err)
    assert child.returncode == 130, said
    assert took < 10, f"{took:.1f} s from Ctrl-C to the exit: {said}"  # the calls wait 60 s: they were not awaited
    assert "Traceback" not in said, said
    stopped = next(i for i, line in enumerate(err) if line.startswith("interrupted: 0 of 2 items had finished"))
    assert any(
        "dylan_mmlu: still working · 0/2 items done · 0 model calls made so far" in line for line in err[:stopped]
    )
    assert not any("still working" in line for line in err[stopped:]), said
