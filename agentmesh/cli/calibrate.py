"""``agentmesh calibrate``: measure a MAgICoRe graph's ``mu``/``sigma`` on a problem set (magicore.md §2.4).

MAgICoRe's difficulty test compares each sample's reward with the mean and spread of first-sample rewards over
the problems; the graph's shipped values are placeholders, valid for no reward source in particular. This command
draws and scores the first Solver sample of every problem in ``--data`` (each its own stored, resumable run, under
a progress bar), prints mu and sigma with the ``-i`` options that apply them to a run, and writes the graph with
them set. ``agentmesh optimize`` chooses a team; calibrating is not choosing, so it is a command of its own.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from agentmesh import datasets
from agentmesh._text import counted
from agentmesh.cli._common import (
    CONCURRENCY,
    ITEM_FORMATS,
    DbOption,
    Executor,
    ExecutorOption,
    JsonOption,
    ModelOption,
    RayAddressOption,
    RayCpusOption,
    check_model,
    concurrency_option,
    console,
    write_output,
)
from agentmesh.cli._job import JobOptions, distinct_files, out_file, print_failures
from agentmesh.plugins import imported
from agentmesh.runtime.arguments import resolve_graph
from agentmesh.spec.loader import dump_graph

# MAgICoRe's calibration runs its problems as a job (the runtime, LangGraph): imported when the command runs, not
# for ``agentmesh calibrate --help``.
if TYPE_CHECKING:
    from agentmesh.systems.magicore.calibration import Calibration

#: What this module's commands import when they run (not for their --help): imported first, watched for Ctrl-C
#: as this module's import is (agentmesh.cli.app).
WORK_IMPORTS = ("agentmesh.cli._store", "agentmesh.systems.magicore.calibration")


def calibrate(
    ctx: typer.Context,
    graph: Annotated[str, typer.Argument(help="Built-in graph name (magicore) or path to a graph spec.")],
    data: Annotated[
        Path,
        typer.Option("--data", "-d", help=f"JSONL problems, one per line: {ITEM_FORMATS}."),
    ],
    node: Annotated[
        str | None, typer.Option("--node", help="The magicore node to calibrate (default: the graph's only one).")
    ] = None,
    concurrency: Annotated[int, concurrency_option("Problems run at once")] = CONCURRENCY,
    model: ModelOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="The graph with mu/sigma set (default: <graph name or file stem>_calibrated.yaml)."
        ),
    ] = None,
    executor: ExecutorOption = Executor.LOCAL,
    ray_address: RayAddressOption = None,
    ray_cpus: RayCpusOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Measure a MAgICoRe graph's mu and sigma (mean and spread of the first sample's reward) over --data, with
    the same Solver and reward models, and write the graph with them set.

    Run again, it reuses finished problems and resumes cut-short ones. Calibrate with the model and reward
    source the graph will run with: the values are only valid for those."""
    from agentmesh.systems.magicore.calibration import (
        CalibrationFailed,
        acalibrate,
        calibration_graph,
        check_enough,
        magicore_node,
    )

    options = JobOptions.given(ctx)  # --model, --concurrency, --executor, --ray-*, --db, --json
    spec = resolve_graph(graph)
    calibration_graph(spec, node)  # the node checked first: a graph without one is refused before --data is read
    # read against the user's graph (the calibration graph has the same inputs): a bad line named the internal
    # "graph 'magicore_calibration'", a graph the user never gave
    items = datasets.read_items(data, spec)
    check_enough(spec, items)
    out = out_file(out, graph, spec.name, "_calibrated.yaml")
    distinct_files({"--out": out}, {"--data": data, "the graph file": graph})
    check_model(model, db)
    try:
        with options.session(f"{spec.name} calibration", len(items), unit="problems") as session:
            found = session.run(
                acalibrate(
                    spec,
                    items,
                    node=node,
                    store=session.store,
                    progress=session.item_done,
                    on_call=session.call_made,
                    **options.kwargs(),
                )
            )
    except CalibrationFailed as exc:
        if options.as_json:  # the problems' runs and errors, as a partly failed calibration gives them; no mu/sigma
            failed = exc.to_json(spec.name, magicore_node(spec, node)) | {"calibrated_graph": None, "error": str(exc)}
            console.print_json(json.dumps(failed, default=str))
        raise
    assert found.calibrated is not None
    write_output(out, dump_graph(found.calibrated), "--out")
    if options.as_json:
        console.print_json(json.dumps({**found.to_json(), "calibrated_graph": str(out), "error": None}, default=str))
    else:
        _print(found, graph, out)
    if found.failed:
        raise typer.Exit(1)


def _print(found: Calibration, graph: str, out: Path) -> None:
    n = len(found.rewards)
    console.print(
        Text(
            f"{found.graph}: mu = {found.mu:.6g}, sigma = {found.sigma:.6g} over {counted(n, 'first sample')} "
            f"(model {found.model}, job {found.job})"
        )
    )
    why = found.fallbacks()
    if why:  # mu and sigma made of fallbacks measure the judges' format, not the reward source: say how much
        console.print(Text(f"of these rewards, not judgements: {why}"))
    print_failures(found.failed)
    # a graph scoring with reward functions runs only where the modules registering them are imported: say so in
    # the commands to copy (they said "agentmesh run my_magicore.yaml ...", which fails: unknown function)
    functions = found.calibrated is not None and any(
        getattr(n.params, "orm_function", None) or getattr(n.params, "prm_function", None)
        for n in found.calibrated.nodes.values()
    )
    imports = "".join(f"-I {shlex.quote(module)} " for module in imported()) if functions else ""
    console.print(Text(f"apply to a run:   agentmesh {imports}run {graph} -i question=... {found.cli_args}"))
    console.print(Text(f"calibrated graph: {out}  (run it: agentmesh {imports}run {out} -i question=...)"))
