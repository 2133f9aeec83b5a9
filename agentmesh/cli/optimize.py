"""``agentmesh optimize``: score how much each agent of a team contributes over a data set and keep the best.

It runs the graph's whole candidate team on every item of ``--data`` (stored, resumable, under a progress bar),
prints the agents ranked by mean Agent Importance Score, writes the graph with the top-k team (run it with
``agentmesh run <file>``) and a picture of the network and the ranking.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from agentmesh import datasets
from agentmesh.cli._common import (
    DbOption,
    Executor,
    ExecutorOption,
    JsonOption,
    RayAddressOption,
    RayCpusOption,
    console,
    err_console,
    open_store,
    run_async,
)
from agentmesh.cli._progress import WorkProgress
from agentmesh.optimize import ItemResult, aoptimize
from agentmesh.runtime.run import resolve_graph
from agentmesh.spec.loader import dump_graph
from agentmesh.viz.importance import importance_svg


def optimize(
    graph: Annotated[str, typer.Argument(help="Built-in graph name (dylan_mmlu) or path to a graph spec.")],
    data: Annotated[
        Path, typer.Option("--data", "-d", help="JSONL items: the graph's inputs, or MMLU/MATH/HumanEval records.")
    ],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="How many agents the optimised team keeps.")],
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Items run at once.")] = 4,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model reference (default: local).")] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Optimised graph file (default: <graph>_top<k>.yaml)."),
    ] = None,
    picture: Annotated[
        Path | None, typer.Option("--svg", help="Where to draw the network and ranking (default: beside --out).")
    ] = None,
    executor: ExecutorOption = Executor.LOCAL,
    ray_address: RayAddressOption = None,
    ray_cpus: RayCpusOption = 1.0,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run the full team on every item, rank the agents by importance, write the optimised graph and a picture."""
    spec = resolve_graph(graph)
    items = datasets.read_items(data, spec)
    out = out or Path(f"{spec.name}_top{top_k}.yaml")
    picture = picture or out.with_suffix(".svg")
    failures: list[ItemResult] = []
    with (
        open_store(db) as store,
        WorkProgress(
            spec.name, len(items), console=err_console, log=err_console, enabled=not as_json, transient=False
        ) as bar,
    ):

        def advance(item: ItemResult, done: int, total: int) -> None:
            if item.error:
                failures.append(item)
            note = f"line {item.line}: " + ("reused" if item.reused else f"{item.calls} calls")
            bar.update(completed=done, note=note if not item.error else f"line {item.line}: failed")

        try:
            result = run_async(
                aoptimize(
                    spec,
                    items,
                    top_k=top_k,
                    model=model,
                    store=store,
                    concurrency=concurrency,
                    progress=advance,
                    executor=executor.value,
                    ray_address=ray_address,
                    ray_cpus_per_item=ray_cpus,
                )
            )
        except KeyboardInterrupt:
            err_console.print(
                f"interrupted: {bar.completed} of {len(items)} items had finished; run the same command again to go "
                "on (finished items are kept, cut-short runs resume without repeating a call)",
                highlight=False,
                markup=False,
            )
            raise
    out.write_text(dump_graph(result.optimized), encoding="utf-8")
    picture.write_text(
        importance_svg(
            title=f"{spec.name}: agent importance over {len(items) - len(failures)} items",
            candidates=result.candidates,
            scores=result.scores,
            team=result.team,
            node_means=result.node_means,
            layers=result.layers,
        ),
        encoding="utf-8",
    )
    if as_json:
        payload = {
            "graph": result.graph,
            "job": result.job,
            "ranking": [{"agent": a, "importance": result.scores[a]} for a in result.ranking],
            "team": result.team,
            "accuracy": result.accuracy,
            "optimized_graph": str(out),
            "picture": str(picture),
            "items": [
                {"line": i.line, "run_id": i.run_id, "answer": i.answer, "gold": i.gold, "error": i.error}
                for i in result.items
            ],
        }
        console.print_json(json.dumps(payload, default=str))
    else:
        table = Table(title=Text(f"{spec.name}: agents by mean importance ({len(items)} items, job {result.job})"))
        for column in ("rank", "agent", "importance", "team"):
            table.add_column(column)
        for rank, agent in enumerate(result.ranking, start=1):
            table.add_row(str(rank), Text(agent), f"{result.scores[agent]:.4f}", "✓" if agent in result.team else "")
        console.print(table)
        if result.accuracy is not None:
            console.print(f"accuracy of the full team on the labelled items: {result.accuracy:.1%}")
        for item in failures:
            err_console.print(f"[red]line {item.line} failed[/] (run {item.run_id}): {escape(str(item.error))}")
        console.print(Text(f"optimised graph: {out}  (run it: agentmesh run {out} ...)"))
        console.print(Text(f"picture: {picture}"))
    if failures:
        raise typer.Exit(1)
