"""What a batch's runs came to, and how its end is shown: each run's :class:`ItemOutcome`, and the summary
:func:`agentmesh.cli.batch.run_many` prints of them (:func:`print_summary`): a row per item (:func:`summary_table`),
or for a large batch how its runs ended (:func:`digest_table`) and each run that did not succeed; each table has a
form of its own for a narrow terminal (:data:`agentmesh.cli._common.NARROW`), where a run is a few lines rather than
a row; then the accuracy on the items that carry a reference answer (:func:`accuracy_line`)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from agentmesh import datasets
from agentmesh._text import counted
from agentmesh.cli._common import NARROW, WIDE, console, fmt_cost
from agentmesh.cli._live import snippet
from agentmesh.runtime.run import RunResult


@dataclass
class ItemOutcome:
    """One run of a batch (a JSONL item's, or a resumed one): its result, or why it failed (the run is stored
    either way, once it started)."""

    line: int | None  # the item's line in its JSONL file (None: a resumed run)
    inputs: dict[str, Any]
    label: str = ""  # what the summary's first column shows instead of the line
    run_id: str | None = None
    result: RunResult | None = None
    error: str | None = None
    totals: dict[str, Any] = field(default_factory=dict)
    batch: str | None = None  # the batch id its run is tagged with (``run --input-file``)
    gold: str | None = None  # the item's reference answer, normalised as answers are, when its line had one
    elsewhere: str | None = None  # left to another process that took the run first (two resumes at once)
    ended: str | None = None  # the status the store has for a run cut as it ended (its result never came back)
    not_run: str | None = None  # never started: the batch stopped starting runs (its database failed), and why
    human: float | None = None  # the line's human label, on a jury's graph (kept aside as a gold answer is)

    @property
    def correct(self) -> bool | None:
        """Whether the run's answer is the reference answer (``None``: no reference, or the run did not end)."""
        if self.gold is None or self.result is None:
            return None
        return datasets.matches_gold(self.result.answer, self.gold)

    @property
    def over(self) -> bool:
        """The run ended, with a result or an error (not: cut short by an interrupt, or never started)."""
        return self.result is not None or self.error is not None or self.elsewhere is not None or self.ended is not None

    @property
    def failed(self) -> bool:
        """The run ended without a result here, or never started because the batch stopped (:attr:`not_run`); not:
        left to another process, which is no failure of this one."""
        return self.result is None and self.elsewhere is None

    @property
    def status(self) -> str:
        if self.result is not None:
            return self.result.status
        if self.not_run is not None:
            return "not run"
        return "skipped" if self.elsewhere is not None else "failed"

    def to_json(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "line": self.line,
            "inputs": self.inputs,
            "run_id": self.run_id,
            "status": self.status,
            "gold": self.gold,
            "correct": self.correct,
            "human": self.human,
            "error": self.error,
            "skipped": self.elsewhere,
            "not_run": self.not_run,
            "result": None if self.result is None else self.result.model_dump(mode="json"),
        }


def _count(n: int, noun: str) -> str:
    """``1 item``, ``3 items``: a one-line batch's summary said "1 items"."""
    return counted(n, noun.removesuffix("s"), noun)


#: Why a batch's run was skipped, in the digest of a large one (each run's own reason: ``--json``).
ELSEWHERE = "another process took it first (two resumes at once, or a resume beside the batch)"

#: A batch's summary has a row per item up to this many items; a larger one is summed up by how its runs ended.
SUMMARY_ROWS = 25


def digest_table(title: str, outcomes: Sequence[ItemOutcome]) -> Table:
    """How a batch's runs ended, one row per status and stop reason (or error), succeeded first and the most
    frequent first within a status: items, calls, tokens and cost of each, and a total."""
    groups: dict[tuple[str, str], list[ItemOutcome]] = {}
    for o in outcomes:
        if o.result is not None:
            why = o.result.stop_reason or "-"
        else:  # skipped ones alike: one row, not one per line and process
            why = snippet(o.error or o.not_run or "failed", 160) if o.elsewhere is None else ELSEWHERE
        groups.setdefault((o.status, why), []).append(o)
    order = {
        status: i for i, status in enumerate(("succeeded", "stopped", "interrupted", "failed", "not run", "skipped"))
    }
    ranked = sorted(groups.items(), key=lambda g: (order.get(g[0][0], 9), -len(g[1]), g[0]))
    if console.width < NARROW:  # as a table, the stop reason / error column was squeezed out
        return _digest_records(title, outcomes, ranked)
    table = Table(title=Text(title), show_footer=True)
    table.add_column("status", "total", no_wrap=True)
    table.add_column("stop reason / error", overflow="fold")
    usage = [_usage(o) for o in outcomes]
    footers = [
        str(len(outcomes)),
        str(sum(u[0] for u in usage)),
        str(sum(u[1] for u in usage)),
        fmt_cost(_total_cost(u[2] for u in usage)),
    ]
    for column, footer in zip(("items", "calls", "tokens", "cost"), footers, strict=True):
        table.add_column(column, footer, justify="right", no_wrap=True)
    for (status, why), members in ranked:
        usage = [_usage(o) for o in members]
        table.add_row(
            Text(status, style="green" if status == "succeeded" else "red"),
            Text(why, style="" if status == "succeeded" else "red"),
            str(len(members)),
            str(sum(u[0] for u in usage)),
            str(sum(u[1] for u in usage)),
            fmt_cost(_total_cost(u[2] for u in usage)),
        )
    return table


def _digest_records(
    title: str, outcomes: Sequence[ItemOutcome], ranked: Sequence[tuple[tuple[str, str], list[ItemOutcome]]]
) -> Table:
    """:func:`digest_table` on a narrow terminal (:data:`NARROW`): each way the runs ended on lines of its own
    (status, items, calls; the stop reason or error), then the total."""
    table = Table(title=Text(title), caption="tokens, cost: --json", box=None, show_header=False, padding=(0, 0))
    table.add_column("how they ended", overflow="fold")
    for (status, why), members in ranked:
        calls = sum(_usage(o)[0] for o in members)
        record = Text(status, style="green" if status == "succeeded" else "red")
        record.append(f" · {_count(len(members), 'items')} · {counted(calls, 'call')}\n  ")
        record.append(why, style="" if status == "succeeded" else "red")
        table.add_row(record)
    table.add_row(
        Text(f"total · {_count(len(outcomes), 'items')} · {counted(sum(_usage(o)[0] for o in outcomes), 'call')}")
    )
    return table


def _gold(o: ItemOutcome) -> Text:
    """The reference answer, ticked when the run found it."""
    if o.gold is None:
        return Text("-")
    mark = {True: (" ✓", "green"), False: (" ✗", "red"), None: ("", "")}[o.correct]
    return Text(o.gold) + Text(mark[0], style=mark[1])


def accuracy_line(outcomes: Sequence[ItemOutcome], noun: str = "items") -> str:
    """How many labelled items the batch got right ("" when no item has a reference answer). A run that failed
    counts as wrong; the share of the runs that finished is given beside it when some failed. (A resumed batch
    says it of the runs it resumed: ``noun``.)"""
    labelled = [o for o in outcomes if o.gold is not None and o.elsewhere is None]  # skipped: another's to score
    if not labelled:
        return ""
    right = sum(1 for o in labelled if o.correct)
    what = "labelled items" if noun == "items" else f"labelled {noun}"
    line = f"accuracy: {right} of {_count(len(labelled), what)} right ({right / len(labelled):.1%})"
    ended = [o for o in labelled if o.correct is not None]
    if len(ended) < len(labelled):
        share = f"{right / len(ended):.1%}" if ended else "-"
        line += (
            f"; {len(labelled) - len(ended)} failed, counted as wrong ({right} of the {len(ended)} that ended: {share})"
        )
    return line


def human_label(item: datasets.Item) -> float | None:
    """A batch line's human label: its field :data:`~agentmesh.systems.sejury.jury.BATCH_LABEL`, which the lines
    of a jury's graph keep aside (checked to be a number first: ``check_batch_labels`` there); ``None`` on a line
    without one, and on any other graph's lines."""
    from agentmesh.systems.sejury.jury import BATCH_LABEL  # (the jury's module: when a batch runs, not for --help)

    value = item.extra.get(BATCH_LABEL)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def batch_tag(item: datasets.Item) -> dict[str, Any]:
    """What a batch's run keeps of its line in ``meta.batch``, beside the batch's own tag: the line, its reference
    answer and its human label when it has them (a resumed run is scored with them, as its batch's summary was)."""
    human = human_label(item)
    return (
        {"line": item.line}
        | ({"gold": item.gold} if item.gold is not None else {})
        | ({"human": human} if human is not None else {})
    )


def agreement_line(outcomes: Sequence[ItemOutcome]) -> str:
    """How the jury's scores of a batch agree with the human labels of its lines ("" when no line has one), in the
    figures ``optimize`` gives its held-out check: Kendall τ, Spearman ρ and Pearson r over the labelled runs that
    gave a score. A batch of held-out labelled lines ran, and nothing compared its scores with the labels."""
    from agentmesh.systems.sejury.selection import correlations

    labelled = [o for o in outcomes if o.human is not None and o.elsewhere is None]
    if not labelled:
        return ""
    pairs = [
        (o.human, float(o.result.answer))
        for o in labelled
        if o.human is not None
        and o.result is not None
        and isinstance(o.result.answer, int | float)
        and not isinstance(o.result.answer, bool)
    ]
    left = len(labelled) - len(pairs)
    unscored = f"; {left} gave no score and {'is' if left == 1 else 'are'} not counted" if left else ""
    if len(pairs) < 2:
        return (
            f"agreement with the human labels: n/a ({counted(len(pairs), 'labelled item')} scored; a correlation "
            f"needs at least 2{unscored})"
        )
    found = correlations([h for h, _ in pairs], [s for _, s in pairs])
    shown = ", ".join(
        f"{name} {'n/a' if math.isnan(value) else f'{value:.3f}'}"
        for name, value in (("Kendall τ", found.kendall), ("Spearman ρ", found.spearman), ("Pearson r", found.pearson))
    )
    return f"agreement with the human labels on {counted(len(pairs), 'labelled item')}: {shown}{unscored}"


def _usage(o: ItemOutcome) -> tuple[int, int, float | None]:
    """(calls, tokens, cost) of a batch's run, from its result or, for a failed one, its stored totals."""
    r = o.result
    if r is not None:
        calls, tokens, cost = r.calls, r.prompt_tokens + r.completion_tokens, r.cost_usd
    else:
        calls, tokens, cost = (
            int(o.totals.get("calls", 0)),
            int(o.totals.get("total_tokens", 0)),
            o.totals.get("cost_usd"),
        )
    return calls, tokens, 0.0 if cost is None and calls == 0 else cost  # no call (no run stored): nothing spent


def _total_cost(costs: Iterable[float | None]) -> float | None:
    """The sum of the costs; unknown (None, shown n/a) when one of them is: a sum of the known ones would pass for
    the batch's cost (as a run's cost is unknown when one of its calls' is, README's "rather than a partial sum")."""
    found = list(costs)
    return None if any(c is None for c in found) else sum(c for c in found if c is not None)


def summary_table(title: str, outcomes: Sequence[ItemOutcome], *, reason_chars: int = 160) -> Table:
    """One row per item: its line, run, status, answer, calls (tokens and cost on a wide terminal, see
    :data:`WIDE`), stop reason or error (its first ``reason_chars`` characters)."""
    wide = console.width >= WIDE
    labelled = any(o.gold is not None for o in outcomes)
    if console.width < NARROW:
        return _summary_records(title, outcomes, reason_chars)
    table = Table(title=Text(title), caption=None if wide else "tokens, cost: --json")
    columns = ["item", "run", "status", "answer", *(["gold"] if labelled else []), "calls"]
    columns += [*(["tokens", "cost"] if wide else []), "stop reason / error"]
    for column in columns:
        fixed = column in ("item", "run", "status", "calls", "tokens", "cost")
        table.add_column(
            column,
            no_wrap=fixed,
            overflow="fold",
            justify="right" if column in ("calls", "tokens", "cost") else "left",
        )
    for o in outcomes:
        calls, tokens, cost = _usage(o)
        answer, reason = _answer_and_reason(o, reason_chars)
        cells: dict[str, str | Text] = {
            "item": Text(o.label or f"line {o.line}"),
            "run": o.run_id[:12] if o.run_id else "-",
            "status": Text(o.status, style="green" if o.status == "succeeded" else "red"),
            "answer": Text(answer),
            "gold": _gold(o),
            "calls": str(calls),
            "tokens": str(tokens),
            "cost": fmt_cost(cost),
            "stop reason / error": reason,
        }
        table.add_row(*(cells[c] for c in columns))
    return table


def _summary_records(title: str, outcomes: Sequence[ItemOutcome], reason_chars: int) -> Table:
    """:func:`summary_table` on a narrow terminal (:data:`NARROW`): each item on lines of its own (item, run,
    status; its answer, gold and calls; its stop reason or error), so that the answer is never squeezed out."""
    table = Table(title=Text(title), caption="tokens, cost: --json", box=None, show_header=False, padding=(0, 0))
    table.add_column("item", overflow="fold")
    for o in outcomes:
        calls, _, _ = _usage(o)
        answer, reason = _answer_and_reason(o, reason_chars)
        record = Text(f"{o.label or f'line {o.line}'} · {o.run_id[:12] if o.run_id else '-'} · ")
        record.append(o.status, style="green" if o.status == "succeeded" else "red")
        record.append(f"\n  answer {answer}")
        if o.gold is not None:
            record.append("  gold ").append(_gold(o))
        record.append(f" · {calls} call{'' if calls == 1 else 's'}\n  ").append(reason)
        table.add_row(record)
    return table


def _answer_and_reason(o: ItemOutcome, reason_chars: int) -> tuple[str, Text]:
    """An item's answer ("-" without one) and its stop reason, or its error (red, its first ``reason_chars``
    characters), as both forms of the summary show them."""
    r = o.result
    if r is not None:
        return "-" if r.answer is None else str(r.answer), Text(r.stop_reason or "-")
    return "-", Text(snippet(o.error or o.not_run or o.elsewhere or "failed", reason_chars), style="red")


def print_summary(
    name: str, outcomes: Sequence[ItemOutcome], *, noun: str, batch: str | None, as_json: bool, quiet: bool
) -> None:
    """The end of a batch named ``name`` (its ``noun``: items, runs): every outcome as JSON (``as_json``), every
    answer on a line (``quiet``), or the summary, with the accuracy and a line of how many runs succeeded, failed
    and were skipped, and the ``batch`` id their runs are tagged with, if any."""
    not_run = sum(1 for o in outcomes if o.not_run is not None)
    failed = sum(1 for o in outcomes if o.failed) - not_run
    skipped = sum(1 for o in outcomes if o.elsewhere is not None)
    if as_json:
        typer.echo(json.dumps([o.to_json() for o in outcomes], indent=2, ensure_ascii=False))
    elif quiet:
        for o in outcomes:
            typer.echo("" if o.result is None or o.result.answer is None else str(o.result.answer))
    else:
        title = f"{name}: {_count(len(outcomes), noun)}"
        if len(outcomes) <= SUMMARY_ROWS:
            console.print(summary_table(title, outcomes))
        else:  # a row per item would bury the failures in a long log: how the runs ended, then each failure
            console.print(digest_table(title, outcomes))
            not_succeeded = [o for o in outcomes if o.status != "succeeded" and o.elsewhere is None]
            if not_succeeded:
                shown = not_succeeded[:SUMMARY_ROWS]
                more = len(not_succeeded) - len(shown)
                table = summary_table(f"not succeeded: {_count(len(not_succeeded), noun)}", shown, reason_chars=60)
                if more:
                    table.caption = f"and {more} more; every {noun[:-1]}: --json"
                console.print(table)
            console.print(f"every {noun[:-1]}'s answer and run: --json", highlight=False)
        score = accuracy_line(outcomes, "items" if noun == "items" else "resumed runs")
        if score:
            console.print(score, highlight=False)
        agreement = agreement_line(outcomes)
        if agreement:
            console.print(agreement, highlight=False)
        line = f"{_count(len(outcomes), noun)}: {len(outcomes) - failed - skipped - not_run} succeeded, {failed} failed"
        if not_run:
            line += f", {not_run} not run (the batch stopped starting them)"
        if skipped:
            line += f", {skipped} skipped (another process took them first)"
        if batch:
            line += f" · batch {batch} (agentmesh runs --batch {batch})"
        if any(o.failed and o.run_id is not None and o.not_run is None for o in outcomes):  # (a run that failed
            line += (  # before it was stored has no run to show or resume: "-" in its row, its error beside it)
                " · failed runs are stored: see them with agentmesh show <run>, continue with agentmesh resume <run>"
            )
        if batch and any(o.failed and o.run_id is None for o in outcomes):
            # (a full disk: the first items' runs were stored, the rest failed before theirs could be) resuming runs
            # by id does not reach these lines; resuming the batch reads them again from its file
            line += f" · items with no run (-): agentmesh resume --batch {batch} runs them again"
        console.print(line, highlight=False)
