"""Defects a QA pass on graph authoring left: the numbers ``agentmesh run`` shows against the store's, stop reasons
that read as if a node's stop policy ended a run that simply completed, and spec problems reported only on a
second ``graph validate``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentmesh.parsers import Parsed, register_parser
from agentmesh.runtime.context import CALL_KINDS
from agentmesh.store import Store
from tests._cli import run_cli


@register_parser("test_qa_followup_raises")
def _raises(text: str) -> Parsed:
    raise KeyError("no such field")


@register_parser("test_qa_followup_wrong_type")
def _wrong_type(text: str) -> Parsed:
    return 42  # type: ignore[return-value]


@pytest.mark.parametrize("parser", ["test_qa_followup_raises", "test_qa_followup_wrong_type"])
def test_a_run_failed_by_its_first_calls_parser_shows_the_call_the_store_holds(
    parser: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary line said "0 calls" (the call's event was never sent, its parser failing first) while the store
    and the next line ("its 1 recorded calls") said 1; the row said "no answer" with no reply."""
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "name: pg\ninputs: {question: {type: string}}\n"
        f"agents:\n  a: {{prompt: '{{{{ question }}}}', parser: {parser}}}\n"
        "nodes:\n  c: {op: call, agent: a}\n"
    )
    (tmp_path / "s.yaml").write_text('default: "42"\n')
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    monkeypatch.setenv("COLUMNS", "200")
    args = ["run", str(graph), "-i", "question=hi", "-m", f"scripted:{tmp_path / 's.yaml'}", "--db", db]
    code, out, err = run_cli(args, capsys, monkeypatch)
    assert code != 0 and f"parser '{parser}' failed on its reply" in err
    with Store(db) as store:
        (record,) = store.list_runs()
        stored = sum(1 for e in store.events(record.id) if e.kind in CALL_KINDS)
    assert stored == 1
    assert re.search(r" · 1 call · ", out), out
    assert " 0 calls" not in out
    assert "its 1 recorded calls" in " ".join(err.split())
    assert f"parser '{parser}' failed" in " ".join(out.split())  # the row says what happened to the call
