"""From a model reference string to a ready :class:`~agentmesh.models.client.ModelClient`.

Built-in providers are imported only when a reference names them, so ``import agentmesh`` stays light and a
missing optional dependency (llama-cpp-python) only matters to whoever asks for ``local``. Users add providers
with :func:`register_provider`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from agentmesh._builtins import is_shipped, load_builtins
from agentmesh.errors import ConfigError, UnknownProviderError
from agentmesh.models.client import CallObserver, ModelClient
from agentmesh.models.pricing import DEFAULT_PRICES, price_for
from agentmesh.models.providers.base import Provider
from agentmesh.models.reference import ModelReference, parse_reference
from agentmesh.models.settings import EndpointLimits, ModelSettings, load_settings

ProviderFactory = Callable[[ModelReference, EndpointLimits, dict[str, Any]], Provider]
"""Builds a provider from the parsed reference, the endpoint's limits and extra options (``api_key_env``)."""

_factories: dict[str, ProviderFactory] = {}
_lock = threading.Lock()


def register_provider(name: str) -> Callable[[ProviderFactory], ProviderFactory]:
    """Decorator: make ``<name>:<target>`` references resolve through ``factory``."""

    def decorate(factory: ProviderFactory) -> ProviderFactory:
        if not is_shipped(factory):
            load_builtins()  # the runtime's replay provider, loaded later, would replace a user's of that name
        with _lock:
            _factories[name] = factory
        return factory

    return decorate


def _openai(ref: ModelReference, limits: EndpointLimits, options: dict[str, Any]) -> Provider:
    from agentmesh.models.providers.openai_compat import OpenAICompatProvider

    return OpenAICompatProvider(
        ref, limits, api_key_env=options.get("api_key_env"), require_key=options.get("require_key", True)
    )


def _llamacpp(ref: ModelReference, limits: EndpointLimits, options: dict[str, Any]) -> Provider:
    from agentmesh.models.providers.llamacpp import LlamaCppProvider

    return LlamaCppProvider(ref, n_ctx=options.get("n_ctx"))


def _scripted(ref: ModelReference, limits: EndpointLimits, options: dict[str, Any]) -> Provider:
    from agentmesh.models.providers.scripted import ScriptedModel

    return ScriptedModel.from_yaml(ref.target)


for _name, _factory in (
    ("openai", _openai),
    ("llamacpp", _llamacpp),
    ("local", _llamacpp),
    ("scripted", _scripted),
):
    register_provider(_name)(_factory)


def providers() -> list[str]:
    """Names of the registered providers (the runtime's ``replay`` one included: see :mod:`agentmesh._builtins`)."""
    load_builtins()
    with _lock:
        return sorted(_factories)


def _endpoint_key(ref: ModelReference) -> str:
    if ref.base_url:
        return ref.base_url
    if ref.provider == "openai":
        return "https://api.openai.com/v1"
    return f"{ref.provider}:{ref.target}"


def get_model(
    ref: str | Provider | ModelClient,
    *,
    settings: ModelSettings | None = None,
    api_key_env: str | None = None,
    observers: Sequence[CallObserver] = (),
    **options: Any,
) -> ModelClient:
    """Resolve ``ref`` (a reference string, an alias, a provider or a client) to a :class:`ModelClient`.

    A hosted model whose key variable is not set is an error here, before any run starts. ``require_key=False``
    resolves it anyway, for describing what a reference resolves to (``agentmesh models``: the key variable and
    that it is not set, with the limits and price); its calls then fail with that error.
    """
    if not isinstance(ref, str | Provider | ModelClient):
        # (``model=42``, ``model=None`` passed on, a class instead of an instance) would otherwise fail deep in
        # the reference parser with an AttributeError naming neither the argument nor what it takes
        raise ConfigError(
            f"model: expected a reference string (such as 'local', 'openai:gpt-4o-mini' or 'scripted:file.yaml'), "
            f"a Provider (such as a ScriptedModel) or a ModelClient, got {type(ref).__name__} {ref!r:.80}",
            model=repr(ref)[:80],
        )
    if isinstance(ref, ModelClient):
        for observer in observers:
            ref.add_observer(observer)
        return ref
    settings = settings if settings is not None else load_settings()
    if isinstance(ref, Provider):
        limits = settings.limits_for(ref.endpoint, ref.name, ref.default_limits(), use_default=not ref.in_process)
        return ModelClient(ref, limits=limits, observers=observers)
    parsed = parse_reference(settings.resolve_alias(ref))
    with _lock:
        factory = _factories.get(parsed.provider)
    if factory is None:  # ``replay:`` is the runtime's, registered on first use
        load_builtins()
        with _lock:
            factory = _factories.get(parsed.provider)
    if factory is None:
        raise UnknownProviderError(
            f"unknown model provider {parsed.provider!r} in {ref!r}; known: {', '.join(providers())} "
            "(or register one with agentmesh.models.register_provider)",
            reference=ref,
        )
    by_provider = None if parsed.base_url else parsed.provider
    configured = settings.limits_for(_endpoint_key(parsed), by_provider, EndpointLimits())
    if api_key_env:
        options["api_key_env"] = api_key_env
    provider = factory(parsed, configured, options)
    limits = settings.limits_for(
        provider.endpoint, by_provider, provider.default_limits(), use_default=not provider.in_process
    )
    price = None if provider.free else price_for(provider.model_name, {**DEFAULT_PRICES, **settings.prices})
    return ModelClient(provider, reference=parsed.raw, limits=limits, price=price, observers=observers)
