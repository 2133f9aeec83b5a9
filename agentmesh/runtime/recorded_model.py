"""``replay:<run-id>``: a model that answers with the calls a stored run recorded.

Where ``agentmesh replay`` re-executes a run's own graph, this is a model reference like any other, so the
recorded answers can feed *another* graph or a changed one (other parsers, votes, stop policies, scores) without a
single model call: ``agentmesh run my_graph.yaml -i ... -m replay:3f2a``. A call is answered by the recorded call
at the same place in the run -- node, agent, round, call index, as resume and replay key them -- when its prompt is
the recorded one (same request hash); else by any recorded call with exactly the same request. A prompt the run
never sent is an error naming the place and, when the run made a call there, the prompt diff: an answer to another
question is never served. The new run records every call it is served, at no cost, so it stands on its own.

The recorded run is read from the store the new run writes to (``agentmesh run --db``, ``arun(store=...)``), else
from the default store (``$AGENTMESH_DB``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentmesh._text import counted
from agentmesh.errors import NotRecordedError
from agentmesh.models import ModelClient, get_model
from agentmesh.models.messages import CallContext, ModelRequest, ProviderResult
from agentmesh.models.providers.base import Provider
from agentmesh.models.reference import ModelReference
from agentmesh.models.registry import register_provider
from agentmesh.models.settings import EndpointLimits
from agentmesh.runtime.recorded_calls import CallKey, RecordedCall, index_recorded, prompt_diff

# The store (SQLAlchemy) is imported when a replay: model is made: registering the provider, which every first
# lookup in a registry does (agentmesh._builtins), needs none of it.
if TYPE_CHECKING:
    from agentmesh.store import Store


class RecordedModel(Provider):
    """Answers from the model calls of one stored run (see the module docstring)."""

    name = "replay"
    free = True
    in_process = True

    def __init__(self, store: Store, run: str) -> None:
        record = store.get_run(run)  # a unique prefix will do; RunNotFoundError names the store otherwise
        self.run_id = record.id
        self._model = record.model or "unknown"
        self._calls, self._by_hash = index_recorded(store, record.id)
        self._count = len({id(call) for call in (*self._calls.values(), *self._by_hash.values())})

    def default_limits(self) -> EndpointLimits:
        """No slot limit or retry: answers come from memory."""
        return EndpointLimits(max_concurrency=1_000_000, timeout_s=3600.0, max_retries=0)

    @property
    def endpoint(self) -> str:
        return f"replay:{self.run_id}"

    @property
    def model_name(self) -> str:
        return self._model

    def describe(self) -> dict[str, str]:
        return {**super().describe(), "recorded calls": str(self._count)}

    async def complete(self, request: ModelRequest, context: CallContext) -> ProviderResult:
        request_hash = request.request_hash()
        key: CallKey | None = None
        if context.node is not None and context.agent is not None:
            key = (context.node, context.agent, context.round or 0, context.call_index or 0)
        at_place = self._calls.get(key) if key is not None else None
        found = at_place if at_place is not None and at_place.request_hash == request_hash else None
        found = found or self._by_hash.get(request_hash)
        if found is None:
            raise NotRecordedError(self._missing(key, at_place, request), run_id=self.run_id)
        response = found.response
        return ProviderResult(model=response.model, choices=list(response.choices), usage=response.usage)

    def _missing(self, key: CallKey | None, at_place: RecordedCall | None, request: ModelRequest) -> str:
        where = "this call" if key is None else f"node {key[0]!r}, agent {key[1]!r}, round {key[2]}, call {key[3]}"
        if at_place is not None:
            return (
                f"replay:{self.run_id[:12]}: {where}: the prompt differs from the one the run recorded there, and the "
                f"run never sent this one (a recorded answer is served only to its own prompt)\n"
                f"{prompt_diff(at_place.event.request, request)}"
            )
        return (
            f"replay:{self.run_id[:12]}: {where}: the run recorded no call there and never sent this prompt "
            f"({counted(self._count, 'recorded call')})"
        )


@register_provider("replay")
def _replay(ref: ModelReference, limits: EndpointLimits, options: dict[str, Any]) -> Provider:
    from agentmesh.store import Store

    store = options.get("store")
    if isinstance(store, Store):
        return RecordedModel(store, ref.target)
    with Store(store if isinstance(store, str) else None) as opened:
        return RecordedModel(opened, ref.target)


def reads_a_run(ref: str | Provider | ModelClient) -> bool:
    """Whether ``ref`` is a ``replay:<run-id>`` reference, which needs the store its run is in."""
    return isinstance(ref, str) and ref.strip().startswith("replay:")


def model_for(ref: str | Provider | ModelClient, store: Store | str | None) -> ModelClient:
    """:func:`~agentmesh.models.get_model`, where a ``replay:<run-id>`` reference reads the run from ``store`` (a
    store or its URL) -- the store the new run is written to -- rather than the default one."""
    if reads_a_run(ref) and store is not None:
        return get_model(ref, store=store)
    return get_model(ref)
