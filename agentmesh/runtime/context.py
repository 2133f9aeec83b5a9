"""A run's context: the one place where an agent is prompted, its model called (or its recorded answer served),
its reply parsed, and the call accounted against the run's budget.

Operators never touch models or the store directly; they ask the context for an agent's answer. That is what
makes every call recorded as it completes, a resumed run serve finished calls back instead of repeating them
(keyed by node, agent, round and call index, checked against the request hash), and budgets hold across a
parallel team.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import jinja2
from pydantic import BaseModel, ConfigDict

from agentmesh._text import counted
from agentmesh.errors import AgentmeshError
from agentmesh.models.client import CallObserver, ModelClient
from agentmesh.models.messages import CallContext, CallRecord, ChatMessage, Choice, ModelRequest, ModelResponse
from agentmesh.runtime.budget import BudgetExhausted, BudgetTracker

# a stored run's calls, read back: defined in their own module, and importable from here as they always were
from agentmesh.runtime.recorded_calls import CALL_KINDS as CALL_KINDS
from agentmesh.runtime.recorded_calls import CallKey as CallKey
from agentmesh.runtime.recorded_calls import RecordedCall as RecordedCall
from agentmesh.runtime.recorded_calls import index_recorded as index_recorded
from agentmesh.runtime.recorded_calls import load_recorded as load_recorded
from agentmesh.runtime.recorded_calls import prompt_diff as prompt_diff
from agentmesh.runtime.recorded_calls import prompt_text, quoted_a_secret, replayed_fields
from agentmesh.runtime.recording import StoreRecorder
from agentmesh.runtime.tracing import tracing
from agentmesh.spec.agent import AgentCard
from agentmesh.spec.graph import GraphSpec
from agentmesh.spec.run_order import RunsBefore
from agentmesh.spec.templates import node_references, render
from agentmesh.store._redact import stored_text

# The store's modules that read and write the database import SQLAlchemy: what this module needs of them is
# imported where it is used, so that the operators' registry (``agentmesh graph validate``) does not import it.
if TYPE_CHECKING:
    from agentmesh.store import Store


#: The most samples one call may ask for (``Sampling.n``'s bound).
_MAX_SAMPLES = 128


class RunError(AgentmeshError):
    """A graph could not run as specified (a template failed to render, a recorded call diverged...)."""


class ReplayDivergence(RunError):
    """A replay asked for a call the recorded run did not make, or made with another prompt: where, and the diff."""

    def __init__(self, message: str, *, key: CallKey, diff: str = "", **context: Any) -> None:
        super().__init__(message, **context)
        self.key = key
        self.diff = diff


ReplayMode = Literal["resume", "strict", "fork"]
"""How recorded calls are served: ``resume`` (a changed prompt is an error, a missing call is made),
``strict`` (replay: every call must be in the record with the same request, none is made), ``fork`` (a recorded
call is served while its request is unchanged, anything else is made live)."""


class AgentAnswer(BaseModel):
    """One agent's reply, parsed: what operators pass between nodes (JSON-able, stored in state)."""

    model_config = ConfigDict(frozen=True)

    agent: str
    slot: int
    text: str
    value: Any = None
    key: str | None = None
    ok: bool = True
    error: str | None = None


Listener = Callable[[str, dict[str, Any]], None]
"""Receives ``(kind, data)`` as a run progresses (``start``, ``call``, ``node``, ``stop``): what live views draw.

``start`` comes first (``run_id``, ``graph``, ``model``, ``resumed``), so a view can name the run while it is
still going, and a caller running many items learns which stored run belongs to an item that fails."""


class RunContext:
    """Everything operators need during one run."""

    def __init__(
        self,
        *,
        run_id: str,
        spec: GraphSpec,
        model: ModelClient,
        store: Store | None,
        budget: BudgetTracker,
        inputs: Mapping[str, Any],
        recorded: Mapping[CallKey, RecordedCall] | None = None,
        listeners: list[Listener] | None = None,
        mode: ReplayMode = "resume",
        new_run: bool = False,
    ) -> None:
        self.run_id = run_id
        self.spec = spec
        self.model = model
        self.store = store
        self.budget = budget
        self.inputs = dict(inputs)
        self.recorded = dict(recorded or {})
        self.mode = mode
        self.listeners = listeners or []
        self.served_from_record = 0
        self.calls_made = 0
        self._clients: dict[str, ModelClient] = {}
        self._recorder = StoreRecorder(store, run_id) if store is not None else None
        self.tracing = tracing()  # OpenTelemetry spans, when the application set OpenTelemetry up
        self._observer: CallObserver | None = self._recorder
        if self.tracing is not None:
            self._observer = _both(self._recorder, self.tracing.call)
        # a run created just now has no events from an earlier process: the node results it records are all here
        self._node_results: dict[str, list[dict[str, Any]]] | None = {} if new_run else None

    # --- models ---------------------------------------------------------------------------------------------

    def client_for(self, card: AgentCard) -> ModelClient:
        if card.model is None:
            return self.model
        if card.model not in self._clients:
            from agentmesh.runtime.recorded_model import model_for  # (only a card naming its own model needs it)

            self._clients[card.model] = model_for(card.model, self.store)
        return self._clients[card.model]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()

    # --- prompting --------------------------------------------------------------------------------------------

    def variables(self, state_outputs: Mapping[str, Any], agent: AgentCard, extra: Mapping[str, Any]) -> dict[str, Any]:
        """Template variables: the inputs (top level and as ``inputs``), ``nodes``, the agent, the operator's."""
        return {
            **self.inputs,
            "inputs": self.inputs,
            "nodes": state_outputs,
            "agent": agent.name,
            "role": agent.role,
            **extra,
        }

    def build_request(self, card: AgentCard, variables: Mapping[str, Any], *, node: str) -> ModelRequest:
        try:
            messages = []
            if card.system:
                messages.append(ChatMessage(role="system", content=render(card.system, dict(variables))))
            messages.append(ChatMessage(role="user", content=render(card.prompt, dict(variables))))
        except Exception as exc:  # Jinja's own errors, and what an expression raises ({{ n + 1 }} on a string)
            undefined = isinstance(exc, jinja2.UndefinedError)
            hint = _unfinished_nodes_hint(self.spec, card, variables, node) if undefined else ""
            what = str(exc) if isinstance(exc, jinja2.TemplateError) else f"{type(exc).__name__}: {exc}"
            raise RunError(
                f"node {node!r}: agent {card.name!r}: prompt template failed: {what}{hint}", node=node, agent=card.name
            ) from exc
        return ModelRequest(messages=tuple(messages), sampling=card.sampling)

    # --- the call ---------------------------------------------------------------------------------------------

    async def ask(
        self,
        *,
        node: str,
        agent: str,
        slot: int,
        round: int,
        variables: Mapping[str, Any],
        parse_params: Mapping[str, Any] | None = None,
    ) -> AgentAnswer:
        """Prompt ``agent`` (the card of that name) and return its parsed answer.

        The call is served from the run's record when it was already made (resume), else made through the
        model client with the store recording it as it completes. :class:`BudgetExhausted` propagates when the
        run's budget forbids another call.

        One call, one answer: a card whose ``sampling.n`` asks for several samples is refused (its other samples
        would be paid for and lost; specs refuse such a card when they load and when a run starts, this stops one in
        a context built around a spec never checked). :meth:`ask_samples` returns every sample of one call.
        """
        card = self._card(node, agent)
        if card.sampling.n != 1:
            raise RunError(
                f"node {node!r}: agent {agent!r}: its sampling.n is {card.sampling.n}, but ask returns one answer per "
                f"call, so {counted(card.sampling.n - 1, 'sample')} would be paid for and dropped; give the card n: 1 "
                "and ask "
                f"the agent once per answer (a slot each), or call RunContext.ask_samples(..., n={card.sampling.n}) "
                "for every sample of one call",
                node=node,
                agent=agent,
            )
        request = self.build_request(card, variables, node=node)
        key = (node, agent, round, slot)
        response, served = await self._respond(card, request, key)
        answer = self._parse(card, request, response, key, served, None, parse_params)
        if self.listeners:  # (the event's dict is not built for nobody)
            # served: answered from the run's record (a resume, a replay), not a call made now
            self.emit("call", {"node": node, "round": round, "served": served, **answer.model_dump()})
        return answer

    async def ask_samples(
        self,
        *,
        node: str,
        agent: str,
        slot: int,
        round: int,
        variables: Mapping[str, Any],
        n: int,
        parse_params: Mapping[str, Any] | None = None,
    ) -> list[AgentAnswer]:
        """Prompt ``agent`` once asking the model for ``n`` samples, and return all ``n`` parsed answers in the
        order the model gave them (each with the call's ``slot``: they share one call key).

        For Python operators that want several samples of one prompt at the price of one prompt (a provider that
        honours ``n`` bills the prompt once). The call is recorded, served back on resume and replay, and budgeted
        like :meth:`ask`'s; ``n`` replaces the card's own (which a loaded spec keeps at 1). No shipped operator
        uses it: a team lists an agent several times instead, which every provider supports and which records
        each answer as its own call. A model that returns fewer than ``n`` samples (some servers ignore ``n`` and
        return one) is an error rather than fewer answers than asked for.
        """
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= _MAX_SAMPLES:
            raise RunError(
                f"node {node!r}: agent {agent!r}: ask_samples needs n, a whole number from 1 to {_MAX_SAMPLES}; "
                f"got {n!r}",
                node=node,
                agent=agent,
            )
        card = self._card(node, agent)
        card = card.model_copy(update={"sampling": card.sampling.model_copy(update={"n": n})})
        request = self.build_request(card, variables, node=node)
        key = (node, agent, round, slot)
        response, served = await self._respond(card, request, key)
        if len(response.choices) != n:
            raise RunError(
                f"node {node!r}: agent {agent!r}: asked the model for {counted(n, 'sample')} and it returned "
                f"{len(response.choices)} (some servers ignore n and return one); ask the agent once "
                "per answer instead, with a slot each",
                node=node,
                agent=agent,
            )
        answers = [self._parse(card, request, response, key, served, i, parse_params) for i in range(n)]
        if self.listeners:
            for i, answer in enumerate(answers):
                data = {"node": node, "round": round, "served": served, "sample": i, **answer.model_dump()}
                self.emit("call", data)
        return answers

    def _card(self, node: str, agent: str) -> AgentCard:
        card = self.spec.agents.get(agent)
        if (
            card is None
        ):  # an operator of the user's that does not list its agents in agents_used(): not checked at load
            raise RunError(
                f"node {node!r}: asks agent {agent!r}, which the graph does not have (its agents: "
                f"{', '.join(self.spec.agents) or 'none'}); an operator's params name the agents it calls in "
                "agents_used(), so that the spec check reports this when the graph loads",
                node=node,
                agent=agent,
            )
        return card

    async def _respond(self, card: AgentCard, request: ModelRequest, key: CallKey) -> tuple[ModelResponse, bool]:
        """The model's response to ``request`` at ``key``: served from the record, or made now and recorded; and
        whether it was served."""
        served = self._served(key, request)
        response = served.response if served is not None else None
        if served is not None and self.mode != "resume":
            # a replay or a fork re-runs from the start: served calls spend the budget as the originals did, so
            # a run that stopped on its budget stops at the same call again (a resume counted them up front)
            self.budget.reserve_call()
            self.budget.spend(served.response)
        if served is not None and self.mode == "fork" and self._recorder is not None:
            # a fork keeps the calls it is served, as replayed_call events: complete on its own, costing nothing
            self._recorder.post("replayed_call", **replayed_fields(served.event))
        if response is None and self.mode == "strict":
            # (a run stopped by its wall-time budget: every call it made is served, and this one it never made)
            spent = self.budget.exhausted() or (None if self.recorded else self.budget.end_replayed_wall())
            if spent is not None:
                # the run met its budget here too and never made this call (a parallel team's calls beyond a call
                # budget): the replay stops as the run did, rather than report the call as a divergence
                raise BudgetExhausted(spent)
            node_, agent_, round_, slot_ = key
            raise ReplayDivergence(
                f"the graph now makes a call the recorded run did not: {_call_place(key, self.spec)} (the graph or "
                "its inputs changed since the run; a replay makes no calls)",
                key=key,
                diff=prompt_text(request),
                node=node_,
                agent=agent_,
                round=round_,
                call_index=slot_,
            )
        if response is None:
            node, agent, round, slot = key
            self.budget.reserve_call()
            context = CallContext(run_id=self.run_id, node=node, agent=agent, round=round, call_index=slot)
            try:
                response = await self.client_for(card).complete(
                    request, context, observer=self._observer, admitted=self.budget.check_admitted
                )
            except BaseException:
                self.budget.release_call()  # no answer came back: the slot is free again
                raise
            self.calls_made += 1
            self.budget.spend(response)  # a served call was counted when the run resumed
        return response, served is not None

    def _parse(
        self,
        card: AgentCard,
        request: ModelRequest,
        response: ModelResponse,
        key: CallKey,
        served: bool,
        sample: int | None,
        parse_params: Mapping[str, Any] | None,
    ) -> AgentAnswer:
        """Sample ``sample`` of ``response`` (``None``: the one reply :meth:`ask` asked for) parsed by the card's
        parser, for the call at ``key`` (``served``: answered from the run's record).

        A parser that raises (a bug: bad output is a failed :class:`~agentmesh.parsers.Parsed`) or returns something
        else is a :class:`RunError` naming the node, the agent and the parser, not its bare exception out of
        LangGraph's task. Either way the call happened and is stored, so listeners get its ``call`` event first,
        with its reply and the error (and ``sample`` when there is one), as the store keeps it."""
        node, agent, round, slot = key
        params = dict(parse_params or {})
        if "prompt" in card.parser.parser.call_params and "prompt" not in card.parser.params:
            params.setdefault("prompt", request.messages[-1].content)
        if "inputs" in card.parser.parser.call_params:
            params.setdefault("inputs", self.inputs)  # (choice_letter's ``options`` names one of them)
        index = sample or 0
        choice = response.choices[index] if index < len(response.choices) else None
        # a reply quoting a credential is masked before anything keeps it: the run's state (checkpointed), the agents
        # that read it next, its parsed value -- as the store masks the call's event
        text = stored_text(choice.text if choice is not None else "") or ""
        try:
            try:
                parsed = card.parser(text, **params)
            except AgentmeshError:
                raise
            except Exception as exc:
                raise RunError(
                    f"node {node!r}: agent {agent!r}: parser {card.parser.name!r} failed on its reply: "
                    f"{type(exc).__name__}: {exc}",
                    node=node,
                    agent=agent,
                    parser=card.parser.name,
                ) from exc
        except AgentmeshError as exc:
            if self.listeners:
                failed = AgentAnswer(agent=agent, slot=slot, text=text, ok=False, error=str(exc))
                extra = {} if sample is None else {"sample": sample}
                self.emit("call", {"node": node, "round": round, "served": served, **extra, **failed.model_dump()})
            raise
        return AgentAnswer(
            agent=agent,
            slot=slot,
            text=text,
            value=parsed.value,
            key=parsed.normalized,
            ok=parsed.ok,
            error=parsed.error if parsed.ok or text.strip() else _no_answer(choice, request),
        )

    def _served(self, key: CallKey, request: ModelRequest) -> RecordedCall | None:
        found = self.recorded.pop(key, None)
        if found is None:
            return None
        if found.request_hash and found.request_hash != request.request_hash():
            node, agent, round_, slot = key
            if self.mode == "fork":  # a what-if: the changed call is made live
                return None
            if self.mode == "strict":
                diff = prompt_diff(found.event.request, request)
                why = (
                    "its prompt quoted a secret, which the store never keeps, so a replay stops here"
                    if quoted_a_secret(found.event.request, request)
                    else "the prompt differs from the recorded one (the graph, its cards or its inputs changed since "
                    "the run)"
                )
                raise ReplayDivergence(
                    f"first divergence: {_call_place(key, self.spec)}: {why}\n{diff}",
                    key=key,
                    diff=diff,
                    node=node,
                    agent=agent,
                    round=round_,
                    call_index=slot,
                )
            raise RunError(
                f"recorded call differs from the one the graph now makes: node {node!r}, agent {agent!r}, "
                f"round {round_}, call {slot} (prompt or sampling changed since the run was recorded)",
                node=node,
                agent=agent,
                round=round_,
                call_index=slot,
            )
        self.served_from_record += 1
        return found

    # --- progress ---------------------------------------------------------------------------------------------

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        """Tell every listener. One that raises ends the run with an error naming it and the event: its bare
        exception (``KeyError: 'oops'``) read as the run's own failure, and one raised on ``start`` left the run
        stored as running."""
        for listener in self.listeners:
            try:
                listener(kind, data)
            except Exception as exc:
                name = getattr(listener, "__qualname__", None) or type(listener).__name__
                after = (
                    "the run had ended and is stored as it ended"
                    if kind == "stop"
                    else "a listener's error ends the run; catch it inside the listener to let the run go on"
                )
                raise RunError(
                    f"run {self.run_id}: listener {name} raised {type(exc).__name__}: {exc} on the {kind!r} event "
                    f"({after})",
                    run=self.run_id,
                    event=kind,
                ) from exc

    async def node_networks(self, node: str) -> list[dict[str, Any]]:
        """The ``network`` entries a node recorded in its ``node_result`` events so far (a team's rounds)."""
        if self._node_results is not None:
            found = self._node_results.get(node, [])
        elif self.store is not None:
            events = await asyncio.to_thread(self.store.events, self.run_id, kind="node_result")
            found = [e.data for e in events if e.node == node and isinstance(e.data, dict)]
        else:
            return []
        return [dict(data["network"]) for data in found if isinstance(data.get("network"), dict)]

    async def record_node(self, node: str, round: int | None, data: dict[str, Any]) -> None:
        """A node's result as an event (the timeline ``agentmesh show`` prints), queued in order with the run's
        other writes; raises if one of the run's earlier writes could not be stored."""
        if self.listeners:
            self.emit("node", {"node": node, "round": round, **data})
        stored = data
        if self._recorder is not None:
            stored = self._recorder.post("node_result", node=node, round=round, data=data)["data"]
        if self._node_results is not None:
            self._node_results.setdefault(node, []).append(stored)

    def check_writes(self) -> None:
        """Raise if one of the run's events already committed-or-failed could not be stored."""
        if self._recorder is not None:
            self._recorder.check()


def _no_answer(choice: Choice | None, request: ModelRequest) -> str:
    """Why an empty reply has no answer, in the words that say what to change: a reasoning model that spent its
    ``max_tokens`` thinking is the common case (its thinking is kept apart from the answer, and was all there was)."""
    if choice is None:
        return "the model returned no reply"
    if choice.reasoning is None:
        cut = " (it stopped at max_tokens)" if choice.finish_reason == "length" else ""
        return f"the model's reply was empty{cut}"
    if choice.finish_reason == "length":
        limit = request.sampling.max_tokens
        return (
            f"the model stopped at max_tokens ({limit if limit is not None else 'the server default'}) while still "
            "thinking and gave no answer: give the agent a larger sampling.max_tokens (its reasoning is stored with "
            "the call)"
        )
    return "the model reasoned but gave no answer after its reasoning (its reasoning is stored with the call)"


def _both(recorder: StoreRecorder | None, span: Callable[[CallRecord], None]) -> CallObserver:
    """One observer recording a call in the store (when there is one) and as a span."""

    def observe(record: CallRecord) -> None:
        if recorder is not None:
            recorder(record)
        span(record)

    return observe


def _call_place(key: CallKey, spec: GraphSpec) -> str:
    """Where the call at ``key`` is, as show, diff and replay say it (node 'judge', iteration 3, not its record key
    'judge#2'). Only a divergence's message needs it: the timeline module it lives in imports the store, which this
    module leaves to the error path."""
    from agentmesh.timeline import call_place, loop_bodies

    return call_place(key, loop_bodies(spec))


def _unfinished_nodes_hint(spec: GraphSpec, card: AgentCard, variables: Mapping[str, Any], node: str) -> str:
    """Why ``nodes.<x>`` is undefined, when that is what failed: Jinja only says "'dict object' has no attribute
    'x'". The spec check refuses an unguarded read of a node that may not have run before ``node``, whichever route
    the branches take, so what is left is a spec stored before that check, or a template the check does not see:
    said with the check's own reason and fix (:meth:`spec.run_order.RunsBefore.why_not`: a branch's route that ``x``
    needs and this run may not have taken, an edge to add...) and the guard. Empty when every node the card reads
    has an output."""
    done = variables.get("nodes") or {}
    missing: list[str] = []
    for source in (card.system, card.prompt):
        if source is not None:
            missing += [n for n, _ in node_references(source) if n not in done and n not in missing]
    if not missing:
        return ""
    names = ", ".join(f"nodes.{n}" for n in missing)
    first = missing[0]
    guard = f"guard the read with {{% if nodes.{first} is defined %}}"
    before = RunsBefore(spec)
    if first not in spec.nodes:
        why = f"there is no node {first!r}; {guard}"
    elif node in spec.nodes and not before.ran(first, node):
        why = before.why_not(first, node, guard)
    else:  # (an operator's own variables: the graph runs the node first on every route)
        why = f"node {first!r} runs before {node!r} on every route, but the nodes given to this prompt lack it; {guard}"
    return f" ({names} has no output when node {node!r} runs: a prompt reads the nodes that ran before its node; {why})"
