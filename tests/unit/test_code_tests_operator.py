"""The ``code_tests`` operator: code answers run against unit tests in the sandbox, scored 1/0."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentmesh.errors import SpecError
from agentmesh.models import ScriptedModel
from agentmesh.runtime import RunError, run
from agentmesh.runtime.operators.code import assemble_program
from agentmesh.spec import graph_from_data
from agentmesh.spec.graph import GraphSpec

PROMPT = '''def add(a: int, b: int) -> int:
    """Return the sum of a and b.
    >>> add(2, 3)
    5
    """
'''
TEST = """

def check(candidate):
    assert candidate(2, 3) == 5
    assert candidate(-1, 1) == 0
"""
INPUTS = {"prompt": PROMPT, "test": TEST, "entry_point": "add"}

RIGHT = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```"
WRONG = "```python\ndef add(a, b):\n    return a - b\n```"
HANGS = "```python\ndef add(a, b):\n    while True:\n        pass\n```"
# No def: the python_code parser prepends the function's prompt (dylan.md §5.3). (A fenced body would lose its
# indentation: the parser strips fenced blocks.)
BODY_ONLY = "[improved impl]:\n    return a + b\n"
BROKEN = "```python\ndef add(a, b)\n    return a + b\n```"


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


def graph(n: int, *, parser: Any = "python_code", tests: str = "{{ test }}", **params: Any) -> GraphSpec:
    agents = {f"writer{i}": {"prompt": "{{ prompt }}", "parser": parser} for i in range(n)}
    return graph_from_data(
        {
            "name": "code",
            "inputs": {"prompt": {}, "test": {}, "entry_point": {}},
            "agents": agents,
            "nodes": {
                "write": {"op": "team", "agents": list(agents)},
                "tests": {
                    "op": "code_tests",
                    "from": "write",
                    "tests": tests,
                    "entry_point": "{{ entry_point }}",
                    **{"timeout_s": 5.0, "memory_mb": 256, **params},
                },
            },
            "edges": [["write", "tests"]],
        }
    )


def scripted(*replies: str) -> ScriptedModel:
    return ScriptedModel([{"agent": f"writer{i}", "responses": [reply]} for i, reply in enumerate(replies)])


def test_answers_are_scored_one_if_their_tests_pass(db: str) -> None:
    model = scripted(WRONG, RIGHT, HANGS, BODY_ONLY, BROKEN)
    result = run(graph(5, timeout_s=1.5), INPUTS, model=model, store=db)
    model.assert_complete()
    out = result.outputs["tests"]
    assert out["scores"] == [0.0, 1.0, 0.0, 1.0, 0.0]
    assert [a["agent"] for a in out["answers"]] == [f"writer{i}" for i in range(5)]
    by_slot = {r["slot"]: r for r in out["results"]}
    assert [by_slot[i]["passed"] for i in range(5)] == [False, True, False, True, False]
    assert "AssertionError" in by_slot[0]["stderr_tail"] and by_slot[0]["exit_code"] == 1
    assert by_slot[2]["timed_out"] and by_slot[2]["exit_code"] is None
    assert "SyntaxError" in by_slot[4]["stderr_tail"]
    # the first passing answer is the node's (and, as the output node, the run's) answer
    assert out["answer"] == "def add(a, b):\n    return a + b"
    assert result.answer == out["answer"] and result.text == RIGHT


def test_no_passing_answer_gives_no_answer(db: str) -> None:
    result = run(graph(2), INPUTS, model=scripted(WRONG, BROKEN), store=db)
    out = result.outputs["tests"]
    assert out["scores"] == [0.0, 0.0] and out["answer"] is None and result.answer is None


def test_text_parser_runs_the_raw_reply(db: str) -> None:
    raw = "def add(a, b):\n    return a + b\n"
    result = run(graph(2, parser="text"), INPUTS, model=scripted(raw, RIGHT), store=db)
    assert result.outputs["tests"]["scores"] == [1.0, 0.0]  # the fenced reply is not Python as a whole


def test_tests_template_sees_inputs_nodes_answer_and_entry_point(db: str) -> None:
    tests = (
        "assert {{ entry_point }}(2, 3) == 5\n"
        "assert {{ answer.agent | tojson }} in {{ nodes.write.answers | map(attribute='agent') | list | tojson }}\n"
        "assert {{ inputs.entry_point | tojson }} == 'add'\n"
    )
    result = run(graph(2, tests=tests), INPUTS, model=scripted(RIGHT, WRONG), store=db)
    assert result.outputs["tests"]["scores"] == [1.0, 0.0]


@pytest.mark.parametrize(
    "escape",
    ["import sys\nsys.exit(0)", "raise SystemExit", "import os\nos._exit(0)", "import unittest\nunittest.main()"],
)
def test_exiting_before_the_tests_ran_fails(db: str, escape: str) -> None:
    """As in the HumanEval harness (SystemExit fails): status 0 alone is not a pass."""
    reply = f"```python\ndef add(a, b):\n    return a - b\n\n{escape}\n```"
    result = run(graph(2), INPUTS, model=scripted(reply, RIGHT), store=db)
    out = result.outputs["tests"]
    assert out["scores"] == [0.0, 1.0]
    assert out["results"][0]["exit_code"] == 0 and not out["results"][0]["completed"]


def test_reassigning_stdout_does_not_hide_completion(db: str) -> None:
    reply = "```python\nimport io, sys\nsys.stdout = io.StringIO()\ndef add(a, b):\n    return a + b\n```"
    assert run(graph(1), INPUTS, model=scripted(reply), store=db).outputs["tests"]["scores"] == [1.0]


def test_memory_limit_applies(db: str) -> None:
    hog = "```python\ndef add(a, b):\n    x = [0] * (256 * 1024 * 1024)\n    return a + b\n```"
    result = run(graph(2, memory_mb=128), INPUTS, model=scripted(hog, RIGHT), store=db)
    out = result.outputs["tests"]
    assert out["scores"] == [0.0, 1.0]
    assert out["results"][0]["memory_exceeded"] and not out["results"][1]["memory_exceeded"]


def test_code_never_runs_in_process(db: str) -> None:
    marker = "agentmesh_code_tests_in_process_marker"
    sneaky = f"```python\nimport builtins\nbuiltins.{marker} = True\ndef add(a, b):\n    return a + b\n```"
    result = run(graph(1), INPUTS, model=scripted(sneaky), store=db)
    assert result.outputs["tests"]["scores"] == [1.0]
    import builtins

    assert not hasattr(builtins, marker)


def test_undefined_template_variable_is_refused_when_the_spec_loads() -> None:
    with pytest.raises(SpecError, match=r"nodes\.tests\.tests: template uses undefined variable 'nope'"):
        graph(1, tests="{{ nope }}")


def test_a_template_that_fails_on_its_values_is_a_run_error(db: str) -> None:
    with pytest.raises(RunError, match="tests template failed"):
        run(graph(1, tests="{{ test + 1 }}"), INPUTS, model=scripted(RIGHT), store=db)


def test_entry_point_must_be_an_identifier(db: str) -> None:
    with pytest.raises(RunError, match="not a Python identifier"):
        run(graph(1), {**INPUTS, "entry_point": "add); import os; (x"}, model=scripted(RIGHT), store=db)


# --- assembly -------------------------------------------------------------------------------------------------


def test_assembly_follows_the_humaneval_harness() -> None:
    code = "def add(a, b):\n    return a + b\n"
    program = assemble_program(code, TEST, "add")
    assert program.startswith(code.rstrip("\n") + "\n\n")
    assert TEST.strip() in program
    assert program.endswith("\n\ncheck(add)\n")


def test_check_is_called_only_when_the_tests_define_and_do_not_call_it() -> None:
    assert "check(add)" not in assemble_program("x = 1", "assert x == 1", "add")  # no check defined
    assert "check(add)" not in assemble_program("x = 1", TEST, None)  # no entry point
    calls = TEST + "\ncheck(add)\n"
    assert assemble_program("x = 1", calls, "add").count("check(add)") == 1  # already called
    broken = "def check(candidate:\n    pass\n"  # does not parse: decided on the text
    assert assemble_program("x = 1", broken, "add").endswith("check(add)\n")
