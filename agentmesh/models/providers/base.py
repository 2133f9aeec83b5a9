"""The provider interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from agentmesh.models.messages import CallContext, ModelRequest, ProviderResult
from agentmesh.models.settings import EndpointLimits


class Provider(ABC):
    """Answers one attempt of a model call.

    A provider raises :class:`~agentmesh.errors.ModelError` subclasses only, marking transient failures
    ``retryable``; it never retries by itself (the client does, with one policy for all providers).
    """

    name: ClassVar[str]
    #: Calls are free (local, scripted, replayed): cost is 0 rather than unknown.
    free: ClassVar[bool] = False
    #: Answers in this process, with no server (embedded, scripted, replayed): the settings' ``default`` endpoint
    #: entry, written for servers (a 30-s timeout, say), does not apply; an entry under its endpoint or provider
    #: name (``llamacpp``, ``scripted``) does.
    in_process: ClassVar[bool] = False

    def default_limits(self) -> EndpointLimits:
        """Limits used when the settings name none for this endpoint."""
        return EndpointLimits()

    @property
    @abstractmethod
    def endpoint(self) -> str:
        """Key under which limits are shared: a base URL, a model file, or a scripted file."""

    @property
    @abstractmethod
    def model_name(self) -> str:
        """The model name as the server or engine knows it (used for prices)."""

    @abstractmethod
    async def complete(self, request: ModelRequest, context: CallContext) -> ProviderResult:
        """Make one attempt and return its choices and, when the backend reports it, usage."""

    def use_limits(self, limits: EndpointLimits) -> None:  # noqa: B027 - most providers take none of them
        """Take what of the endpoint's limits (its entry of config.yaml) concerns the provider itself, such as an
        in-process model's ``n_ctx``; called by the :class:`~agentmesh.models.client.ModelClient` wrapping it, which
        keeps the rest (slots, rates, timeout, retries). The default takes nothing."""

    async def aclose(self) -> None:  # noqa: B027 - most providers hold nothing to close
        """Release connections; the default has nothing to release."""

    def describe(self) -> dict[str, str]:
        """What this provider resolves to, for ``agentmesh models``; never includes a secret."""
        return {"provider": self.name, "model": self.model_name, "endpoint": self.endpoint}
