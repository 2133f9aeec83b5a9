"""What ``agentmesh replay`` says when it cannot reproduce a call whose messages read the same as the record's.

Found following the README as a new user: a run whose question quoted an ``sk-...`` key replays "only up to that
call" (README, "Looking back"), as documented, but the divergence blamed an edit that was never made ("the graph,
its cards or its inputs changed since the run") and then listed the sampling twice, as if it had changed.
"""

from __future__ import annotations

from pathlib import Path

from agentmesh.models import ScriptedModel
from agentmesh.runtime import run
from agentmesh.runtime.arguments import resolve_graph
from agentmesh.runtime.replay import replay
from agentmesh.spec.loader import dump_graph

KEY = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd"


def test_a_prompt_that_quoted_a_key_is_named_as_the_reason_the_replay_stops(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    result = run(
        "debate",
        {"question": f"My key is {KEY}; what is 17*3?"},
        model=ScriptedModel(default="\\boxed{51}"),
        store=db,
    )
    assert result.status == "succeeded"
    report = replay(result.run_id, store=db)
    assert report.divergence is not None and report.served == 0
    message = str(report.divergence)
    assert "first divergence: node 'debate', agent 'debater', round 1, call 0" in message
    assert "quoted a secret" in message and "[redacted]" in report.divergence.diff
    assert "changed since the run" not in message  # nothing was edited
    assert "sampling" not in report.divergence.diff  # nor did the sampling change
    assert KEY not in message and KEY[:12] not in message


def test_a_sampling_change_names_only_the_fields_that_changed(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    graph_file = tmp_path / "debate.yaml"
    text = dump_graph(resolve_graph("debate"))
    graph_file.write_text(text)
    result = run(graph_file, {"question": "What is 17*3?"}, model=ScriptedModel(default="\\boxed{51}"), store=db)
    assert "temperature: 0.7" in text
    graph_file.write_text(text.replace("temperature: 0.7", "temperature: 0.2"))
    report = replay(result.run_id, store=db)
    assert report.divergence is not None
    assert "changed since the run" in str(report.divergence)
    # the recorded request spells unset fields as None: they are no change, and are not listed as one
    assert report.divergence.diff == "(same messages; sampling temperature recorded 0.7, now 0.2)"
