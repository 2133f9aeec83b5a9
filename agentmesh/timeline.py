"""The story of a stored run, read back from the store: steps (a node in a round) with their model calls, the
agent networks with who was active, pruned or never ran, ratings and importance scores, and the stop reason.

``agentmesh show`` prints it, ``agentmesh report`` renders it as HTML and ``agentmesh diff`` compares two of
them. It is built from what every run stores (its events and its last checkpoint), so it works for any graph;
a run imported without checkpoints still has its calls and steps.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from agentmesh.errors import AgentmeshError
from agentmesh.runtime.outcome import stored_outputs
from agentmesh.runtime.recorded_calls import CALL_KINDS
from agentmesh.spec.graph import GraphSpec
from agentmesh.spec.loader import stored_graph
from agentmesh.spec.operators import LoopParams
from agentmesh.store import EventRecord, RunRecord, Store
from agentmesh.systems.dylan.importance import agent_labels

__all__ = ["CallView", "Network", "RunDiff", "Step", "Timeline", "diff_timelines", "load_timeline"]


@dataclass
class CallView:
    """One model call: who, where, what it was asked and answered, and what it cost."""

    seq: int
    node: str
    agent: str
    round: int
    call_index: int
    messages: list[dict[str, str]]
    reply: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float | None
    cost_usd: float | None
    error: str | None
    replayed: bool
    request_hash: str | None
    finished_at: datetime | None = None  # when the attempt ended (the event's time)
    reasoning: str = ""  # a reasoning model's thinking before its reply ("" when it had none or did not say)
    cached_prompt_tokens: int = 0  # of the prompt tokens, read from the server's prompt cache (0: none, or not said)
    reasoning_tokens: int = 0  # of the completion tokens, spent thinking (0: none, or not said)

    def tokens(self, unit: str = "tokens") -> str:
        """``prompt+completion <unit>``, with the prompt's cached part and the completion's thinking when the
        server reported them: ``1200+340 tokens (1,024 cached, 300 thinking)``."""
        parts = [f"{self.cached_prompt_tokens:,} cached"] if self.cached_prompt_tokens else []
        if self.reasoning_tokens:
            parts.append(f"{self.reasoning_tokens:,} thinking")
        detail = f" ({', '.join(parts)})" if parts else ""
        return f"{self.prompt_tokens or 0}+{self.completion_tokens or 0} {unit}{detail}"

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.node, self.agent, self.round, self.call_index)

    @property
    def started_at(self) -> datetime | None:
        """When the attempt started: its end less its latency (``None`` when either is unknown)."""
        if self.finished_at is None or self.latency_s is None:
            return None
        return self.finished_at - timedelta(seconds=self.latency_s)


@dataclass
class Step:
    """A node's execution (one round of a rounds node): its result and the calls it made."""

    node: str
    op: str
    round: int | None
    summary: dict[str, Any]
    calls: list[CallView] = field(default_factory=list)
    iteration: int | None = None
    """Of a node in a loop's body, the loop's iteration it ran in (1, 2, ...): what ``replay --from NODE@N`` names."""

    @property
    def place(self) -> str:
        """Where in the run it was, after the node's name: `` round 2``, `` iteration 3`` (a loop's body), or ""."""
        return (f" round {self.round}" if self.round else "") + (
            f" iteration {self.iteration}" if self.iteration else ""
        )

    @property
    def scores(self) -> str | None:
        """Its ``scores`` in words (``5, 6.5, -``), or ``None`` when it has none. A score node's are numbers; a
        function node of the user's may return anything under the name (a mapping, labels), which ``show`` and
        ``report`` formatted as numbers, failing with a traceback on the run's whole page."""
        value = self.summary.get("scores")
        if not value:
            return None
        if not isinstance(value, list):
            return " ".join(json.dumps(value, ensure_ascii=False, default=str).split())[:200]

        def one(v: Any) -> str:
            if v is None:
                return "-"
            return f"{v:g}" if isinstance(v, int | float) and not isinstance(v, bool) else str(v)

        return ", ".join(one(v) for v in value)

    @property
    def tokens(self) -> int:
        return sum((c.prompt_tokens or 0) + (c.completion_tokens or 0) for c in self.calls if not c.replayed)

    @property
    def cost_usd(self) -> float | None:
        """What the step's calls cost this run, as a run's total is summed: unknown (``None``) when an answered call
        has no price, not the sum of the others; calls served from a stored run and failed attempts without a cost
        cost nothing. A fork's served round read "n/a", and a step of priced and unpriced calls the priced ones' sum."""
        made = [c for c in self.calls if not c.replayed]
        if any(c.cost_usd is None and c.error is None for c in made):
            return None
        return sum(c.cost_usd or 0.0 for c in made)

    @property
    def latency_s(self) -> float:
        """The calls' latencies added up: the model time the step used (more than its wall time when its calls
        ran at once)."""
        return sum(c.latency_s or 0.0 for c in self.calls)

    @property
    def wall_s(self) -> float | None:
        """From the start of its first call to the end of its last (``None`` without timed calls)."""
        spans = [(c.started_at, c.finished_at) for c in self.calls if not c.replayed]
        starts = [a for a, _ in spans if a is not None]
        ends = [b for _, b in spans if b is not None]
        if not starts or not ends:
            return None
        return max(0.0, (max(ends) - min(starts)).total_seconds())

    def duration(self) -> str:
        """Its time in words: the wall time, and the model time beside it when calls overlapped (``2.01 s (6.02 s
        of calls at once)``); the model time alone when the calls have no times. Calls served from a stored run
        took none."""
        made = [c for c in self.calls if not c.replayed]
        if self.calls and not made:
            return "served from the stored run"
        wall, model = self.wall_s, sum(c.latency_s or 0.0 for c in made)
        if wall is None:
            return _secs(model)
        return _secs(wall) + (f" ({_secs(model)} of calls at once)" if model > wall * 1.1 else "")


def _secs(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


@dataclass
class Network:
    """A team node's recorded network and, when the run computed them, its importance scores."""

    node: str
    history: list[dict[str, Any]]
    agents: list[str]
    importance: dict[str, Any] | None = None
    groups: dict[str, list[int]] = field(default_factory=dict)
    """Slots per team field (``writers``/``judges`` of a code network; ``agents`` of rounds)."""

    def slots_of(self, kind: str | None) -> list[int]:
        """The slots a layer of ``kind`` (``writers``, ``judges``, or a plain round) can hold."""
        return self.groups.get(kind or "", list(range(len(self.agents))))


@dataclass
class Timeline:
    run: RunRecord
    steps: list[Step]
    outputs: dict[str, Any] | None
    networks: list[Network]
    spec: GraphSpec | None
    #: Why the run's stored spec could not be read here (its steps and calls are still shown, without it).
    spec_problem: str | None = None

    @property
    def calls(self) -> list[CallView]:
        return [c for s in self.steps for c in s.calls]


def _call(e: EventRecord) -> CallView:
    request = e.request if isinstance(e.request, Mapping) else {}
    messages = [
        {"role": str(m.get("role")), "content": str(m.get("content"))}
        for m in request.get("messages") or []
        if isinstance(m, Mapping)
    ]
    choices = (e.response or {}).get("choices") or [] if isinstance(e.response, Mapping) else []
    reply = " | ".join(str(c.get("text", "")) for c in choices if isinstance(c, Mapping))
    reasoning = " | ".join(str(c["reasoning"]) for c in choices if isinstance(c, Mapping) and c.get("reasoning"))
    usage = (e.response or {}).get("usage") if isinstance(e.response, Mapping) else None
    usage = usage if isinstance(usage, Mapping) else {}
    return CallView(
        seq=e.seq,
        node=e.node or "",
        agent=e.agent or "",
        round=e.round or 0,
        call_index=e.call_index or 0,
        messages=messages,
        reply=reply,
        prompt_tokens=e.prompt_tokens,
        completion_tokens=e.completion_tokens,
        latency_s=e.latency_s,
        cost_usd=e.cost_usd,
        error=e.error,
        replayed=e.kind == "replayed_call",
        request_hash=e.request_hash,
        finished_at=e.created_at,
        reasoning=reasoning,
        cached_prompt_tokens=_count(usage.get("cached_prompt_tokens")),
        reasoning_tokens=_count(usage.get("reasoning_tokens")),
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def load_timeline(store: Store, run_id: str) -> Timeline:
    """Read a run's timeline from ``store`` (``run_id`` may be a unique prefix)."""
    # a run still marked running has its totals summed only when it ends: its calls so far, as show counts them
    # (the report and diff of a run in progress, or of one a SIGKILL left, said "0 calls" beside its calls)
    record = store.with_running_totals([store.get_run(run_id)])[0]
    spec: GraphSpec | None = None
    unread: str | None = None
    if isinstance(record.meta.get("spec"), Mapping):
        try:
            spec = stored_graph(dict(record.meta["spec"]), record.id)
        except AgentmeshError as exc:  # an operator of the user's own, its module not imported: show the calls
            unread = str(exc)
    events = store.events(record.id)
    steps: list[Step] = []
    pending: list[CallView] = []
    # a loop's body nodes run once per iteration, each run a step that read the same as the last ("draft (call)"):
    # which iteration each was, counted, so that show and the report say what a fork's draft@2 names
    loops = [n.params for n in spec.nodes.values() if isinstance(n.params, LoopParams)] if spec is not None else []
    in_loops = {name for loop in loops for name in loop.body}
    runs_of: dict[str, int] = {}
    for e in events:
        if e.kind in CALL_KINDS:
            pending.append(_call(e))
        elif e.kind == "node_result" and e.node:
            mine = [c for c in pending if c.node.split("#")[0] == e.node]
            pending = [c for c in pending if c.node.split("#")[0] != e.node]
            op = spec.nodes[e.node].op if spec is not None and e.node in spec.nodes else ""
            # a result that is not an object (an imported run's, from an older agentmesh that did not check) is
            # shown as a step without details rather than failing the whole timeline
            iteration = None
            if e.node in in_loops:
                iteration = runs_of[e.node] = runs_of.get(e.node, 0) + 1
            summary = dict(e.data) if isinstance(e.data, Mapping) else {}
            steps.append(Step(e.node, op, e.round, summary, mine, iteration))
    if pending:  # calls outside any node (``agentmesh ask``), or of a step the run never finished
        done = str(record.status) == "succeeded"
        steps.append(Step(pending[0].node, "", pending[0].round, {} if done else {"unfinished": True}, pending))
    outputs = stored_outputs(store, spec, record.id) if spec is not None else None
    recorded: dict[str, dict[int, dict[str, Any]]] = {}  # per node, the round entries its steps recorded
    for e in events:
        if e.kind == "node_result" and e.node and isinstance(e.data, dict) and isinstance(e.data.get("network"), dict):
            entry = dict(e.data["network"])
            recorded.setdefault(e.node, {})[int(entry["round"])] = entry
    if pending and str(record.status) != "succeeded" and spec is not None:
        _add_cut_round(spec, record.inputs, pending, recorded)
    return Timeline(record, steps, outputs, _networks(spec, outputs, recorded), spec, unread)


def _add_cut_round(
    spec: GraphSpec,
    inputs: Mapping[str, Any],
    calls: list[CallView],
    recorded: dict[str, dict[int, dict[str, Any]]],
) -> None:
    """The round a run stopped in (interrupted, failed) part-way, added to ``recorded`` as a network entry marked
    ``cut_short``: a ``rounds`` node records a round when it ends, so show and the report drew the network without
    it, beside its calls in the timeline. The agents that answered are its nodes, each with the key its card's
    parser reads in the reply (what the round would have recorded); which answers each was shown is not stored."""
    for call in calls:
        node = spec.nodes.get(call.node)
        if node is None or node.op != "rounds" or call.error:
            continue
        entry = recorded.setdefault(call.node, {}).setdefault(
            call.round, {"round": call.round, "nodes": [], "ranked": None, "cut_short": True}
        )
        if entry.get("cut_short"):  # (not a round the node recorded)
            entry["nodes"].append(
                {"slot": call.call_index, "agent": call.agent, "key": _answer_key(spec, inputs, call), "seen": []}
            )


def _answer_key(spec: GraphSpec, inputs: Mapping[str, Any], call: CallView) -> str | None:
    """The key the call's agent's parser reads in its reply (``None``: none, or a parser that cannot run here)."""
    card = spec.agents.get(call.agent)
    if card is None:
        return None
    wants = card.parser.parser.call_params
    params: dict[str, Any] = {}
    if "prompt" in wants and "prompt" not in card.parser.params and call.messages:
        params["prompt"] = call.messages[-1]["content"]
    if "inputs" in wants:
        params["inputs"] = dict(inputs)
    try:
        with warnings.catch_warnings():  # (the run said its parsers' warnings when it ran: show does not repeat them)
            warnings.simplefilter("ignore")
            parsed = card.parser(call.reply, **params)
    except Exception:  # a parser of the run's that needs what only the run had: the node is shown without a key
        return None
    return parsed.normalized if parsed.ok else None


def _networks(
    spec: GraphSpec | None, outputs: Mapping[str, Any] | None, recorded: Mapping[str, Mapping[int, dict[str, Any]]]
) -> list[Network]:
    if spec is None or not outputs:
        return []
    scores: dict[str, dict[str, Any]] = {}
    for out in outputs.values():
        found = out.get("importance") if isinstance(out, Mapping) else None
        if isinstance(found, Mapping) and found.get("source"):
            scores[str(found["source"])] = dict(found)
    found_networks = []
    for name, node in spec.nodes.items():
        out = outputs.get(name)
        fields = node.params.team_fields()
        history = out.get("history") if isinstance(out, Mapping) else None
        if not history and name in recorded:  # the run stopped before the node gathered its rounds
            history = [recorded[name][r] for r in sorted(recorded[name])]
        if not isinstance(out, Mapping) or not fields or not history:
            continue
        agents = list(agent_labels([a for team in fields.values() for a in team]))
        groups, start = {}, 0
        for field_name, team in fields.items():
            groups[field_name] = list(range(start, start + len(team)))
            start += len(team)
        own = out.get("importance") if isinstance(out.get("importance"), Mapping) else None
        found_networks.append(Network(name, list(history), agents, scores.get(name) or own, groups))
    return found_networks


@dataclass
class RunDiff:
    """Where two runs of a graph part ways: their first differing call, node answers, calls, cost."""

    a: Timeline
    b: Timeline
    first_divergence: str | None
    only_a: list[tuple[str, str, int, int]]
    only_b: list[tuple[str, str, int, int]]
    differing_calls: list[tuple[str, str, int, int]]
    answers: list[tuple[str, Any, Any]]
    """(node, answer in A, answer in B) for every node whose answer differs."""


def _answers(story: Timeline) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for step in story.steps:
        if "answer" in step.summary:
            found[step.node] = step.summary.get("answer")
    return found


def loop_bodies(spec: GraphSpec | None) -> set[str]:
    """The nodes of ``spec`` in a loop's body."""
    if spec is None:
        return set()
    return {name for n in spec.nodes.values() if isinstance(n.params, LoopParams) for name in n.params.body}


def call_place(key: tuple[str, str, int, int], in_loops: set[str] | frozenset[str] = frozenset()) -> str:
    """Where a call was, in the words show uses: a loop body's call is recorded under ``judge#2`` (its record key),
    which diff and replay printed as a node name that no spec, show or step has; it is node 'judge', iteration 3
    (``in_loops``: the loop bodies' nodes, whose first iteration's calls have no ``#``)."""
    node, agent, rnd, idx = key
    base, _, done = node.partition("#")
    number = int(done) + 1 if done.isdigit() else 1
    iteration = f", iteration {number}" if base in in_loops or done.isdigit() else ""
    return f"node {base!r}{iteration}, agent {agent!r}, round {rnd}, call {idx}"


def diff_timelines(a: Timeline, b: Timeline) -> RunDiff:
    """Compare two runs call by call (by their place in the run) and node by node."""
    calls_a = {c.key: c for c in a.calls if not c.error}
    calls_b = {c.key: c for c in b.calls if not c.error}
    differing = [
        key
        for key in calls_a
        if key in calls_b
        and (calls_a[key].request_hash != calls_b[key].request_hash or calls_a[key].reply != calls_b[key].reply)
    ]
    first = None
    in_loops = loop_bodies(a.spec) | loop_bodies(b.spec)
    for call in sorted(calls_a.values(), key=lambda c: c.seq):
        other = calls_b.get(call.key)
        where = call_place(call.key, in_loops)
        if other is None:
            first = f"{where}: only in A"
        elif other.request_hash != call.request_hash:
            first = f"{where}: the prompts differ"
        elif other.reply != call.reply:
            first = f"{where}: same prompt, different replies"
        if first:
            break
    if first is None:
        extra = [c for c in sorted(calls_b.values(), key=lambda c: c.seq) if c.key not in calls_a]
        if extra:  # B's first call A lacks, in B's order (it was the first by name, node 'debate' before 'aaa')
            first = f"{call_place(extra[0].key, in_loops)}: only in B"
    answers_a, answers_b = _answers(a), _answers(b)
    answers = [
        (node, answers_a.get(node), answers_b.get(node))
        for node in dict.fromkeys([*answers_a, *answers_b])
        if answers_a.get(node) != answers_b.get(node)
    ]
    return RunDiff(
        a,
        b,
        first,
        sorted(set(calls_a) - set(calls_b)),
        sorted(set(calls_b) - set(calls_a)),
        differing,
        answers,
    )
