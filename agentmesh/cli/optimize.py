"""``agentmesh optimize``: choose a graph's team over a data set, by what each member contributes.

Two kinds of graph have a team to choose. A DyLAN graph (a ``dylan_importance`` node): the whole candidate team
runs on every item of ``--data``, the agents are ranked by mean Agent Importance Score and the top ``--top-k``
kept. An SE-Jury graph (a ``sejury_verdict`` node): every judge scores the calibration items drawn from the
labelled ``--data``, the team whose ensemble agrees best with the humans is kept, and its graph is checked on the
held-out items. Either way each item is its own stored, resumable run under a progress bar, and the command writes
the graph with the chosen team (run it with ``agentmesh run <file>``) and a picture of the choice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
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
    number_option,
    writable,
    write_output,
)
from agentmesh.cli._job import JobOptions, distinct_files, out_file, print_failures
from agentmesh.cli._progress import item_note
from agentmesh.errors import ConfigError
from agentmesh.runtime.arguments import resolve_graph
from agentmesh.spec.graph import GraphSpec
from agentmesh.spec.loader import dump_graph
from agentmesh.systems.sejury import JuryConfig
from agentmesh.viz.importance import importance_svg
from agentmesh.viz.jury import jury_svg
from agentmesh.viz.numbers import written_apart

# The optimisers and SE-Jury's calibration run their items as jobs (the runtime, LangGraph, the store): imported
# when the command runs, not for ``agentmesh optimize --help``.
if TYPE_CHECKING:
    from agentmesh.optimize.items import ItemRun
    from agentmesh.optimize.job import ItemResult, OptimizeResult
    from agentmesh.systems.sejury.jury import Calibration, CalibrationFailed

#: What this module's commands import when they run (not for their --help): imported first, watched for Ctrl-C
#: as this module's import is (agentmesh.cli.app).
WORK_IMPORTS = ("agentmesh.cli._store", "agentmesh.optimize", "agentmesh.systems.sejury.jury")


class Profile(StrEnum):
    """SE-Jury's dataset profiles (:data:`agentmesh.systems.sejury.PROFILES`; a test keeps the two in step)."""

    conala = "conala"
    card2code = "card2code"
    summarization = "summarization"
    apr = "apr"
    v1 = "v1"


#: The SE-Jury options' defaults. A DyLAN graph refuses these options when they are given at all (they were ignored).
PROFILE, HUMAN_KEY, CALIBRATION_SIZE = Profile.conala, "human", 20


def optimize(
    ctx: typer.Context,
    graph: Annotated[str, typer.Argument(help="Built-in graph name (dylan_mmlu) or path to a graph spec.")],
    data: Annotated[Path, typer.Option("--data", "-d", help=f"JSONL items, one per line: {ITEM_FORMATS}.")],
    top_k: Annotated[
        int | None,
        number_option(
            "--top-k",
            "-k",
            whole=True,
            at_least=1,
            help="DyLAN: how many agents the optimised team keeps (of each team: writers and judges apart).",
        ),
    ] = None,
    concurrency: Annotated[int, concurrency_option("Items run at once")] = CONCURRENCY,
    model: ModelOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Optimised graph file (default: <graph name or file stem>_top<k>.yaml; SE-Jury: ..._team.yaml).",
        ),
    ] = None,
    picture: Annotated[
        Path | None, typer.Option("--svg", help="Where to draw the network and ranking (default: beside --out).")
    ] = None,
    profile: Annotated[
        Profile, typer.Option("--profile", help="SE-Jury: the release's settings for a kind of data (sejury.md §4).")
    ] = PROFILE,
    human_key: Annotated[
        str, typer.Option("--human-key", help="SE-Jury: the field of each line holding the human label.")
    ] = HUMAN_KEY,
    calibration_size: Annotated[
        int,
        number_option(
            "--calibration-size", whole=True, at_least=2, help="SE-Jury: labelled items drawn to choose the team."
        ),
    ] = CALIBRATION_SIZE,
    held_out: Annotated[
        bool, typer.Option("--held-out/--no-held-out", help="SE-Jury: score the other labelled items with the team.")
    ] = True,
    executor: ExecutorOption = Executor.LOCAL,
    ray_address: RayAddressOption = None,
    ray_cpus: RayCpusOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Choose the graph's team over --data (DyLAN: by agent importance; SE-Jury: by agreement with human labels),
    write the graph with that team and a picture."""
    from agentmesh.optimize import aoptimize
    from agentmesh.optimize.job import EveryItemFailed, check_top_k
    from agentmesh.systems.sejury.jury import has_jury

    options = JobOptions.given(ctx)  # --model, --concurrency, --executor, --ray-*, --db, --json
    if picture is not None and not picture.is_dir() and picture.suffix.lower() != ".svg":  # x.png: opens broken
        raise ConfigError(f"--svg {picture}: it writes SVG; name the file *.svg")
    spec = resolve_graph(graph)
    if has_jury(spec):
        if top_k is not None:
            raise typer.BadParameter(
                "an SE-Jury graph chooses its team by calibration, not --top-k", param_hint="--top-k"
            )
        config = JuryConfig.profile(profile.value, n_calibration=calibration_size)
        calibrate_jury(spec, data, graph, config, human_key, held_out, out, picture, options)
        return
    # as --top-k on a jury, the jury's options on a DyLAN graph are refused rather than ignored without a word;
    # given, not differing from the default: "--profile conala", the default written out, passed unrefused
    jury_options = [
        flag
        for flag, name in [
            ("--profile", "profile"),
            ("--human-key", "human_key"),
            ("--calibration-size", "calibration_size"),
            ("--held-out" if held_out else "--no-held-out", "held_out"),
        ]
        if _given(ctx, name)
    ]
    if jury_options:
        raise ConfigError(
            f"{', '.join(jury_options)}: options of an SE-Jury graph's calibration; graph {spec.name!r} has no jury "
            "(a sejury_verdict node), so its team is chosen by --top-k"
        )
    if top_k is None:
        raise typer.BadParameter(f"how many agents should the team of {spec.name!r} keep?", param_hint="--top-k")
    check_top_k(spec, top_k)  # before the store opens: a bad --top-k left an empty database file behind
    items = datasets.read_items(data, spec)
    out = out_file(out, graph, spec.name, f"_top{top_k}.yaml")
    picture = writable(picture or out.with_suffix(".svg"), "--svg")
    distinct_files({"--out": out, "--svg": picture}, {"--data": data, "the graph file": graph})
    check_model(options.model, options.db)
    try:
        with options.session(spec.name, len(items)) as session:
            result = session.run(
                aoptimize(
                    spec,
                    items,
                    top_k=top_k,
                    store=session.store,
                    progress=session.item_done,
                    on_call=session.call_made,
                    **options.kwargs(),
                )
            )
    except EveryItemFailed as exc:
        if options.as_json:  # the failed items, as a partly failed job gives them; the error goes on to stderr
            failed: dict[str, object] = {"graph": spec.name, "job": exc.context.get("job"), "ranking": [], "team": []}
            failed |= {"tied_at_cut": [], "accuracy": None, "optimized_graph": None, "picture": None}
            failed |= {"items": _items_json(exc.items), "error": str(exc)}
            console.print_json(json.dumps(failed, default=str))
        raise
    failures = result.failed
    write_output(out, dump_graph(result.optimized), "--out")
    write_output(
        picture,
        importance_svg(
            title=f"{spec.name}: agent importance over {counted(len(items) - len(failures), 'item')}",
            candidates=result.candidates,
            scores=result.scores,
            team=result.team,
            node_means=result.node_means,
            layers=result.layers,
        ),
        "--svg",
    )
    if options.as_json:
        payload = {
            "graph": result.graph,
            "job": result.job,
            "ranking": [{"agent": a, "importance": result.scores[a]} for a in result.ranking],
            "team": result.team,
            "tied_at_cut": result.tied_at_cut,
            "accuracy": result.accuracy,
            "optimized_graph": str(out),
            "picture": str(picture),
            "items": _items_json(result.items),
            "error": None,
        }
        console.print_json(json.dumps(payload, default=str))
    else:
        scored = (
            f"{len(items) - len(failures)} of {counted(len(items), 'item')}"
            if failures
            else counted(len(items), "item")
        )  # failed: no scores
        console.print(ranking_table(result, f"{spec.name}: agents by mean importance ({scored}, job {result.job})"))
        for line in _ties(result):
            console.print(Text(line))
        _print_accuracy(result)
        shared = result.shared_credit
        if shared:  # DyLAN's own code divides by zero on these; their credit went to the whole last layer
            lines = _first_lines(shared)
            console.print(
                Text(
                    f"on {len(shared)} of {counted(len(items), 'item')} no agent of the last layer gave the final "
                    "answer, so all "
                    f"of them shared its credit ({lines})"
                )
            )
        unanswered = result.unanswered
        if unanswered:  # the table and the accuracy gave no sign that these rankings rest on unreadable replies
            lines = _first_lines(unanswered)
            console.print(
                Text(
                    f"on {len(unanswered)} of {counted(len(items), 'item')} the team gave no final answer its parser "
                    "could read "
                    f"({lines}): counted wrong where labelled, and their importance rests on replies without one"
                )
            )
        print_failures(failures)
        console.print(Text(f"optimised graph: {out}  (run it: agentmesh run {out} ...)"))
        console.print(Text(f"picture: {picture}"))
    if failures:
        raise typer.Exit(1)


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the user gave the option of parameter ``name`` (on the command line or through its environment
    variable), rather than leaving it at its default: an option whose value equals the default was given all the
    same, and is refused where it does not apply just as another value is."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _items_json(items: Sequence[ItemResult]) -> list[dict[str, object]]:
    """The items of ``optimize --json``: each one's data line, run, answer and error."""
    return [
        {
            "line": i.line,
            "run_id": i.run_id,
            "answer": i.answer,
            "gold": i.gold,
            "shared_credit": i.shared_credit,
            "unanswered": not i.error and i.answer is None,
            "error": i.error,
        }
        for i in items
    ]


def ranking_table(result: OptimizeResult, title: str) -> Table:
    """The agents by mean importance, each score with the decimals that tell it from the next (at a fixed four,
    means 0.00002 apart read the same beside ranks 1 and 2), right-aligned in a column of one width."""
    written = written_apart(result.exact or result.scores)
    table = Table(title=Text(title))
    for column in ("rank", "agent", "importance", "team"):
        table.add_column(column, justify="right" if column == "importance" else "left")
    for rank, agent in enumerate(result.ranking, start=1):
        table.add_row(str(rank), Text(agent), written[agent], "✓" if agent in result.team else "")
    return table


def _first_lines(items: Sequence[ItemResult]) -> str:
    """The data lines of ``items``, the first ten of them ("line 3", "lines 3, 7, ..."), for a note on the items it
    names (one item's was "(lines 1)")."""
    shown = ", ".join(str(i.line) for i in items[:10]) + (", ..." if len(items) > 10 else "")
    return f"{'line' if len(items) == 1 else 'lines'} {shown}"


def _ties(result: OptimizeResult) -> list[str]:
    """A line per score at which --top-k cut through a tie: who was kept and who left, by the candidates' order."""
    by_score: dict[tuple[str, Fraction], list[str]] = {}
    for agent in result.tied_at_cut:
        group = next(g for g, labels in result.groups.items() if agent in labels)
        by_score.setdefault((group, result.exact[agent]), []).append(agent)
    written = written_apart(result.exact)  # a tie's score as the table writes it
    lines = []
    for (group, value), left in by_score.items():
        kept = [
            a for a in result.ranking if a in result.team and a in result.groups[group] and result.exact[a] == value
        ]
        lines.append(
            f"tie at {written[left[0]]}: {', '.join(kept)} kept, {', '.join(left)} not, by the candidates' order in "
            "the graph alone (--top-k cut through the tie)"
        )
    return lines


def _print_accuracy(result: OptimizeResult) -> None:
    """The full team's accuracy on the labelled items, saying how many it is over: a failed item has no answer and
    is not counted (it said "100.0%" on 1 labelled item of 2 when the other failed, with nothing to say so)."""
    if result.accuracy is None:
        return
    judged = [i for i in result.items if i.correct is not None]
    failed = sum(1 for i in result.items if i.gold is not None and i.error)
    right = sum(1 for i in judged if i.correct)
    left_out = f"; {failed} more failed and {'is' if failed == 1 else 'are'} not counted" if failed else ""
    console.print(
        Text(
            f"accuracy of the full team on the labelled items: {result.accuracy:.1%} ({right} of {len(judged)} "
            f"correct{left_out})"
        )
    )


def _has_field(path: Path, line: int | None, key: str) -> bool:
    """Whether line ``line`` of a JSONL file is an object with ``key``: then an unknown input on it is not the
    human label under another name, and no hint about --human-key is due."""
    if line is None:
        return False
    try:
        record = json.loads(path.read_text(encoding="utf-8-sig").split("\n")[line - 1])
    except (OSError, ValueError, IndexError):
        return False
    return isinstance(record, dict) and key in record


def calibrate_jury(
    spec: GraphSpec,
    data: Path,
    graph: str,
    config: JuryConfig,
    human_key: str,
    held_out: bool,
    out: Path | None,
    picture: Path | None,
    options: JobOptions,
) -> None:
    """``optimize`` on an SE-Jury graph: calibrate, print the teams, write the team's graph and the picture."""
    from agentmesh.systems.sejury.jury import CalibrationFailed, acalibrate, check_items

    try:
        items = datasets.read_items(data, spec, keep={human_key})
    except ConfigError as exc:
        if "unknown input" not in str(exc) or _has_field(data, exc.context.get("line"), human_key):
            raise
        # the label's field, when --human-key names another, reads as a misspelt input: say which field is read
        raise ConfigError(
            f"{exc}; the human label is read from the field {human_key!r} (--human-key)", **exc.context
        ) from None
    check_items(spec, items, config=config, human_key=human_key, source=data)  # naming the file, before any run
    out = out_file(out, graph, spec.name, "_team.yaml")
    picture = writable(picture or out.with_suffix(".svg"), "--svg")
    distinct_files({"--out": out, "--svg": picture}, {"--data": data, "the graph file": graph})
    n_cal = min(config.n_calibration, len(items))
    total = len(items) if held_out else n_cal  # one bar: the calibration items, then the held-out ones
    check_model(options.model, options.db)
    try:
        with options.session(spec.name, total) as session:

            def advance(phase: str, item: ItemRun, done: int, total: int) -> None:
                session.bar.update(
                    completed=done + (n_cal if phase == "held-out" else 0),
                    note=item_note(item, f"{phase} line {item.line}"),
                )

            found = session.run(
                acalibrate(
                    spec,
                    items,
                    config=config,
                    human_key=human_key,
                    evaluate=held_out,
                    store=session.store,
                    progress=advance,
                    on_call=session.call_made,
                    **options.kwargs(),
                )
            )
    except CalibrationFailed as exc:
        if options.as_json:  # the document a calibration prints, with no team: the items' runs and errors, and why
            console.print_json(json.dumps(_failed_calibration(spec.name, config, exc), default=str))
        raise
    write_output(out, dump_graph(found.team_graph), "--out")
    n_test = sum(1 for i in found.held_out if i.score is not None)
    write_output(picture, jury_svg(f"{spec.name}: choosing the jury", found.selection, found.test, n_test), "--svg")
    if options.as_json:
        document = {**found.to_json(), "team_graph_file": str(out), "picture": str(picture), "error": None}
        console.print_json(json.dumps(document))
    else:
        _print_calibration(found, out, picture, held_out)
    if found.failed:
        raise typer.Exit(1)


def _failed_calibration(graph: str, config: JuryConfig, exc: CalibrationFailed) -> dict[str, object]:
    """``optimize --json`` of an SE-Jury calibration that could choose no team (fewer than 2 items scored): the keys
    a calibration's document has, with no team, no candidates, no graph written, every calibration item with its run
    and error, and the error under ``error``. It printed nothing on stdout, so a script had no run to show or
    resume (DyLAN's job prints its failed items alike)."""
    return {
        "graph": graph,
        "team_graph": None,
        "jobs": exc.jobs,
        "config": config.model_dump(mode="json"),
        "team": [],
        "score": None,
        "kendall": None,
        "spearman": None,
        "runner_up": None,
        "tied_at_max": [],
        "human": [],
        "per_judge": {},
        "candidates": [],
        "test": None,
        "calibration_items": [i.to_json() for i in exc.items],
        "held_out_items": [],
        "team_graph_file": None,
        "picture": None,
        "error": str(exc),
    }


def _print_calibration(found: Calibration, out: Path, picture: Path, held_out: bool = True) -> None:
    selection = found.selection
    table = Table(title=Text(f"{found.graph}: candidate teams on {counted(len(selection.human), 'calibration item')}"))
    for column in ("rank", "team", "score", "Kendall τ", "Spearman ρ"):
        table.add_column(column)
    ranked = sorted(selection.candidates, key=lambda c: -c.score if not math.isnan(c.score) else math.inf)
    # the scores with the decimals that tell the teams shown apart (at three, 0.9851 and 0.9848 read alike)
    shown = {" + ".join(c.team): c.score for c in ranked[:10] if not math.isnan(c.score)}
    scores = written_apart(shown, at_least=3)
    for rank, candidate in enumerate(ranked[:10], start=1):
        mark = " ✓" if candidate is selection.selected else ""
        table.add_row(
            str(rank),
            Text(" + ".join(candidate.team) + mark),
            scores.get(" + ".join(candidate.team), "n/a"),
            _fmt(candidate.correlations.kendall),
            _fmt(candidate.correlations.spearman),
        )
    console.print(table)
    if len(ranked) > 10:
        console.print(f"... {counted(len(ranked) - 10, 'more team')} in the picture and in --json")
    tied = selection.tied_at_max
    if math.isnan(selection.selected.score):  # "46 teams tie at the top" said nothing of why, nor that it was no choice
        human = set(selection.human)
        why = (
            f"the {len(selection.human)} scored calibration items all have the human label {selection.human[0]:g}"
            if len(human) == 1
            else "every team gave the same score to every calibration item"
        )
        console.print(
            Text(
                f"no team's agreement with the humans could be measured ({why}): the team below is the first "
                "enumerated, not one chosen on evidence"
            )
        )
    elif len(tied) > 1:
        console.print(Text(f"{len(tied)} teams tie at the top; the earliest in enumeration order was chosen"))
    console.print(Text(f"team: {' + '.join(found.team)}"))
    if found.test is not None:
        scored = [i for i in found.held_out if i.score is not None]
        n = len(scored)
        # n/a everywhere said nothing of why: one label on every held-out item, or one score from the team
        constant = [
            f"every {what} is {values.pop():g}"
            for what, values in (("human label", {i.human for i in scored}), ("team score", {i.score for i in scored}))
            if len(values) == 1
        ]
        console.print(
            Text(
                f"on {n} held-out items: Kendall τ {_fmt(found.test.kendall)}, Spearman ρ {_fmt(found.test.spearman)}, "
                f"Pearson r {_fmt(found.test.pearson)}"
                + (f" (n/a: {' and '.join(constant)}, so there is nothing to correlate)" if constant else "")
            )
        )
    elif held_out and not found.held_out:  # the check the README promises did not happen: say why, not nothing
        console.print(
            Text(
                f"no held-out check: all {counted(len(found.calibration), 'labelled item')} calibrated (with more than "
                f"--calibration-size {found.config.n_calibration}, the others check the team)"
            )
        )
    elif held_out:  # held-out items ran, but fewer than two were scored: it said nothing at all
        n = sum(1 for i in found.held_out if i.score is not None)
        console.print(
            Text(
                f"no held-out check: {n} of {len(found.held_out)} held-out item(s) scored; a correlation needs at "
                f"least 2 (a smaller --calibration-size leaves more to check the team)"
            )
        )
    for line in _unparsed(found):
        console.print(Text(line))
    print_failures(found.failed)
    console.print(Text(f"team's graph: {out}  (score items: agentmesh run {out} --input-file items.jsonl)"))
    console.print(Text(f"picture: {picture}"))


def _unparsed(found: Calibration) -> list[str]:
    """Per phase, the judges whose replies held no ``NN [END]`` score, on how many items and which lines. Such a
    reply scores 0, as in the release, and a 0 weighs in every team's correlation: the table gave the figures with
    nothing to say that some were made of replies nobody could read (they were only in --json)."""
    lines = []
    for phase, items in (("calibration", found.calibration), ("held-out", found.held_out)):
        scored = [i for i in items if not i.error]
        by_judge: dict[str, list[int]] = {}
        for item in scored:
            for judge in item.unparsed:
                by_judge.setdefault(judge, []).append(item.line)
        if by_judge:
            each = "; ".join(
                f"{judge} on {len(at)} of {len(scored)} (line{'s' if len(at) > 1 else ''} "
                f"{', '.join(map(str, at[:10]))}{', ...' if len(at) > 10 else ''})"
                for judge, at in by_judge.items()
            )
            lines.append(f"unparsed replies on the {phase} items, scored 0 as in the release: {each}")
    return lines


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"
