"""Agent cards: who an agent is and how it is prompted, parsed and sampled — data, not code.

A card lives in ``agents/<system>/<name>.yaml`` (or inline in a graph spec). Its prompts are Jinja2 templates
over the graph's inputs and the variables its node provides (a round's previous answers, the agent's own last
answer, ...); its parser names how the reply becomes an answer; its sampling and optional model override say how
it is called. Cards carry no Python, so a team can be changed without touching code.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentmesh.errors import InvalidModelReferenceError
from agentmesh.models.messages import Sampling
from agentmesh.models.reference import may_be_alias, parse_reference
from agentmesh.parsers import ParserSpec
from agentmesh.spec.templates import TemplateSyntaxProblem, check_template, template_variables

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


class AgentCard(BaseModel):
    """One agent: role, prompts, output parser, sampling, optional model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Unique within a graph; what nodes refer to.")
    role: str = Field(default="", description="Short role label, shown in views and available to templates.")
    description: str = ""
    system: str | None = Field(default=None, description="System prompt (Jinja2 template).")
    prompt: str = Field(description="User prompt (Jinja2 template, strict undefined variables).")
    parser: ParserSpec = Field(default=ParserSpec(name="text"), description="Output parser by name.")
    sampling: Sampling = Sampling()
    model: str | None = Field(
        default=None,
        description="Model reference overriding the run's model, or an alias of the settings (config.yaml).",
    )

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("expected a name of letters, digits, '_', '-' or '.', starting with a letter or '_'")
        return value

    @field_validator("system", "prompt")
    @classmethod
    def _valid_template(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_template(value)
            except TemplateSyntaxProblem as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("model")
    @classmethod
    def _valid_model(cls, value: str | None) -> str | None:
        """A model reference, checked here; or a word that may be an alias of the settings of the machine that runs
        it (``model: lab``), which the run resolves before it is stored (a card naming an alias was refused here,
        though the graph's own ``model`` may be one and the runtime resolves both alike)."""
        if value is not None and not may_be_alias(value):
            try:
                parse_reference(value)
            except InvalidModelReferenceError as exc:
                raise ValueError(exc.message) from None
        return value

    def samples_problem(self) -> str | None:
        """Why this card cannot be used as it is when its ``sampling.n`` asks for several samples per call; ``None``
        when it asks for one.

        Every operator takes one answer per model call (a vote counts one per slot, rounds show one per agent), so
        the other ``n - 1`` samples would be paid for and silently dropped. The card is refused where it is loaded
        instead, saying how to get several answers: a team listing the agent several times, or a method's own
        sample count. Python code that wants every sample of one call passes ``n`` to
        :meth:`agentmesh.runtime.context.RunContext.ask_samples`.
        """
        n = self.sampling.n
        if n == 1:
            return None
        return (
            f"n: {n} asks the model for {n} samples per call, but every operator takes one answer per call (a vote "
            f"counts one per agent slot), so {n - 1} of them would be paid for and dropped; for {n} independent "
            f"answers leave n at 1 and list the agent {n} times in a team or rounds node (agents: "
            f"[{', '.join([self.name] * min(n, 3))}{', ...' if n > 3 else ''}], as graphs/self_consistency.yaml "
            "does), or use a method's own sample count (magicore's k); Python code that wants every sample of one "
            "call passes n to RunContext.ask_samples"
        )

    def template_variables(self) -> frozenset[str]:
        """Variables the card's prompts read; the graph checks each is provided where the card is used."""
        used = template_variables(self.prompt)
        return used | template_variables(self.system) if self.system else used
