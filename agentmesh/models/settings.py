"""Per-endpoint limits, prices and aliases: the knobs a user sets once for a machine or a team.

They come from a YAML file (``$AGENTMESH_CONFIG``, else ``.agentmesh/config.yaml`` in the working directory, if
present) or from Python. The file never holds a secret: it names the *environment variable* that holds a key,
and a key-looking value is refused with an error.

.. code-block:: yaml

    aliases:
      fast: openai:gpt-4o-mini
      lab: openai:qwen2.5-7b@http://10.0.0.5:8000/v1
    endpoints:                      # keyed by base URL, provider name, or "default"
      http://10.0.0.5:8000/v1: {max_concurrency: 16, timeout_s: 300}
      openai: {rpm: 500, tpm: 200000, api_key_env: OPENAI_API_KEY}
    prices:                         # USD per million tokens
      gpt-4o-mini: {input: 0.15, output: 0.60}
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentmesh._yaml import YamlError, read_yaml
from agentmesh.errors import ConfigError

CONFIG_ENV = "AGENTMESH_CONFIG"
_KEY_LIKE = re.compile(r"^(sk-|sk_|Bearer\s)|^[A-Za-z0-9_\-]{40,}$")


class EndpointLimits(BaseModel):
    """Limits shared by every call to one endpoint in this process, whichever run makes it.

    ``rpm_burst`` is how many requests may start back to back before the per-minute pace applies; the
    default 1 means requests are spaced evenly, so the rate is never above ``rpm`` over any window.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_concurrency: int = Field(default=8, ge=1)
    rpm: float | None = Field(default=None, gt=0)
    rpm_burst: int = Field(default=1, ge=1)
    tpm: float | None = Field(default=None, gt=0)
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=5, ge=0)
    backoff_initial_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    api_key_env: str | None = None

    @field_validator("api_key_env")
    @classmethod
    def _is_a_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError("api_key_env must be the NAME of an environment variable (e.g. OPENAI_API_KEY), not a key")
        return value


class Price(BaseModel):
    """USD per million prompt (``input``) and completion (``output``) tokens; ``cached_input`` for the prompt tokens
    a server read from its prompt cache (billed as ``input`` when not given)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)


class ModelSettings(BaseModel):
    """Everything configurable about model access, merged from file and code."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    aliases: dict[str, str] = Field(default_factory=dict)
    endpoints: dict[str, EndpointLimits] = Field(default_factory=dict)
    prices: dict[str, Price] = Field(default_factory=dict)

    def limits_for(self, endpoint: str, provider: str | None, fallback: EndpointLimits) -> EndpointLimits:
        """Limits of an endpoint: its own entry, else its provider's, else ``default``, else ``fallback``
        (the provider's own default).

        Pass ``provider=None`` for a server named by URL: an ``openai:`` entry describes hosted OpenAI (its
        rate limits, its key variable) and must not leak onto a local vLLM or llama.cpp server.
        """
        for key in (endpoint, provider, "default"):
            if key is not None and key in self.endpoints:
                return self.endpoints[key]
        return fallback

    def resolve_alias(self, ref: str) -> str:
        seen: list[str] = []
        while ref in self.aliases:
            if ref in seen:
                raise ConfigError(f"model alias cycle: {' -> '.join([*seen, ref])}", alias=ref)
            seen.append(ref)
            ref = self.aliases[ref]
        return ref


def _reject_inline_secrets(data: Any, path: str, where: str) -> None:
    if isinstance(data, dict):
        for k, v in data.items():
            if str(k).lower() in {"api_key", "apikey", "key", "token", "password", "secret"}:
                raise ConfigError(
                    f"{where}: '{path}{k}' looks like a secret; agentmesh never stores keys. "
                    "Put the key in an environment variable and name it with 'api_key_env'.",
                    file=where,
                )
            _reject_inline_secrets(v, f"{path}{k}.", where)
    elif isinstance(data, str) and _KEY_LIKE.search(data) and not data.startswith("http"):
        raise ConfigError(
            f"{where}: the value at '{path.rstrip('.')}' looks like an API key; name an environment "
            "variable with 'api_key_env' instead.",
            file=where,
        )


def load_settings(path: str | os.PathLike[str] | None = None) -> ModelSettings:
    """Load settings from ``path``, ``$AGENTMESH_CONFIG`` or ``.agentmesh/config.yaml``; empty if none."""
    explicit = path or os.environ.get(CONFIG_ENV)
    file = Path(explicit) if explicit else Path.cwd() / ".agentmesh" / "config.yaml"
    if not file.exists():
        if explicit:
            raise ConfigError(f"config file {file} does not exist (from {CONFIG_ENV} or --config)", file=str(file))
        return ModelSettings()
    try:
        data = read_yaml(file.read_text(), str(file))[0] or {}
    except YamlError as exc:
        raise ConfigError(str(exc), file=str(file)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping with aliases/endpoints/prices at the top", file=str(file))
    _reject_inline_secrets(data, "", str(file))
    try:
        return ModelSettings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False))
        raise ConfigError(f"{file}: invalid model settings: {problems}", file=str(file)) from exc
