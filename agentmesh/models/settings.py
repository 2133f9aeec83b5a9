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

from agentmesh._yaml import LineMap, Loc, YamlError, line_map, line_of, read_yaml_file
from agentmesh.errors import ConfigError, InvalidModelReferenceError
from agentmesh.models.reference import parse_reference

CONFIG_ENV = "AGENTMESH_CONFIG"
_KEY_LIKE = re.compile(r"^(sk-|sk_|Bearer\s)|^[A-Za-z0-9_\-]{40,}$")
#: Keys that are also valid variable names, so that pasted into ``api_key_env`` they would pass for one (and be
#: shown by ``agentmesh models``): vendors' prefixes (Hugging Face, Groq, Google, Replicate, GitHub, NVIDIA, xAI,
#: Perplexity), or a long run of mixed-case letters and digits, which environment variable names are not.
_KEY_PREFIXES = re.compile(r"^(hf_|gsk_|AIza|r8_|ghp_|gho_|github_pat_|nvapi-|xai-|pplx-)")
_MIXED_CASE_AND_DIGITS = re.compile(r"^(?=.*[a-z])(?=.*[A-Z])(?=.*[0-9])[A-Za-z0-9_]{24,}$")


def looks_like_a_key(value: str) -> bool:
    """Whether ``value`` looks like an API key rather than a model name, URL or environment variable name."""
    if value.startswith(("http://", "https://")):
        return False
    return bool(_KEY_LIKE.search(value) or _KEY_PREFIXES.match(value) or _MIXED_CASE_AND_DIGITS.match(value))


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
    #: Context window, in tokens, of a model run in this process (``local``, ``llamacpp:``); default 4096. A server
    #: sets its own when it starts (llama.cpp's ``--ctx-size``, vLLM's ``--max-model-len``, Ollama's ``num_ctx``), so
    #: an entry of a server that names it is refused rather than ignored.
    n_ctx: int | None = Field(default=None, ge=16)

    @field_validator("api_key_env")
    @classmethod
    def _is_a_name(cls, value: str | None) -> str | None:
        if value is not None and (not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value) or looks_like_a_key(value)):
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

    def limits_for(
        self, endpoint: str, provider: str | None, fallback: EndpointLimits, *, use_default: bool = True
    ) -> EndpointLimits:
        """Limits of an endpoint: its own entry, else its provider's, else ``default`` (unless ``use_default`` is
        false: a model in this process, for which a server's defaults are wrong), over ``fallback`` (the
        provider's own default), which gives every field the entry does not set.

        Pass ``provider=None`` for a server named by URL: an ``openai:`` entry describes hosted OpenAI (its
        rate limits, its key variable) and must not leak onto a local vLLM or llama.cpp server.
        """
        for key in (endpoint, provider, "default" if use_default else None):
            if key is not None and key in self.endpoints:
                entry = self.endpoints[key]
                # what the entry sets, over the provider's own defaults: ``local: {n_ctx: 8192}`` changes the window
                # only, and the embedded model keeps its one call at a time and its 600-s timeout (the class's
                # defaults, 8 calls and 120 s, made its queued calls time out behind a long generation)
                merged = fallback.model_copy(update={name: getattr(entry, name) for name in entry.model_fields_set})
                return entry if merged == entry else merged
        return fallback

    def resolve_alias(self, ref: str) -> str:
        seen: list[str] = []
        while ref in self.aliases:
            if ref in seen:
                raise ConfigError(f"model alias cycle: {' -> '.join([*seen, ref])}", alias=ref)
            seen.append(ref)
            ref = self.aliases[ref]
        return ref


def _where(file: str, lines: LineMap, loc: Loc) -> str:
    """``file:line`` of ``loc`` (``file`` alone for an empty file)."""
    line = line_of(lines, loc)
    return file if line is None else f"{file}:{line}"


def _reject_inline_secrets(data: Any, loc: Loc, file: str, lines: LineMap) -> None:
    """Refuse a key written into the file, naming where it is and never what it is."""
    path = ".".join(str(p) for p in loc)
    if isinstance(data, dict):
        for k, v in data.items():
            if str(k).lower() in {"api_key", "apikey", "key", "token", "password", "secret"}:
                raise ConfigError(
                    f"{_where(file, lines, (*loc, k))}: '{'.'.join(str(p) for p in (*loc, k))}' looks like a secret; "
                    "agentmesh never stores keys. Put the key in an environment variable and name it with "
                    "'api_key_env'.",
                    file=file,
                )
            _reject_inline_secrets(v, (*loc, k), file, lines)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            _reject_inline_secrets(item, (*loc, i), file, lines)
    elif isinstance(data, str) and looks_like_a_key(data):
        raise ConfigError(
            f"{_where(file, lines, loc)}: the value at '{path}' looks like an API key; agentmesh never stores keys. "
            "Put the key in an environment variable and name that variable with 'api_key_env'.",
            file=file,
        )


def load_settings(path: str | os.PathLike[str] | None = None) -> ModelSettings:
    """Load settings from ``path``, ``$AGENTMESH_CONFIG`` or ``.agentmesh/config.yaml``; empty if none.

    Every error names the file and, where the file has one, the line (``config.yaml:4: endpoints.openai.rpm:
    ...``): a settings file is edited by hand, and a field path alone leaves the reader counting lines.
    """
    explicit = path or os.environ.get(CONFIG_ENV)
    file = Path(explicit) if explicit else Path.cwd() / ".agentmesh" / "config.yaml"
    if not file.exists():
        if explicit:
            raise ConfigError(f"config file {file} does not exist (from {CONFIG_ENV} or --config)", file=str(file))
        return ModelSettings()
    name = str(file)
    try:
        data, root = read_yaml_file(file)
    except YamlError as exc:
        raise ConfigError(str(exc), file=name) from None
    data = data or {}
    lines = line_map(root) if root is not None else {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{_where(name, lines, ())}: expected a mapping with aliases/endpoints/prices at the top", file=name
        )
    _reject_inline_secrets(data, (), name, lines)
    try:
        settings = ModelSettings.model_validate(data)
    except ValidationError as exc:
        problems = [
            (
                _where(name, lines, tuple(e["loc"])),
                ".".join(str(p) for p in e["loc"]),
                e["msg"].removeprefix("Value error, "),
            )
            for e in sorted(exc.errors(include_url=False), key=lambda e: line_of(lines, tuple(e["loc"])) or 0)
        ]
        if len(problems) == 1:
            ((where, field, msg),) = problems
            message = f"{where}: invalid model settings: {field}: {msg}"
        else:
            listed = "\n".join(f"{where}: {field}: {msg}" for where, field, msg in problems)
            message = f"{len(problems)} problems in the model settings of {name}:\n{listed}"
        raise ConfigError(message, file=name) from exc
    _check_aliases(settings, name, lines)
    return settings


def _check_aliases(settings: ModelSettings, file: str, lines: LineMap) -> None:
    """Refuse an alias whose reference cannot be read, at its line: found when used, the error would name the
    reference it resolved to, not the alias the user typed nor the file it came from."""
    for alias, target in settings.aliases.items():
        if target in settings.aliases:
            continue  # a chain: its last link is checked as an alias of its own
        try:
            parse_reference(target)
        except InvalidModelReferenceError as exc:
            raise ConfigError(f"{_where(file, lines, ('aliases', alias))}: aliases.{alias}: {exc}", file=file) from None
