"""Scripted models: deterministic answers by rule, for unit tests and demos (``scripted:<file.yaml>``).

A rule matches a call by agent name, node, round and a regular expression searched in the prompt; it answers
from a list of responses (in order) or a Jinja2 template that sees the call and the regex's groups. Every call
is recorded, and :meth:`ScriptedModel.assert_complete` fails when the workflow made fewer calls than the script
expects or a call no rule covered: a test catches workflow drift, not just wrong answers.

.. code-block:: yaml

    default: "I am not sure."          # optional; without it an unmatched call is an error
    delay_s: 0.0                       # optional; simulated latency per call
    rules:
      - agent: solver
        round: [1, 2]
        prompt: 'What is (\\d+)\\*(\\d+)'
        template: "{{ match[1]|int * match[2]|int }}"
        times: 2                       # exactly two calls expected
      - agent: critic
        responses: ["Looks right.", "Still right."]
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agentmesh._yaml import YamlError, read_yaml_file
from agentmesh.errors import ConfigError, ScriptExhaustedError, ScriptIncompleteError
from agentmesh.models._tokens import estimate_prompt_tokens, estimate_tokens
from agentmesh.models.messages import CallContext, Choice, ModelRequest, ProviderResult, Usage
from agentmesh.models.providers.base import Provider
from agentmesh.models.settings import EndpointLimits

# Jinja's sandbox, as for agent cards: a script file is data (shared like a graph), and its templates must not reach
# Python's internals (``{{ cycler.__init__.__globals__.os }}``).
_jinja = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)

Responder = Callable[[ModelRequest, CallContext], str]


class ScriptRule(BaseModel):
    """One rule. Unset matchers match anything; exactly one of ``responses`` and ``template`` answers.

    How many calls it expects: ``times`` if given; else the number of ``responses`` (unless ``cycle``); else
    "at least one" (a template or cycling rule), or none at all with ``optional: true``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    agent: str | None = None
    node: str | None = None
    round: int | list[int] | None = None
    prompt: str | None = Field(default=None, description="regex searched in the whole prompt")
    responses: list[str] | None = None
    template: str | None = None
    times: int | None = Field(default=None, ge=0)
    cycle: bool = False
    optional: bool = False
    delay_s: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_answer(self) -> ScriptRule:
        if (self.responses is None) == (self.template is None):
            raise ValueError("a rule needs exactly one of 'responses' (a list) or 'template' (a string)")
        if self.responses is not None and not self.responses:
            raise ValueError("'responses' is empty")
        if self.prompt is not None:
            try:
                re.compile(self.prompt)
            except re.error as exc:
                raise ValueError(f"'prompt' is not a valid regular expression: {exc}") from exc
        if self.template is not None:
            try:
                _jinja.parse(self.template)
            except jinja2.TemplateSyntaxError as exc:
                raise ValueError(f"'template' is not a valid Jinja2 template: {exc}") from exc
        return self

    @property
    def capacity(self) -> int | None:
        """How many calls this rule can answer (``None``: unbounded)."""
        if self.times is not None:
            return self.times
        if self.responses is not None and not self.cycle:
            return len(self.responses)
        return None

    def label(self, index: int) -> str:
        return self.name or f"rule {index}" + (f" (agent={self.agent})" if self.agent else "")


def _rule_problems(errors: Sequence[Any]) -> str:
    """A script rule's validation errors as ``field: problem``; unknown fields are named together with the fields
    a rule has, so that the fix is in the message."""

    def where(error: Any) -> str:
        return ".".join(str(p) for p in error["loc"]) or "rule"

    unknown = [where(e) for e in errors if e["type"] == "extra_forbidden"]
    out = [f"{where(e)}: {e['msg']}" for e in errors if e["type"] != "extra_forbidden"]
    if unknown:
        out.append(f"unknown field(s) {', '.join(unknown)}; a rule has {', '.join(ScriptRule.model_fields)}")
    return "; ".join(out)


class ScriptError(ConfigError, ValueError):
    """A :class:`ScriptedModel` built wrong in Python (a rule, the rules, the default, ``respond``): a
    :class:`~agentmesh.errors.ConfigError` naming the rule and the fix, and still the ``ValueError`` that pydantic's
    validation raised before, for code that catches that."""


class ScriptedCall(BaseModel):
    """A call the scripted model received, and which rule answered it (``None``: default or unmatched)."""

    context: CallContext
    prompt: str
    rule: int | None
    response: str | None


class ScriptedModel(Provider):
    """A deterministic model answering by rules; the Python twin of ``scripted:<file.yaml>``."""

    name = "scripted"
    free = True
    in_process = True

    def __init__(
        self,
        rules: Sequence[ScriptRule | dict[str, Any]] = (),
        *,
        default: str | None = None,
        respond: Responder | None = None,
        delay_s: float = 0.0,
        label: str = "scripted",
    ) -> None:
        # Checked here, where a mistake is made: a dict given for the list of rules was read as its keys, a
        # non-string default or reply failed at the first call as a pydantic error about "ScriptedCall"
        if isinstance(rules, Mapping | str | bytes) or not isinstance(rules, Sequence):
            raise ScriptError(
                f"ScriptedModel: rules must be a list of rules (dicts such as {{'agent': 'a', 'responses': ['x']}}), "
                f"got {type(rules).__name__}{' (one rule: put it in a list)' if isinstance(rules, Mapping) else ''}"
            )
        self.rules = []
        for i, r in enumerate(rules):
            if isinstance(r, ScriptRule):
                self.rules.append(r)
                continue
            try:
                self.rules.append(ScriptRule.model_validate(r))
            except ValidationError as exc:
                problems = _rule_problems(exc.errors(include_url=False))
                raise ScriptError(f"ScriptedModel: rules[{i}]: {problems}", rule=i) from None
        if default is not None and not isinstance(default, str):
            raise ScriptError(f"ScriptedModel: default must be a string (the reply), got {type(default).__name__}")
        if respond is not None and not callable(respond):
            raise ScriptError(
                f"ScriptedModel: respond must be a callable (request, context) -> str, got {type(respond).__name__}"
            )
        self.default = default
        self.respond = respond
        self.delay_s = delay_s
        self.label = label
        self._compiled = [re.compile(r.prompt, re.DOTALL) if r.prompt else None for r in self.rules]
        self._templates = [_jinja.from_string(r.template) if r.template else None for r in self.rules]
        self._uses = [0] * len(self.rules)
        self.calls: list[ScriptedCall] = []
        self._lock = threading.Lock()

    @classmethod
    def from_yaml(cls, path: str | Path) -> ScriptedModel:
        """Load a script file; errors name the file and the rule."""
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"scripted model file {file} does not exist", file=str(file))
        try:
            data = read_yaml_file(file)[0] or {}
        except YamlError as exc:
            raise ConfigError(str(exc), file=str(file)) from None
        if not isinstance(data, dict) or not isinstance(data.get("rules", []), list):
            raise ConfigError(
                f"{file}: expected a mapping with a 'rules' list (and optional 'default', 'delay_s')",
                file=str(file),
            )
        unknown = set(data) - {"rules", "default", "delay_s"}
        if unknown:
            raise ConfigError(
                f"{file}: unknown top-level key(s) {sorted(unknown)}; expected rules, default, delay_s",
                file=str(file),
            )
        rules: list[ScriptRule] = []
        for i, raw in enumerate(data.get("rules", [])):
            try:
                rules.append(ScriptRule.model_validate(raw))
            except ValidationError as exc:
                problems = _rule_problems(exc.errors(include_url=False))
                raise ConfigError(f"{file}: rules[{i}]: {problems}", file=str(file), rule=i) from exc
        default = data.get("default")
        delay = data.get("delay_s", 0.0)
        if default is not None and not isinstance(default, str):
            raise ConfigError(f"{file}: 'default' must be a string", file=str(file))
        if not isinstance(delay, int | float) or delay < 0:
            raise ConfigError(f"{file}: 'delay_s' must be a number >= 0", file=str(file))
        return cls(rules, default=default, delay_s=float(delay), label=f"scripted:{file}")

    def default_limits(self) -> EndpointLimits:
        """No slot limit: a scripted team runs as parallel as the graph allows."""
        return EndpointLimits(max_concurrency=1_000_000, timeout_s=3600.0, max_retries=0)

    @property
    def endpoint(self) -> str:
        return self.label

    @property
    def model_name(self) -> str:
        return self.label

    async def complete(self, request: ModelRequest, context: CallContext) -> ProviderResult:
        texts: list[str] = []
        delay = self.delay_s
        for _ in range(request.sampling.n):
            text, rule_delay = self._answer(request, context)
            texts.append(text)
            delay = max(delay, rule_delay)
        if delay > 0:
            await asyncio.sleep(delay)
        choices = [Choice(text=t, finish_reason="stop") for t in texts]
        usage = Usage(
            prompt_tokens=estimate_prompt_tokens(request),
            completion_tokens=sum(estimate_tokens(t) for t in texts),
            estimated=True,
        )
        return ProviderResult(model=self.label, choices=choices, usage=usage)

    def _answer(self, request: ModelRequest, context: CallContext) -> tuple[str, float]:
        prompt = request.prompt_text
        with self._lock:
            for i, rule in enumerate(self.rules):
                match = self._matches(i, rule, prompt, context)
                if match is None:
                    continue
                cap = rule.capacity
                if cap is not None and self._uses[i] >= cap:
                    continue
                use = self._uses[i]
                self._uses[i] += 1
                text = self._render(i, rule, use, match, prompt, context)
                self.calls.append(ScriptedCall(context=context, prompt=prompt, rule=i, response=text))
                return text, rule.delay_s if rule.delay_s is not None else 0.0
            fallback = self.respond(request, context) if self.respond else self.default
            if fallback is not None and not isinstance(fallback, str):
                raise ConfigError(
                    f"{self.label}: respond returned {type(fallback).__name__} {fallback!r:.60} for the call "
                    f"agent={context.agent!r} node={context.node!r}; it must return the reply as a string"
                )
            self.calls.append(ScriptedCall(context=context, prompt=prompt, rule=None, response=fallback))
        if fallback is None:
            raise ScriptExhaustedError(
                f"{self.label}: no rule left for the call agent={context.agent!r} node={context.node!r} "
                f"round={context.round!r}; prompt starts {prompt[:200]!r}",
                agent=context.agent,
                node=context.node,
                round=context.round,
            )
        return fallback, 0.0

    def _matches(self, i: int, rule: ScriptRule, prompt: str, context: CallContext) -> re.Match[str] | tuple[()] | None:
        if rule.agent is not None and rule.agent != context.agent:
            return None
        if rule.node is not None and rule.node != context.node:
            return None
        if rule.round is not None:
            rounds = rule.round if isinstance(rule.round, list) else [rule.round]
            if context.round not in rounds:
                return None
        pattern = self._compiled[i]
        if pattern is None:
            return ()
        return pattern.search(prompt)

    def _render(
        self,
        i: int,
        rule: ScriptRule,
        use: int,
        match: re.Match[str] | tuple[()],
        prompt: str,
        context: CallContext,
    ) -> str:
        if rule.responses is not None:
            n = len(rule.responses)
            return rule.responses[use % n] if rule.cycle else rule.responses[min(use, n - 1)]
        template = self._templates[i]
        assert template is not None  # guaranteed by ScriptRule's validator
        groups: list[str | None] = [match.group(0), *match.groups()] if isinstance(match, re.Match) else []
        try:
            return template.render(
                agent=context.agent,
                node=context.node,
                round=context.round,
                call_index=context.call_index,
                use=use,
                prompt=prompt,
                match=groups,
            )
        except jinja2.UndefinedError as exc:
            raise ScriptExhaustedError(
                f"{self.label}: template of {rule.label(i)} uses an undefined variable: {exc}"
            ) from exc
        except jinja2.TemplateError as exc:  # the sandbox's SecurityError: an attribute templates may not use
            raise ScriptExhaustedError(f"{self.label}: template of {rule.label(i)} failed: {exc}") from exc

    def assert_complete(self) -> None:
        """Fail if a rule was used fewer times than expected, or a call matched no rule."""
        problems: list[str] = []
        for i, rule in enumerate(self.rules):
            used = self._uses[i]
            cap = rule.capacity
            if rule.optional:
                continue
            if cap is not None and used != cap:
                problems.append(f"{rule.label(i)} expected {cap} call(s), got {used}")
            elif cap is None and used == 0:
                problems.append(f"{rule.label(i)} was never used")
        unmatched = [c for c in self.calls if c.rule is None and c.response is None]
        for c in unmatched:
            problems.append(
                f"unscripted call: agent={c.context.agent!r} node={c.context.node!r} round={c.context.round!r}"
            )
        if problems:
            raise ScriptIncompleteError(
                f"{self.label}: the workflow did not make exactly the scripted calls:\n  - " + "\n  - ".join(problems),
                problems=problems,
            )

    def reset(self) -> None:
        """Forget uses and recorded calls, to run the same script again."""
        with self._lock:
            self._uses = [0] * len(self.rules)
            self.calls = []
