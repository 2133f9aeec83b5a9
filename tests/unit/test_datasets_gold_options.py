"""A multiple-choice line whose reference answer names no option it has (``"answer": "E"`` on four options, or an
index past the last) is refused with the file's other bad lines, before any run: it was run, could never be
answered right, and was counted wrong without a word, lowering the accuracy ``optimize`` (and a batch) reported
for a typo in the data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentmesh.datasets import read_items
from agentmesh.errors import ConfigError
from agentmesh.optimize.items import as_items
from agentmesh.runtime.arguments import resolve_graph


def test_a_reference_answer_past_the_options_is_a_bad_line(tmp_path: Path) -> None:
    mmlu = resolve_graph("dylan_mmlu")
    path = tmp_path / "items.jsonl"
    lines = [
        {"question": "Fine?", "choices": ["w", "x", "y", "z"], "answer": "D"},
        {"question": "Typo?", "choices": ["w", "x", "y", "z"], "answer": "E"},
        {"question": "Index?", "choices": ["a", "b", "c"], "answer": 3},
        {"input": "Columns?", "A": "a", "B": "b", "target": "(C)"},
        {"question": "Text?", "choices": ["Mars", "Jupiter"], "answer": "Jupiter"},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(ConfigError) as caught:
        read_items(path, mmlu)
    said = str(caught.value)
    assert said.startswith(f"3 bad lines in {path}"), said
    assert f"{path}:2: the reference answer 'E' names no option: the line has 4 (A-D)" in said, said
    assert f"{path}:3: the reference answer 3 (option D) names no option: the line has 3 (A-C)" in said, said
    assert f"{path}:4: the reference answer '(C)' names no option: the line has 2 (A-B)" in said, said
    assert ":1:" not in said and ":5:" not in said

    path.write_text(json.dumps(lines[0]) + "\n" + json.dumps(lines[4]) + "\n")
    assert [item.gold for item in read_items(path, mmlu)] == ["D", "B"]
    with pytest.raises(ConfigError, match=r"items\[1\]: the reference answer 'E' names no option"):
        as_items(lines[:2], mmlu)
