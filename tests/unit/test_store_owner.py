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
from agentmesh.store.schema import runs

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


def test_a_run_is_claimed_by_one_resume_only_and_a_claim_can_be_given_back(tmp_path: Path) -> None:
    """Two resumes at once both read a run as interrupted (or left running by a dead process) and both resumed it,
    its calls made twice into one record. The claim is atomic: the second one, holding the same stale view of the
    run, is refused; a resume that fails before it begins gives the run back as it was."""
    with Store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        cut = store.create_run("g", {})
        store.finish_run(cut, "interrupted", stop_reason="interrupted")
        seen = store.get_run(cut)
        assert store.claim_run(seen) is True
        assert store.claim_run(seen) is False  # the second resume
        claimed = store.get_run(cut)
        assert claimed.status == "running" and claimed.meta["owner"] == current_owner()
        assert store.release_claim(seen) is True
        back = store.get_run(cut)
        assert (back.status, back.stop_reason, back.finished_at) == ("interrupted", "interrupted", seen.finished_at)
        assert store.release_claim(seen) is False  # not running under this process any more: left alone

        killed = store.create_run("g", {})  # left running by a SIGKILLed process
        gone = {**current_owner(), "pid": 2**22 + 1}
        with store._writer.begin() as conn:
            conn.execute(runs.update().where(runs.c.id == killed).values(meta={"owner": gone}))
        seen = store.get_run(killed)
        assert store.claim_run(seen) is True and store.claim_run(seen) is False
        assert store.release_claim(seen) is True
        assert store.get_run(killed).meta["owner"] == gone
