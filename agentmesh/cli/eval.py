"""``agentmesh eval``: rerun a system's evaluation protocol against its baselines (``eval alu``: alu.md §9.3).

Every question the eval asks (an item under one attack, for ALU and for each baseline) is its own stored run,
through :func:`agentmesh.optimize.items.run_items`: the runs can be inspected and replayed like any other, and an
eval that was cut short, or run again with a baseline added, reuses what finished instead of paying for it twice.
What is not command-line (the cases, each system's graph and inputs, reading the runs back as outcomes, the
metrics) is in :mod:`agentmesh.systems.alu.evaluate`.

With ``--judge``, every forget QA answer of every system is also shown to an LLM judge
(``graphs/alu_leak_judge.yaml``) for the judge leak rate of alu.md §9.2; each judgement is a stored run of its own
job (kind ``judge``, one job per system), so a rerun reuses every finished judgement as it reuses the system runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from agentmesh._text import counted
from agentmesh.cli._common import (
    CONCURRENCY,
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
)
from agentmesh.cli._job import JobOptions, print_not_run, print_retry_hint
from agentmesh.cli._progress import item_note
from agentmesh.datasets import Item
from agentmesh.errors import AgentmeshError, ConfigError, StoreError
from agentmesh.spec.graph import GraphSpec
from agentmesh.systems.alu.attacks import parse_attack
from agentmesh.systems.alu.evaluate import (
    EvalCase,
    JudgeVerdict,
    McqItem,
    Outcome,
    QAItem,
    eval_cases,
    eval_demonstrations,
    forget_qualities,
    judge_graph,
    judge_inputs,
    judge_verdict,
    judged_case,
    outcome_from_outputs,
    parse_systems,
    summarize_system,
    system_graph,
    system_inputs,
    targets_from_items,
)
from agentmesh.systems.alu.items import numbered_mcq_jsonl, numbered_qa_jsonl
from agentmesh.systems.alu.pipeline import DEFAULT_REFUSAL
from agentmesh.systems.alu.registry import load_targets_jsonl, targets_of_records
from agentmesh.systems.alu.targets import Target

# The job runner (the runtime, LangGraph, Ray's glue) and the store (SQLAlchemy) are imported when an eval runs,
# not for ``agentmesh eval --help``.
if TYPE_CHECKING:
    from agentmesh.optimize.items import ItemRun, JobRun

#: What this module's commands import when they run (not for their --help): imported first, watched for Ctrl-C
#: as this module's import is (agentmesh.cli.app).
WORK_IMPORTS = ("agentmesh.cli._store", "agentmesh.optimize.items", "agentmesh.runtime.on_ray")

T = TypeVar("T")

app = typer.Typer(
    help="Evaluate a system against its baselines, every question a stored, resumable run.", no_args_is_help=True
)

_COLUMNS: list[tuple[str, str]] = [
    ("n", "n"),
    ("rougeL_recall", "ROUGE-L rec."),
    ("leak_rate", "leak"),
    ("refusal_rate", "refusal"),
    ("trigger_rate", "trigger"),
    ("shortlist_recall", "shortlist rec."),
    ("retain_trigger_rate", "retain trig."),
    ("calls_per_query", "calls/q"),
]
_JUDGE_COLUMNS: list[tuple[str, str]] = [
    ("judge_leak_rate", "judge leak"),
    ("judge_unparsed", "unparsed"),
]
_MCQ_COLUMNS: list[tuple[str, str]] = [
    ("acc_strict", "acc strict"),
    ("acc_random_fill", "acc rand-fill"),
    ("abstain_rate", "abstain"),
]


def _file(path: Path, option: str) -> Path:
    if path.is_dir():
        raise ConfigError(f"{option} {path}: a directory; expected a file")
    if not path.is_file():
        raise ConfigError(f"{option} {path}: file not found")
    return path


def _load(
    data: Path, targets_file: Path | None, mcq: bool, limit: int | None
) -> tuple[list[QAItem | McqItem], list[int], list[Target]]:
    """The items, their lines in ``data`` and the targets, every line checked (errors name the file and line)."""
    try:
        numbered: list[tuple[int, QAItem | McqItem]] = list(
            numbered_mcq_jsonl(_file(data, "--data")) if mcq else numbered_qa_jsonl(_file(data, "--data"))
        )
        items = [item for _line, item in numbered]
        if targets_file is not None:
            targets = load_targets_jsonl(_file(targets_file, "--targets"))
        else:
            targets = targets_from_items([i for i in items if isinstance(i, QAItem)])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if not items:
        raise ConfigError(f"--data {data}: no items")
    lines = [line for line, _item in numbered]
    return (items[:limit], lines[:limit], targets) if limit is not None else (items, lines, targets)


def _stored_targets(name: str, db: str | None) -> tuple[list[Target], dict[str, Any]]:
    """The targets of the stored set ``name`` at its current version, and what the report says of them.

    Read once, here: every system and attack then gets the same targets inline, so a change to the set while the
    eval runs cannot give two systems two versions (and running the command again after such a change makes new
    runs, since their inputs differ, rather than reusing runs of the old version). A SQLite file that is not there
    is refused (``existing``): a set cannot be in it, and opening it made an empty database at a mistyped --db."""
    from agentmesh.cli._store import open_store

    with open_store(db, existing=True) as store:
        try:
            version, rows = store.target_snapshot_rows(name)
        except StoreError as exc:
            raise ConfigError(f"--target-set {name}: {exc}") from None
        where = f"target set {name!r} (version {version}) in {store.url}"
    if not rows:
        raise ConfigError(f"--target-set {name}: {where} has no active target; nothing to forget")
    try:
        found = targets_of_records((f"{where}, target {row.id}", row.record()) for row in rows)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return found, {"set": name, "version": version, "count": len(found)}


def _targets_line(found: Mapping[str, Any]) -> str:
    """Which targets the eval forgot, under its table: a stored set names its version (what a rerun must match)."""
    if "set" in found:
        return f"targets: {found['count']} of set {escape(repr(found['set']))}, version {found['version']}"
    if found.get("file") is not None:
        return f"targets: {found['count']} from {escape(found['file'])}"
    return f"targets: the forget items' {found['count']}"


def _translations(path: Path | None) -> dict[str, dict[str, str]] | None:
    if path is None:
        return None
    try:
        found = json.loads(_file(path, "--translations").read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"--translations {path}: not JSON ({exc})") from None
    if not isinstance(found, dict) or not all(isinstance(v, dict) for v in found.values()):
        raise ConfigError(f"--translations {path}: expected {{language: {{question: translated question}}}}")
    return {str(lang): {str(q): str(t) for q, t in table.items()} for lang, table in found.items()}


@app.command("alu")
def alu(
    ctx: typer.Context,
    data: Annotated[
        Path,
        typer.Option("--data", "-d", help="JSONL items: QA {id, question, answer, split, target} (or MCQ, --mcq)."),
    ],
    targets: Annotated[
        Path | None,
        typer.Option("--targets", "-t", help="JSONL target records (default: the forget items' target values)."),
    ] = None,
    target_set: Annotated[
        str | None,
        typer.Option(
            "--target-set",
            help="A target set of --db (agentmesh targets), read once at its current version; instead of --targets.",
        ),
    ] = None,
    attacks: Annotated[
        str,
        typer.Option(
            "--attacks",
            "-a",
            help="Comma-separated attacks on forget items: none, masking, many_shot:N, lang:CODE.",
        ),
    ] = "none",
    baselines: Annotated[
        str,
        typer.Option(
            "--baselines",
            "-b",
            help="Comma-separated systems to run beside alu: vanilla, prompt_guard, output_filter, icul, reference.",
        ),
    ] = "",
    mcq: Annotated[
        bool, typer.Option("--mcq", help="--data is multiple choice {id, question, choices, answer}.")
    ] = False,
    translations: Annotated[
        Path | None,
        typer.Option("--translations", help="JSON {language: {question: translated question}} for lang:CODE."),
    ] = None,
    model: ModelOption = None,
    judge: Annotated[
        bool,
        typer.Option(
            "--judge",
            help="Also ask an LLM judge (graphs/alu_leak_judge.yaml) whether each forget answer reveals the gold "
            "answer: the judge leak rate.",
        ),
    ] = False,
    judge_model: Annotated[
        str | None,
        typer.Option("--judge-model", help="The judge's model reference (default: --model). Needs --judge."),
    ] = None,
    concurrency: Annotated[int, concurrency_option("Questions run at once")] = CONCURRENCY,
    limit: Annotated[int | None, limit_option("--data")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the many-shot draws (item i draws with seed + i).")] = 0,
    executor: ExecutorOption = Executor.LOCAL,
    ray_address: RayAddressOption = None,
    ray_cpus: RayCpusOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run ALU (graphs/alu.yaml) and the chosen baselines on every item of --data, under every attack, and print
    per system, split and attack the metrics of alu.md §9.2, with the KS forget quality against vanilla when it ran.
    With --judge, also the judge leak rate of the forget QA answers and how many verdicts were unparsed.

    Every question (and every judgement) is its own stored run. Run the same command again to go on after an
    interruption: finished runs are reused and cut-short ones resume without repeating a model call."""
    from agentmesh.optimize.items import digest, run_items
    from agentmesh.runtime.on_ray import one_ray

    options = JobOptions.given(ctx)  # --model, --concurrency, --executor, --ray-*, --db, --json
    systems = _checked(lambda: parse_systems(baselines), "--baselines")
    parsed = _checked(lambda: [parse_attack(a) for a in attacks.split(",") if a.strip()], "--attacks")
    # once each, as --baselines: an attack named twice made every case twice and counted each answer twice
    parsed = list({attack.label: attack for attack in parsed}.values())
    if mcq and any(a.kind != "none" for a in parsed):
        raise ConfigError("--attacks: multiple-choice items name no target to attack; run --mcq without --attacks")
    if judge_model is not None and not judge:
        raise ConfigError("--judge-model picks the judge's model; add --judge to run the judge")
    if mcq and judge:
        raise ConfigError("--judge: the judge leak rate is for QA items; a multiple-choice answer is a letter")
    if translations is None and any(a.kind == "lang" for a in parsed):
        raise ConfigError("--attacks lang:CODE needs --translations FILE (JSON {language: {question: translation}})")
    check_model(judge_model, db)  # resolved now: a bad reference was found only after every system's runs were made
    if target_set is not None and targets is not None:
        raise ConfigError("--targets FILE and --target-set NAME both give the targets; give one")
    items, lines, found_targets = _load(data, targets, mcq, limit)
    stored_set: dict[str, Any] | None = None
    if target_set is not None:
        found_targets, stored_set = _stored_targets(target_set, db)
    if not mcq and not found_targets and targets is None and target_set is None:
        # retain items only: ALU and every baseline ran with nothing to forget, and the table measured nothing of
        # unlearning ("targets: the forget items' 0"); --mcq without targets is refused the same way below
        raise ConfigError(
            f"--data {data}: no forget item names a target, so ALU would have nothing to forget; add forget items "
            '({"split": "forget", "target": ...}) or give the targets with --targets FILE or --target-set NAME'
        )
    if (
        mcq and targets is None and target_set is None
    ):  # they would be drawn from the items' targets, and MCQ items name none
        raise ConfigError(
            "--mcq: multiple-choice items name no target, so ALU would have nothing to forget; give the targets "
            "with --targets FILE (JSONL records) or --target-set NAME (a set in --db)"
        )
    cases = _checked(
        lambda: eval_cases(
            items,
            found_targets,
            [a.label for a in parsed],
            seed=seed,
            translations=_translations(translations),
            # what --limit kept is what the errors speak of: "there are no retain items" where the file has some
            # beyond the limit read as a wrong file
            source=str(data) if limit is None else f"{data} (its first {counted(len(items), 'item')}, --limit {limit})",
            lines=lines,
        )
    )
    demonstrations = eval_demonstrations(items, seed=seed) if "icul" in systems else []
    judge_spec = judge_graph() if judge else None
    to_judge = sum(judged_case(case) for case in cases) if judge else 0
    total = (len(cases) + to_judge) * len(systems)
    check_model(model, db)  # resolved now: a bad one was found after the store was opened, leaving an empty database
    with options.session("alu eval", total, unit="runs") as session:
        store, bar = session.store, session.bar
        finished: dict[str, int] = {}

        def advance(system: str, where: Callable[[ItemRun], EvalCase] | None = None, offset: int = 0) -> Any:
            def told(item: ItemRun, done: int, _total: int) -> None:
                finished[system] = offset + done
                case = where(item) if where is not None else cases[item.line - 1]
                bar.update(
                    completed=sum(finished.values()), note=item_note(item, f"{system} {case.item_id}/{case.attack}")
                )

            return told

        jobs: dict[str, JobRun] = {}
        judged: dict[str, _Judged] = {}

        async def every_system() -> None:
            # one Ray for every system and judge: each run_items started and shut down a Ray of its own, so the runs
            # stopped for tens of seconds between systems, twice per system with --judge
            with one_ray(options.executor_name, options.ray_address, store):
                await each_system()

        async def each_system() -> None:
            for system in systems:
                spec = system_graph(system)
                runs = [
                    Item(line=n, inputs=system_inputs(system, case, found_targets, demonstrations))
                    for n, case in enumerate(cases, 1)
                ]
                jobs[system] = await run_items(
                    spec,
                    runs,
                    kind="eval",
                    store=store,
                    progress=advance(system),
                    job_key={"eval": "alu", "system": system},
                    on_call=session.call_made,
                    **options.kwargs(),
                )
                if judge_spec is not None:
                    judged[system] = await judge_system(system, jobs[system], judge_spec)

        async def judge_system(system: str, job: JobRun, spec: GraphSpec) -> _Judged:
            """One judgement per distinct (question, gold, answer) of the system's succeeded forget QA runs."""
            found = _Judged()
            runs: list[Item] = []
            by_inputs: dict[str, int] = {}
            firsts: dict[int, EvalCase] = {}
            for item in job.items:
                case = cases[item.line - 1]
                if item.outputs is None or item.error is not None or not judged_case(case):
                    continue
                answer = outcome_from_outputs(system, case, item.outputs, item.calls).answer
                inputs = judge_inputs(case, answer)
                key = digest(inputs)
                if key not in by_inputs:
                    by_inputs[key] = len(runs) + 1
                    runs.append(Item(line=len(runs) + 1, inputs=inputs))
                    firsts[len(runs)] = case
                found.lines[item.line] = by_inputs[key]
            name = f"judge {system}"
            skipped = to_judge - len(runs)  # failed runs and repeated answers: nothing to judge
            finished[name] = skipped
            bar.update(completed=sum(finished.values()))
            found.job = await run_items(
                spec,
                runs,
                kind="judge",
                store=store,
                progress=advance(name, lambda i: firsts[i.line], skipped),
                job_key={"eval": "alu", "judge": "leak", "system": system},
                on_call=session.call_made,
                **options.kwargs(model=judge_model),
            )
            return found

        session.run(every_system())
    report = _report(jobs, cases, judged if judge else None)
    report["targets"] = stored_set or {
        "file": str(targets) if targets is not None else None,
        "count": len(found_targets),
    }
    every_failed = _every_run_failed(jobs)
    report["error"] = every_failed
    if as_json:
        console.print_json(json.dumps(report, default=str))
        if every_failed is not None:  # said on stderr too, where an error goes, as optimize --json says its own
            raise AgentmeshError(every_failed)
    else:
        _print(report, mcq, judge)
        console.print(_targets_line(report["targets"]))
        stopped = False  # a job stopped starting items (its database failed for good): said once per job, below
        for system, job in jobs.items():
            for item in job.failed:
                if item.not_run:
                    continue
                case = cases[item.line - 1]
                err_console.print(
                    f"[red]{system} {escape(case.item_id)}/{escape(case.attack)} failed[/] (run {item.run_id}): "
                    f"{escape(str(item.error))}"
                )
            for failure in report["systems"][system]["judge"]["failed"] if judge else []:
                if failure["not_run"]:
                    continue
                err_console.print(
                    f"[red]judge of {system} {escape(failure['item'])}/{escape(failure['attack'])} failed[/] "
                    f"(run {failure['run']}): {escape(str(failure['error']))}"
                )
            for whose, ran in ((system, job), (f"the judge of {system}", judged.get(system, _Judged()).job)):
                not_run = [item for item in ran.failed if item.not_run]
                if not_run:
                    print_not_run(str(not_run[0].error), [item.line for item in not_run], of=f" ({whose})")
                    stopped = True
        if not stopped and (
            any(item.run_id for job in jobs.values() for item in job.failed)
            or any(j.job.failed for j in judged.values())
        ):
            print_retry_hint()
    if any(job.failed for job in jobs.values()) or any(j.job.failed for j in judged.values()):
        raise typer.Exit(1)


def _every_run_failed(jobs: Mapping[str, JobRun]) -> str | None:
    """Why ``eval alu`` measured nothing, when no run of any system succeeded (a model server down): the ``error``
    of its ``--json`` document, else ``None``. The document had the failed runs but nothing at its top to tell a
    script that every table is empty, as ``optimize --json`` says under ``error`` when every item failed."""
    from agentmesh.optimize.items import RETRY_FAILED  # (with the job runner: imported when a job has run)

    runs = [item for job in jobs.values() for item in job.items]
    if not runs or any(item.outputs is not None and item.error is None for item in runs):
        return None
    first = next((item.error for item in runs if item.error), "no outputs")
    stored = RETRY_FAILED if any(item.run_id for item in runs) else ""
    return (
        f"eval alu: every run of {', '.join(jobs)} failed ({counted(len(runs), 'run')}); first error: {first}{stored}"
    )


def _no_job() -> JobRun:
    """An empty judge job (the job runner imported now: see the imports above)."""
    from agentmesh.optimize.items import JobRun

    return JobRun(job="", model="")


@dataclass
class _Judged:
    """A system's judge job and, per case line of the system's job, the line of the judgement of its answer."""

    job: JobRun = field(default_factory=_no_job)
    lines: dict[int, int] = field(default_factory=dict)

    def verdict(self, line: int) -> JudgeVerdict | None:
        """The verdict on the answer of the case at ``line``; ``None``: not judged, or the judge's run failed."""
        judgement = self.lines.get(line)
        if judgement is None:
            return None
        item = self.job.items[judgement - 1]
        return judge_verdict(item.outputs) if item.outputs is not None and item.error is None else None


def _checked(make: Callable[[], T], where: str = "") -> T:
    """``make()``, its ``ValueError`` (bad input, found before any model call) as a clean error naming
    ``where`` (the option) when the message does not name a file already."""
    try:
        return make()
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}" if where else str(exc)) from None


def _report(
    jobs: Mapping[str, JobRun], cases: Sequence[EvalCase], judged: Mapping[str, _Judged] | None = None
) -> dict[str, Any]:
    """The metrics of every system from its runs' outputs (failed runs are left out and listed). With ``judged``
    (``--judge``), every forget QA row has ``judge_leak_rate`` and ``judge_unparsed`` (``None`` when nothing was
    judged) and every system a ``judge`` entry (its judge job); without, the rows have neither key and ``judge``
    is ``None``."""
    by_system: dict[str, list[Outcome]] = {}
    out: dict[str, Any] = {"systems": {}, "forget_quality": {}}
    for system, job in jobs.items():
        outcomes: list[Outcome] = []
        for item in job.items:
            if item.outputs is None or item.error is not None:
                continue
            outcome = outcome_from_outputs(system, cases[item.line - 1], item.outputs, item.calls)
            if judged is not None and system in judged:
                outcome.judge = judged[system].verdict(item.line)
            outcomes.append(outcome)
        by_system[system] = outcomes
        out["systems"][system] = {
            "job": job.job,
            "model": job.model,
            "runs": [item.run_id for item in job.items],
            # "runs" in the same order, each with what it asked: a table row ("row", a key of "table") traced to
            # its runs, and a run to its line of --data (a failed run's outcome is in no row)
            "run_cases": [_run_case(system, item, cases[item.line - 1]) for item in job.items],
            "reused": sum(item.reused for item in job.items),
            "failed": [
                {
                    "item": cases[i.line - 1].item_id,
                    "attack": cases[i.line - 1].attack,
                    "run": i.run_id,
                    "error": i.error,
                    "not_run": i.not_run,
                }
                for i in job.failed
            ],
            "table": summarize_system(system, outcomes, refusal_text=DEFAULT_REFUSAL),
            "judge": None,
        }
        if judged is not None:
            mine = judged.get(system, _Judged())
            for group, row in out["systems"][system]["table"].items():
                if group.startswith("forget/") and "leak_rate" in row:
                    row.setdefault("judge_leak_rate", None)
                    row.setdefault("judge_unparsed", None)
            cases_of: dict[int, int] = {}  # a judgement's first case, to name a failure
            for line, judgement in sorted(mine.lines.items()):
                cases_of.setdefault(judgement, line)
            out["systems"][system]["judge"] = {
                "job": mine.job.job,
                "model": mine.job.model,
                "runs": [item.run_id for item in mine.job.items],
                "reused": sum(item.reused for item in mine.job.items),
                "failed": [
                    {
                        "item": cases[cases_of[i.line] - 1].item_id,
                        "attack": cases[cases_of[i.line] - 1].attack,
                        "run": i.run_id,
                        "error": i.error,
                        "not_run": i.not_run,
                    }
                    for i in mine.job.failed
                ],
            }
    out["forget_quality"] = forget_qualities(by_system)
    return out


def _run_case(system: str, item: ItemRun, case: EvalCase) -> dict[str, Any]:
    """A run of ``eval alu --json``: its id, the system that ran it, the case it asked (its item's id and line in
    --data, split, attack) and the row of the system's table its outcome counts in (none when it failed)."""
    return {
        "run": item.run_id,
        "system": system,
        "item": case.item_id,
        "line": case.line,
        "split": case.split,
        "attack": case.attack,
        "row": f"{case.split}/{case.attack}",
        "failed": item.error is not None or item.outputs is None,
    }


def _cell(value: Any, key: str) -> str:
    if value is None:
        return "n/a"
    if key in ("n", "judge_unparsed"):
        return str(value)
    return f"{float(value):.3f}"


def _print(report: Mapping[str, Any], mcq: bool, judge: bool = False) -> None:
    """The summary as one table, a row per system, split and attack; on a console too narrow for it (a dozen
    numeric columns need about 150 characters), one table per system with a row per metric instead, since
    truncated numbers would be worse than a longer print."""
    columns = _COLUMNS[:3] + (_JUDGE_COLUMNS if judge else []) + _COLUMNS[3:] + (_MCQ_COLUMNS if mcq else [])
    quality: Mapping[str, Mapping[str, float]] = report["forget_quality"]
    rows: list[tuple[str, str, list[str]]] = []
    for system, found in report["systems"].items():
        for group, row in found["table"].items():
            split, _, attack = group.partition("/")
            fq = quality.get(system, {}).get(attack) if split == "forget" else None
            cells = [_cell(row[key], key) if key in row else "" for key, _title in columns]
            rows.append((system, group, [*cells, "" if fq is None else f"{fq:.4f}"]))
    titles = [title for _key, title in columns] + ["forget quality"]
    wide = Table(title="ALU eval (alu.md §9.2)")
    wide.add_column("system")
    wide.add_column("split/attack")
    for title in titles:
        wide.add_column(title, justify="right")
    for system, group, cells in rows:
        wide.add_row(system, group, *cells)
    if console.measure(wide, options=console.options.update_width(1_000_000)).maximum <= console.width:
        console.print(wide)
    else:
        for system in report["systems"]:
            mine = [(group, cells) for name, group, cells in rows if name == system]
            tall = Table(title=f"ALU eval (alu.md §9.2): {escape(system)}")
            tall.add_column("metric")
            for group, _cells in mine:
                tall.add_column(group, justify="right")
            for index, title in enumerate(titles):
                tall.add_row(title, *(cells[index] for _group, cells in mine))
            console.print(tall)
    for system, found in report["systems"].items():
        # failed runs are left out of the rows: say how many here, and that a system none of whose runs succeeded
        # has no row at all (it vanished from the table, named only in the failures below it)
        failed = len(found["failed"])
        missing = ", so it has no row in the table" if failed and not found["table"] else ""
        console.print(
            f"{system}: {counted(len(found['runs']), 'run')} "
            f"({found['reused']} reused{f', {failed} failed' if failed else ''}"
            f"{missing}), job {found['job']}, model {escape(str(found['model']))}",
            highlight=False,
        )
        if found["judge"] is not None:
            console.print(
                f"{system} judge: {counted(len(found['judge']['runs']), 'judgement')} "
                f"({found['judge']['reused']} reused), job "
                f"{found['judge']['job']}, model {escape(str(found['judge']['model']))}",
                highlight=False,
            )
