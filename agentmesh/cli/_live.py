"""The live view of a running graph: per round of each node, its agents and their answers as they arrive,
the node's stop notes, then a final panel with the answer, the stop reason and where the run is stored.

It is fed by the runtime's listener events (``start``, ``call``, ``node``, ``stop``); on a terminal it redraws in
place; elsewhere (a log file, CI, a batch scheduler) it prints each round's block as the round finishes, so that a
long run on a slow model is followed in its log, not only read once it is over.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from agentmesh.cli._common import fmt_cost
from agentmesh.runtime.run import RunResult
from agentmesh.spec.graph import GraphSpec
from agentmesh.spec.operators import CallParams, RoundsParams, TeamParams


@dataclass
class _Row:
    slot: int
    agent: str
    key: str | None = None
    text: str = ""
    state: str = "pending"  # pending | ok | error | skipped | cut
    error: str | None = None


@dataclass
class _Block:
    node: str
    round: int
    op: str
    rows: dict[tuple[int, str], _Row] = field(default_factory=dict)
    """By (slot, agent): one operator may call several agents at the same slot (MAgICoRe's Solver and judges)."""
    notes: list[str] = field(default_factory=list)
    finished: bool = False
    printed: bool = False

    @property
    def title(self) -> str:
        return f"{self.node} · round {self.round}" if self.round else self.node


class LiveView:
    """What ``agentmesh run`` draws, built from the run's listener events.

    Events arrive on the event loop's thread while rich redraws from its own refresh thread, so every change
    and every render happens under one lock. Rows of a round are created as pending (``…``) from the spec when
    the round starts, because the runtime reports a call only when it completes: the user sees who is still
    thinking, not just who has answered.
    """

    def __init__(self, spec: GraphSpec, *, prefill: bool = True, stream: Console | None = None) -> None:
        """``stream``: print there the run's header when it starts and each block as it finishes (off a
        terminal); :meth:`rest` then holds only what was not printed yet."""
        self.spec = spec
        self.stream = stream
        self.run_id: str | None = None
        self.model: str | None = None
        self.resumed = False
        self.calls = 0
        self.stop_reason: str | None = None
        self.started = time.monotonic()
        self.blocks: list[_Block] = []
        self._lock = threading.Lock()
        if prefill:
            structure = spec.structure()
            for node in spec.nodes:
                if structure.in_degree(node) == 0:
                    self._open(node, self._first_round(node))

    # events

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        """The :data:`~agentmesh.runtime.context.Listener` to pass to the run."""
        with self._lock:
            if kind == "start":
                self.run_id = str(data.get("run_id"))
                self.model = data.get("model")
                self.resumed = bool(data.get("resumed"))
                if self.stream is not None:
                    self.stream.print(self.header(counts=False))
            elif kind == "call":
                self._on_call(data)
            elif kind == "node":
                self._on_node(data)
            elif kind == "stop":
                self.stop_reason = data.get("reason")
                # rounds announced as pending that never ran (the run stopped first) are not part of the story
                self.blocks = [
                    b for b in self.blocks if b.finished or any(r.state != "pending" for r in b.rows.values())
                ]

    def _on_call(self, data: Mapping[str, Any]) -> None:
        self.calls += 1
        # a loop body's call after its first iteration is reported under its record key, ``draft#1``, while the
        # node's own event says ``draft``: keyed apart, those calls opened a block no node event finished, which
        # was printed again after the run, and the iteration's block had no rows
        node = str(data["node"]).split("#")[0]
        block = self._block(node, int(data.get("round") or 0))
        slot, agent = int(data.get("slot") or 0), str(data.get("agent"))
        row = block.rows.get((slot, agent)) or _Row(slot=slot, agent=agent)
        row.key = data.get("key")
        row.text = str(data.get("text") or "")
        row.state = "ok" if data.get("ok", True) else "error"
        row.error = data.get("error")
        block.rows[(slot, agent)] = row

    def _on_node(self, data: Mapping[str, Any]) -> None:
        node = str(data["node"])
        block = self._block(node, int(data.get("round") or 0), prefill=False)
        answered = {(a.get("slot"), a.get("agent")) for a in data.get("answers") or []}
        network = data.get("network")
        if isinstance(network, Mapping) and isinstance(network.get("nodes"), list):
            # a round's answers are the team's latest, the previous round's where an agent was not called (a
            # budget that cut the round before any call): who answered in this round is its network's nodes
            answered = {(n.get("slot"), n.get("agent")) for n in network["nodes"] if isinstance(n, Mapping)}
        for row in block.rows.values():
            if row.state == "pending":
                row.state = "ok" if (row.slot, row.agent) in answered else "skipped"
        block.notes = _notes(data)
        block.finished = True
        if self.stream is not None:
            self.stream.print(_render_block(block))
            block.printed = True
        params = self.spec.nodes[node].params if node in self.spec.nodes else None
        rounds_left = isinstance(params, RoundsParams) and not data.get("done") and not data.get("stopped")
        if rounds_left and self.stop_reason is None:
            self._open(node, block.round + 1)

    def cut_short(self, why: str) -> None:
        """The run ended before its pending calls answered (it failed or was interrupted): those rows say so
        instead of "calling"."""
        with self._lock:
            for block in self.blocks:
                for row in block.rows.values():
                    if row.state == "pending":
                        row.state, row.error = "cut", why

    # blocks

    def _first_round(self, node: str) -> int:
        return 1 if isinstance(self.spec.nodes[node].params, RoundsParams) else 0

    def _expected(self, node: str) -> list[str]:
        """The agents a node calls in one round, by slot, when the spec says so (else rows appear as they come)."""
        params = self.spec.nodes[node].params if node in self.spec.nodes else None
        if isinstance(params, RoundsParams | TeamParams):
            return list(params.agents)
        if isinstance(params, CallParams):
            return [params.agent]
        return []

    def _open(self, node: str, round_no: int, *, prefill: bool = True) -> _Block:
        op = self.spec.nodes[node].op if node in self.spec.nodes else "?"
        block = _Block(node=node, round=round_no, op=op)
        if prefill:
            block.rows = {(i, a): _Row(slot=i, agent=a) for i, a in enumerate(self._expected(node))}
        self.blocks.append(block)
        return block

    def _block(self, node: str, round_no: int, *, prefill: bool = True) -> _Block:
        """The open block of ``node`` at ``round_no``; a node that runs again (in a loop) gets a new block."""
        for block in reversed(self.blocks):
            if block.node == node and block.round == round_no and not block.finished:
                return block
        return self._open(node, round_no, prefill=prefill)

    # rendering

    def header(self, *, counts: bool = True) -> Text:
        text = Text()
        text.append(f"{self.spec.name}", style="bold")
        if self.run_id:
            text.append(f" · run {self.run_id}" + (" (resumed)" if self.resumed else ""))
        if self.model:
            text.append(f" · {self.model}")
        if counts:
            calls = f"{self.calls} call{'s' if self.calls != 1 else ''}"
            text.append(f" · {calls} · {time.monotonic() - self.started:.1f} s")
        return text

    def transcript(self) -> RenderableType:
        """Every block, in order: what is printed once the run is over."""
        with self._lock:
            return Group(self.header(), *(_render_block(b) for b in self.blocks))

    def rest(self) -> RenderableType:
        """What is left to print once the run is over: the header and every block when nothing was streamed,
        else the blocks not printed yet (a round cut short) and the final call count and time."""
        if self.stream is None:
            return self.transcript()
        with self._lock:
            return Group(*(_render_block(b) for b in self.blocks if not b.printed), self.header())

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """The live frame: the header and as many of the latest blocks as fit the terminal."""
        with self._lock:
            budget = max(options.size.height - 2, 6)
            shown: list[_Block] = []
            used = 1
            for block in reversed(self.blocks):
                height = len(block.rows) + 6 if block.rows else 1
                if shown and used + height > budget:
                    break
                shown.append(block)
                used += height
            hidden = len(self.blocks) - len(shown)
            parts: list[RenderableType] = [self.header()]
            if hidden:
                parts.append(Text(f"… {hidden} earlier block{'s' if hidden != 1 else ''}", style="dim"))
            parts.extend(_render_block(b) for b in reversed(shown))
        yield Group(*parts)


def _notes(data: Mapping[str, Any]) -> list[str]:
    """A node's summary as short notes: its answer, why it stopped, whether it continues."""
    notes: list[str] = []
    if data.get("answer") is not None:
        notes.append(f"answer {data['answer']}")
    if data.get("stop"):
        notes.append(f"stop: {data['stop']}")
    if data.get("stopped"):
        notes.append(f"stopped: {data['stopped']}")
    if "taken" in data:
        notes.append(f"took {data['taken']}")
    if "kept" in data:
        notes.append(f"kept {data['kept']}")
    scores = data.get("scores")
    if isinstance(scores, list):  # a score node's; a function node may use the name for something else
        notes.append("scores " + ", ".join(f"{s:g}" if isinstance(s, int | float) else "-" for s in scores))
    if "done" in data and data.get("round"):
        notes.append("done" if data["done"] else "continues")
    return notes


_STATE = {
    "pending": Text("calling", style="yellow"),
    "ok": Text("ok", style="green"),
    "skipped": Text("not called", style="dim"),
}


def _render_block(block: _Block) -> RenderableType:
    notes = " · ".join(block.notes)
    if not block.rows:
        line = Text()
        line.append(block.title, style="bold")
        line.append(f" ({block.op})", style="dim")
        line.append(f": {notes}" if notes else (" …" if not block.finished else ""))
        return line
    table = Table(title=Text(block.title, style="bold"), title_justify="left", expand=False)
    for column in ("slot", "agent", "answer", "status", "reply"):
        table.add_column(column, overflow="fold", max_width=60 if column == "reply" else None)
    for key in sorted(block.rows):
        row = block.rows[key]
        answer = (
            Text("…", style="yellow") if row.state == "pending" else Text(snippet(str(row.key), 40) if row.key else "-")
        )
        if row.state == "cut":
            state = Text(row.error or "no answer", style="red")
        else:
            state = _STATE.get(row.state) or Text(f"error: {row.error or 'unparsed'}", style="red")
        table.add_row(str(row.slot), Text(row.agent), answer, state, Text(snippet(row.text, 60), style="dim"))
    if not notes:
        return table
    return Group(table, Text(f"  ↳ {notes}", style="italic"))


def snippet(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def final_panel(result: RunResult) -> Panel:
    """The answer and where it came from: stop reason, stored run, spend, and how to look at it again."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("answer", Text("-" if result.answer is None else str(result.answer), style="bold green"))
    if result.text and result.text.strip() != str(result.answer):
        grid.add_row("reply", Text(snippet(result.text, 300)))
    grid.add_row("stop reason", Text(result.stop_reason or "-"))
    grid.add_row("run", Text(f"{result.run_id} ({result.status})"))
    calls = str(result.calls)
    if result.served_from_record:
        calls += f" ({result.served_from_record} served from the record, not made again)"
    grid.add_row("calls", calls)
    grid.add_row("tokens", f"{result.prompt_tokens} in + {result.completion_tokens} out")
    grid.add_row("cost", fmt_cost(result.cost_usd))
    grid.add_row("details", Text(f"agentmesh show {result.run_id[:12]}", style="cyan"))
    return Panel(grid, title=Text(f"{result.graph} · {result.status}"), title_align="left", expand=False)
