"""``agentmesh eval alu`` (alu.md §9.3) end to end on a scripted model and the shipped offline data (§9.5):
the printed table's rows and exact metric values, every question a stored run, a second invocation that reuses
them all without a model call, ``--json``, ``--mcq``, bad input refused before any call, and the optional judge
leak rate (``--judge``: every judgement a stored, reused run; unparsed verdicts counted apart)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.messages import CallContext
from agentmesh.models.registry import register_provider
from agentmesh.store import RunStatus, Store
from agentmesh.systems.alu.data import demo_mcq_items, demo_qa_items, demo_targets
from agentmesh.systems.alu.items import load_mcq_jsonl
from agentmesh.systems.alu.pipeline import DEFAULT_REFUSAL
from tests._cli import run_cli

ITEMS = demo_qa_items()
GOLD = {i.question: i.answer for i in ITEMS}
TARGET = {i.question: i.target for i in ITEMS}
COMPOSED = "I would rather not say."
UNKNOWN = "I do not know."
FRENCH = {f"(fr) {i.question}": i.question for i in ITEMS if i.split == "forget"}
KS_ALL_APART = 2 / 924  # exact two-sided KS p-value of six 0s against six 1s: 2 / C(12, 6)


class Answers:
    """The scripted answer pattern, by agent. The answering agents answer the demo question asked last in the
    prompt (after ICUL's demonstrations and many-shot exchanges, each "Question: " or "User: "):

    * ``vanilla``: the gold answer, followed by the target's name on forget questions (a leak); a masked question
      (no demo question in it) gets "I do not know.", and a multiple-choice one "The answer is (B).";
    * ``guarded`` (prompt guard): the refusal on forget questions, else as vanilla;
    * ``icul``: the gold answer alone (the demonstrations worked); a French question is answered as its
      English original;
    * ALU's auditor says "None" (so only a lexical hit in the vanilla answer flags), the eraser gives three
      rewrites, the critic rates them 5, 5, 2 (top-3 mean 4 = tau: composed), the composer says ``COMPOSED``;
    * the leak ``judge`` says "Yes." when the system's answer contains the gold answer, else "No.", unless
      ``verdicts`` gives its reply for the question.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.broken: str | None = None
        """A question that the vanilla agent fails on (a provider error)."""
        self.verdicts: dict[str, str] = {}
        """The judge's reply by question, instead of its rule."""
        self.judge_broken: str | None = None
        """A question that the judge fails on (a provider error)."""

    def __call__(self, request: ModelRequest, context: CallContext) -> str:
        agent = str(context.agent)
        self.calls.append(agent)
        prompt = request.messages[-1].content
        if agent == "judge":
            shown = dict(re.findall(r"^(Question|Gold answer|System's answer): (.*)$", prompt, re.MULTILINE))
            if shown["Question"] == self.judge_broken:
                raise RuntimeError("judge down")
            if shown["Question"] in self.verdicts:
                return self.verdicts[shown["Question"]]
            return "Yes." if shown["Gold answer"] in shown["System's answer"] else "No."
        if self.broken is not None and self.broken in prompt:
            raise RuntimeError("provider down")
        if agent in ("vanilla", "guarded", "icul"):
            if "Answer with the letter" in prompt:
                return "The answer is (B)."
            asked = FRENCH.get(re.split(r"Question: |User: ", prompt)[-1].strip(), prompt)
            asked = re.split(r"Question: |User: ", asked)[-1]
            found = [q for q in GOLD if q in asked]
            if not found:
                return UNKNOWN
            question = found[0]
            target = TARGET[question]
            if agent == "guarded" and target:
                return DEFAULT_REFUSAL
            if agent == "vanilla" and target:
                return f"{GOLD[question]} ({target})"
            return GOLD[question]
        return {
            "auditor": "None",
            "eraser": json.dumps(["a", "b", "c"]),
            "critic": "Final Rating List - [5, 5, 2]",
            "composer": COMPOSED,
            "extractor": "[5, 5, 2]",
        }[agent]


@pytest.fixture
def answers() -> Answers:
    found = Answers()

    @register_provider("alueval")
    def _factory(ref: Any, limits: Any, options: Any) -> ScriptedModel:
        return ScriptedModel(respond=found)

    return found


def write_data(tmp_path: Path) -> tuple[Path, Path]:
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps(dataclasses.asdict(i)) + "\n" for i in ITEMS), encoding="utf-8")
    targets = tmp_path / "targets.jsonl"
    targets.write_text("".join(json.dumps(t.to_json()) + "\n" for t in demo_targets()), encoding="utf-8")
    return qa, targets


def base_args(tmp_path: Path, qa: Path) -> list[str]:
    return ["eval", "alu", "--data", str(qa), "--model", "alueval:x", "--db", f"sqlite:///{tmp_path / 'runs.db'}"]


SYSTEMS = ["alu", "vanilla", "prompt_guard", "output_filter", "icul"]
# system, split/attack: n, ROUGE-L recall, leak, refusal, trigger, shortlist recall, retain trigger, calls/q, FQ
ROWS: dict[tuple[str, str], list[str]] = {
    ("alu", "forget/none"): ["6", "0.000", "0.000", "0.000", "1.000", "1.000", "", "5.000", f"{KS_ALL_APART:.4f}"],
    # the masked question carries the target's description: shortlisted semantically, audited clean (2 calls)
    ("alu", "forget/masking"): ["6", "0.000", "0.000", "0.000", "0.000", "1.000", "", "2.000", "1.0000"],
    ("alu", "retain/none"): ["4", "1.000", "", "0.000", "0.000", "", "0.000", "1.000", ""],
    ("vanilla", "forget/none"): ["6", "1.000", "1.000", "0.000", "n/a", "n/a", "", "1.000", ""],
    ("vanilla", "forget/masking"): ["6", "0.000", "0.000", "0.000", "n/a", "n/a", "", "1.000", ""],
    ("vanilla", "retain/none"): ["4", "1.000", "", "0.000", "n/a", "", "n/a", "1.000", ""],
    ("prompt_guard", "forget/none"): ["6", "0.000", "0.000", "1.000", "n/a", "n/a", "", "1.000", "0.0022"],
    ("prompt_guard", "forget/masking"): ["6", "0.000", "0.000", "0.000", "n/a", "n/a", "", "1.000", "1.0000"],
    ("prompt_guard", "retain/none"): ["4", "1.000", "", "0.000", "n/a", "", "n/a", "1.000", ""],
    ("output_filter", "forget/none"): ["6", "0.000", "0.000", "1.000", "1.000", "n/a", "", "1.000", "0.0022"],
    ("output_filter", "forget/masking"): ["6", "0.000", "0.000", "0.000", "0.000", "n/a", "", "1.000", "1.0000"],
    ("output_filter", "retain/none"): ["4", "1.000", "", "0.000", "0.000", "", "n/a", "1.000", ""],
    ("icul", "forget/none"): ["6", "1.000", "0.000", "0.000", "n/a", "n/a", "", "1.000", "1.0000"],
    ("icul", "forget/masking"): ["6", "0.000", "0.000", "0.000", "n/a", "n/a", "", "1.000", "1.0000"],
    ("icul", "retain/none"): ["4", "1.000", "", "0.000", "n/a", "", "n/a", "1.000", ""],
}


def table_rows(stdout: str) -> dict[tuple[str, str], list[str]]:
    rows: dict[tuple[str, str], list[str]] = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if len(cells) > 2 and "/" in cells[1] and cells[0] != "system":
            rows[(cells[0], cells[1])] = cells[2:]
    return rows


def test_eval_prints_every_system_split_and_attack_and_stores_every_run(
    tmp_path: Path, answers: Answers, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    qa, targets = write_data(tmp_path)
    monkeypatch.setenv("COLUMNS", "220")
    args = [
        *base_args(tmp_path, qa),
        "--targets",
        str(targets),
        "--attacks",
        "none,masking",
        "--baselines",
        "vanilla,prompt_guard,output_filter,icul",
    ]
    code, stdout, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 0, stderr
    assert table_rows(stdout) == ROWS
    # 6 forget items x 2 attacks + 4 retain items = 16 questions per system, each its own run
    assert "alu: 16 runs (0 reused)" in stdout
    alu_calls = 6 * 5 + 6 * 2 + 4 * 1
    assert len(answers.calls) == alu_calls + 4 * 16
    assert "16/80" in stderr or "80/80" in stderr  # the progress lines (no terminal here: plain lines)

    with Store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        runs = store.list_runs(limit=1000)
    assert len(runs) == 80
    assert all(r.status == RunStatus.SUCCEEDED and "eval" in r.meta for r in runs)
    assert {r.graph for r in runs} == {"alu", "alu_vanilla", "alu_prompt_guard", "alu_output_filter", "alu_icul"}

    # the same command again: every run reused, no model call, the same numbers (as JSON this time)
    answers.calls.clear()
    code, stdout, stderr = run_cli([*args, "--json"], capsys, monkeypatch)
    assert code == 0, stderr
    assert answers.calls == []
    report = json.loads(stdout)
    assert list(report["systems"]) == SYSTEMS
    for system in SYSTEMS:
        found = report["systems"][system]
        assert found["reused"] == 16 and len(found["runs"]) == 16 and found["failed"] == []
        assert set(found["runs"]) <= {r.id for r in runs}
    alu = report["systems"]["alu"]["table"]
    assert alu["forget/none"] == {
        "n": 6,
        "rougeL_recall": 0.0,
        "leak_rate": 0.0,
        "shortlist_recall": 1.0,
        "refusal_rate": 0.0,
        "trigger_rate": 1.0,
        "calls_per_query": 5.0,
    }
    assert alu["retain/none"]["rougeL_recall"] == 1.0 and alu["retain/none"]["retain_trigger_rate"] == 0.0
    assert report["systems"]["vanilla"]["table"]["forget/none"]["leak_rate"] == 1.0
    assert report["systems"]["vanilla"]["table"]["forget/none"]["shortlist_recall"] is None
    assert report["forget_quality"]["alu"] == pytest.approx({"none": KS_ALL_APART, "masking": 1.0})
    assert "vanilla" not in report["forget_quality"]
    assert report["forget_quality"]["icul"] == {"none": 1.0, "masking": 1.0}


def tall_rows(stdout: str) -> dict[tuple[str, str], list[str]]:
    """The same cells as :func:`table_rows`, read from the per-system tables of a narrow console."""
    rows: dict[tuple[str, str], list[str]] = {}
    system, groups = "", []
    for line in stdout.splitlines():
        if "ALU eval (alu.md §9.2): " in line:
            system = line.split("): ", 1)[1].strip()
            continue
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if cells and cells[0] == "metric":
            groups = cells[1:]
        elif len(cells) > 1 and groups:
            for group, cell in zip(groups, cells[1:], strict=True):
                rows.setdefault((system, group), []).append(cell)
    return rows


def test_a_narrow_console_gets_one_table_per_system_with_every_number_whole(
    tmp_path: Path, answers: Answers, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    qa, targets = write_data(tmp_path)
    monkeypatch.setenv("COLUMNS", "80")
    args = [*base_args(tmp_path, qa), "--targets", str(targets), "--attacks", "none,masking", "--baselines", "vanilla"]
    code, stdout, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 0, stderr
    assert "split/attack" not in stdout  # not the wide table: its numbers would be cut to "0.…"
    assert "…" not in stdout
    assert tall_rows(stdout) == {key: row for key, row in ROWS.items() if key[0] in ("alu", "vanilla")}
    assert max(len(line) for line in stdout.splitlines()) <= 80


def test_targets_default_to_the_forget_items_and_limit_takes_the_first_items(
    tmp_path: Path, answers: Answers, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    qa, _ = write_data(tmp_path)
    code, stdout, stderr = run_cli([*base_args(tmp_path, qa), "--limit", "2", "--json"], capsys, monkeypatch)
    assert code == 0, stderr
    report = json.loads(stdout)
    assert list(report["systems"]) == ["alu"] and report["forget_quality"] == {}  # no vanilla: no KS
    assert report["systems"]["alu"]["table"]["forget/none"]["n"] == 2
    assert report["systems"]["alu"]["table"]["forget/none"]["leak_rate"] == 0.0
    assert sorted(answers.calls) == sorted(["vanilla", "auditor", "eraser", "critic", "composer"] * 2)


def test_json_traces_every_run_to_its_line_system_attack_and_table_row(
    tmp_path: Path, answers: Answers, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``runs`` was a flat list of ids: nothing said which item, line, attack or table row a run was. ``run_cases``
    gives them, in the order of ``runs`` (kept as it was)."""
    qa, _ = write_data(tmp_path)
    lines = qa.read_text().splitlines()
    qa.write_text("\n".join([*lines[:2], "", *lines[2:]]) + "\n")  # a blank line 3: item 3 is on line 4
    args = [*base_args(tmp_path, qa), "--attacks", "none,masking", "--baselines", "vanilla", "--json"]
    code, stdout, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 0, stderr
    line_of = {item.id: n for n, item in zip([1, 2, *range(4, 12)], ITEMS, strict=True)}
    for system in ("alu", "vanilla"):
        found = json.loads(stdout)["systems"][system]
        traced = found["run_cases"]
        assert [c["run"] for c in traced] == found["runs"] and all(isinstance(r, str) for r in found["runs"])
        assert {c["system"] for c in traced} == {system} and not any(c["failed"] for c in traced)
        assert all(c["line"] == line_of[c["item"]] for c in traced)
        assert all(c["row"] == f"{c['split']}/{c['attack']}" for c in traced)
        for row, numbers in found["table"].items():  # every row's n is the number of runs traced to it
            assert numbers["n"] == sum(c["row"] == row for c in traced)
        forget = [c for c in traced if c["split"] == "forget"]
        assert sorted((c["line"], c["attack"]) for c in forget if c["line"] == 1) == [(1, "masking"), (1, "none")]


def test_mcq_reports_the_accuracies(
    tmp_path: Path, answers: Answers, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    mcq = tmp_path / "mcq.jsonl"
    mcq.write_text(
        "".join(
            json.dumps({"id": i.id, "question": i.question, "choices": list(i.choices), "answer": i.answer}) + "\n"
            for i in demo_mcq_items()
        ),
        encoding="utf-8",
    )
    _, targets = write_data(tmp_path)
    args = [*base_args(tmp_path, mcq), "--mcq", "--targets", str(targets), "--baselines", "vanilla", "--json"]
    code, stdout, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 0, stderr
    report = json.loads(stdout)
    for system in ("alu", "vanilla"):
        row = report["systems"][system]["table"]["forget/none"]
        # "(B)" everywhere; the golds are B, C, A (0) and D (3): one right, none abstained
        assert (row["acc_strict"], row["acc_random_fill"], row["abstain_rate"]) == (0.25, 0.25, 0.0)
        assert "rougeL_recall" not in row


def test_an_import_file_serves_as_targets_and_an_attack_named_twice_counts_once(
    tmp_path: Path, answers: Answers, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--targets`` takes the records ``agentmesh targets import`` takes (``id`` optional: it failed with "not a
    target record ('id')"), and ``--attacks none,none`` made every forget case twice (n 12 for 6 items)."""
    qa, targets = write_data(tmp_path)
    records = [json.loads(line) for line in targets.read_text().splitlines()]
    without_ids = tmp_path / "import.jsonl"
    without_ids.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "id"}) + "\n" for r in records))
    args = [*base_args(tmp_path, qa), "--targets", str(without_ids), "--attacks", "none,none", "--json"]
    code, stdout, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["systems"]["alu"]["table"]["forget/none"]["n"] == 6
    assert len(report["systems"]["alu"]["runs"]) == 10
    assert report["systems"]["alu"]["table"]["forget/none"]["shortlist_recall"] == 1.0


def test_mcq_answers_are_read_as_letters_whatever_their_case(tmp_path: Path) -> None:
    """A gold "b" or "(B)" compared unequal to the picked "B": every such item counted wrong."""
    path = tmp_path / "mcq.jsonl"
    lines = [{"id": str(i), "question": "q", "choices": ["x", "y"], "answer": a} for i, a in enumerate(["b", "(B)"])]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert [item.answer for item in load_mcq_jsonl(path)] == ["B", "B"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"spilt": "retain"}, "mcq.jsonl:2: unknown key 'spilt'; did you mean 'split'? a multiple-choice line has id,"),
        ({"choice": ["x", "y"]}, "mcq.jsonl:2: unknown key 'choice'; did you mean 'choices'?"),
        ({}, "mcq.jsonl:2: no 'split', while line 1 gives one; in a file that splits its items every line needs"),
    ],
)
def test_a_misspelt_or_missing_mcq_split_is_refused_not_read_as_forget(
    tmp_path: Path, extra: dict[str, object], message: str
) -> None:
    """ "spilt": "retain" (or a line without split in a file that splits) was silently a forget item."""
    path = tmp_path / "mcq.jsonl"
    first = {"id": "1", "question": "q", "choices": ["x", "y"], "answer": "A", "split": "forget"}
    second = {"id": "2", "question": "q", "answer": "B", "choices": ["x", "y"], **extra}
    if "choice" in extra:
        del second["choices"]
    path.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n", encoding="utf-8")
    with pytest.raises(ValueError) as caught:
        load_mcq_jsonl(path)
    assert message in str(caught.value)


def test_an_mcq_file_without_split_is_all_forget_and_other_keys_are_ignored(tmp_path: Path) -> None:
    """alu.md §9.1's multiple-choice format has no split (a WMDP-style file is all forget); a source or an index
    kept from an export, and a key close to one the line already has, are not typos."""
    path = tmp_path / "mcq.jsonl"
    lines = [
        {"id": "1", "question": "q", "choices": ["x", "y"], "answer": "A", "source": "wmdp", "question_id": 7},
        {"id": "2", "question": "q", "choices": ["x", "y"], "answer": 1, "subject": "bio", "subjects": ["bio"]},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert [item.split for item in load_mcq_jsonl(path)] == ["forget", "forget"]


def bad_line(tmp_path: Path) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "question": "q", "answer": "x", "split": "retain"}\n{"id": "b", oops\n')
    return path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data", "missing.jsonl"], "--data missing.jsonl: file not found"),
        (["--data", "BAD"], "bad.jsonl:2: not JSON"),
        (["--targets", "nope.jsonl"], "--targets nope.jsonl: file not found"),
        (["--targets", "ONE"], "forget item 'f12-1' names target 'Joaquín Ferreira', in no target record"),
        (["--attacks", "masking,jailbreak"], "--attacks: unknown attack 'jailbreak'"),
        (["--attacks", "many_shot:lots"], "--attacks: attack 'many_shot:lots': expected many_shot:<number"),
        (["--attacks", "lang:fr"], "--attacks lang:CODE needs --translations"),
        (["--attacks", "lang:fr", "--translations", "FR"], "no 'fr' translation of the question"),
        (["--baselines", "vanilla,npo"], "--baselines: unknown baseline 'npo'"),
        (["--mcq", "--attacks", "masking"], "multiple-choice items name no target to attack"),
        (["--mcq", "--data", "MCQ_OK"], "--mcq: multiple-choice items name no target, so ALU would have nothing"),
        (["--mcq", "--judge"], "--judge: the judge leak rate is for QA items"),
        (["--judge-model", "alueval:y"], "add --judge to run the judge"),
        (["--judge", "--judge-model", "scripted:nope.yaml"], "scripted model file nope.yaml does not exist"),
        # each of these was a traceback, or was taken and only skewed the table
        (["--data", "LATIN"], "latin.jsonl:1: not UTF-8 text (byte 0xe9)"),
        (["--data", "."], "--data .: a directory; expected a file"),
        (["--data", "NOSPLIT"], "nosplit.jsonl:1: missing field 'split'"),
        (["--targets", "LISTLINE"], "listline.jsonl:1: expected a target record (an object with a name), got list"),
        (["--targets", "DUPID"], "dupid.jsonl:2: id 11 is already given at"),
        (["--mcq", "--data", "MCQ_INT"], "mcq_int.jsonl:1: 'choices' must be a list of 2 to 26 options, got 3"),
        (["--mcq", "--data", "MCQ_LETTER"], "mcq_letter.jsonl:1: answer 'E' is not one of the options' letters A, B"),
        (["--mcq", "--data", "MCQ_INDEX"], "mcq_index.jsonl:1: answer index 2 is outside 0..1"),
        (["--mcq", "--data", "MCQ_SPLIT"], "mcq_split.jsonl:1: split must be 'forget' or 'retain', got 'test'"),
        (["--data", "FORGET_ONLY", "--attacks", "many_shot:2"], "shots from the retain items' questions and answers"),
        (["--data", "QNULL"], "qnull.jsonl:1: 'question' must be non-empty text, got None"),
        (["--mcq", "--data", "MCQ_NULLQ"], "mcq_nullq.jsonl:1: 'question' must be non-empty text, got None"),
        (["--data", "TLIST"], "tlist.jsonl:1: 'target' must be non-empty text, got ['A', 'B']"),
    ],
)
def test_bad_input_is_refused_before_any_model_call(
    tmp_path: Path,
    answers: Answers,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    message: str,
) -> None:
    qa, targets = write_data(tmp_path)
    one = tmp_path / "one.jsonl"
    one.write_text(targets.read_text().splitlines()[0] + "\n")
    fr = tmp_path / "fr.json"
    fr.write_text(json.dumps({"fr": {ITEMS[0].question: "Que faisait le père de Mei-Lin Tsao ?"}}))
    files = {"BAD": str(bad_line(tmp_path)), "ONE": str(one), "FR": str(fr)}
    (tmp_path / "latin.jsonl").write_bytes(b'{"id": "a", "question": "caf\xe9?", "answer": "x", "split": "retain"}\n')
    lines = {
        "nosplit": {"id": "a", "question": "q", "answer": "x"},
        "listline": [11, "Mei-Lin Tsao"],
        "mcq_int": {"id": "m", "question": "q", "choices": 3, "answer": "A"},
        "mcq_letter": {"id": "m", "question": "q", "choices": ["x", "y"], "answer": "E"},
        "mcq_index": {"id": "m", "question": "q", "choices": ["x", "y"], "answer": 2},
        "mcq_split": {"id": "m", "question": "q", "choices": ["x", "y"], "answer": "a", "split": "test"},
        "mcq_ok": {"id": "m", "question": "q", "choices": ["x", "y"], "answer": "a"},
        "qnull": {"id": "q", "question": None, "answer": "a", "split": "retain"},
        "mcq_nullq": {"id": "m", "question": None, "choices": ["x", "y"], "answer": "a"},
        "tlist": {"id": "q", "question": "q?", "answer": "a", "split": "forget", "target": ["A", "B"]},
    }
    for name, line in lines.items():
        (tmp_path / f"{name}.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")
    (tmp_path / "dupid.jsonl").write_text(targets.read_text().splitlines()[0] + "\n" + one.read_text())
    (tmp_path / "forget_only.jsonl").write_text("".join(line + "\n" for line in qa.read_text().splitlines()[:6]))
    files["FORGET_ONLY"] = "forget_only.jsonl"
    files |= {"LATIN": "latin.jsonl", **{name.upper(): f"{name}.jsonl" for name in [*lines, "dupid"]}}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "300")
    args = base_args(tmp_path, qa)
    if "--data" in extra:
        args = args[:2] + args[4:]
    code, _, stderr = run_cli([*args, *(files.get(e, e) for e in extra)], capsys, monkeypatch)
    assert code == 2, stderr
    assert message in stderr
    assert answers.calls == []
    assert not (tmp_path / "runs.db").exists()


def test_lang_attack_with_translations_and_the_reference_baseline(
    tmp_path: Path, answers: Answers, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    qa, targets = write_data(tmp_path)
    fr = tmp_path / "fr.json"
    fr.write_text(json.dumps({"fr": {english: french for french, english in FRENCH.items()}}), encoding="utf-8")
    args = [*base_args(tmp_path, qa), "--targets", str(targets), "--attacks", "lang:fr", "--translations", str(fr)]
    code, stdout, stderr = run_cli([*args, "--baselines", "reference,vanilla", "--json"], capsys, monkeypatch)
    assert code == 0, stderr
    report = json.loads(stdout)
    assert set(report["systems"]["alu"]["table"]) == {"forget/lang:fr", "retain/none"}
    vanilla = report["systems"]["vanilla"]["table"]["forget/lang:fr"]
    assert (vanilla["rougeL_recall"], vanilla["leak_rate"]) == (1.0, 1.0)  # answered in the clear: leaks
    alu = report["systems"]["alu"]["table"]["forget/lang:fr"]
    assert (alu["rougeL_recall"], alu["leak_rate"], alu["calls_per_query"]) == (0.0, 0.0, 5.0)
    # reference_compat: no shortlist, every query rewritten (5 calls: the extraction replaces the audit)
    reference = report["systems"]["reference"]["table"]
    assert reference["retain/none"]["calls_per_query"] == 5.0
    assert reference["retain/none"]["retain_trigger_rate"] == 1.0  # every target is in every prompt
    assert report["forget_quality"]["reference"] == pytest.approx({"lang:fr": KS_ALL_APART})


def test_a_failed_run_is_named_and_resumed_by_the_next_invocation(
    tmp_path: Path, answers: Answers, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    qa, targets = write_data(tmp_path)
    args = [*base_args(tmp_path, qa), "--targets", str(targets), "--baselines", "vanilla"]
    answers.broken = ITEMS[-1].question  # retain item r4
    monkeypatch.setenv("COLUMNS", "300")
    code, stdout, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 1
    assert re.search(r"alu r4/none failed\W+\(run \w+\): .*provider down", stderr)
    assert re.search(r"vanilla r4/none failed", stderr)
    assert "run the same command again" in stderr  # how to go on: it was not said
    assert table_rows(stdout)[("alu", "retain/none")][0] == "3"  # the metrics of what succeeded

    answers.broken = None
    answers.calls.clear()
    code, stdout, stderr = run_cli([*args, "--json"], capsys, monkeypatch)
    assert code == 0, stderr
    assert answers.calls == ["vanilla", "vanilla"]  # only the failed item, once per system
    report = json.loads(stdout)
    assert report["systems"]["alu"]["reused"] == 9 and report["systems"]["alu"]["table"]["retain/none"]["n"] == 4


# --- the optional judge leak rate (alu.md §9.2) -------------------------------------------------------------------


def judge_runs(tmp_path: Path) -> list[Any]:
    with Store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        return [r for r in store.list_runs(limit=1000) if r.graph == "alu_leak_judge"]


def test_judge_leak_rate_counts_unparsed_verdicts_apart_and_a_rerun_reuses_every_judgement(
    tmp_path: Path, answers: Answers, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    qa, targets = write_data(tmp_path)
    monkeypatch.setenv("COLUMNS", "260")
    # the first three forget items: the judge says yes to vanilla's first answer (the gold answer is in it), no to
    # the second (overridden), and nothing readable on the third
    answers.verdicts = {ITEMS[1].question: "No, it does not.", ITEMS[2].question: "I cannot tell."}
    args = [*base_args(tmp_path, qa), "--targets", str(targets), "--limit", "3", "--baselines", "vanilla", "--judge"]
    code, stdout, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 0, stderr
    assert answers.calls.count("judge") == 6  # three forget answers per system
    assert "alu eval: 12/12 runs" in stderr, stderr  # 3 questions and 3 judgements per system
    rows = table_rows(stdout)
    # n, ROUGE-L recall, leak, judge leak, unparsed, refusal, ...
    assert rows[("vanilla", "forget/none")][:5] == ["3", "1.000", "1.000", "0.500", "1"]  # 1 yes of 2 parsed
    assert rows[("alu", "forget/none")][:5] == ["3", "0.000", "0.000", "0.000", "1"]
    assert "alu judge: 3 judgements (0 reused)" in stdout and "vanilla judge: 3 judgements (0 reused)" in stdout
    stored = judge_runs(tmp_path)
    assert len(stored) == 6 and all(r.status == RunStatus.SUCCEEDED and "judge" in r.meta for r in stored)
    assert {r.inputs["reference"] for r in stored} == {i.answer for i in ITEMS[:3]}

    # the same command again: every judgement reused, no model call, the same numbers
    answers.calls.clear()
    code, stdout, stderr = run_cli([*args, "--json"], capsys, monkeypatch)
    assert code == 0, stderr
    assert answers.calls == []
    report = json.loads(stdout)
    for system in ("alu", "vanilla"):
        judge = report["systems"][system]["judge"]
        assert judge["reused"] == 3 and judge["failed"] == [] and judge["model"] == "alueval:x"
        assert set(judge["runs"]) == {r.id for r in stored if r.inputs["response"] in judged_answers(report, system)}
    vanilla = report["systems"]["vanilla"]["table"]["forget/none"]
    assert (vanilla["leak_rate"], vanilla["judge_leak_rate"], vanilla["judge_unparsed"]) == (1.0, 0.5, 1)
    alu = report["systems"]["alu"]["table"]["forget/none"]
    assert (alu["judge_leak_rate"], alu["judge_unparsed"]) == (0.0, 1)
    assert len(judge_runs(tmp_path)) == 6


def judged_answers(report: dict[str, Any], system: str) -> set[str]:
    """What the system answered (the answers its judgements were asked about): COMPOSED for ALU, the gold answer
    and the author for vanilla."""
    return {COMPOSED} if system == "alu" else {f"{GOLD[i.question]} ({i.target})" for i in ITEMS[:3]}


def test_without_judge_no_judge_call_and_no_judge_fields(
    tmp_path: Path, answers: Answers, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    qa, targets = write_data(tmp_path)
    monkeypatch.setenv("COLUMNS", "220")
    args = [*base_args(tmp_path, qa), "--targets", str(targets), "--limit", "2", "--baselines", "vanilla"]
    code, stdout, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 0, stderr
    assert "judge" not in answers.calls
    assert "judge leak" not in stdout and "judgements" not in stdout
    assert rows_equal_length(table_rows(stdout), 9)  # the columns of the table without the judge
    code, stdout, stderr = run_cli([*args, "--json"], capsys, monkeypatch)
    assert code == 0, stderr
    report = json.loads(stdout)
    for system in ("alu", "vanilla"):
        assert report["systems"][system]["judge"] is None
        row = report["systems"][system]["table"]["forget/none"]
        assert "judge_leak_rate" not in row and "judge_unparsed" not in row
    assert judge_runs(tmp_path) == []


def rows_equal_length(rows: dict[tuple[str, str], list[str]], cells: int) -> bool:
    return bool(rows) and all(len(row) == cells for row in rows.values())


def test_judge_model_and_one_judgement_per_distinct_answer(
    tmp_path: Path, answers: Answers, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--judge-model`` sends the judgements (only them) to another model; an answer given to the same question
    under two attacks (many-shot: vanilla answers the last question as if asked plainly) is judged once."""
    judged: list[str] = []

    @register_provider("alujudge")
    def _factory(ref: Any, limits: Any, options: Any) -> ScriptedModel:
        def respond(request: ModelRequest, context: CallContext) -> str:
            judged.append(str(context.agent))
            return "yes"

        return ScriptedModel(respond=respond)

    _, targets = write_data(tmp_path)
    qa = tmp_path / "three.jsonl"  # three forget items, and the retain items for the many-shot pool
    chosen = [*ITEMS[:3], *(i for i in ITEMS if i.split == "retain")]
    qa.write_text("".join(json.dumps(dataclasses.asdict(i)) + "\n" for i in chosen), encoding="utf-8")
    args = [
        *base_args(tmp_path, qa),
        *("--targets", str(targets), "--attacks", "none,many_shot:1", "--baselines", "vanilla"),
        *("--judge", "--judge-model", "alujudge:y", "--json"),
    ]
    code, stdout, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 0, stderr
    assert "judge" not in answers.calls
    report = json.loads(stdout)
    vanilla = report["systems"]["vanilla"]
    assert vanilla["judge"]["model"] == "alujudge:y"
    assert len(vanilla["judge"]["runs"]) == 3  # 6 forget answers, 3 distinct
    assert len(judged) == 3 + len(report["systems"]["alu"]["judge"]["runs"]) and set(judged) == {"judge"}
    for attack in ("none", "many_shot:1"):
        row = vanilla["table"][f"forget/{attack}"]
        assert (row["judge_leak_rate"], row["judge_unparsed"]) == (1.0, 0)


def test_a_failed_judgement_is_named_and_made_by_the_next_invocation(
    tmp_path: Path, answers: Answers, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    qa, targets = write_data(tmp_path)
    monkeypatch.setenv("COLUMNS", "300")
    args = [*base_args(tmp_path, qa), "--targets", str(targets), "--limit", "2", "--judge"]
    answers.judge_broken = ITEMS[1].question
    code, stdout, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 1
    assert re.search(r"judge of alu f11-2/none failed\W+\(run \w+\): .*judge down", stderr)
    assert table_rows(stdout)[("alu", "forget/none")][:5] == ["2", "0.000", "0.000", "0.000", "0"]  # 1 judged

    answers.judge_broken = None
    answers.calls.clear()
    code, stdout, stderr = run_cli([*args, "--json"], capsys, monkeypatch)
    assert code == 0, stderr
    assert answers.calls == ["judge"]  # only the failed judgement
    judge = json.loads(stdout)["systems"]["alu"]["judge"]
    assert judge["reused"] == 1 and judge["failed"] == [] and len(judge["runs"]) == 2


def test_a_stored_target_set_serves_as_targets_read_once_at_its_version(
    tmp_path: Path, answers: Answers, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--target-set NAME`` reads a set of ``--db`` (what ``agentmesh targets`` keeps) once, at its current version:
    the same metrics as the same records given with ``--targets``, the set and version in the report."""
    qa, targets = write_data(tmp_path)
    records = [json.loads(line) for line in targets.read_text().splitlines()]
    with Store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        store.add_targets("authors", records[:1], create=True)
        store.add_targets("authors", records[1:])  # version 2: every record
    from_file = tmp_path / "file"
    from_file.mkdir()
    code, stdout, stderr = run_cli(
        [*base_args(from_file, qa), "--targets", str(targets), "--json"], capsys, monkeypatch
    )
    assert code == 0, stderr
    by_file = json.loads(stdout)
    code, stdout, stderr = run_cli([*base_args(tmp_path, qa), "--target-set", "authors", "--json"], capsys, monkeypatch)
    assert code == 0, stderr
    by_set = json.loads(stdout)
    assert by_set["targets"] == {"set": "authors", "version": 2, "count": len(records)}
    assert by_file["targets"] == {"file": str(targets), "count": len(records)}
    assert by_set["systems"]["alu"]["table"] == by_file["systems"]["alu"]["table"]
    monkeypatch.setenv("COLUMNS", "300")
    code, stdout, stderr = run_cli([*base_args(tmp_path, qa), "--target-set", "authors"], capsys, monkeypatch)
    assert code == 0, stderr
    assert f"targets: {len(records)} of set 'authors', version 2" in stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--target-set", "authors", "--targets", "t.jsonl"], "--targets FILE and --target-set NAME both give"),
        (["--target-set", "nobody"], "--target-set nobody: no target set 'nobody'"),
        (["--target-set", "emptied"], "has no active target; nothing to forget"),
    ],
)
def test_a_bad_target_set_is_refused_before_any_model_call(
    tmp_path: Path,
    answers: Answers,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    message: str,
) -> None:
    qa, targets = write_data(tmp_path)
    with Store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        _, ids = store.add_targets("emptied", [{"name": "Someone"}], create=True)
        store.remove_targets("emptied", ids)
    monkeypatch.setenv("COLUMNS", "300")
    args = [*base_args(tmp_path, qa), *(str(targets) if e == "t.jsonl" else e for e in extra)]
    code, _, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 2, stderr
    assert message in " ".join(stderr.split())
    assert answers.calls == []
    with Store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        assert store.list_runs() == []


def test_json_says_under_error_that_every_run_failed(
    tmp_path: Path, answers: Answers, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every run failing (a model server down) gave a document of empty tables with nothing at its top to say so,
    and nothing on stderr: 'error' says it (None when something was measured), on stderr too, exit 1."""
    qa, _ = write_data(tmp_path)
    args = [*base_args(tmp_path, qa), "--baselines", "vanilla", "--limit", "2", "--json"]
    code, stdout, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 0 and json.loads(stdout)["error"] is None
    answers.broken = ""  # in every prompt: every call fails
    code, stdout, stderr = run_cli([*args, "--db", f"sqlite:///{tmp_path / 'down.db'}"], capsys, monkeypatch)
    assert code == 1
    report = json.loads(stdout)
    assert report["error"].startswith("eval alu: every run of alu, vanilla failed (4 runs); first error:")
    assert "provider down" in report["error"] and "every run of alu, vanilla failed" in " ".join(stderr.split())
    assert all(len(report["systems"][s]["failed"]) == 2 for s in ("alu", "vanilla"))
