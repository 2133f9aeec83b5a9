"""The published files of the benchmarks the README names are read as they come: MATH-500's lines (MATH's fields
plus ``answer``, ``subject`` and ``unique_id``) and MMLU-Pro's (ten options A-J, with ``question_id``,
``answer_index``, ``cot_content`` and ``src``) were refused as "unknown input(s) unique_id" and "question_id,
answer_index, cot_content, src" before any run, by ``optimize``, ``calibrate`` and ``run --input-file`` alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentmesh.datasets import read_items
from agentmesh.errors import ConfigError
from agentmesh.runtime.arguments import resolve_graph


def test_math500_and_mmlu_pro_lines_are_read_with_their_gold_answers(tmp_path: Path) -> None:
    math500 = {
        "problem": "What is $1+1$?",
        "solution": "It is $\\boxed{2}$.",
        "answer": "2",
        "subject": "Prealgebra",
        "level": 1,
        "unique_id": "test/prealgebra/1.json",
    }
    path = tmp_path / "math500.jsonl"
    path.write_text(json.dumps(math500) + "\n")
    (item,) = read_items(path, resolve_graph("magicore"))
    assert item.inputs["question"] == "What is $1+1$?" and item.gold == "2"
    assert item.extra["unique_id"] == "test/prealgebra/1.json"

    options = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
    pro = {
        "question_id": 70,
        "question": "Which?",
        "options": options,
        "answer": "I",
        "answer_index": 8,
        "cot_content": "",
        "category": "law",
        "src": "ori_mmlu-jurisprudence",
    }
    path = tmp_path / "mmlu_pro.jsonl"
    path.write_text(json.dumps(pro) + "\n")
    (item,) = read_items(path, resolve_graph("dylan_mmlu"))
    assert item.inputs == {"question": "Which?", "choices": options} and item.gold == "I"


def test_a_json_array_file_is_named_as_such_not_as_a_bad_line_each(tmp_path: Path) -> None:
    """A ``.json`` export (one array, on one line or indented) was refused as "expected a JSON object of inputs,
    got list", or as "14 bad lines" of an indented array, neither saying that the file is not JSON Lines."""
    lines = [{"question": f"Q{n}?", "choices": ["a", "b"], "answer": "A"} for n in range(2)]
    for name, text in (("flat.json", json.dumps(lines)), ("indented.json", json.dumps(lines, indent=2))):
        path = tmp_path / name
        path.write_text(text + "\n")
        with pytest.raises(ConfigError) as caught:
            read_items(path, resolve_graph("dylan_mmlu"))
        said = str(caught.value)
        assert said.startswith(
            f"{path}: one JSON array of 2 value(s), not JSON Lines; expected one JSON object per line"
        ), said
        assert "bad lines" not in said and f"> {path.stem}.jsonl" in said
    path = tmp_path / "lines.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert len(read_items(path, resolve_graph("dylan_mmlu"))) == 2
