"""Operator parameters as data: what each node of a graph spec may say, checked before any model call.

A node is ``{op: <name>, <parameters>}``. This module holds the parameter model of every built-in operator and a
registry that user operators join (the runtime's ``@operator`` decorator registers the parameters here and the
implementation there), so that a spec is validated — and its JSON Schema exported — without importing the
runtime. (The research systems' operators register on first use: a lookup that misses, or a listing, imports them
through :mod:`agentmesh._builtins`, by name.)

Each parameter model also says which agents and nodes it refers to (for "unknown agent/node" errors and the
graph drawing) and which template variables it gives its agents' prompts (for "undefined variable" errors).
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from agentmesh._builtins import is_shipped, load_builtins
from agentmesh.spec.stop import StopPolicy

#: Variables every agent template may use, whatever its node: the graph's inputs are added to these.
COMMON_VARIABLES = frozenset({"agent", "role", "nodes", "inputs"})

#: Output keys of every node, whatever its operator: ``stopped`` says why a budget ended the node early.
COMMON_OUTPUTS = frozenset({"stopped"})
_ANSWERS = frozenset({"answers"})
_VOTED = frozenset({"answer", "value", "text", "votes"})


class OperatorParams(BaseModel):
    """Base of every operator's parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    #: Template variables the operator provides to its agents' prompts (beyond inputs and COMMON_VARIABLES).
    provides: ClassVar[frozenset[str]] = frozenset()
    #: Whether the operator may route back to an earlier node (a loop); plain edges must form a DAG.
    may_cycle: ClassVar[bool] = False
    #: Whether the node runs again (one LangGraph step each time) until its output says ``done`` (rounds, layers).
    repeats: ClassVar[bool] = False
    #: Keys the operator's output may have (besides COMMON_OUTPUTS), so that a template reading
    #: ``nodes.<node>.<key>`` is checked when the spec loads; ``None`` when they are not known before the run
    #: (a function's output, a user operator that does not say).
    outputs: ClassVar[frozenset[str] | None] = None

    def agents_used(self) -> list[tuple[str, str]]:
        """``(field path, agent name)`` pairs this node calls."""
        return []

    def provides_for(self, field_path: str) -> frozenset[str]:
        """Template variables the agent at ``field_path`` (as :meth:`agents_used` names it) gets."""
        return self.provides

    def team_fields(self) -> dict[str, list[str]]:
        """The node's teams by field (agents by slot): what a team-optimisation job may shrink. Slots are
        numbered through the fields in order, as the node's recorded network numbers them."""
        return {}

    def nodes_read(self) -> list[tuple[str, str]]:
        """``(field path, node name)`` pairs whose outputs this node reads or routes to."""
        return []

    def functions_used(self) -> list[tuple[str, str]]:
        """``(field path, function name)`` pairs of registered Python functions this node calls. Functions are
        registered by the runtime and the user's modules, so the runtime checks these names before a run starts
        (the spec alone cannot know them)."""
        return []


def _one_of(agent_field: str, agent: str | None, function: str | None, what: str) -> None:
    """Refuse a node that names both or neither of an agent (``agent_field``) and a registered ``function``: the
    operator needs exactly one, and without this check a node with neither failed only when it ran, after the
    model calls of every node before it (and one with both silently ignored its agent)."""
    if agent is None and function is None:
        raise ValueError(
            f"needs '{agent_field}' (an agent that {what}) or 'function' (a registered function); it has neither"
        )
    if agent is not None and function is not None:
        raise ValueError(f"has both '{agent_field}' ({agent!r}) and 'function' ({function!r}); give one of them")


def _agents(field: str, names: list[str]) -> list[tuple[str, str]]:
    return [(f"{field}[{i}]", name) for i, name in enumerate(names)]


class CallParams(OperatorParams):
    """Call one agent once: one answer (a card asking for several samples per call is refused when it loads)."""

    agent: str
    outputs: ClassVar[frozenset[str] | None] = _ANSWERS | _VOTED

    def agents_used(self) -> list[tuple[str, str]]:
        return [("agent", self.agent)]


class TeamParams(OperatorParams):
    """Call a team in parallel on the same inputs; an agent may appear several times (independent samples)."""

    agents: list[str] = Field(min_length=1)
    provides: ClassVar[frozenset[str]] = frozenset({"index"})
    outputs: ClassVar[frozenset[str] | None] = _ANSWERS

    def agents_used(self) -> list[tuple[str, str]]:
        return _agents("agents", self.agents)


class RankStep(BaseModel):
    """Inside ``rounds``: before round ``before_round``, rank the active agents' answers and keep ``keep``.

    It runs only when more than ``keep`` agents are active (DyLAN ranks 7 or 4 agents, never 3), once.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    before_round: int = Field(ge=2)
    keep: int = Field(ge=1)
    ranker: str | None = Field(default=None, description="Agent that ranks (an LLM ranker).")
    function: str | None = Field(default=None, description="Registered ranking function instead of an agent.")
    min_active: int | None = Field(
        default=None,
        ge=2,
        description="Rank only when at least this many agents are active (default keep + 1; DyLAN's MMLU code "
        "ranks only teams of more than 3).",
    )
    shuffle: bool = Field(default=True, description="Show the ranker the answers in a seeded random order.")
    stop_if_agree: bool = Field(
        default=False,
        description="Check the node's stop policy on the kept answers alone and stop before the next round if it "
        "holds (DyLAN's MATH script: the two selected answers agree).",
    )

    @model_validator(mode="after")
    def _ranker_or_function(self) -> RankStep:
        _one_of("ranker", self.ranker, self.function, "ranks")
        return self


class RatingsRequest(BaseModel):
    """From round 2, each reply also rates the previous answers it was shown, as ``[[r1, r2, ...]]`` (DyLAN)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    non_integer: Literal["zero", "invalidate"] = Field(
        default="zero",
        description="A non-integer item counts 0 (DyLAN's MMLU class) or voids the list (its HumanEval class).",
    )


class RoundsParams(OperatorParams):
    """Layers of a team: each round's agents see the previous round's answers (debate, DyLAN, MoA)."""

    agents: list[str] = Field(min_length=1)
    rounds: int = Field(ge=1)
    shuffle: bool = Field(default=True, description="Shuffle previous answers (seeded) before showing them.")
    anonymize: bool = Field(default=True, description="Hide which agent gave which previous answer.")
    include_self: bool = Field(default=True, description="Show an agent its own previous answer among the others.")
    activation: Literal["parallel", "sequential"] = Field(
        default="parallel",
        description="parallel: a round's agents at once (lower latency); sequential: one at a time, the stop "
        "policy checked after each answer (fewer calls when agreement comes early: DyLAN's call counts).",
    )
    activation_order: Literal["random", "fixed"] = Field(
        default="random", description="Sequential activation in a seeded random order, or in slot order."
    )
    rank: RankStep | None = None
    ratings: RatingsRequest | None = Field(
        default=None, description="Parse each reply's ratings of the previous answers it was shown (DyLAN)."
    )
    reference_compat: bool = Field(
        default=False,
        description="DyLAN's released code: after a rank step every previous answer stays visible and the next "
        "round's agents are picked by position in a shuffled order, and answers nobody could parse agree with each "
        "other in the stop policy (None == None). Default: the paper's semantics, where only the kept agents go on "
        "and only their answers flow, and an unparsable answer agrees with nothing.",
    )
    stop: StopPolicy | None = Field(default=None, description="Checked after every round (e.g. consensus).")
    seed: int = 0
    provides: ClassVar[frozenset[str]] = frozenset({"round", "previous", "own_previous", "index"})
    repeats: ClassVar[bool] = True
    outputs: ClassVar[frozenset[str] | None] = frozenset(
        {"round", "max_rounds", "agents", "answers", "active", "network", "done", "stop", "stop_held", "history"}
    )

    @field_validator("rank")
    @classmethod
    def _rank_can_run(cls, rank: RankStep | None, info: ValidationInfo) -> RankStep | None:
        # a rank step after the last round never ran, and nothing said so: every agent went on to the end
        rounds = info.data.get("rounds")
        if rank is not None and isinstance(rounds, int) and rank.before_round > rounds:
            raise ValueError(
                f"before_round is {rank.before_round} and the node has {rounds} round{'s' * (rounds != 1)}, so "
                f"the rank step would never run; rank before a round up to {rounds}, or give the node more rounds"
            )
        return rank

    def agents_used(self) -> list[tuple[str, str]]:
        used = _agents("agents", self.agents)
        if self.rank is not None and self.rank.ranker is not None:
            used.append(("rank.ranker", self.rank.ranker))
        return used

    def team_fields(self) -> dict[str, list[str]]:
        return {"agents": list(self.agents)}

    def provides_for(self, field_path: str) -> frozenset[str]:
        # the ranker of a rank step is prompted like a ``rank`` node's ranker, not like a team member
        return RankParams.provides if field_path == "rank.ranker" else self.provides

    def functions_used(self) -> list[tuple[str, str]]:
        return [("rank.function", self.rank.function)] if self.rank is not None and self.rank.function else []


class _FromNode(OperatorParams):
    source: str = Field(alias="from", description="The node whose answers this one works on.")

    def nodes_read(self) -> list[tuple[str, str]]:
        return [("from", self.source)]


class RankParams(_FromNode):
    """Rank a node's answers and keep the top ``keep`` (an LLM ranker agent or a registered function)."""

    keep: int = Field(ge=1)
    ranker: str | None = None
    function: str | None = None
    provides: ClassVar[frozenset[str]] = frozenset({"candidates", "keep"})
    outputs: ClassVar[frozenset[str] | None] = frozenset({"answers", "kept"})

    @model_validator(mode="after")
    def _ranker_or_function(self) -> RankParams:
        _one_of("ranker", self.ranker, self.function, "ranks")
        return self

    def agents_used(self) -> list[tuple[str, str]]:
        return [("ranker", self.ranker)] if self.ranker else []

    def functions_used(self) -> list[tuple[str, str]]:
        return [("function", self.function)] if self.function else []


class VoteParams(_FromNode):
    """Majority (or score-weighted) vote over a node's normalised answers."""

    weights: str | None = Field(
        default=None,
        description="A score node whose scores weight the votes (a plain majority when no answer has a score above 0).",
    )
    outputs: ClassVar[frozenset[str] | None] = _ANSWERS | _VOTED

    def nodes_read(self) -> list[tuple[str, str]]:
        return [*super().nodes_read(), *([("weights", self.weights)] if self.weights else [])]


class ScoreParams(_FromNode):
    """Score each answer of a node with a judge agent or a registered reward function."""

    judge: str | None = None
    function: str | None = None
    provides: ClassVar[frozenset[str]] = frozenset({"candidate", "answer"})
    outputs: ClassVar[frozenset[str] | None] = frozenset({"answers", "scores", "judgements"})

    @model_validator(mode="after")
    def _judge_or_function(self) -> ScoreParams:
        _one_of("judge", self.judge, self.function, "scores")
        return self

    def agents_used(self) -> list[tuple[str, str]]:
        return [("judge", self.judge)] if self.judge else []

    def functions_used(self) -> list[tuple[str, str]]:
        return [("function", self.function)] if self.function else []


class BranchParams(OperatorParams):
    """Route to ``then`` or ``else`` on a Jinja2 condition over inputs and node outputs."""

    condition: str
    then: str
    otherwise: str | None = Field(default=None, alias="else")
    outputs: ClassVar[frozenset[str] | None] = frozenset({"taken", "condition"})

    def condition_template(self) -> str:
        """The condition as the template that is rendered: an expression (``nodes.vote.answer == 'A'``) is
        wrapped in ``{{ }}``, a template (``{% if ... %}true{% endif %}``) is taken as it is."""
        return self.condition if "{{" in self.condition or "{%" in self.condition else "{{ " + self.condition + " }}"

    def nodes_read(self) -> list[tuple[str, str]]:
        return [("then", self.then), *([("else", self.otherwise)] if self.otherwise else [])]


class LoopParams(OperatorParams):
    """Run ``body`` (a chain of nodes) again until ``until`` holds or ``max_iterations`` is reached."""

    body: list[str] = Field(min_length=1)
    until: StopPolicy
    max_iterations: int = Field(default=10, ge=1)
    may_cycle: ClassVar[bool] = True
    #: its own count, and the last body node's answers, answer, value, text and scores when it has them
    outputs: ClassVar[frozenset[str] | None] = frozenset(
        {"iteration", "round", "done", "stop", "answers", "answer", "value", "text", "scores"}
    )

    def nodes_read(self) -> list[tuple[str, str]]:
        return [(f"body[{i}]", name) for i, name in enumerate(self.body)]


class CodeTestsParams(_FromNode):
    """Run a node's code answers against unit tests in a sandboxed subprocess (time/memory limits, no network)."""

    tests: str = Field(description="Jinja2 template giving the test code (e.g. '{{ test }}' from the inputs).")
    entry_point: str | None = None
    timeout_s: float = Field(default=10.0, gt=0)
    memory_mb: int = Field(default=512, ge=16)
    outputs: ClassVar[frozenset[str] | None] = frozenset({"answers", "scores", "results", "answer", "value", "text"})


class FunctionParams(OperatorParams):
    """Call a registered Python function on the state (method maths: importance scores, difficulty tests...)."""

    function: str
    args: dict[str, Any] = Field(default_factory=dict)

    def functions_used(self) -> list[tuple[str, str]]:
        return [("function", self.function)]


_registry: dict[str, type[OperatorParams]] = {
    "call": CallParams,
    "team": TeamParams,
    "rounds": RoundsParams,
    "rank": RankParams,
    "vote": VoteParams,
    "score": ScoreParams,
    "branch": BranchParams,
    "loop": LoopParams,
    "code_tests": CodeTestsParams,
    "function": FunctionParams,
}
_lock = threading.Lock()


def register_operator_params(name: str, params: type[OperatorParams]) -> None:
    """Make ``op: <name>`` valid in specs, with ``params`` as its parameters."""
    if not is_shipped(params):
        load_builtins()  # a shipped operator's parameters, loaded later, would replace the user's
    with _lock:
        _registry[name] = params


def operator_params(name: str) -> type[OperatorParams] | None:
    """The parameters of ``op: <name>``, ``None`` for no such operator; the research systems' operators (``alu``,
    ``magicore``...) are loaded on the first miss (see :mod:`agentmesh._builtins`)."""
    with _lock:
        found = _registry.get(name)
    if found is None:
        load_builtins()
        with _lock:
            found = _registry.get(name)
    return found


def unknown_operator(op: object) -> str:
    """The message for an ``op`` no operator is registered under: the known ones, and where one's own comes from
    (a decorator, and on the command line ``--import`` of its module)."""
    return (
        f"unknown operator {op!r}; expected one of {', '.join(operator_names())} (an operator of yours: decorate it "
        "with @agentmesh.operator and load its module with agentmesh --import)"
    )


def operator_names() -> list[str]:
    load_builtins()  # the list names the research systems' operators too
    with _lock:
        return sorted(_registry)
