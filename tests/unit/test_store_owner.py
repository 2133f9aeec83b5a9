"""A run records the process running it, so that a run left ``running`` by a dead process can be told from one at
work (agentmesh.store.owner)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from agentmesh.store import Store
from agentmesh.store.owner import current_owner, describe_owner, owner_alive

OWNER_OF_A_CHILD = "import json; from agentmesh.store.owner import current_owner; print(json.dumps(current_owner()))"


def test_this_process_is_alive_and_a_finished_one_is_not() -> None:
    me = current_owner()
    assert me["pid"] == os.getpid() and isinstance(me["host"], str) and me["host"]
    assert isinstance(me["started"], int)  # Linux: /proc/<pid>/stat
    assert owner_alive(me) is True

    child = json.loads(subprocess.run([sys.executable, "-c", OWNER_OF_A_CHILD], capture_output=True, text=True).stdout)
    assert child["pid"] != me["pid"]
    assert owner_alive(child) is False  # it has exited


def test_a_reused_process_id_is_not_the_owner() -> None:
    """Process ids are reused: the same id with another start time is another process, so the owner is gone."""
    assert owner_alive({**current_owner(), "started": current_owner()["started"] + 1}) is False


def test_an_owner_on_another_host_or_none_recorded_is_unknown() -> None:
    assert owner_alive({**current_owner(), "host": "some-other-host.example"}) is None
    assert owner_alive(None) is None  # a run stored before owners were recorded
    assert owner_alive({"host": current_owner()["host"], "pid": "x"}) is None
    assert describe_owner({"host": "h", "pid": 7}) == "process 7 on h"


def test_a_run_is_owned_by_the_process_that_created_it_then_by_the_one_resuming_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    create = f"from agentmesh.store import Store\nwith Store({url!r}) as s: print(s.create_run('g', {{}}))"
    done = subprocess.run([sys.executable, "-c", create], capture_output=True, text=True, check=True)
    run_id = done.stdout.strip()
    with Store(url) as store:
        left = store.get_run(run_id)
        assert left.status == "running" and owner_alive(left.meta["owner"]) is False  # its process has exited
        store.mark_running(run_id)  # a resume takes it over
        taken = store.get_run(run_id)
        assert taken.meta["owner"]["pid"] == os.getpid() and owner_alive(taken.meta["owner"]) is True
