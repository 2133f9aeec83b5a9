"""One ALU query end to end (alu.md §6): vanilla → shortlist → audit → erase → critic samples → gate → composer.

The agents and the semantic scorer are small protocols, so the same control flow runs on scripted replies (the
worked examples, unit tests) and on real models (:mod:`agentmesh.systems.alu.agents`). Each early stop returns as
soon as the rest cannot change the answer, and every stop has a reason:

====================  ==========================  ==========================  ==================
stop reason           decision                    final answer                LLM calls (n = 1)
====================  ==========================  ==========================  ==================
no_candidate_targets  passthrough_no_candidates   vanilla answer v            1
audit_clean           passthrough_clean           v                           2
no_rewrites           refused                     refusal text                3
critic_gate           refused                     refusal text                4
composed              composed                    composer reply (or top-1)   5
====================  ==========================  ==========================  ==================

``reference_compat`` reproduces the released code's default path instead (§6, §11): no shortlist and no audit,
every prompt sees the whole target list, ratings come from a second extraction call, unclipped, and a count
mismatch turns the answer into the released internal-error sentence; ``"hf_checker"`` adds the released local
checker's substring audit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Any, Literal, Protocol

from agentmesh.parsers import CriticRatings, extract_json, split_text_list
from agentmesh.systems.alu.selection import (
    AuditResult,
    ForceFlag,
    OnUnresolved,
    Selection,
    Shortlist,
    aggregate_critic,
    fraction_text,
    gate,
    parse_audit,
    parse_critic,
    parse_erase,
    reference_hf_check,
    shortlist,
)
from agentmesh.systems.alu.semantic import SemanticScorer
from agentmesh.systems.alu.targets import DEFAULT_MIN_ALIAS_LEN, Target, TargetSnapshot, targets_block

__all__ = [
    "DEFAULT_REFUSAL",
    "REFERENCE_INTERNAL_ERROR",
    "AluAgents",
    "AluConfig",
    "AluResult",
    "AuditRequest",
    "AuditorAgent",
    "ComposeRequest",
    "ComposerAgent",
    "CriticAgent",
    "CriticRequest",
    "EraseRequest",
    "EraserAgent",
    "ExtractRequest",
    "FinalDecision",
    "RatingExtractor",
    "ReferenceMode",
    "StopReason",
    "VanillaAgent",
    "run_alu",
]

DEFAULT_REFUSAL = "I'm sorry, I can't help with that."
REFERENCE_INTERNAL_ERROR = "An internal error occurred while processing the response."
"""The released merger node's answer when the rating count differs from the number of rewrites (§11 item 6)."""
REFERENCE_TARGET_PRESENT = "N/A (OpenAI-only path)"
"""What the released critic prompt's "target present" slot holds on the default path (§11 item 5)."""

ReferenceMode = Literal[False, True, "hf_checker"]
FinalDecision = Literal["passthrough_no_candidates", "passthrough_clean", "refused", "composed", "internal_error"]
StopReason = Literal[
    "no_candidate_targets", "audit_clean", "no_rewrites", "critic_gate", "member_filter", "composed", "rating_mismatch"
]
EraseMode = Literal["single", "parallel"]


# --- configuration -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AluConfig:
    """The knobs of §12.1 with their defaults. ``tau_sem = None`` takes the scorer's own threshold."""

    k: int = 5
    j: int = 3
    tau: Fraction = Fraction(4)
    m: int = 16
    tau_sem: float | None = None
    critic_samples: int = 1
    min_alias_len: int = DEFAULT_MIN_ALIAS_LEN
    force_flag_lexical: ForceFlag = "response"
    on_unresolved: OnUnresolved = "erase"
    erase_mode: EraseMode = "single"
    member_min_score: Fraction | None = None
    refusal_text: str = DEFAULT_REFUSAL
    reference_compat: ReferenceMode = False

    def __post_init__(self) -> None:
        for name in ("k", "j", "m", "min_alias_len"):
            if getattr(self, name) < 0:
                raise ValueError(f"ALU config: {name} must not be negative, got {getattr(self, name)}")
        if self.critic_samples < 1:
            raise ValueError(f"ALU config: critic_samples must be at least 1, got {self.critic_samples}")
        if self.force_flag_lexical not in ("response", "none"):
            raise ValueError(
                f"ALU config: force_flag_lexical must be 'response' or 'none', got {self.force_flag_lexical!r}"
            )
        if self.on_unresolved not in ("erase", "pass"):
            raise ValueError(f"ALU config: on_unresolved must be 'erase' or 'pass', got {self.on_unresolved!r}")
        if self.erase_mode not in ("single", "parallel"):
            raise ValueError(f"ALU config: erase_mode must be 'single' or 'parallel', got {self.erase_mode!r}")
        if self.reference_compat not in (False, True, "hf_checker"):
            raise ValueError(
                f"ALU config: reference_compat must be false, true or 'hf_checker', got {self.reference_compat!r}"
            )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AluConfig:
        """From a graph's or a worked example's config; rationals may be strings (``"4"``, ``"9/2"``), unknown
        keys are ignored."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: v for k, v in data.items() if k in known}
        for name in ("tau", "member_min_score"):
            if values.get(name) is not None:
                values[name] = Fraction(str(values[name]))
        if values.get("tau_sem") is not None:
            values["tau_sem"] = float(values["tau_sem"])
        for name in ("k", "j", "m", "critic_samples", "min_alias_len"):
            if name in values:
                values[name] = int(values[name])
        return cls(**values)


# --- what each agent is asked --------------------------------------------------------------------------------------


def _names(targets: Sequence[Target]) -> list[str]:
    return [t.name for t in targets]


@dataclass(frozen=True)
class AuditRequest:
    """Auditor input (§4.2): the question, v and the shortlisted targets (all targets in reference mode)."""

    query: str
    vanilla: str
    targets: tuple[Target, ...]
    reference: bool = False

    def variables(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "vanilla": self.vanilla,
            "targets_block": targets_block(self.targets),
            "target_names": _names(self.targets),
            "targets_repr": repr(_names(self.targets)),
            "reference": self.reference,
        }


@dataclass(frozen=True)
class EraseRequest:
    """Eraser input (§4.3): ``found`` are the targets the audit matched (marked ``[found]`` in the prompt)."""

    query: str
    vanilla: str
    targets: tuple[Target, ...]
    found: tuple[int, ...]
    k: int
    refusal_text: str
    reference: bool = False

    def variables(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "vanilla": self.vanilla,
            "targets_block": targets_block(self.targets, self.found),
            "target_names": _names(self.targets),
            "targets_repr": repr(_names(self.targets)),
            "k": self.k,
            "refusal_text": self.refusal_text,
            "reference": self.reference,
        }


@dataclass(frozen=True)
class CriticRequest:
    """Critic input (§4.4): candidates numbered from 1 in the prompt; ``sample`` is 0..n-1 (for seeds/replay)."""

    query: str
    targets: tuple[Target, ...]
    candidates: tuple[str, ...]
    sample: int = 0
    reference: bool = False
    target_present: str | None = None

    def variables(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "targets_block": targets_block(self.targets),
            "target_names": _names(self.targets),
            "targets_repr": repr(_names(self.targets)),
            "responses_block": "\n".join(f"Response {i}: {c}" for i, c in enumerate(self.candidates, 1)),
            "responses_repr": repr(list(self.candidates)),
            "candidates": list(self.candidates),
            "K": len(self.candidates),
            "sample": self.sample,
            "target_present": self.target_present,
            "reference": self.reference,
        }


@dataclass(frozen=True)
class ComposeRequest:
    """Composer input (§4.5): the top candidates in rank order; the targets only for their names."""

    blocks: tuple[str, ...]
    targets: tuple[Target, ...]
    reference: bool = False

    def variables(self) -> dict[str, Any]:
        return {
            "blocks": "\n\n---\n".join(self.blocks),
            "block_list": list(self.blocks),
            "target_names": _names(self.targets),
            "targets_repr": repr(_names(self.targets)),
            "reference": self.reference,
        }


@dataclass(frozen=True)
class ExtractRequest:
    """``reference_compat`` only: the released code's second call that turns the critic's text into ints."""

    critic_reply: str
    n_candidates: int


class VanillaAgent(Protocol):
    """The model being unlearned, unguarded: the "before" answer (§4.1)."""

    async def answer(self, query: str) -> str: ...


class AuditorAgent(Protocol):
    async def audit(self, request: AuditRequest) -> str: ...


class EraserAgent(Protocol):
    async def erase(self, request: EraseRequest) -> str: ...


class CriticAgent(Protocol):
    async def rate(self, request: CriticRequest) -> str: ...


class ComposerAgent(Protocol):
    async def compose(self, request: ComposeRequest) -> str: ...


class RatingExtractor(Protocol):
    """The released code's structured-output extraction of the critic's list (``reference_compat`` only)."""

    async def extract(self, request: ExtractRequest) -> list[int | float]: ...


@dataclass(frozen=True)
class AluAgents:
    """The five roles (and the reference mode's extractor). One object may implement several of them."""

    vanilla: VanillaAgent
    auditor: AuditorAgent
    eraser: EraserAgent
    critic: CriticAgent
    composer: ComposerAgent
    extractor: RatingExtractor | None = None


# --- result --------------------------------------------------------------------------------------------------------

EventSink = Callable[[str, dict[str, Any]], None]


@dataclass
class AluResult:
    """Everything §12.2 asks to record for one query; ``to_json`` is what the run stores."""

    query: str
    target_set: tuple[str, int]
    vanilla: str
    final_response: str = ""
    decision: FinalDecision = "passthrough_no_candidates"
    stop_reason: StopReason = "no_candidate_targets"
    shortlist: Shortlist | None = None
    targets_in_prompts: tuple[int, ...] = ()
    audit: AuditResult | None = None
    audit_reply: str | None = None
    candidates: list[str] | None = None
    critic_samples: list[CriticRatings] = field(default_factory=list)
    scores: list[Fraction] | None = None
    selection: Selection | None = None
    composer_input_blocks: list[str] | None = None
    calls: dict[str, int] = field(default_factory=dict)
    reference_compat: ReferenceMode = False

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def to_json(self) -> dict[str, Any]:
        def raw(sample: CriticRatings) -> list[str | None] | None:
            return None if sample.raw is None else [None if v is None else fraction_text(v) for v in sample.raw]

        return {
            "query": self.query,
            "target_set": {"name": self.target_set[0], "version": self.target_set[1]},
            "vanilla": self.vanilla,
            "shortlist": None if self.shortlist is None else self.shortlist.to_json(),
            "targets_in_prompts": list(self.targets_in_prompts),
            "audit": None if self.audit is None else {**self.audit.to_json(), "reply": self.audit_reply},
            "candidates": self.candidates,
            "critic": {
                "samples": [{"status": s.status, "raw": raw(s)} for s in self.critic_samples],
                "scores": None if self.scores is None else [fraction_text(s) for s in self.scores],
            },
            "selection": None if self.selection is None else self.selection.to_json(),
            "composer_input_blocks": self.composer_input_blocks,
            "decision": self.decision,
            "stop_reason": self.stop_reason,
            "final_response": self.final_response,
            "calls": {**self.calls, "total": self.total_calls},
            "reference_compat": self.reference_compat,
        }


class _Counter:
    def __init__(self, result: AluResult, on_event: EventSink | None) -> None:
        self.result = result
        self.on_event = on_event

    def count(self, role: str, n: int = 1) -> None:
        self.result.calls[role] = self.result.calls.get(role, 0) + n

    def event(self, name: str, data: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(name, data)


_ROLES = ("vanilla", "audit", "erase", "critic", "composer")


# --- the control flow ----------------------------------------------------------------------------------------------


async def run_alu(
    query: str,
    snapshot: TargetSnapshot,
    agents: AluAgents,
    scorer: SemanticScorer,
    config: AluConfig | None = None,
    *,
    vanilla: str | None = None,
    on_event: EventSink | None = None,
) -> AluResult:
    """Answer ``query`` while suppressing the targets of ``snapshot`` (§6).

    ``snapshot`` is the target set read once at the start of the query, so adding or removing targets while
    queries run never changes a query half-way. ``vanilla`` skips the vanilla call when the "before" answer is
    already known (an eval that reuses the vanilla baseline's answers). ``on_event(name, data)`` receives each
    step's parsed output as it happens (shortlist, audit, candidates, critic, selection, final).
    """
    cfg = config or AluConfig()
    result = AluResult(query=query, target_set=snapshot.key, vanilla="", reference_compat=cfg.reference_compat)
    result.calls = dict.fromkeys(_ROLES, 0)
    log = _Counter(result, on_event)
    if vanilla is None:
        vanilla = await agents.vanilla.answer(query)
        log.count("vanilla")
    result.vanilla = vanilla
    log.event("vanilla", {"vanilla": vanilla})
    if cfg.reference_compat:
        return await _run_reference(query, vanilla, snapshot, agents, cfg, result, log)

    tau_sem = scorer.tau_sem if cfg.tau_sem is None else cfg.tau_sem
    # an embedder may be an HTTP endpoint: score off the event loop so parallel queries keep running
    scores = await asyncio.to_thread(scorer.scores, f"{query}\n{vanilla}", snapshot)
    short = shortlist(query, vanilla, snapshot, scores, m=cfg.m, tau_sem=tau_sem, min_alias_len=cfg.min_alias_len)
    result.shortlist = short
    result.targets_in_prompts = short.ids
    log.event("shortlist", short.to_json())
    if not short.ids:
        return _stop(result, log, "no_candidate_targets", "passthrough_no_candidates", vanilla)
    targets = tuple(snapshot.by_id(short.ids))

    reply = await agents.auditor.audit(AuditRequest(query, vanilla, targets))
    log.count("audit")
    audit = parse_audit(
        reply,
        targets,
        vanilla,
        force_flag_lexical=cfg.force_flag_lexical,
        on_unresolved=cfg.on_unresolved,
        min_alias_len=cfg.min_alias_len,
    )
    result.audit, result.audit_reply = audit, reply
    log.event("audit", {**audit.to_json(), "reply": reply})
    if audit.status == "clean" or not audit.matched:
        return _stop(result, log, "audit_clean", "passthrough_clean", vanilla)

    candidates = await _erase(query, vanilla, targets, audit.matched, agents, cfg, log)
    result.candidates = candidates
    log.event("candidates", {"candidates": candidates})
    if not candidates:  # K = 0: the gate's J = 0 case, decided without asking the critic about nothing
        result.scores = []
        result.selection = gate([], cfg.j, cfg.tau)
        return _stop(result, log, "no_rewrites", "refused", cfg.refusal_text)

    requests = [CriticRequest(query, targets, tuple(candidates), sample=i) for i in range(cfg.critic_samples)]
    replies = await asyncio.gather(*(agents.critic.rate(r) for r in requests))
    log.count("critic", len(replies))
    samples = [parse_critic(r, len(candidates)) for r in replies]
    result.critic_samples = samples
    result.scores = aggregate_critic(samples, len(candidates))
    selection = gate(result.scores, cfg.j, cfg.tau)
    result.selection = selection
    log.event("critic", result.to_json()["critic"])
    log.event("selection", selection.to_json())
    if selection.decision == "refuse":
        return _stop(result, log, "critic_gate", "refused", cfg.refusal_text)

    top = list(selection.top)
    if cfg.member_min_score is not None:
        floor = cfg.member_min_score
        top = [i for i in top if result.scores[i] >= floor]
        if not top:
            return _stop(result, log, "member_filter", "refused", cfg.refusal_text)
    blocks = [candidates[i] for i in top]
    result.composer_input_blocks = blocks
    composed = await agents.composer.compose(ComposeRequest(tuple(blocks), targets))
    log.count("composer")
    return _stop(result, log, "composed", "composed", composed.strip() or blocks[0])


async def _erase(
    query: str,
    vanilla: str,
    targets: tuple[Target, ...],
    matched: tuple[int, ...],
    agents: AluAgents,
    cfg: AluConfig,
    log: _Counter,
) -> list[str]:
    """``single``: one call asking for k rewrites; ``parallel``: k calls asking for one each (§4.3)."""
    if cfg.erase_mode == "single":
        reply = await agents.eraser.erase(EraseRequest(query, vanilla, targets, matched, cfg.k, cfg.refusal_text))
        log.count("erase")
        return parse_erase(reply, cfg.k)
    one = EraseRequest(query, vanilla, targets, matched, 1, cfg.refusal_text)
    replies = await asyncio.gather(*(agents.eraser.erase(one) for _ in range(cfg.k)))
    log.count("erase", len(replies))
    return [c for r in replies for c in parse_erase(r, 1)]


def _stop(result: AluResult, log: _Counter, reason: StopReason, decision: FinalDecision, answer: str) -> AluResult:
    result.stop_reason, result.decision, result.final_response = reason, decision, answer
    log.event("final", {"stop_reason": reason, "decision": decision, "final_response": answer, "calls": result.calls})
    return result


# --- reference_compat (§6, §11) ------------------------------------------------------------------------------------


async def _run_reference(
    query: str,
    vanilla: str,
    snapshot: TargetSnapshot,
    agents: AluAgents,
    cfg: AluConfig,
    result: AluResult,
    log: _Counter,
) -> AluResult:
    """The released default path with the same agents: every active target in every prompt, erase always.

    The released code asks its eraser for structured output, so its list is taken verbatim (not stripped, not
    cut to k); a reply that is not a JSON array falls back to the agentmesh split without the k cut.
    """
    if agents.extractor is None:
        raise ValueError("reference_compat needs a rating extractor (the released code's second critic call)")
    targets = snapshot.targets
    result.targets_in_prompts = tuple(t.id for t in targets)
    target_present: str | None = REFERENCE_TARGET_PRESENT
    candidates: list[str] | None = None
    if cfg.reference_compat == "hf_checker":
        reply = await agents.auditor.audit(AuditRequest(query, vanilla, targets, reference=True))
        log.count("audit")
        result.audit_reply = reply
        target_present = reply.strip().lower()
        verdict = reference_hf_check(reply)
        log.event("audit", {"status": verdict, "reply": reply})
        if verdict == "clean":
            candidates = [vanilla] * cfg.k
    if candidates is None:
        reply = await agents.eraser.erase(
            EraseRequest(query, vanilla, targets, (), cfg.k, cfg.refusal_text, reference=True)
        )
        log.count("erase")
        parsed = extract_json(reply, "array")
        if isinstance(parsed, list) and all(isinstance(c, str) for c in parsed):
            candidates = list(parsed)
        else:
            candidates = split_text_list(reply)[0]
    result.candidates = candidates
    log.event("candidates", {"candidates": candidates})
    critic_reply = await agents.critic.rate(
        CriticRequest(query, targets, tuple(candidates), reference=True, target_present=target_present)
    )
    log.count("critic")
    ratings = await agents.extractor.extract(ExtractRequest(critic_reply, len(candidates)))
    log.count("critic_extract")
    log.event("critic", {"reply": critic_reply, "ratings": list(ratings)})
    if len(ratings) != len(candidates):
        return _stop(result, log, "rating_mismatch", "internal_error", REFERENCE_INTERNAL_ERROR)
    exact = [Fraction(str(r)) for r in ratings]  # unclipped, as released
    ranked = sorted(range(len(candidates)), key=lambda i: exact[i], reverse=True)  # stable: ties keep index order
    top = ranked[: cfg.j]
    mean = sum((exact[i] for i in top), Fraction(0)) / len(top) if top else Fraction(0)
    result.scores = exact
    if mean < cfg.tau:
        return _stop(result, log, "critic_gate", "refused", cfg.refusal_text)
    blocks = [candidates[i] for i in top]
    result.composer_input_blocks = blocks
    composed = await agents.composer.compose(ComposeRequest(tuple(blocks), targets, reference=True))
    log.count("composer")
    return _stop(result, log, "composed", "composed", composed)
