"""What ``agentmesh replay`` says when it cannot reproduce a call whose messages read the same as the record's.

Found following the README as a new user: a run whose question quoted an ``sk-...`` key replays "only up to that
call" (README, "Looking back"), as documented, but the divergence blamed an edit that was never made ("the graph,
its cards or its inputs changed since the run") and then listed the sampling twice, as if it had changed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentmesh.errors import AgentmeshError
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


def test_a_running_run_s_replay_note_counts_the_calls_it_made_so_far(tmp_path: Path) -> None:
    """The note of a replay of a run still marked running said "after 0 calls" beside a ``show`` of its calls: a
    run's stored totals are summed when it ends, so the note read the zeros of a run in progress."""
    import sqlalchemy as sa

    from agentmesh.store import Store
    from agentmesh.store.schema import runs

    db = f"sqlite:///{tmp_path / 'runs.db'}"
    # round 1 answered, then no rule left for round 2: the run fails after 3 calls
    rules = [{"round": 1, "responses": ["\\boxed{51}", "\\boxed{52}", "\\boxed{53}"]}]
    with pytest.raises(AgentmeshError):
        run("debate", {"question": "What is 17*3?"}, model=ScriptedModel(rules=rules), store=db)
    with Store(db) as store:  # as it was while its process ran it: marked running, no totals summed yet
        (record,) = store.list_runs()
        calls = record.totals["calls"]  # its 3 answers and round 2's failed calls
        assert record.status == "failed" and calls > 3
        zero = {k: 0 if type(v) in (int, float) else v for k, v in record.totals.items()}
        with store.engine.begin() as conn:
            conn.execute(
                sa.update(runs)
                .where(runs.c.id == record.id)
                .values(status="running", totals=zero, stop_reason=None, error=None)
            )
    report = replay(record.id, store=db)
    # (it reaches where the run stopped: no divergence since the replay of a run cut short says so)
    assert report.stopped_at is not None and report.served == 3
    assert report.note is not None and f"is running after {calls} calls" in report.note, report.note


def test_a_run_cut_short_replays_to_where_it_stopped_and_nothing_diverged(tmp_path: Path, capsys) -> None:
    """``agentmesh replay`` of a failed or interrupted run printed first, in red, "diverged ... the graph or its
    inputs changed since the run", then a note that the run had simply stopped: the first line was false. The replay
    now says it reached where the run stopped; a real divergence of such a run (an edited prompt) still diverges."""
    from agentmesh.cli.inspect import _print_replay

    db = f"sqlite:///{tmp_path / 'runs.db'}"
    graph_file = tmp_path / "debate.yaml"
    text = dump_graph(resolve_graph("debate"))
    graph_file.write_text(text)
    rules = [{"round": 1, "responses": ["\\boxed{51}", "\\boxed{52}", "\\boxed{53}"]}]
    with pytest.raises(AgentmeshError):  # no rule for round 2: it fails after round 1's 3 calls
        run(graph_file, {"question": "What is 17*3?"}, model=ScriptedModel(rules=rules), store=db)
    from agentmesh.store import Store

    with Store(db) as store:
        (record,) = store.list_runs()
    report = replay(record.id, store=db)
    assert report.divergence is None and report.stopped_at == ("debate", "debater", 2, 0), report.divergence
    assert report.served == 3 and not report.identical
    assert report.note is not None and report.note.startswith(f"run {record.id[:12]} is failed")
    _print_replay(report)
    said = " ".join(capsys.readouterr().out.split())
    assert "diverged after" not in said and "changed since the run" not in said, said
    assert "stopped where the run stopped: 3 calls served as recorded, none diverged" in said
    assert "round 2, call 0) was never made by the run" in said and f"agentmesh resume {record.id[:12]}" in said

    assert "temperature: 0.7" in text  # an edit before where it stopped is a divergence, as for any run
    graph_file.write_text(text.replace("temperature: 0.7", "temperature: 0.2"))
    report = replay(record.id, store=db)
    assert report.divergence is not None and report.stopped_at is None and report.note is None
    _print_replay(report)
    said = " ".join(capsys.readouterr().out.split())
    assert "diverged after 0 served calls" in said and "changed since the run" in said and "note:" not in said
