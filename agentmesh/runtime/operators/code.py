"""``code_tests``: run each code answer of a node against unit tests in the sandbox (``agentmesh.sandbox``).

The program for one answer is assembled the HumanEval way (its harness: ``prompt + completion + "\\n" + test +
"\\n" + f"check({entry_point})"``), which is also how DyLAN runs tests on a writer's code (dylan.md §5):

1. the answer's code: its parsed ``value`` when the agent's parser is ``python_code`` (the last ```` ```python ````
   block, with the function's prompt prepended when the code has no ``def``, dylan.md §5.3), else its raw
   ``text``;
2. the ``tests`` template, rendered with the graph's inputs (top level and as ``inputs``), ``nodes`` (the outputs
   so far), ``answer`` (this answer) and ``entry_point``;
3. ``check(<entry_point>)`` when ``entry_point`` is set and the tests define ``check`` without calling it.

An answer passes when its program runs to its end and exits with status 0 within ``timeout_s``: a failing
``assert``, any uncaught exception, a syntax error, a timeout or the memory limit fails it, and so does exiting
before the tests have run (``sys.exit(0)``, ``unittest.main()`` in the answer's code), as in the HumanEval harness,
where ``SystemExit`` fails. (The program's last line writes a per-run random marker to file descriptor 1; it must be
in the output. This catches accidents, not a program written to fake a pass: the marker is in its own source and
memory, as HumanEval's in-process verdict is within reach of the code it judges.) Every program runs in its own
sandboxed subprocess with ``timeout_s`` and ``memory_mb``, never in-process; the programs run concurrently, at most
``os.cpu_count()`` at a time.

Output: ``answers`` (those of ``from``, unchanged), ``scores`` (1.0 passed / 0.0 failed, in the same order),
``results`` (per answer: slot, agent, passed, completed (ran to its end), timed_out, memory_exceeded,
exit_code, stderr_tail) and ``answer``
(the key of the first passing answer, with its ``value`` and ``text``; ``None`` when none passes).
"""

from __future__ import annotations

import ast
import asyncio
import re
import secrets
from typing import Any

import jinja2

from agentmesh.runtime.context import RunError
from agentmesh.runtime.operators.registry import NodeOutput, NodeRun, operator
from agentmesh.sandbox import SandboxError, SandboxResult, arun_python
from agentmesh.spec.operators import CodeTestsParams
from agentmesh.spec.templates import render

__all__ = ["assemble_program", "code_of", "code_tests"]

#: Characters of stderr kept per result in the node's output (the end of a traceback says what failed).
STDERR_TAIL = 2000

_DEFINES_CHECK = re.compile(r"^def\s+check\s*\(", re.MULTILINE)
_CALLS_CHECK = re.compile(r"^check\s*\(", re.MULTILINE)


def assemble_program(code: str, tests: str, entry_point: str | None = None) -> str:
    """``code``, then ``tests``, then ``check(entry_point)`` if the tests define ``check`` and do not call it."""
    parts = [code.rstrip("\n"), tests.rstrip("\n")]
    if entry_point and _needs_check_call(tests):
        parts.append(f"check({entry_point})")
    return "\n\n".join(part for part in parts if part) + "\n"


def _needs_check_call(tests: str) -> bool:
    try:
        body = ast.parse(tests).body
    except SyntaxError:  # the program will fail anyway; decide on the text
        return bool(_DEFINES_CHECK.search(tests)) and not _CALLS_CHECK.search(tests)
    defines = any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "check" for node in body)
    calls = any(
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id == "check"
        for node in body
    )
    return defines and not calls


def code_of(run: NodeRun, answer: dict[str, Any]) -> str:
    """The code an answer gives: the ``python_code`` parser's value, else the reply's text."""
    card = run.ctx.spec.agents.get(str(answer.get("agent")))
    value = answer.get("value")
    if card is not None and card.parser.name == "python_code" and isinstance(value, str):
        return value
    return str(answer.get("text") or "")


def _entry_point(run: NodeRun, p: CodeTestsParams) -> str | None:
    if not p.entry_point:
        return None
    name = p.entry_point
    if "{{" in name or "{%" in name:
        name = _render(run, name, {}, what="entry_point").strip()
    if not name:
        return None
    if not name.isidentifier():
        raise RunError(f"node {run.name!r}: entry_point {name!r} is not a Python identifier", node=run.name)
    return name


def _render(run: NodeRun, source: str, extra: dict[str, Any], *, what: str) -> str:
    inputs = run.ctx.inputs
    variables = {**inputs, "inputs": inputs, "nodes": run.outputs, **extra}
    try:
        return render(source, variables)
    except Exception as exc:  # Jinja's own errors, and what an expression raises on a value of the wrong type
        why = str(exc) if isinstance(exc, jinja2.TemplateError) else f"{type(exc).__name__}: {exc}"
        raise RunError(f"node {run.name!r}: the {what} template failed: {why}", node=run.name) from exc


@operator("code_tests", params=CodeTestsParams)
async def code_tests(run: NodeRun) -> NodeOutput:
    p = run.params
    assert isinstance(p, CodeTestsParams)
    answers: list[dict[str, Any]] = list(run.outputs.get(p.source, {}).get("answers") or [])
    entry_point = _entry_point(run, p)
    marker = f"agentmesh-code-tests-completed-{secrets.token_hex(8)}"
    end = f"__import__('os').write(1, b'\\n{marker}\\n')\n"  # past any reassigned sys.stdout
    programs = [
        assemble_program(
            code_of(run, answer),
            _render(run, p.tests, {"answer": answer, "entry_point": entry_point}, what="tests"),
            entry_point,
        )
        + end
        for answer in answers
    ]
    outcomes = await asyncio.gather(
        *(arun_python(program, timeout_s=p.timeout_s, memory_mb=p.memory_mb) for program in programs),
        return_exceptions=True,
    )
    results: list[SandboxResult] = []
    for outcome in outcomes:
        if isinstance(outcome, SandboxError):
            raise RunError(f"node {run.name!r}: {outcome}", node=run.name) from outcome
        if isinstance(outcome, BaseException):
            raise outcome
        results.append(outcome)
    completed = [marker in r.stdout for r in results]
    passed = [r.passed and done for r, done in zip(results, completed, strict=True)]
    first = next((a for a, ok in zip(answers, passed, strict=True) if ok), None)
    return {
        "answers": answers,
        "scores": [1.0 if ok else 0.0 for ok in passed],
        "results": [
            {
                "slot": a.get("slot"),
                "agent": a.get("agent"),
                "passed": ok,
                "completed": done,
                "timed_out": r.timed_out,
                "memory_exceeded": r.memory_exceeded,
                "exit_code": r.exit_code,
                "stderr_tail": r.stderr[-STDERR_TAIL:],
            }
            for a, r, ok, done in zip(answers, results, passed, completed, strict=True)
        ],
        "answer": first.get("key") if first else None,
        "value": first.get("value") if first else None,
        "text": first.get("text") if first else None,
    }
