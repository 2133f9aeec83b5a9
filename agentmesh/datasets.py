"""Benchmark data sets as graph inputs: MMLU-, MATH/GSM8K- and HumanEval-style JSONL lines, and their gold answers.

People bring their questions in the formats the benchmarks ship, not in a graph's input names. A line is read
as the graph's inputs when its keys already are; otherwise the known shapes are recognised and mapped:

- **MMLU-style**: ``question`` + ``choices`` (or ``options``), or the CSV-derived ``input`` + ``A``/``B``/``C``/``D``
  (+ ``target``), the form DyLAN's and lm-eval's MMLU files use; gold ``answer`` (a letter or a 0-based index)
  or ``target``.
- **MATH-style**: ``problem`` + ``solution`` (gold: the solution's last ``\\boxed{}``); **GSM8K**: ``question`` +
  ``answer`` ending ``#### 72`` (gold after ``####``), given to a graph that asks for ``problem``.
- **HumanEval-style**: ``task_id``, ``prompt``, ``entry_point``, ``test``, ``canonical_solution``.

Keys the graph does not take (gold answers, ids, metadata) are kept aside as the item's ``extra``, so labelled
data can be scored later without confusing the graph. Every line is checked before any run starts, and an error
names the file, the line and what was expected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentmesh.errors import ConfigError
from agentmesh.parsers.math import last_boxed_only_string, strip_math_string
from agentmesh.spec.graph import GraphSpec

__all__ = ["Item", "gold_answer", "gold_problem", "item_inputs", "matches_gold", "read_items"]

LETTERS = "ABCDEFGHIJ"

# graph input -> keys of the known formats that can fill it, in order of preference
_ALIASES: dict[str, tuple[str, ...]] = {
    "question": ("question", "input", "problem", "prompt"),
    "problem": ("problem", "question", "input"),
    "choices": ("choices", "options"),
    "prompt": ("prompt",),
}


# keys the benchmark formats carry besides a graph's inputs: kept aside, never an "unknown input" (MATH-500 adds
# unique_id to MATH's fields; MMLU-Pro, ten options A-J, has question_id, answer_index, cot_content and src)
_METADATA = frozenset(
    {
        "unique_id",
        "question_id",
        "answer_index",
        "cot_content",
        "src",
        "answer",
        "target",
        "solution",
        "task_id",
        "canonical_solution",
        "test",
        "entry_point",
        "id",
        "subject",
        "level",
        "type",
        "category",
        "label",
        "input",
        "options",
        "question",
        "problem",
        "prompt",
        "choices",
    }
)


@dataclass(frozen=True)
class Item:
    """One line of a data set: where it is, the graph's inputs, and everything else the line had."""

    line: int
    inputs: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def gold(self) -> str | None:
        """The line's reference answer, normalised like the parsers' keys, when it has one.

        Only from fields the graph does not take: a graph with an input named ``answer`` (a grader's) gets the
        line's ``answer`` as that input, and scoring its output against the same text would be meaningless. The
        inputs still help read it (an MMLU line's ``choices`` turn an option's text into its letter)."""
        given = {k: v for k, v in self.inputs.items() if k not in _GOLD_FIELDS}
        return gold_answer({**given, **self.extra})


#: How many bad lines of an input file an error lists.
_PROBLEMS_SHOWN = 10

_GOLD_FIELDS = frozenset({"answer", "target", "solution"})
"""The fields :func:`gold_answer` reads a reference answer from."""


def _letter_columns(data: Mapping[str, Any]) -> list[str] | None:
    letters = [c for c in LETTERS if c in data]
    if len(letters) >= 2 and letters == list(LETTERS[: len(letters)]):
        return [str(data[c]) for c in letters]
    return None


def item_inputs(
    data: Mapping[str, Any], spec: GraphSpec, keep: Collection[str] = ()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a data line into the graph's inputs (mapped from a known format) and the rest.

    ``keep`` names fields the caller reads besides the inputs (a calibration's human label): kept aside, like
    the known formats' metadata, rather than taken for a misspelt input."""
    inputs: dict[str, Any] = {}
    used: set[str] = set()
    for name in spec.inputs:
        if name in data:
            inputs[name] = data[name]
            used.add(name)
            continue
        if name == "choices":
            columns = _letter_columns(data)
            if columns is not None:
                inputs[name] = columns
                used.update(LETTERS[: len(columns)])
                continue
        for alias in _ALIASES.get(name, ()):
            if alias in data and alias not in used:
                inputs[name] = data[alias]
                used.add(alias)
                break
    extra = {k: v for k, v in data.items() if k not in used}
    unknown = sorted(k for k in extra if k not in _METADATA and k not in LETTERS and k not in keep)
    if unknown:  # most likely a misspelt input: say so rather than drop it
        inputs.update({k: extra.pop(k) for k in unknown})
    return inputs, extra


def gold_answer(data: Mapping[str, Any]) -> str | None:
    """The reference answer of a line in a known format, as a vote key (letter, normalised math, or None)."""
    if "solution" in data and isinstance(data["solution"], str):  # MATH
        boxed = last_boxed_only_string(data["solution"])
        if boxed is not None:
            inner = boxed[len("\\boxed{") : -1] if boxed.startswith("\\boxed{") else boxed
            return strip_math_string(inner)
    answer = data.get("answer", data.get("target"))
    if isinstance(answer, bool) or answer is None:
        return None
    if isinstance(answer, int):
        return (
            LETTERS[answer] if ("choices" in data or "options" in data) and 0 <= answer < len(LETTERS) else str(answer)
        )
    text = str(answer).strip()
    if "####" in text:  # GSM8K
        return strip_math_string(text.split("####")[-1].strip().replace(",", ""))
    if re.fullmatch(r"\(?[A-Ja-j]\)?", text):
        return text.strip("()").upper()
    options = data.get("choices", data.get("options"))
    texts = [str(o).strip() for o in options] if isinstance(options, list) else []
    if text in texts[: len(LETTERS)]:
        # the option's text rather than its letter ("Jupiter"), as some MMLU exports give it: the runs answer with
        # a letter, so the text never matched and every such item counted wrong
        return LETTERS[texts.index(text)]
    return strip_math_string(text)


def gold_problem(item: Item) -> str | None:
    """Why a multiple-choice line's reference answer names no option it has (``answer: "E"`` or ``3`` on a
    three-option question), else ``None``. Such an item can never be answered right: it was run and counted wrong
    without a word, lowering the accuracy a job or a batch reports for a typo in the data."""
    given = {k: v for k, v in item.inputs.items() if k not in _GOLD_FIELDS} | item.extra
    options = given.get("choices", given.get("options"))
    gold = item.gold
    if not isinstance(options, list) or not options or gold is None or gold not in LETTERS:
        return None
    if LETTERS.index(gold) < len(options):
        return None
    answer = given.get("answer", given.get("target"))
    last = LETTERS[min(len(options), len(LETTERS)) - 1]
    which = "" if str(answer).strip("() ").upper() == gold else f" (option {gold})"
    return (
        f"the reference answer {answer!r}{which} names no option: the line has {len(options)} (A-{last}); "
        "expected one of their letters, a 0-based index or an option's text"
    )


def matches_gold(answer: Any, gold: str) -> bool:
    """Whether a run's answer (a normalised vote key) is the item's reference answer: how a batch, an optimisation
    job and a batch's page score an item. No answer is never right."""
    return answer is not None and str(answer) == str(gold)


def _refuse_json_array(path: Path, text: str) -> None:
    """A whole file holding one JSON array (a ``.json`` export, one line or indented) is not JSON Lines: each line
    was read as an item, so it was refused as "expected a JSON object of inputs, got list" or as "62 bad lines"
    (one per line of the indented array), neither saying what was wrong with the file."""
    if not text.lstrip().startswith("["):
        return
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        return
    if isinstance(whole, list):
        raise ConfigError(
            f"{path}: one JSON array of {len(whole)} value(s), not JSON Lines; expected one JSON object per line "
            f'(convert it: python -c "import json,sys; [print(json.dumps(x)) for x in json.load(sys.stdin)]" '
            f"< {path.name} > {path.stem}.jsonl)",
            file=str(path),
        )


def read_items(
    path: str | Path,
    spec: GraphSpec,
    defaults: Mapping[str, Any] | None = None,
    keep: Collection[str] = (),
    *,
    limit: int | None = None,
) -> list[Item]:
    """Every line of a JSONL file as an :class:`Item`, all checked before anything runs.

    A batch that fails on line 900 after 899 runs were paid for is the failure this prevents: bad JSON, a line
    that is not an object, a missing or mistyped input all stop here, naming the line. With ``limit`` (``--limit
    N``), the first N items only: the lines after them are neither run nor read (a bad line past them refused
    the trial run of a large file's first few).
    """
    from agentmesh.runtime.arguments import check_inputs  # the runtime depends on spec only; keep this module light

    path = Path(path)  # a script's "items.jsonl" as well as a Path
    if path.is_dir():
        raise ConfigError(f"input file {path} is a directory; expected a JSONL file", file=str(path))
    if not path.is_file():
        raise ConfigError(f"input file {path} does not exist", file=str(path))
    try:  # read whole first: a file that is not UTF-8 would otherwise fail mid-iteration, as a traceback
        text = path.read_text(encoding="utf-8-sig")  # -sig: a BOM (Windows editors write one) is not JSON
    except UnicodeDecodeError as exc:
        bad_line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}:{bad_line}: not UTF-8 text (byte {exc.object[exc.start]:#04x}); save the file as UTF-8",
            file=str(path),
            line=bad_line,
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read input file {path}: {exc.strerror or exc}", file=str(path)) from None
    _refuse_json_array(path, text)
    items: list[Item] = []
    problems: list[tuple[int, str]] = []  # every bad line, reported together: a fix per attempt is slow going
    for lineno, line in enumerate(text.split("\n"), start=1):  # not splitlines(): U+2028 may sit inside a string
        if not line.strip():
            continue
        if limit is not None and len(items) + len(problems) >= limit:
            break
        try:
            data = json.loads(line.strip())
        except json.JSONDecodeError as exc:
            problems.append((lineno, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        if not isinstance(data, dict):
            problems.append((lineno, f"expected a JSON object of inputs, got {type(data).__name__}"))
            continue
        inputs, extra = item_inputs(data, spec, keep)
        try:
            checked = check_inputs(spec, {**(defaults or {}), **inputs})
        except ConfigError as exc:
            problems.append((lineno, str(exc)))
            continue
        item = Item(lineno, checked, extra)
        wrong = gold_problem(item)
        if wrong is not None:
            problems.append((lineno, wrong))
            continue
        items.append(item)
    if problems:
        shown = [f"{path}:{lineno}: {why}" for lineno, why in problems[:_PROBLEMS_SHOWN]]
        if len(problems) > _PROBLEMS_SHOWN:
            shown.append(f"... and {len(problems) - _PROBLEMS_SHOWN} more bad lines")
        hint = "a line holds the graph's inputs, or an MMLU-, MATH/GSM8K- or HumanEval-style record"
        head = f"{len(problems)} bad lines in {path} ({hint}); nothing was run:\n" if len(problems) > 1 else ""
        tail = "" if len(problems) > 1 else f" ({hint})"
        raise ConfigError(head + "\n".join(shown) + tail, file=str(path), line=problems[0][0])
    if not items:
        raise ConfigError(f"{path}: no items (expected one JSON object per line)", file=str(path))
    return items
