"""Model settings (file loading, secrets refused, aliases, endpoint limits) and prices."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pydantic
import pytest

from agentmesh.errors import ConfigError
from agentmesh.models import EndpointLimits, ModelSettings, Price, Usage, get_model, load_settings
from agentmesh.models.pricing import DEFAULT_PRICES, cost_usd, price_for
from agentmesh.models.settings import CONFIG_ENV

CONFIG = """\
aliases:
  fast: openai:gpt-4o-mini
  lab: openai:qwen2.5-7b@http://10.0.0.5:8000/v1
  quick: fast
endpoints:
  http://10.0.0.5:8000/v1: {max_concurrency: 16, timeout_s: 300}
  openai: {rpm: 500, tpm: 200000, api_key_env: OPENAI_API_KEY}
  default: {max_retries: 2}
prices:
  gpt-4o-mini: {input: 0.2, output: 0.8}
  qwen2.5-7b: {input: 0, output: 0}
"""


@pytest.fixture(autouse=True)
def no_config_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.chdir(tmp_path)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


# --- loading -----------------------------------------------------------------------------------------------------


def test_no_file_anywhere_means_empty_settings() -> None:
    assert load_settings() == ModelSettings()


def test_loads_an_explicit_path(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path / "models.yaml", CONFIG))
    assert settings.aliases["lab"] == "openai:qwen2.5-7b@http://10.0.0.5:8000/v1"
    assert settings.endpoints["http://10.0.0.5:8000/v1"] == EndpointLimits(max_concurrency=16, timeout_s=300)
    assert settings.endpoints["openai"].api_key_env == "OPENAI_API_KEY"
    assert settings.endpoints["openai"].rpm == 500
    assert settings.prices["gpt-4o-mini"] == Price(input=0.2, output=0.8)


def test_loads_from_the_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(write(tmp_path / "elsewhere.yaml", "aliases: {a: local}\n")))
    assert load_settings().aliases == {"a": "local"}


def test_loads_from_the_working_directory(tmp_path: Path) -> None:
    write(tmp_path / ".agentmesh" / "config.yaml", "aliases: {b: local}\n")
    assert load_settings().aliases == {"b": "local"}


def test_explicit_path_wins_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(write(tmp_path / "env.yaml", "aliases: {x: 'openai:env'}\n")))
    assert load_settings(write(tmp_path / "arg.yaml", "aliases: {x: 'openai:arg'}\n")).aliases == {"x": "openai:arg"}


def test_empty_file_is_empty_settings(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path / "empty.yaml", "")) == ModelSettings()


def test_missing_explicit_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(missing)
    monkeypatch.setenv(CONFIG_ENV, str(missing))
    with pytest.raises(ConfigError, match=CONFIG_ENV):
        load_settings()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("aliases: [", "not valid YAML"),
        (
            "endpoints:\n  http://h:8000/v1: {rpm: 5}\n  http://h:8000/v1: {rpm: 50}\n",
            "bad.yaml:3: endpoints: key 'http://h:8000/v1' again (first at line 2); YAML keeps only the last",
        ),
        ("- a\n", "expected a mapping"),
        ("endpoints:\n  default: {rpm: -1}\n", "endpoints.default.rpm"),
        ("endpoints:\n  default: {concurrency: 3}\n", "endpoints.default.concurrency"),
        ("prices:\n  m: {input: 1}\n", "prices.m.output"),
        ("models: {}\n", "models: Extra inputs are not permitted"),
        ("endpoints:\n  openai: {api_key_env: 'not a name'}\n", "NAME of an environment variable"),
    ],
)
def test_invalid_files_name_the_file_and_the_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)
    assert info.value.context["file"] == str(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "endpoints:\n  openai:\n    rpm: 5\n    rmp: 5\n",
            "bad.yaml:4: invalid model settings: endpoints.openai.rmp:",
        ),
        (
            "aliases: {}\nendpoints:\n  default: {rpm: -1}\n",
            "bad.yaml:3: invalid model settings: endpoints.default.rpm:",
        ),
        ("prices:\n  m: {input: 1}\n", "bad.yaml:2: invalid model settings: prices.m.output: Field required"),
        ("x: 1\nendpoints:\n  default: {rpm: 0}\n", "2 problems in the model settings of"),
        ("x: 1\nendpoints:\n  default: {rpm: 0}\n", "bad.yaml:1: x: Extra inputs are not permitted\n"),
        ("endpoints:\n  openai: {api_key: abc}\n", "bad.yaml:2: 'endpoints.openai.api_key' looks like a secret"),
        ("aliases:\n  a: local\n  fast: sk-abc0123456789\n", "bad.yaml:3: the value at 'aliases.fast' looks like"),
        ("- a\n", "bad.yaml:1: expected a mapping"),
    ],
)
def test_errors_name_the_line_of_the_problem(tmp_path: Path, text: str, expected: str) -> None:
    """A settings file is edited by hand: its errors point at the line, not only at a field path."""
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("gpt-4o-mini", "a.yaml:3: aliases.fast: model reference 'gpt-4o-mini' has no provider prefix"),
        ("openai:q@localhost:8000/v1", "a.yaml:3: aliases.fast: model reference 'openai:q@localhost:8000/v1':"),
    ],
)
def test_an_alias_to_a_malformed_reference_is_refused_at_its_line(tmp_path: Path, target: str, expected: str) -> None:
    """Found only when used, the error named the reference, not the alias typed (-m fast) nor the file."""
    path = write(tmp_path / "a.yaml", f"aliases:\n  ok: local\n  fast: {target}\n  chain: ok\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    "pasted",
    [
        "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345",  # Hugging Face: a valid variable name too
        "AIzaSyA1234567890abcdefghijklmnopqrstu",  # Google, 39 characters
        "gsk_abc123",
        "Xy7Kp2Lm9Qr4St6Uv8Wz1Ab3",  # no known prefix: mixed case and digits, as keys are and names are not
    ],
)
def test_a_key_pasted_into_api_key_env_is_refused_even_when_it_could_be_a_variable_name(
    tmp_path: Path, pasted: str
) -> None:
    """Accepted as a variable name, the key would be printed by ``agentmesh models`` (``key: $<it> (not set)``)."""
    path = write(tmp_path / "k.yaml", f"endpoints:\n  openai:\n    api_key_env: {pasted}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "k.yaml:3:" in str(info.value) and "api_key_env" in str(info.value)
    assert pasted not in str(info.value)
    with pytest.raises(pydantic.ValidationError, match="NAME of an environment variable"):
        EndpointLimits(api_key_env=pasted)


def test_variable_names_and_references_are_not_taken_for_keys(tmp_path: Path) -> None:
    text = (
        "aliases:\n  grok: xai:grok-2\n  hf: openai:HuggingFaceTB/SmolLM2-1.7B-Instruct@http://h:8000/v1\n"
        "endpoints:\n  a: {api_key_env: HF_TOKEN}\n  b: {api_key_env: GOOGLE_API_KEY}\n"
        "  c: {api_key_env: LAB_VLLM_KEY_2}\n  d: {api_key_env: my_lab_key}\n"
    )
    settings = load_settings(write(tmp_path / "ok.yaml", text))
    assert settings.aliases["grok"] == "xai:grok-2"
    assert [e.api_key_env for e in settings.endpoints.values()] == [
        "HF_TOKEN",
        "GOOGLE_API_KEY",
        "LAB_VLLM_KEY_2",
        "my_lab_key",
    ]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("endpoints:\n  openai: {api_key: abc}\n", "'endpoints.openai.api_key' looks like a secret"),
        ("endpoints:\n  openai: {token: abc}\n", "'endpoints.openai.token' looks like a secret"),
        ("password: hunter2\n", "'password' looks like a secret"),
        ("aliases:\n  fast: sk-abcdef0123456789\n", "the value at 'aliases.fast' looks like an API key"),
        ("aliases:\n  fast: 'Bearer abc'\n", "the value at 'aliases.fast' looks like an API key"),
        (f"aliases:\n  fast: {'A1b2' * 12}\n", "the value at 'aliases.fast' looks like an API key"),
    ],
)
def test_inline_secrets_are_refused_without_echoing_them(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path / "secret.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert where in message
    assert "environment variable" in message
    for secret in ("abc}", "hunter2", "sk-abcdef0123456789", "A1b2" * 12):
        assert secret not in message


def test_urls_and_variable_names_are_not_mistaken_for_secrets(tmp_path: Path) -> None:
    text = f"aliases:\n  x: openai:m@http://{'a' * 50}:8000/v1\nendpoints:\n  default: {{api_key_env: MY_KEY}}\n"
    settings = load_settings(write(tmp_path / "ok.yaml", text))
    assert settings.endpoints["default"].api_key_env == "MY_KEY"


def test_endpoint_limits_refuse_a_key_in_api_key_env() -> None:
    with pytest.raises(pydantic.ValidationError, match="NAME of an environment variable"):
        EndpointLimits(api_key_env="sk-live-123")


# --- aliases and limits ----------------------------------------------------------------------------------------


def test_aliases_resolve_through_chains_and_leave_other_refs_alone() -> None:
    settings = ModelSettings(aliases={"quick": "fast", "fast": "openai:gpt-4o-mini"})
    assert settings.resolve_alias("quick") == "openai:gpt-4o-mini"
    assert settings.resolve_alias("local") == "local"


def test_alias_cycle_is_reported() -> None:
    settings = ModelSettings(aliases={"a": "b", "b": "a"})
    with pytest.raises(ConfigError, match="model alias cycle: a -> b -> a"):
        settings.resolve_alias("a")


def test_limits_lookup_order_endpoint_then_provider_then_default_then_fallback() -> None:
    fallback = EndpointLimits(max_concurrency=1)
    by_url = EndpointLimits(max_concurrency=16)
    by_provider = EndpointLimits(max_concurrency=4)
    default = EndpointLimits(max_concurrency=2)
    settings = ModelSettings(endpoints={"http://h:1/v1": by_url, "openai": by_provider, "default": default})
    assert settings.limits_for("http://h:1/v1", "openai", fallback) is by_url
    assert settings.limits_for("http://other:1/v1", "openai", fallback) is by_provider
    assert settings.limits_for("llamacpp:/x.gguf", "llamacpp", fallback) is default
    assert ModelSettings().limits_for("llamacpp:/x.gguf", "llamacpp", fallback) is fallback
    # A server named by URL does not inherit the hosted provider's entry.
    assert settings.limits_for("http://other:1/v1", None, fallback) is default


async def test_get_model_resolves_aliases_limits_and_prices(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    settings = load_settings(write(tmp_path / "models.yaml", CONFIG))

    hosted = get_model("quick", settings=settings)
    assert hosted.reference == "openai:gpt-4o-mini"
    assert hosted.limits.rpm == 500  # provider entry
    assert hosted.price == Price(input=0.2, output=0.8)  # the file overrides the built-in price
    await hosted.aclose()

    lab = get_model("lab", settings=settings)
    assert lab.provider.endpoint == "http://10.0.0.5:8000/v1"
    assert lab.limits.max_concurrency == 16 and lab.limits.timeout_s == 300
    assert lab.price == Price(input=0, output=0)
    await lab.aclose()


def test_in_process_models_use_their_own_defaults_unless_configured() -> None:
    from agentmesh.models.providers.scripted import ScriptedModel

    model = ScriptedModel(default="x", label="scripted:limits-test")
    assert get_model(model, settings=ModelSettings()).limits == model.default_limits()
    configured = EndpointLimits(max_concurrency=3)
    # the entry sets what it names; the rest stays the model's own (its long timeout, no retries)
    own = model.default_limits().model_copy(update={"max_concurrency": 3})
    assert get_model(model, settings=ModelSettings(endpoints={"scripted": configured})).limits == own
    # a `default` entry is written for servers (a 30-s timeout would cut the embedded model's CPU-bound calls): it
    # does not reach a model in this process, which an entry under its own name still configures
    servers = ModelSettings(endpoints={"default": EndpointLimits(timeout_s=30)})
    assert get_model(model, settings=servers).limits == model.default_limits()
    local = get_model("local", settings=servers)
    assert local.limits.timeout_s == 600 and local.limits == local.provider.default_limits()
    assert get_model("openai:m@http://127.0.0.1:9/v1", settings=servers).limits.timeout_s == 30


# --- prices ------------------------------------------------------------------------------------------------------


def test_price_lookup_exact_then_longest_dated_prefix() -> None:
    table = {"gpt-4o": Price(input=1, output=2), "gpt-4o-mini": Price(input=3, output=4)}
    assert price_for("gpt-4o", table) == Price(input=1, output=2)
    assert price_for("gpt-4o-mini", table) == Price(input=3, output=4)
    assert price_for("gpt-4o-mini-2024-07-18", table) == Price(input=3, output=4)
    assert price_for("gpt-4o-2024-08-06", table) == Price(input=1, output=2)
    assert price_for("gpt-4oo", table) is None  # a prefix must end at a '-'
    assert price_for("llama-3-8b", table) is None


def test_built_in_table_has_the_common_hosted_models() -> None:
    assert price_for("gpt-4o-mini-2024-07-18", DEFAULT_PRICES) == DEFAULT_PRICES["gpt-4o-mini"]


def test_cost_is_per_million_tokens_and_none_without_a_price() -> None:
    usage = Usage(prompt_tokens=1_000, completion_tokens=500)
    assert cost_usd(Price(input=0.15, output=0.60), usage) == pytest.approx((1_000 * 0.15 + 500 * 0.60) / 1e6)
    assert cost_usd(None, usage) is None
    assert cost_usd(Price(input=0, output=0), usage) == 0.0


def test_cached_prompt_tokens_cost_the_cached_rate_and_thinking_is_output() -> None:
    usage = Usage(prompt_tokens=10_000, completion_tokens=2_000, cached_prompt_tokens=8_000, reasoning_tokens=1_500)
    price = Price(input=2.0, output=8.0, cached_input=0.5)
    assert cost_usd(price, usage) == pytest.approx((2_000 * 2.0 + 8_000 * 0.5 + 2_000 * 8.0) / 1e6)
    # without a cached rate every prompt token is billed as input
    assert cost_usd(Price(input=2.0, output=8.0), usage) == pytest.approx((10_000 * 2.0 + 2_000 * 8.0) / 1e6)
    # a server that reports more cached tokens than prompt tokens is not believed past the prompt
    odd = Usage(prompt_tokens=100, completion_tokens=0, cached_prompt_tokens=500)
    assert cost_usd(price, odd) == pytest.approx(100 * 0.5 / 1e6)
    assert DEFAULT_PRICES["gpt-4o-mini"].cached_input == 0.075
    summed = usage + Usage(prompt_tokens=1, completion_tokens=1, cached_prompt_tokens=1, reasoning_tokens=1)
    assert (summed.cached_prompt_tokens, summed.reasoning_tokens) == (8_001, 1_501)


async def test_unknown_hosted_price_is_none_not_a_guess(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    client = get_model("openai:some-future-model", settings=ModelSettings())
    assert client.price is None
    assert client.describe()["price"].startswith("unknown")
    await client.aclose()


def test_free_providers_describe_themselves_as_free() -> None:
    from agentmesh.models.providers.scripted import ScriptedModel

    client = get_model(ScriptedModel(default="x"), settings=ModelSettings())
    assert client.describe()["price"] == "free"


def test_usage_adds_and_keeps_the_estimated_flag() -> None:
    total = Usage(prompt_tokens=3, completion_tokens=4) + Usage(prompt_tokens=1, completion_tokens=1, estimated=True)
    assert (total.prompt_tokens, total.completion_tokens, total.total_tokens, total.estimated) == (4, 5, 9, True)


def test_hosted_openai_entry_does_not_apply_to_servers_named_by_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTED_KEY", "sk-hosted-" + "y" * 40)
    settings = ModelSettings(endpoints={"openai": EndpointLimits(max_concurrency=3, api_key_env="HOSTED_KEY")})
    hosted = get_model("openai:gpt-4o-mini", settings=settings)
    served = get_model("openai:qwen@http://127.0.0.1:8000/v1", settings=settings)
    assert hosted.limits.max_concurrency == 3 and hosted.describe()["api_key"] == "$HOSTED_KEY (set)"
    assert served.limits.max_concurrency == EndpointLimits().max_concurrency
    assert served.describe()["api_key"].startswith("none")
