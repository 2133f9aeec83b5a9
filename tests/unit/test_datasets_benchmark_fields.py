"""The published files of the benchmarks the README names are read as they come: MATH-500's lines (MATH's fields
plus ``answer``, ``subject`` and ``unique_id``) and MMLU-Pro's (ten options A-J, with ``question_id``,
``answer_index``, ``cot_content`` and ``src``) were refused as "unknown input(s) unique_id" and "question_id,
answer_index, cot_content, src" before any run, by ``optimize``, ``calibrate`` and ``run --input-file`` alike."""

from __future__ import annotations

import json
from pathlib import Path

from agentmesh.datasets import read_items
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
