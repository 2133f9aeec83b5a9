"""Stop policies as data: when a run (or a loop, or a round structure) has its answer.

Composable: ``{any: [...]}`` stops when one holds, ``{all: [...]}`` when every one does. Leaves:

- ``consensus``: a fraction of the active agents agree on the normalised answer. DyLAN's rule is "strictly more
  than ⌊2/3·n⌋ agree", so the fraction is compared as ``agreeing > floor(fraction * n)`` when ``strict`` is
  true (the default), and ``agreeing >= ceil(fraction * n)`` otherwise;
- ``score_threshold``: a node's best (or mean) score reaches a value;
- ``max_rounds``: a round count is reached;
- ``budget``: model calls, tokens, cost or wall time, shared by every agent of the run.

Every run records which policy stopped it, as text built from these objects (``str(policy)``).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError


class _Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Consensus(_Policy):
    """Enough active agents give the same normalised answer."""

    kind: Literal["consensus"] = "consensus"

    fraction: float = Field(default=2 / 3, gt=0, le=1)
    strict: bool = True
    min_agents: int = Field(default=2, ge=1, description="No consensus is declared among fewer agents.")

    @model_validator(mode="after")
    def _can_hold(self) -> Consensus:
        # strict is "more than fraction x n agree": with a fraction of 1 that is more agents than there are, a stop
        # that never holds -- and a loop or a debate that always runs to its last round without a word
        if self.strict and self.fraction >= 1:
            raise ValueError(
                "strict consensus (more than fraction x n agents agree) with fraction 1 can never hold; "
                "for 'every active agent agrees' write {fraction: 1, strict: false}"
            )
        return self

    def __str__(self) -> str:
        if self.fraction >= 1:  # ">= 1 of active agents" read as "one agent"
            return "consensus (all active agents agree)"
        op = ">" if self.strict else ">="
        return f"consensus ({op} {self.fraction:.3g} of active agents agree)"


class ScoreThreshold(_Policy):
    """A scored node reaches ``min`` (its best score, or its mean with ``reduce: mean``)."""

    kind: Literal["score_threshold"] = "score_threshold"

    node: str | None = Field(default=None, description="Scored node; default: the node the policy is attached to.")
    min: float
    reduce: Literal["max", "mean", "min"] = "max"

    def __str__(self) -> str:
        return f"score threshold ({self.reduce} score >= {self.min:g})"


class MaxRounds(_Policy):
    """At most this many rounds (layers or loop iterations)."""

    kind: Literal["max_rounds"] = "max_rounds"

    rounds: int = Field(ge=1)

    def __str__(self) -> str:
        return f"max rounds ({self.rounds})"


def budget_limit(value: Any, *, whole: bool) -> int | float:
    """One limit of a budget, checked: a positive whole number for calls and tokens (``whole``), a positive finite
    number for cost and wall time; else a :class:`ValueError` saying what was expected and what was given.

    Every way of giving a budget checks it here, so that a limit is refused in the same words whichever way it
    came, each prefixed with where: ``--max-calls must be a positive whole number (got 0)`` on the command line,
    ``g.yaml:7: stop.budget.calls: must be ...`` in a graph, ``calls`` of a Python :class:`Budget` (or of
    ``budget={...}``). They were typer's range error, a callback's "0 is not a positive number" and pydantic's
    "Input should be greater than or equal to 1". A 0 would stop a run before its first call; infinity and NaN are
    no limits, and were stored as JSON ``null``, which a resume then refused."""
    number: Any = value
    if isinstance(value, str):  # the command line's text: as a number, so that it is said as one
        for kind in (int, float):
            try:
                number = kind(value.strip())
                break
            except ValueError:
                continue
    real = isinstance(number, int | float) and not isinstance(number, bool)
    if real and math.isfinite(number) and number > 0 and (not whole or float(number).is_integer()):
        return int(number) if whole else number
    shown = number if real else repr(value)
    raise ValueError(f"must be a positive {'whole ' if whole else ''}number (got {shown})")


class Budget(_Policy):
    """Run-wide budgets: the run ends with its best answer so far when one is spent."""

    kind: Literal["budget"] = "budget"

    calls: int | None = Field(default=None, ge=1)
    tokens: int | None = Field(default=None, ge=1)
    cost_usd: float | None = Field(default=None, gt=0)
    wall_s: float | None = Field(default=None, gt=0)

    @field_validator("calls", "tokens", "cost_usd", "wall_s", mode="before")
    @classmethod
    def _limit(cls, value: Any, info: ValidationInfo) -> Any:
        """Each limit as :func:`budget_limit` says it (pydantic's own words were another form). Its error is
        pydantic's own kind, so that it reads without pydantic's "Value error, " in front."""
        if value is None:
            return None
        try:
            return budget_limit(value, whole=info.field_name in ("calls", "tokens"))
        except ValueError as exc:
            raise PydanticCustomError("budget_limit", "{problem}", {"problem": str(exc)}) from None

    @model_validator(mode="after")
    def _something(self) -> Budget:
        if self.calls is None and self.tokens is None and self.cost_usd is None and self.wall_s is None:
            raise ValueError("a budget needs at least one of calls, tokens, cost_usd, wall_s")
        return self

    def __str__(self) -> str:
        parts = [
            f"{name}={value:g}"
            for name, value in (
                ("calls", self.calls),
                ("tokens", self.tokens),
                ("cost_usd", self.cost_usd),
                ("wall_s", self.wall_s),
            )
            if value is not None
        ]
        return f"budget ({', '.join(parts)})"


class AnyOf(_Policy):
    """Stops when any member holds."""

    kind: Literal["any"] = "any"
    any: list[StopPolicy] = Field(min_length=1)

    def __str__(self) -> str:
        return " or ".join(str(p) for p in self.any)


class AllOf(_Policy):
    """Stops when every member holds."""

    kind: Literal["all"] = "all"
    all: list[StopPolicy] = Field(min_length=1)

    def __str__(self) -> str:
        return " and ".join(str(p) for p in self.all)


_KINDS = ("any", "all", "consensus", "score_threshold", "max_rounds", "budget")


def _untag(data: Any) -> Any:
    """YAML form -> tagged form: ``{consensus: {fraction: 0.7}}`` -> ``{kind: consensus, fraction: 0.7}``,
    ``{max_rounds: 4}`` -> ``{kind: max_rounds, rounds: 4}``, ``{any: [...]}`` -> ``{kind: any, any: [...]}``."""
    if isinstance(data, list):  # (pydantic said "Input should be a valid dictionary or object to extract fields")
        raise ValueError(
            "a stop policy is one mapping, e.g. {max_rounds: 4}; to combine several, list them under any (stop when "
            "one holds) or all (when every one does): {any: [...]}"
        )
    if isinstance(data, _Policy) or not isinstance(data, dict) or "kind" in data:
        return data
    if len(data) != 1:
        raise ValueError(
            f"a stop policy is one of {{{', '.join(_KINDS)}}} with its settings, e.g. "
            f"{{max_rounds: 4}}; got keys {sorted(data)}"
        )
    ((kind, body),) = data.items()
    if kind not in _KINDS:
        raise ValueError(f"unknown stop policy {kind!r}; expected one of {', '.join(_KINDS)}")
    if kind in ("any", "all"):
        return {"kind": kind, kind: body}
    if kind == "max_rounds" and not isinstance(body, dict):
        return {"kind": kind, "rounds": body}
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ValueError(f"stop policy {kind!r} takes a mapping of settings, got {body!r}")
    return {"kind": kind, **body}


def _tag(policy: Any) -> Any:
    """Tagged form -> YAML form (the inverse of :func:`_untag`), for round-trips."""
    if not isinstance(policy, _Policy):
        return policy
    data = {k: v for k, v in policy.model_dump(exclude_defaults=True).items() if k != "kind"}
    kind = type(policy).model_fields["kind"].default
    if isinstance(policy, AnyOf | AllOf):
        return {kind: [_tag(p) for p in getattr(policy, kind)]}
    if isinstance(policy, MaxRounds):
        return {kind: policy.rounds}
    return {kind: data}


StopPolicy = Annotated[
    AnyOf | AllOf | Consensus | ScoreThreshold | MaxRounds | Budget,
    Field(discriminator="kind"),
    BeforeValidator(_untag),
    PlainSerializer(_tag),
]
"""A stop policy in its YAML form (``{consensus: {...}}``, ``{max_rounds: 4}``, ``{any: [...]}``, ...)."""

AnyOf.model_rebuild()
AllOf.model_rebuild()


def iter_policies(policy: StopPolicy) -> list[Consensus | ScoreThreshold | MaxRounds | Budget]:
    """The leaf policies of a composite, depth first."""
    if isinstance(policy, AnyOf):
        return [leaf for p in policy.any for leaf in iter_policies(p)]
    if isinstance(policy, AllOf):
        return [leaf for p in policy.all for leaf in iter_policies(p)]
    return [policy]
