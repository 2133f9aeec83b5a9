"""``agentmesh eval alu`` (alu.md §9.3) end to end on a scripted model and the shipped offline data (§9.5):
the printed table's rows and exact metric values, every question a stored run, a second invocation that reuses
them all without a model call, ``--json``, ``--mcq``, and bad input refused before any call."""

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
      rewrites, the critic rates them 5, 5, 2 (top-3 mean 4 = tau: composed), the composer says ``COMPOSED``.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.broken: str | None = None
        """A question that the vanilla agent fails on (a provider error)."""

    def __call__(self, request: ModelRequest, context: CallContext) -> str:
        agent = str(context.agent)
        self.calls.append(agent)
        prompt = request.messages[-1].content
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
    assert table_rows(stdout)[("alu", "retain/none")][0] == "3"  # the metrics of what succeeded

    answers.broken = None
    answers.calls.clear()
    code, stdout, stderr = run_cli([*args, "--json"], capsys, monkeypatch)
    assert code == 0, stderr
    assert answers.calls == ["vanilla", "vanilla"]  # only the failed item, once per system
    report = json.loads(stdout)
    assert report["systems"]["alu"]["reused"] == 9 and report["systems"]["alu"]["table"]["retain/none"]["n"] == 4
