"""MAgICoRe's calibration on the real SmolLM2 (served by llama-cpp-python's OpenAI-compatible server): what it says
about rewards that are fallbacks rather than judgements agrees with what the model actually replied.

SmolLM2-135M rarely writes the ORM judge's ``NN [END]``; each such reply counts 0.5. The calibration used to print
mu and sigma (or refuse a sigma of 0 with "all rewards are 0.5") with no word of that; now each problem records
whether its ORM judge reply could be read, and the summary (or the refusal) counts them. Here every stored ORM
judge reply is parsed again with the judge card's own parser, and the record must agree with it.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from agentmesh.datasets import read_items
from agentmesh.errors import AgentmeshError
from agentmesh.runtime.arguments import resolve_graph
from agentmesh.runtime.outcome import stored_outputs
from agentmesh.store import Store
from agentmesh.systems.magicore import calibrate
from agentmesh.systems.magicore.calibration import calibration_graph
from tests.integration.test_magicore_real_model import small

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python is not installed: pip install 'agentmesh[local]' to run the real-model tests",
    ),
]


def test_the_unreadable_judge_replies_a_calibration_reports_are_the_ones_smollm2_wrote(
    llama_server_url: str, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    data = tmp_path / "problems.jsonl"
    questions = ["What is 17*3?", "What is 2+5?", "Tom has 3 apples and buys 4 more. How many apples does he have?"]
    data.write_text("".join(json.dumps({"question": q}) + "\n" for q in questions), encoding="utf-8")
    spec = small(resolve_graph("magicore"))
    items = read_items(data, spec)
    try:
        found = calibrate(spec, items, model=f"openai:smollm2@{llama_server_url}", store=db)
        said, flagged = found.fallbacks(), {i.line: i.orm_unreadable for i in found.items}
    except AgentmeshError as exc:  # sigma 0: every reward equal, which SmolLM2 often gives
        said, flagged = str(exc), {}
    card = spec.agents["orm_judge"]
    unreadable: dict[int, bool] = {}
    with Store(db) as store:
        for record in store.list_runs(graph="magicore_calibration"):
            line = int(record.meta["calibrate"]["line"])
            (event,) = [e for e in store.events(record.id, kind="model_call") if e.agent == "orm_judge"]
            parsed = card.parser(str(event.response["choices"][0]["text"]))
            unreadable[line] = not parsed.ok or parsed.value is None
            outputs = stored_outputs(store, calibration_graph(spec), record.id)
            assert outputs is not None
            assert outputs["magicore"]["magicore"]["unreadable"]["orm"] is unreadable[line]
    assert sorted(unreadable) == [1, 2, 3]
    if flagged:
        assert flagged == unreadable
    lines = [line for line, bad in sorted(unreadable.items()) if bad]
    if lines:  # what SmolLM2 usually gives: said, with its count and lines
        shown = ", ".join(map(str, lines))
        expected = f"an ORM judge reply with no score it could read (counted 0.5): {len(lines)} of 3 (line"
        assert expected in said and f"{shown})" in said, said
    else:
        assert "ORM judge reply" not in said
