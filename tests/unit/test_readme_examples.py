"""What a user meets after running the README's example scripts, checked as they would do it.

``examples/compare_models.py`` stores its calls as a run of its own (graph "compare", no graph spec): ``agentmesh
replay`` of it said only "has no stored graph spec to replay", which reads like a damaged store.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agentmesh.errors import ConfigError
from agentmesh.models import CallContext, ModelRequest, get_model
from agentmesh.runtime import StoreRecorder
from agentmesh.runtime.replay import replay
from agentmesh.store import RunStatus, Store


def _a_run_a_script_stored(db: str, script: Path) -> str:
    """A run stored the way examples/compare_models.py stores one: its own record and a recorder, no graph."""

    async def ask() -> str:
        with Store(db) as store:
            run_id = store.create_run("compare", {"models": ["scripted"], "questions": ["What is 17*3?"]})
            recorder = StoreRecorder(store, run_id)
            client = get_model(f"scripted:{script}")
            context = CallContext(run_id=run_id, node="compare", agent="scripted", call_index=0)
            await client.complete(ModelRequest.of("What is 17*3?", max_tokens=16), context, observer=recorder)
            await recorder.settle()
            store.finish_run(run_id, RunStatus.SUCCEEDED, stop_reason="completed: all questions asked")
            await client.aclose()
            return run_id

    return asyncio.run(ask())


def test_replaying_a_run_a_script_stored_says_what_it_is_and_what_still_works(tmp_path: Path) -> None:
    script = tmp_path / "answers.yaml"
    script.write_text("rules:\n  - {template: '51'}\n")
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    run_id = _a_run_a_script_stored(db, script)
    with pytest.raises(ConfigError) as caught:
        replay(run_id, store=db)
    message = str(caught.value)
    assert f"run {run_id} ('compare') has no stored graph spec to replay" in message
    assert "not made by running a graph" in message
    assert f"agentmesh show {run_id[:12]}" in message and f"replay:{run_id[:12]}" in message

    # what the message offers does work: the recorded reply is served again to the same prompt, with no model
    async def served() -> str:
        with Store(db) as store:
            client = get_model(f"replay:{run_id}", store=store)
            answer = await client.complete(ModelRequest.of("What is 17*3?", max_tokens=16))
            await client.aclose()
            return answer.text

    assert asyncio.run(served()) == "51"
