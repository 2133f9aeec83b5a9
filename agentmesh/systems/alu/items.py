"""The data an ALU eval reads (alu.md §9.1): QA and multiple-choice items from JSONL, the targets the forget items
name, and the prompt a multiple-choice item is asked as.

Apart from the runs and the metrics because it is the eval's input, read and checked before anything runs: every
line of a data file is checked here, so a bad file costs no model call and its errors name the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agentmesh.spec.checks import did_you_mean
from agentmesh.systems.alu.registry import read_text
from agentmesh.systems.alu.targets import Target, TargetSnapshot, normalize

__all__ = [
    "McqItem",
    "QAItem",
    "Split",
    "load_mcq_jsonl",
    "load_qa_jsonl",
    "mcq_question",
    "numbered_mcq_jsonl",
    "numbered_qa_jsonl",
    "target_of",
    "targets_from_items",
]

Split = Literal["forget", "retain"]
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MCQ_KEYS = ("id", "question", "choices", "answer", "subject", "split")
_MCQ_FORMAT = "id, question, choices, answer, and optionally subject and split ('forget' or 'retain')"


@dataclass(frozen=True)
class QAItem:
    """One QA item (§9.1); ``target`` names the forget item's target (a name or an alias of one)."""

    id: str
    question: str
    answer: str
    split: Split
    target: str | None = None


@dataclass(frozen=True)
class McqItem:
    """One multiple-choice item (§9.1); ``answer`` is a letter or a 0-based option index."""

    id: str
    question: str
    choices: tuple[str, ...]
    answer: str | int
    subject: str | None = None
    split: Split = "forget"


def _jsonl(path: str | Path) -> Iterable[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(read_text(path).split("\n"), 1):  # not splitlines(): U+2028 may be in a string
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: not JSON ({exc})") from exc
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object")
        yield number, record


def load_qa_jsonl(path: str | Path) -> list[QAItem]:
    """QA items; errors name the file and line. Forget items must name their target."""
    return [item for _line, item in numbered_qa_jsonl(path)]


def numbered_qa_jsonl(path: str | Path) -> list[tuple[int, QAItem]]:
    """:func:`load_qa_jsonl`'s items, each with its line in the file: what ``eval alu --json`` traces a run to."""
    out: list[tuple[int, QAItem]] = []
    for number, r in _jsonl(path):
        split = r.get("split")
        if split is None:
            raise ValueError(f"{path}:{number}: missing field 'split' ('forget' or 'retain')")
        if split not in ("forget", "retain"):
            raise ValueError(f"{path}:{number}: split must be 'forget' or 'retain', got {split!r}")
        if split == "forget" and not r.get("target"):
            raise ValueError(f"{path}:{number}: a forget item needs 'target'")
        missing = [key for key in ("id", "question", "answer") if key not in r]
        if missing:
            raise ValueError(f"{path}:{number}: missing field {missing[0]!r}")
        # text, checked here: a null question was asked as "None", and a target that is not a string was a
        # traceback from the target matching
        for key in ("question", "answer", "target"):
            value = r.get(key)
            if key == "target" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, str | int | float) or not str(value).strip():
                raise ValueError(f"{path}:{number}: {key!r} must be non-empty text, got {value!r}")
        target = r.get("target")
        item = QAItem(
            str(r["id"]), str(r["question"]), str(r["answer"]), split, None if target is None else str(target)
        )
        out.append((number, item))
    return out


def load_mcq_jsonl(path: str | Path) -> list[McqItem]:
    """Multiple-choice items (:func:`numbered_mcq_jsonl` without their lines)."""
    return [item for _line, item in numbered_mcq_jsonl(path)]


def numbered_mcq_jsonl(path: str | Path) -> list[tuple[int, McqItem]]:
    """Multiple-choice items, each with its line in the file; errors name the file and line. Every line is
    checked here, before any run: a ``choices`` that is not a list was a traceback, and an answer that is no
    option's letter or index, a split other than forget/retain, or more options than letters were taken and only
    skewed the accuracies.

    ``split`` is optional (alu.md §9.1's multiple-choice format has none: a WMDP-style file is all forget), so a
    line without it is a forget item, but only in a file that gives no split at all: in one whose other lines give
    it, a line without it is refused, as is a key that is a misspelling of one the line lacks (``"spilt":
    "retain"`` was counted as forget, silently). Other keys (a source, an index kept from an export) are ignored."""
    records = list(_jsonl(path))
    split_on = next((number for number, r in records if "split" in r), None)
    out: list[tuple[int, McqItem]] = []
    for number, r in records:
        where = f"{path}:{number}"
        for key in r:
            if key not in _MCQ_KEYS and (fix := did_you_mean(key, [k for k in _MCQ_KEYS if k not in r])):
                raise ValueError(f"{where}: unknown key {key!r}; {fix}a multiple-choice line has {_MCQ_FORMAT}")
        if split_on is not None and "split" not in r:
            raise ValueError(
                f"{where}: no 'split', while line {split_on} gives one; in a file that splits its items every line "
                "needs 'split': 'forget' or 'retain' (a line without it is read as forget only in a file with no "
                "split at all)"
            )
        missing = [key for key in ("id", "question", "choices", "answer") if key not in r]
        if missing:
            raise ValueError(f"{where}: missing field {missing[0]!r}")
        question, choices = r["question"], r["choices"]
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"{where}: 'question' must be non-empty text, got {question!r}")
        if not isinstance(choices, list) or not 2 <= len(choices) <= len(_LETTERS):
            raise ValueError(f"{where}: 'choices' must be a list of 2 to {len(_LETTERS)} options, got {choices!r}")
        if not all(isinstance(c, str | int | float) and not isinstance(c, bool) for c in choices):
            raise ValueError(f"{where}: every option in 'choices' must be text, got {choices!r}")
        answer = r["answer"]
        if isinstance(answer, bool) or not isinstance(answer, int | str):
            raise ValueError(f"{where}: 'answer' must be a letter or a 0-based option index, got {answer!r}")
        if isinstance(answer, int):
            if not 0 <= answer < len(choices):
                raise ValueError(f"{where}: answer index {answer} is outside 0..{len(choices) - 1}")
        else:
            answer = answer.strip().strip("()").strip().upper()
            if answer not in _LETTERS[: len(choices)]:
                raise ValueError(
                    f"{where}: answer {r['answer']!r} is not one of the options' letters "
                    f"{', '.join(_LETTERS[: len(choices)])}"
                )
        split = r.get("split", "forget")
        if split not in ("forget", "retain"):
            raise ValueError(f"{where}: split must be 'forget' or 'retain', got {split!r}")
        subject = r.get("subject")
        out.append(
            (
                number,
                McqItem(
                    str(r["id"]),
                    str(r["question"]),
                    tuple(str(c) for c in choices),
                    answer,
                    None if subject is None else str(subject),
                    split,
                ),
            )
        )
    return out


def targets_from_items(items: Sequence[QAItem]) -> list[Target]:
    """Targets derived from the forget items' ``target`` values (ids 1.. in order of first appearance)."""
    names: dict[str, str] = {}
    for item in items:
        if item.split == "forget" and item.target and normalize(item.target) not in names:
            names[normalize(item.target)] = item.target
    return [Target(i, name) for i, name in enumerate(names.values(), 1)]


def target_of(item: QAItem, snapshot: TargetSnapshot) -> Target | None:
    """The target a QA item names: the one whose name is spelt as the item's ``target``, else the one whose
    name or an alias occurs earliest in it; ``Target(0, <the name>)`` when none does (a name in no target record);
    ``None`` for an item naming none (a retain item)."""
    if not item.target:
        return None
    hits = snapshot.index.hits(item.target)
    wanted = normalize(item.target)
    for target in snapshot.targets:  # the exact name first, then any alias match
        if normalize(target.name) == wanted:
            return target
    return snapshot.by_id(hits[:1])[0] if hits else Target(0, item.target)


def mcq_question(item: McqItem) -> str:
    """The prompt text of a multiple-choice item: the question, lettered options, and the answer format."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    options = "\n".join(f"{letters[i]}) {c}" for i, c in enumerate(item.choices))
    return f"{item.question}\n{options}\nAnswer with the letter of the correct option, as (X)."
