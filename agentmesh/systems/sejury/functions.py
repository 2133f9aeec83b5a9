"""SE-Jury reachable from YAML: ``op: function`` with ``sejury_check`` (first) and ``sejury_verdict`` (last).

The judges themselves are agent cards (``agents/sejury/``) run by generic ``team`` nodes; what only SE-Jury
defines is how their replies become one score (sejury.md §3: parse, map per judge, average, aggregate), so that
is all these functions do. They find each judge's reply by its agent's name among the graph's outputs, so a
graph with fewer judges (a calibrated team) needs no other change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, get_args

from agentmesh.errors import ConfigError
from agentmesh.parsers.scores import ScoreScale, apply_scale
from agentmesh.runtime.operators import register_function
from agentmesh.systems.sejury.selection import Aggregation, aggregate

TASKS = ("code", "patch", "summary")
"""The rubrics the judges' prompts know (sejury.md §2's table): code generation, program repair, summarisation."""

NO_SUMMARY = frozenset({"S5"})
"""S5 writes and reasons about tests: the release has no summarisation prompt for it (sejury.md §2)."""


@register_function("sejury_check")
def sejury_check(
    outputs: Mapping[str, Any], inputs: Mapping[str, Any], *, judges: Sequence[str] = ()
) -> dict[str, Any]:
    """Refuse inputs the judges cannot score, before any of them is called (a wrong ``task`` would otherwise
    be graded silently with the code rubric)."""
    task = inputs.get("task", "code")
    if task not in TASKS:
        raise ConfigError(
            f"sejury: input 'task' is {task!r}; expected one of {', '.join(TASKS)} (which rubric the judges apply)",
            input="task",
        )
    if task == "summary":
        unusable = sorted(NO_SUMMARY.intersection(judges))
        if unusable:
            raise ConfigError(
                f"sejury: judge(s) {unusable} do not score summaries (S5 writes tests); use a team without them, "
                "e.g. the summarization profile (optimize --profile summarization)",
                input="task",
            )
    missing = [name for name in ("query", "artifact", "reference") if not str(inputs.get(name) or "").strip()]
    if missing:
        raise ConfigError(f"sejury: input(s) {missing} are empty; every judge needs them", input=missing[0])
    return {"task": task, "judges": list(judges)}


@register_function("sejury_verdict")
def sejury_verdict(
    outputs: Mapping[str, Any],
    inputs: Mapping[str, Any],
    *,
    judges: Mapping[str, str],
    needs: Mapping[str, Sequence[str]] | None = None,
    scale: ScoreScale = "to_1_5_rounded",
    aggregation: Aggregation = "round",
) -> dict[str, Any]:
    """The jury's score (sejury.md §1 step 3): each judge's raw 0-100 score mapped by ``scale``, the team's mean,
    then ``aggregation`` (``round`` half to even, ``mean`` as is, ``binary`` = 1 above 0.5).

    ``judges`` maps each judge's name (S1_1 ... S5) to the agent whose parsed reply is its score. A reply without
    a score counts as the parser's fallback (0, as the release does) and is listed under ``unparsed``. ``needs``
    maps a two-step judge to the agents of its first step: unused here, it is how :func:`.jury.team_graph` keeps
    exactly the calls a team needs.
    """
    if scale not in get_args(ScoreScale):
        raise ConfigError(f"sejury_verdict: scale {scale!r}; expected one of {', '.join(get_args(ScoreScale))}")
    if aggregation not in get_args(Aggregation):
        raise ConfigError(
            f"sejury_verdict: aggregation {aggregation!r}; expected one of {', '.join(get_args(Aggregation))}"
        )
    if not isinstance(judges, Mapping) or not judges:
        raise ConfigError("sejury_verdict: 'judges' must map judge names to agents, e.g. {S1_1: s1_no_ref}")
    replies = _replies(outputs)
    raw: dict[str, float] = {}
    unparsed: list[str] = []
    missing: list[str] = []
    for judge, agent in judges.items():
        reply = replies.get(agent)
        if reply is None:
            missing.append(judge)
            continue
        value = reply.get("value")
        raw[judge] = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
        if not reply.get("ok", True) or not isinstance(value, int | float):
            unparsed.append(judge)
    if missing:
        known = ", ".join(sorted(replies)) or "none"
        raise ConfigError(
            f"sejury_verdict: no reply from the agent(s) of judge(s) {missing} ({[judges[j] for j in missing]}); "
            f"agents that answered: {known}"
        )
    scaled = {judge: apply_scale(value, scale) for judge, value in raw.items()}
    mean = sum(scaled.values()) / len(scaled)
    (final,) = aggregate([mean], aggregation)
    answer: float | int = int(final) if aggregation != "mean" else final
    listed = ", ".join(f"{j} {_num(v)}" for j, v in scaled.items())
    # "S1_1 1" read as the judge's verdict where its reply held no score at all: say which were read as 0
    no_score = f"; no score in the reply of {', '.join(unparsed)}: scored 0, as in the release" if unparsed else ""
    return {
        "answer": answer,
        "value": answer,
        "text": f"{_num(answer)} (mean {mean:.3g} of {listed}{no_score})",
        "raw": raw,
        "scaled": scaled,
        "mean": mean,
        "unparsed": unparsed,
    }


def _replies(outputs: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The latest reply of each agent among the nodes' answers."""
    found: dict[str, Mapping[str, Any]] = {}
    for out in outputs.values():
        if isinstance(out, Mapping):
            for answer in out.get("answers") or []:
                if isinstance(answer, Mapping) and answer.get("agent"):
                    found[str(answer["agent"])] = answer
    return found


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3g}"
