"""A human label written as a JSON boolean (APR's 0/1 verdicts as ``true``/``false``) was refused as "no human
label 'human'", on a line that has one: it now says what the label is and what to write instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentmesh.datasets import read_items
from agentmesh.errors import ConfigError
from agentmesh.runtime.arguments import resolve_graph
from agentmesh.systems.sejury.jury import human_labels


def test_a_boolean_label_is_named_as_such_not_as_missing(tmp_path: Path) -> None:
    path = tmp_path / "apr.jsonl"
    lines = [{"query": "Fix it.", "artifact": f"patch {n}", "reference": "ref", "task": "patch"} for n in range(3)]
    lines[0]["human"], lines[1]["human"] = 1, True
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    items = read_items(path, resolve_graph("sejury"), keep={"human"})
    with pytest.raises(ConfigError) as caught:
        human_labels(items, "human", path)
    said = str(caught.value)
    assert said == f"{path}:2: human label 'human' is true; expected a number (for a yes/no verdict, 1 or 0)", said
    with pytest.raises(ConfigError, match=rf"{path.name}:3: no human label 'human'"):
        human_labels(items[2:], "human", path)
