"""DyLAN's code-generation network (``dylan_code``, dylan.md §5) on a scripted model, with generated code really run
in the sandbox: what writers and judges see, the judges' ratings, the listwise ranker under both semantics, early
stopping, the final answer by collected tests, and importance through writers and judges."""

from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from rich.console import Console

from agentmesh.cli.runs import _print_timeline
from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.messages import CallContext
from agentmesh.runtime import run
from agentmesh.spec import GraphSpec, load_graph
from agentmesh.store import Store
from agentmesh.systems.dylan import code_tools as tools
from agentmesh.systems.dylan.code import DylanCodeParams, _sections
from agentmesh.systems.dylan.code_tools import (
    UnitTestOutcome,
    bleu_equivalent,
    cut_def_question,
    extract_tests,
    most_frequent,
    run_tests,
)
from agentmesh.timeline import load_timeline
from agentmesh.viz.report import report_html

REPO = Path(__file__).resolve().parents[2]
PROMPT = 'def add(a: int, b: int) -> int:\n    """Return a + b."""\n'
INPUTS = {"prompt": PROMPT, "entry_point": "add"}
GOOD = "```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```"
BAD = "```python\ndef add(a: int, b: int) -> int:\n    return a - b\n```"
BROKEN = "```python\ndef add(a: int, b: int) -> int:\n    return a +\n```"
STYLES = [  # four different correct implementations: never BLEU-equivalent, so no early stop
    "```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```",
    "```python\ndef add(a: int, b: int) -> int:\n    total = 0\n    for x in (a, b):\n        total += x\n"
    "    return total\n```",
    "```python\nimport operator\n\ndef add(a: int, b: int) -> int:\n    return operator.add(a, b)\n```",
    "```python\ndef add(a: int, b: int) -> int:\n    result = sum([a, b])\n    return int(result)\n```",
]
WRITERS = ["python_assistant", "algorithm_developer", "computer_scientist", "programmer"]


class Team:
    """Writers answer ``code(agent, round)``; the Tester writes three tests and a non-test line; the Reflector
    reflects on each and scores; both rankers pick ``[1, 2]``. Every prompt is kept."""

    def __init__(self, code: Any) -> None:
        self.code = code
        self.prompts: dict[tuple[str, int], str] = {}

    def __call__(self, request: ModelRequest, context: CallContext) -> str:
        agent, layer = str(context.agent), int(context.round or 0)
        self.prompts[(agent, layer)] = request.messages[-1].content
        if agent == "tester":
            return "assert add(1, 2) == 3\nassert add(0, 0) == 0\nassert add(-1, 1) == 0\nprint('not a test')"
        if agent == "reflector":
            n = request.messages[-1].content.count("[function impl")
            return "\n".join(f"[reflection {i}]: looks {'fine' if i % 2 else 'off'}" for i in range(1, n + 1)) + (
                "\n[[" + ", ".join(str(5 - i % 5) for i in range(n)) + "]]"
            )
        if agent == "ranker":  # the listwise ranker skips implementations that cannot even be parsed
            blocks = request.messages[-1].content.split("[function impl ")[1:]
            fine = [i for i, block in enumerate(blocks, start=1) if "return a +\n" not in block]
            return f"The best two: [{fine[0]}, {fine[1]}]"
        if agent == "ranker_judge":
            return "The best two: [1, 2]"
        found = re.search(r"score each of the (\d+) judges", request.messages[-1].content)
        scores = ", ".join(["4", "5", "3", "2", "1"][: int(found.group(1))]) if found else ""
        return str(self.code(agent, layer)) + (f"\n[[{scores}]]" if found else "")


def graph(**params: Any) -> GraphSpec:
    spec = load_graph(REPO / "graphs" / "dylan_code.yaml")
    node = spec.nodes["dylan"]
    assert isinstance(node.params, DylanCodeParams)
    new = node.params.model_copy(update={"activation_order": "fixed", **params})
    return spec.model_copy(update={"nodes": {**spec.nodes, "dylan": node.model_copy(update={"params": new})}})


def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


def test_judges_rate_writers_and_equivalent_code_stops_in_writer_layer_two(tmp_path: Path) -> None:
    team = Team(lambda agent, layer: BAD if (agent == "programmer" and layer == 1) else GOOD)
    model = ScriptedModel(respond=team)
    result = run(graph(), INPUTS, model=model, store=db(tmp_path))
    assert result.status == "succeeded"
    # W0: 4 writers; J1: tester, reflector, ranker judge (the Passer is a tool); W1: 3 equivalent -> stop
    assert len(model.calls) == 4 + 3 + 3
    assert "consensus (3 of 4 equivalent implementations) at writer layer 2" in (result.stop_reason or "")
    assert result.answer is not None and "return a + b" in result.answer
    out = result.outputs["dylan"]
    judges = {n["agent"]: n for n in out["history"][1]["nodes"]}
    assert judges["passer"]["ratings"] == [5, 5, 5, 5]  # every implementation runs
    assert judges["tester"]["ratings"] == [5, 5, 5, 2]  # a - b passes 1 of 3: ceil(5/3) = 2
    assert judges["reflector"]["ratings"] == [5, 4, 3, 2]
    assert judges["ranker_judge"]["ratings"] == [5, 5, 0, 0]
    assert out["tests"] == ["assert add(1, 2) == 3", "assert add(0, 0) == 0", "assert add(-1, 1) == 0"]
    writer = team.prompts[("algorithm_developer", 3)]
    # the Ranker judge's two picks only, each with the Passer's, the Tester's and the Reflector's feedback
    assert "[previous impl 1]" in writer and "[previous impl 2]" in writer and "[previous impl 3]" not in writer
    for header in ("[syntax check 1]", "[unit test results 1]", "[reflection 1]"):
        assert header in writer
    assert "The code doesn't have syntax error." in writer and "Passed tests:" in writer
    assert "score each of the 3 judges" in writer
    # writers rate the non-Ranker judges; the Ranker judge gets the fixed raw 3 at its place
    assert all(n["ratings"] == [4, 5, 3, 3] for n in out["history"][2]["nodes"])
    scores = result.outputs["importance"]["importance"]
    assert scores["layer_sums"] == pytest.approx([1.0, 1.0, 1.0, 0.0, 0.0])
    assert set(scores["groups"]["judges"]) == {"passer", "tester", "reflector", "ranker_judge"}
    assert scores["per_agent"]["ranker_judge"] > 0 and scores["per_agent"]["passer"] > 0
    with Store(db(tmp_path)) as store:
        page = report_html(load_timeline(store, result.run_id))
    # the report draws writers in writer layers and judges in judge layers: one idle node, the writer that the
    # early stop spared in layer 3; 4 + 4 + 3 nodes ran
    assert page.count('class="idle"') == 1 and page.count('class="ran"') == 11
    # agentmesh show: writers and judges by what they gave (an implementation, a judge's feedback), not "no answer"
    with Store(db(tmp_path)) as store:
        printed = io.StringIO()
        with patch("agentmesh.cli.runs.console", Console(file=printed, width=400)):
            _print_timeline(load_timeline(store, result.run_id), full=False)
    network = printed.getvalue().split("network of dylan")[1]
    assert "no answer" not in network and "programmer: (code)" in network and "tester: (unit test results)" in network


@pytest.mark.parametrize("compat", [False, True])
def test_listwise_ranker_before_the_last_judges(compat: bool, tmp_path: Path) -> None:
    team = Team(lambda agent, layer: STYLES[WRITERS.index(agent)])
    model = ScriptedModel(respond=team)
    result = run(graph(reference_compat=compat), INPUTS, model=model, store=db(tmp_path))
    out = result.outputs["dylan"]
    assert [h["kind"] for h in out["history"]] == ["writers", "judges", "writers", "judges", "writers"]
    ranked = out["history"][2]["ranked"]
    assert ranked is not None and len(ranked["kept"]) == 2
    last_writers = {n["slot"] for n in out["history"][4]["nodes"]}
    assert len(last_writers) == 2
    seen_by_j2 = out["history"][3]["nodes"][0]["seen"]
    if compat:  # the released code: the last judges see all four, the writers picked by position
        assert len(seen_by_j2) == 4
    else:  # the paper: only the kept writers' code flows on, and only they write again
        assert sorted(seen_by_j2) == sorted(ranked["kept"]) and last_writers == set(ranked["kept"])
    # 4 + 3 + 4 + listwise ranker + 3 judges (the Ranker judge of 2 implementations makes no call in the paper
    # semantics) + 2
    assert len(model.calls) == 4 + 3 + 4 + 1 + (3 if compat else 2) + 2
    scores = result.outputs["importance"]["importance"]
    assert scores["layer_sums"] == pytest.approx([1.0] * 5)
    chosen = out["chosen"]
    assert chosen is not None and (chosen["layer"] == 1 if compat else True)  # compat: first writer layer only
    assert all(n == 3 for n in out["tests_passed"].values())


def test_no_runnable_final_code_shares_the_credit_and_says_so(tmp_path: Path) -> None:
    team = Team(lambda agent, layer: BROKEN if layer > 1 else STYLES[WRITERS.index(agent)])
    result = run(graph(rounds=2, ranker=None), INPUTS, model=ScriptedModel(respond=team), store=db(tmp_path))
    scores = result.outputs["importance"]["importance"]
    assert scores["fallback"] is True and scores["layer_sums"] == pytest.approx([1.0, 1.0, 1.0])
    assert result.answer is not None and "return" in result.answer  # a first-layer implementation passes the tests


def test_tester_rating_and_the_reference_all_pass_undercount() -> None:
    def outcomes(passed: int, failed: int) -> list[UnitTestOutcome]:
        return [UnitTestOutcome("t", True, "")] * passed + [UnitTestOutcome("t", False, "1")] * failed

    assert tools.tester_rating(outcomes(2, 0)) == 5 and tools.tester_rating(outcomes(2, 0), reference_compat=True) == 3
    assert tools.tester_rating(outcomes(1, 0)) == 5 and tools.tester_rating(outcomes(1, 0), reference_compat=True) == 0
    assert tools.tester_rating(outcomes(1, 1)) == 3 == tools.tester_rating(outcomes(1, 1), reference_compat=True)
    assert tools.tester_rating([]) == 0 and tools.tester_rating(outcomes(0, 3)) == 0
    assert tools.tester_feedback(outcomes(1, 1)) == "Passed tests:\nt\n\nFailed tests:\nt # output: 1"


def test_tests_run_sandboxed_and_report_the_actual_output() -> None:
    tests = extract_tests("assert add(1, 2) == 3\nassert add(2, 2) == 5\nassert add(1, 2) == 3\nassert (\nx = 1")
    assert tests == ["assert add(1, 2) == 3", "assert add(2, 2) == 5"]
    code = "def add(a, b):\n    return a + b\n"
    got = asyncio.run(run_tests(code, tests))
    assert [(o.passed, o.output) for o in got] == [(True, ""), (False, "4")]
    crashed = asyncio.run(run_tests("def add(a, b) return", tests))
    assert all(not o.passed and "SyntaxError" in o.output for o in crashed)
    looping = asyncio.run(run_tests("def add(a, b):\n    while True: pass\n", tests[:1], per_test_s=1))
    assert not looping[0].passed and "timed out" in looping[0].output


def test_a_huge_actual_output_fails_the_test_instead_of_crashing_the_run() -> None:
    # A failing test's actual value once went whole into the report, which the sandbox cut at 64 KiB: the cut JSON
    # raised JSONDecodeError out of run_tests and failed the whole DyLAN run.
    code = "def f(n):\n    return list(range(n))\n"
    got = asyncio.run(run_tests(code, ["assert f(100000) == 5", "assert f(1) == [0]"]))
    assert [o.passed for o in got] == [False, True]
    assert got[0].output.startswith("[0, 1, 2") and len(got[0].output) <= tools.OUTPUT_CHARS


@pytest.mark.parametrize(
    "code",
    [
        "def f(n):\n    return 0\n\nexec = lambda *args, **kwargs: None\n",  # the harness ran tests with it
        "def f(n):\n    return 0\n\ndef eval(expression, *scope):\n    return 5\n",
        "import sys, io\nsys.stdout = io.StringIO()\ndef f(n):\n    print(n, end='')\n    return 0\n",
        # a report of its own, written after the harness's (at exit) with the mark read from the globals
        "import atexit, os\n"
        "atexit.register(lambda: os.write(1, (globals()['__MARK'] + '[[true, \"\"]]\\n').encode()))\n"
        "def f(n):\n    return 0\n",
    ],
    ids=["shadowed-exec", "own-eval", "reassigned-stdout", "report-at-exit"],
)
def test_the_candidate_cannot_change_the_harness_verdict_by_accident_or_cheaply(code: str) -> None:
    got = asyncio.run(run_tests(code, ["assert f(1) == 5"]))
    assert [(o.passed, o.output) for o in got] == [(False, "0")]


def test_an_unreadable_report_fails_every_test() -> None:
    code = "import atexit, os\natexit.register(lambda: os.write(1, (globals()['__MARK'] + 'x\\n').encode()))\n"
    code += "import os, sys\nos.write(1, b'\\n')\nsys.stdout.flush()\n"
    got = asyncio.run(run_tests(code + "def f(n):\n    return 0\n", ["assert f(1) == 0"]))
    assert [o.passed for o in got] == [True]  # the harness's own report comes first and counts
    assert tools._report("x", 1) is None and tools._report('[[true, ""]]', 2) is None
    assert tools._report('[[1, ""]]', 1) is None and tools._report('[[false, "0"]]', 1) == [(False, "0")]


def test_code_comparison_pieces() -> None:
    code = 'import math\n\ndef helper(x):\n    return x\n\ndef add(a, b):\n    """Doc."""\n    return helper(a) + b\n'
    assert cut_def_question(code, "add") == "import math\ndef helper(x):\n    return x\n    return helper(a) + b"
    assert bleu_equivalent("return a + b", "return a + b")
    assert not bleu_equivalent("return a + b", "total = sum([a, b])\nreturn int(total)")
    assert most_frequent(["x", "y", "y"], lambda a, b: a == b) == (1, 2)
    assert most_frequent([], lambda a, b: a == b) == (None, 0)
    assert _sections("[reflection 2]: bad [[1, 2]]\n[reflection 1]: good", "reflection", 3) == ["good", "bad", None]


def test_optimize_counts_the_items_whose_credit_was_shared(tmp_path: Path) -> None:
    """No runnable final code: the credit goes to the whole last layer (dylan.md §4.4). That was a log line per
    query on stderr naming no run; the job's result says which items, and the command counts them."""
    from agentmesh.datasets import read_items
    from agentmesh.optimize import optimize

    data = tmp_path / "humaneval.jsonl"
    record = {"prompt": PROMPT, "entry_point": "add", "test": "", "canonical_solution": ""}
    data.write_text("\n".join(json.dumps({"task_id": f"T/{i}", **record}) for i in range(2)))
    team = Team(lambda agent, layer: BROKEN if layer > 1 else STYLES[WRITERS.index(agent)])
    spec = graph(rounds=2, ranker=None)
    result = optimize(spec, read_items(data, spec), top_k=2, model=ScriptedModel(respond=team), store=db(tmp_path))
    assert not result.failed and [i.line for i in result.shared_credit] == [1, 2]


def test_optimize_ranks_writers_and_judges_separately(tmp_path: Path) -> None:
    from agentmesh.datasets import read_items
    from agentmesh.optimize import optimize

    data = tmp_path / "humaneval.jsonl"
    data.write_text(
        "\n".join(
            json.dumps(
                {"task_id": f"T/{i}", "prompt": PROMPT, "entry_point": "add", "test": "", "canonical_solution": ""}
            )
            for i in range(2)
        )
    )
    spec = load_graph(REPO / "graphs" / "dylan_code_candidates.yaml")
    everyone = ["python_assistant", "algorithm_developer", "computer_scientist", "programmer", "coding_artist"]
    team = Team(lambda agent, layer: STYLES[everyone.index(agent) % 4] if agent in everyone else BROKEN)
    items = read_items(data, spec)
    assert items[0].inputs == {"prompt": PROMPT, "entry_point": "add", "test": ""}
    result = optimize(spec, items, top_k=2, model=ScriptedModel(respond=team), store=db(tmp_path))
    assert not result.failed
    params = result.optimized.nodes["dylan"].params
    assert isinstance(params, DylanCodeParams)
    assert len(params.writers) == 2 and len(params.judges) == 2
    assert result.optimized.name == "dylan_code_candidates_top2"  # as --top-k and the file say (it was "_top4")
    assert set(params.writers) <= set(spec.nodes["dylan"].params.team_fields()["writers"])
    # the software architect's code never even parses: the Passer and the Tester rate it 0 and the listwise ranker
    # drops it, so it gets no credit from the later layers
    assert "software_architect" not in params.writers
    assert result.scores["software_architect"] < min(result.scores[w] for w in params.writers)
    assert result.ranking.index("passer") < result.ranking.index("reflector")  # judges ranked among themselves
