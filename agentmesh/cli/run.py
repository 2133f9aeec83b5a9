"""``agentmesh run`` and ``agentmesh resume``: run a graph on inputs (one item, or many from a JSONL file) and
watch it work.

One item gets a live view fed by the runtime's listener events: per round of each node, its agents and their
answers as they arrive, the node's stop notes, then a final panel with the answer, the stop reason and where the
run is stored. Many items (and several runs resumed at once) are :mod:`agentmesh.cli.batch`'s.

Everything the user could get wrong (graph, inputs, the JSONL file, the model reference) is checked before the
first run is created, so a typo never leaves half a batch in the store.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.live import Live

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
    err_console,
    limit_option,
    run_async,
)
from agentmesh.errors import AgentmeshError, ConfigError, NotRecordedError, RunNotFoundError
from agentmesh.spec.graph import GraphSpec, InputSpec
from agentmesh.spec.loader import stored_graph
from agentmesh.spec.stop import Budget, budget_limit
from agentmesh.store._redact import mask_secrets
from agentmesh.store.owner import OWNER_KEY, describe_owner, owner_alive
from agentmesh.store.records import RunRecord, RunStatus

# The runtime (LangGraph), the store (SQLAlchemy) and the batch machinery are imported by the functions that use
# them, not here: this module is imported for ``agentmesh run --help`` and ``resume --help`` too (and by
# ``replay`` for parse_inputs), which need only the options above -- the imports took a second and a half.
if TYPE_CHECKING:
    from agentmesh.cli.batch import Start
    from agentmesh.cli.batch_store import Unstarted
    from agentmesh.cli.batch_summary import ItemOutcome
    from agentmesh.models import ModelClient
    from agentmesh.runtime.context import Listener
    from agentmesh.runtime.run import RunResult
    from agentmesh.store import Store

#: What this module's commands import when they run (not for their --help): imported first, watched for Ctrl-C
#: as this module's import is (agentmesh.cli.app).
WORK_IMPORTS = (
    "agentmesh.cli._store",
    "agentmesh.cli._job",
    "agentmesh.cli._live",
    "agentmesh.cli.batch",
    "agentmesh.runtime.run",
)

QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the answer.")]

_TRUE = {"true", "yes", "y", "on", "1"}
_FALSE = {"false", "no", "n", "off", "0"}
_EXAMPLES = {
    "integer": "an integer like 3",
    "number": "a number like 0.5",
    "boolean": "true or false",
    "list": "a JSON list like [1, 2]",
    "object": 'a JSON object like {"k": 1}',
}


def _budget_option(flag: str, *, whole: bool, help: str) -> Any:
    """A ``--max-*`` budget option, read and checked by :func:`budget_limit`, as a graph's and a Python
    :class:`Budget`'s limits are: one refusal in one form everywhere (``--max-calls must be a positive whole number
    (got 0)``), where typer's range check, a callback of ours and pydantic each said it in other words. Refused
    as the command's other wrong options are, as a :class:`ConfigError` (exit 2, before any run)."""

    def parse(text: str) -> int | float:
        try:
            return budget_limit(text, whole=whole)
        except ValueError as exc:
            raise ConfigError(f"{flag} {exc}", option=flag) from None

    return typer.Option(flag, parser=parse, metavar="<int> [x>=1]" if whole else "<float> [x>0]", help=help)


# --- the commands ---------------------------------------------------------------------------------------------


def run_graph(
    ctx: typer.Context,
    graph: Annotated[str, typer.Argument(help="A graph file (YAML) or a built-in graph name such as 'debate'.")],
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            "-i",
            help="An input as key=value, typed from the graph's inputs (key=@file: the file's text); repeatable.",
        ),
    ] = None,
    input_file: Annotated[
        Path | None,
        typer.Option(
            "--input-file",
            help=f"JSONL file, one object per line ({ITEM_FORMATS}); each line is its own run (-i values are "
            "defaults).",
        ),
    ] = None,
    model: ModelOption = None,
    db: DbOption = None,
    concurrency: Annotated[int | None, concurrency_option("Items of --input-file run at once")] = None,
    limit: Annotated[int | None, limit_option("--input-file")] = None,
    max_calls: Annotated[
        int | None,
        _budget_option("--max-calls", whole=True, help="Budget of model calls per run (best answer so far)."),
    ] = None,
    max_tokens: Annotated[
        int | None,
        _budget_option("--max-tokens", whole=True, help="Budget of tokens (prompt + completion) per run."),
    ] = None,
    max_cost: Annotated[float | None, _budget_option("--max-cost", whole=False, help="Budget in USD per run.")] = None,
    max_seconds: Annotated[
        float | None, _budget_option("--max-seconds", whole=False, help="Wall time per run, in seconds.")
    ] = None,
    executor: ExecutorOption = Executor.LOCAL,
    ray_address: RayAddressOption = None,
    ray_cpus: RayCpusOption = None,
    as_json: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Run a graph on inputs and print its answer, with a live view of rounds, agents and answers.

    The ``--max-*`` budgets are shared by every agent of a run and add to the graph's own: when one is spent, no
    further call starts and the run ends with its best answer so far (its stop reason says which budget)."""
    from agentmesh.cli._job import JobOptions
    from agentmesh.cli.batch import run_batch
    from agentmesh.runtime.arguments import check_inputs, graph_file, resolve_graph
    from agentmesh.runtime.operators.registry import check_functions
    from agentmesh.runtime.run import arun, graph_source

    if as_json and quiet:
        raise ConfigError("--json and --quiet exclude each other: pick one output form")
    spec = resolve_graph(graph)
    check_functions(spec, graph_file(graph))  # (arun checks too; here once, not as a failed row per item of a batch)
    given = parse_inputs(spec, inputs or [])
    limits = {"calls": max_calls, "tokens": max_tokens, "cost_usd": max_cost, "wall_s": max_seconds}
    budget = Budget(**limits) if any(v is not None for v in limits.values()) else None
    if input_file is not None and str(input_file) == "-":
        # a batch keeps its file's path and hash: resume --batch reads again the lines an interruption kept from
        # starting, which standard input cannot give twice
        raise ConfigError(
            "--input-file -: items cannot be read from standard input: a batch is stored with its file's path, and "
            "agentmesh resume --batch reads that file again for the lines an interruption kept from starting; save "
            "the items to a file first (e.g. ... > items.jsonl) and give --input-file items.jsonl (a file named -: "
            "give its full path)"
        )
    if input_file is not None:
        from agentmesh.systems.sejury.jury import batch_labels, check_batch_labels

        # every line checked before any run starts; benchmark formats mapped to the graph's inputs, their
        # reference answers kept aside, and on a jury's graph the human labels (scored in the summary)
        items = datasets.read_items(input_file, spec, given, keep=batch_labels(spec), limit=limit)
        check_batch_labels(items, input_file)
        run_batch(
            spec,
            items,
            JobOptions.given(ctx),  # --model, --concurrency, --executor, --ray-*, --db, --json
            source=input_file,
            budget=budget,
            quiet=quiet,
            given=given,
            limit=limit,
            graph_source=graph_source(graph),
        )
        return
    if limit is not None:
        raise ConfigError("--limit takes the first items of an --input-file; there is none")
    if concurrency is not None:
        raise ConfigError("--concurrency is how many items of an --input-file run at once; there is none")
    if executor != Executor.LOCAL or ray_address is not None or ray_cpus is not None:
        raise ConfigError("--executor ray runs the items of an --input-file on Ray; one run runs here")
    check_inputs(spec, given)  # also done by arun; here so that a bad input never starts the live view
    check_model(model, db)  # before the store opens: a mistyped --model left an empty database at a new --db
    # the spec is resolved here already; its source is stored all the same, so a replay checks today's file
    meta = {"source": graph_source(graph)}
    _run_one(
        spec,
        lambda listeners, store: arun(
            spec, given, model=model, store=store, budget=budget, listeners=listeners, meta=meta
        ),
        db=db,
        as_json=as_json,
        quiet=quiet,
        prefill=True,
    )


def resume(
    runs: Annotated[
        list[str] | None,
        typer.Argument(help="Run ids or unique prefixes of them; several are resumed as a batch.", metavar="RUN..."),
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option(
            "--batch",
            "-b",
            help="A batch (run --input-file's id, or a unique prefix of it): its interrupted and failed runs, those a "
            "dead process left running, and the lines it never started.",
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model reference or alias (default: each run's model).")
    ] = None,
    db: DbOption = None,
    concurrency: Annotated[int, concurrency_option("Runs resumed at once")] = CONCURRENCY,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Resume runs still marked running (their process was killed with SIGKILL or is lost)."
        ),
    ] = False,
    as_json: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Continue interrupted or failed runs from their last checkpoints; finished model calls are not made again."""
    from agentmesh.cli._store import open_store
    from agentmesh.cli.batch import run_many
    from agentmesh.cli.batch_store import batch_id, resume_claimed, unfinished_of
    from agentmesh.cli.batch_summary import ItemOutcome
    from agentmesh.runtime.outcome import ask_call_refusal, is_ask_call
    from agentmesh.runtime.recorded_model import model_for
    from agentmesh.runtime.run import DEFAULT_MODEL, aresume

    if as_json and quiet:
        raise ConfigError("--json and --quiet exclude each other: pick one output form")
    if runs and batch is not None:
        raise ConfigError("give the runs to resume, or --batch ID, not both")
    if not runs and batch is None:
        raise ConfigError("nothing to resume: give run ids (or unique prefixes), or --batch ID")
    unstarted: Unstarted | None = None
    unrun: str | None = None  # why lines of the batch that never started cannot be run (its file is gone)
    with open_store(db, existing=True) as store:
        if batch is not None:  # its cut and failed runs, and the lines an interruption kept from starting
            batch = batch_id(store, batch, then=" (agentmesh show RUN names the batch of a run)")  # (a prefix)
            records, unstarted, unrun = unfinished_of(store, batch)
        else:
            records = list({r.id: r for r in (store.get_run(run) for run in runs or [])}.values())
    done = [r.id[:12] for r in records if r.status == "succeeded"]
    if done:  # found before anything is resumed, rather than as one failed row among the others
        raise ConfigError(f"run {', '.join(done)} already succeeded; nothing to resume (nothing was resumed)")
    asks = [r.id[:12] for r in records if is_ask_call(r)]
    if asks:
        raise ConfigError(ask_call_refusal(asks, "resume") + " (nothing was resumed)")
    # resumed alongside a live process, a run made its calls twice, both writing to it; one whose process is known
    # to be gone (SIGKILL, out of memory: it stays "running") is resumed as it is
    running = [
        f"{r.id[:12]} ({describe_owner(r.meta.get(OWNER_KEY))}"
        + (", still at work)" if alive else ", which this machine cannot check)")
        for r in records
        if r.status == RunStatus.RUNNING and (alive := owner_alive(r.meta.get(OWNER_KEY))) is not False
    ]
    if running and not force:
        raise ConfigError(
            f"run {', '.join(running)} is still marked running: resuming it while its process runs it would make "
            "its calls twice. If that process is gone (a lost machine), resume it with --force (nothing was resumed)"
        )
    if len(records) == 1 and batch is None:  # one run: its live view (a batch's keeps its summary, accuracy included)
        (record,) = records
        spec = stored_graph(record.meta.get("spec"), record.id)
        _run_one(
            spec,
            lambda listeners, store: _resume_one(record, store, model, listeners),
            db=db,
            as_json=as_json,
            quiet=quiet,
            prefill=False,
        )
        return
    # One client for every run when a model is given (one connection pool); else each run its own stored model.
    client = model_for(model, db) if model else None
    # the lines that never started run on --model, else on the batch's model: one client for them all
    fresh = None if unstarted is None or not unstarted.items else client
    if unstarted is not None and unstarted.items and fresh is None:
        fresh = model_for(unstarted.model or DEFAULT_MODEL, db)
    owned = [c for c in {id(c): c for c in (client, fresh) if c is not None}.values()]

    async def close() -> None:
        for each in owned:
            await each.aclose()

    def work(store: Store) -> list[tuple[ItemOutcome, Start]]:
        def start(record: RunRecord) -> Start:
            # claimed first: another resume of the same runs at once leaves this one to whichever claims it first
            return lambda listeners: resume_claimed(
                store,
                record,
                lambda: aresume(record.id, store=store, model=client, listeners=listeners, force=True),
            )

        def outcome(r: RunRecord) -> ItemOutcome:
            if batch is None:  # runs of anything: named by their graph
                return ItemOutcome(line=None, inputs=dict(r.inputs), label=r.graph, run_id=r.id)
            tag = r.meta.get("batch") or {}  # one batch's items: by their line, as it showed them
            return ItemOutcome(
                line=tag.get("line"),
                inputs=dict(r.inputs),
                run_id=r.id,
                batch=batch,
                gold=tag.get("gold"),
                human=tag.get("human"),
            )

        resumed = [(outcome(r), start(r)) for r in records]
        return resumed + ([] if unstarted is None or fresh is None else _start_unstarted(unstarted, store, fresh))

    run_many(
        "resume",
        work,
        noun="runs",
        db=db,
        concurrency=concurrency,
        as_json=as_json,
        quiet=quiet,
        close=close if owned else None,
        batch=batch,
        unrun=unrun,
    )


async def _resume_one(record: RunRecord, store: Store, model: str | None, listeners: list[Listener]) -> RunResult:
    """``resume RUN`` of one run, claimed first (:func:`resume_claimed`): two resumes of it at once made its calls
    twice; the second now says which process has it, and resumes nothing."""
    from agentmesh.cli.batch_store import Elsewhere, resume_claimed
    from agentmesh.runtime.run import aresume

    try:
        return await resume_claimed(
            store, record, lambda: aresume(record.id, store=store, model=model, listeners=listeners, force=True)
        )
    except Elsewhere as exc:
        raise ConfigError(f"{exc} (nothing was resumed here)", run=record.id) from None


def _start_unstarted(unstarted: Unstarted, store: Store, client: ModelClient) -> list[tuple[ItemOutcome, Start]]:
    """New runs for a batch's lines that never started, as the batch would have run them: its graph, its budget,
    tagged as its other runs are; on ``client`` (``--model``, else the batch's model)."""
    from agentmesh.cli.batch import first_run
    from agentmesh.cli.batch_summary import ItemOutcome, batch_tag, human_label

    tag = unstarted.tag

    def start(item: datasets.Item) -> Start:
        meta: dict[str, Any] = {"batch": {**tag, **batch_tag(item)}}
        if unstarted.source is not None:  # as the batch's other runs: a replay checks today's graph file
            meta["source"] = unstarted.source
        return first_run(unstarted.spec, item, meta, store=store, client=client, budget=unstarted.budget)

    return [
        (
            ItemOutcome(
                line=item.line,
                inputs=item.inputs,
                batch=str(tag.get("id")),
                gold=item.gold,
                human=human_label(item),
            ),
            start(item),
        )
        for item in unstarted.items
    ]


def _deleted(store: Store, run_id: str) -> bool:
    """Whether run ``run_id`` is gone from ``store`` (deleted with ``--force`` while it ran), as a failed or
    interrupted run's report must then say instead of "it is stored: resume it"."""
    try:
        store.get_run(run_id)
    except RunNotFoundError:
        return True
    except AgentmeshError:  # the store failing: the run's fate is unknown, the usual report follows
        return False
    return False


def _stopped_json(store: Store, run_id: str) -> dict[str, Any]:
    """``run --json`` / ``resume --json`` of a run that failed or was interrupted: what the store has of it, in the
    keys of a :class:`RunResult`, with its ``error``."""
    try:
        record = store.get_run(run_id)
    except RunNotFoundError as exc:  # deleted while it ran
        return {"run_id": run_id, "status": "deleted", "answer": None, "error": str(exc)}
    except AgentmeshError as exc:  # the store failing too: what is known
        return {"run_id": run_id, "status": "failed", "answer": None, "error": str(exc)}
    totals = record.totals or {}
    return {
        "run_id": record.id,
        "graph": record.graph,
        "status": str(record.status),
        "stop_reason": record.stop_reason,
        "answer": None,
        "calls": totals.get("calls", 0),
        "prompt_tokens": totals.get("prompt_tokens", 0),
        "completion_tokens": totals.get("completion_tokens", 0),
        "cost_usd": totals.get("cost_usd"),
        "error": record.error,
    }


# --- inputs ---------------------------------------------------------------------------------------------------


def parse_inputs(spec: GraphSpec, pairs: Sequence[str]) -> dict[str, Any]:
    """``key=value`` pairs typed by the graph's declared inputs.

    The shell only gives strings; the graph says what each input is, so ``-i n=3`` becomes the integer 3 and
    ``-i tags='["a"]'`` a list. Undeclared keys stay strings: :func:`check_inputs` then names them as unknown
    together with what the graph does take.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(f"-i {pair!r}: expected key=value (e.g. -i question='What is 17*3?')")
        if name in out:
            raise ConfigError(f"-i {name}: input {name!r} given more than once")
        raw = _file_or_text(name, raw)
        ispec = spec.inputs.get(name)
        out[name] = raw if ispec is None else _typed(spec, name, ispec, raw)
    return out


def _file_or_text(name: str, raw: str) -> str:
    """``@path`` is the text of that file (a document, a patch, a JSON object: what does not fit a command line,
    as in httpie and curl); ``\\@...`` is a value that starts with ``@``."""
    if raw.startswith("\\@"):
        return raw[1:]
    if not raw.startswith("@"):
        return raw
    path = Path(raw[1:]).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        if isinstance(exc, UnicodeDecodeError):  # (said "UnicodeDecodeError", nothing of where or what to do)
            why = f"not UTF-8 text: byte {exc.object[exc.start]:#04x} at offset {exc.start}; save it as UTF-8"
        else:
            why = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"-i {name}=@{path}: cannot read {path} ({why}); a value starting with @ is read from that file "
            f"(write -i {name}='\\@...' for a value that starts with @)",
            input=name,
            file=str(path),
        ) from exc


def _typed(spec: GraphSpec, name: str, ispec: InputSpec, raw: str) -> Any:
    kind = ispec.type
    value: Any = None
    if kind == "string":
        return raw
    if kind == "integer":
        try:
            return int(raw.strip())
        except ValueError:
            pass
    elif kind == "number":
        try:
            value = float(raw.strip())
        except ValueError:
            value = None
        if value is not None and math.isfinite(value):
            return int(value) if value.is_integer() and "." not in raw and "e" not in raw.lower() else value
    elif kind == "boolean":
        lowered = raw.strip().lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
    else:  # list, object: JSON
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, list if kind == "list" else dict):
            return value
    # the value as given, but short (an @file's text is a whole document) and with any key in it masked: the error
    # goes to a terminal, a CI log
    shown = mask_secrets(" ".join(raw.split()))
    shown = shown if len(shown) <= 60 else shown[:59].rstrip() + "…"
    raise ConfigError(
        f"-i {name}={shown!r}: input {name!r} of graph {spec.name!r} is of type {kind}; expected {_EXAMPLES[kind]}",
        graph=spec.name,
        input=name,
        expected=kind,
    )


# --- one run: live view and final panel -------------------------------------------------------------------


def _run_one(
    spec: GraphSpec,
    start: Callable[[list[Listener], Store], Coroutine[Any, Any, RunResult]],
    *,
    db: str | None,
    as_json: bool,
    quiet: bool,
    prefill: bool,
) -> None:
    """Run ``start(listeners, store)`` (a coroutine factory: arun or aresume) with the live view, then report.

    The live view is only drawn on a terminal; elsewhere (pipes, tests, CI logs) the same blocks are printed as
    each round finishes, then the final panel, so the output is informative either way.
    """
    from agentmesh.cli._live import LiveView, final_panel
    from agentmesh.cli._store import open_store
    from agentmesh.runtime.context import ReplayDivergence, RunError
    from agentmesh.runtime.recorded_calls import CALL_KINDS

    shown = not as_json and not quiet
    live = shown and console.is_terminal
    view = LiveView(spec, prefill=prefill, stream=console if shown and not live else None)
    with open_store(db) as store:
        try:
            if live:
                with Live(view, console=console, transient=True, refresh_per_second=8):
                    result: RunResult = run_async(start([view.on_event], store))
            else:
                result = run_async(start([view.on_event], store))
        except (Exception, KeyboardInterrupt) as exc:  # AgentmeshError, or a bug: the run is stored as failed
            if view.run_id is not None:  # the run exists: show how far it got and how to continue it
                what = "was interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                if shown:
                    view.cut_short(f"no answer: the run {what}")
                    console.print(view.rest())
                if _deleted(store, view.run_id):  # (agentmesh delete --force meanwhile): nothing to continue
                    err_console.print(
                        f"run {view.run_id} {what}: it was deleted while it ran (agentmesh delete --force), so "
                        "nothing of it is stored",
                        highlight=False,
                    )
                    if as_json:
                        typer.echo(json.dumps(_stopped_json(store, view.run_id), indent=2, ensure_ascii=False))
                    raise
                advice = (
                    f"continue it with [bold]agentmesh resume {view.run_id[:12]}[/] (finished calls are not made again)"
                )
                if isinstance(exc, ConfigError):
                    # an input or a setting is at fault (a value the graph's own checks refuse, a target set that
                    # is not there): a resume runs the run as stored, with the same inputs, and fails alike
                    advice = (
                        "a resume would run it with the same inputs and settings and fail alike: fix them and run "
                        f"it again (agentmesh delete {view.run_id[:12]} removes this one)"
                    )
                elif isinstance(exc, NotRecordedError):
                    # the replay: model has no answer to this prompt, and a resume would ask it again: another model
                    # answers what the recorded run never asked, the rest still served from this run's record
                    advice = (
                        f"continue it with [bold]agentmesh resume {view.run_id[:12]} -m MODEL[/], a model that "
                        "answers the calls the replayed run never made (its other calls are not made again)"
                    )
                elif isinstance(exc, RunError) and not isinstance(exc, ReplayDivergence):
                    # when the graph itself is at fault (a template, a condition), a resume runs it as stored with
                    # the run and fails alike; a fork runs today's file, once fixed, serving the calls made
                    made = sum(1 for e in store.events(view.run_id) if e.kind in CALL_KINDS)
                    advice += (
                        f", or, if the graph is at fault (a resume runs it as stored with the run), fix it and run "
                        f"[bold]agentmesh replay {view.run_id[:12]} --from {made}[/]: today's graph, its "
                        f"{counted(made, 'recorded call')} served from the store"
                    )
                err_console.print(f"run {view.run_id} {what}; it is stored: {advice}", highlight=False)
                if as_json:
                    # a script reading stdout got nothing at all (a batch's --json has its failed items): the stored
                    # run's id, status and error, in the keys a result has
                    typer.echo(json.dumps(_stopped_json(store, view.run_id), indent=2, ensure_ascii=False))
            raise
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    elif quiet:
        typer.echo("" if result.answer is None else str(result.answer))
    else:
        console.print(view.rest())
        console.print(final_panel(result))
