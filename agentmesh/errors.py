"""One exception root for everything agentmesh raises on purpose.

Errors are types that carry context (which model reference, which endpoint, which run), so that a user can act
on them and a caller can catch a family (``except ModelError``) instead of matching strings. Every message
says what went wrong, where, and what was expected; none of them ever contains a secret.
"""

from __future__ import annotations

from typing import Any


class AgentmeshError(Exception):
    """Root of every error agentmesh raises deliberately.

    ``context`` holds the structured facts (graph, node, agent, round, URL, ...) that the message is built
    from, so programs can inspect them without parsing text.
    """

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context: dict[str, Any] = {k: v for k, v in context.items() if v is not None}

    def __str__(self) -> str:
        return self.message


# --- configuration and input --------------------------------------------------------------------------


class ConfigError(AgentmeshError):
    """A setting, environment variable or file the user supplied is invalid."""


class SpecError(ConfigError):
    """An agent card or graph spec is invalid; raised at load time, before any model call.

    ``context`` carries ``file``, ``line``, ``field`` (a dotted path such as ``nodes.debate.rounds``) and
    ``expected``; the message reads ``graphs/debate.yaml:12: nodes.debate.rounds: expected ..., got ...``.
    """


# --- models -----------------------------------------------------------------------------------------------


class ModelError(AgentmeshError):
    """Base for failures of a model call or of resolving a model reference.

    ``retryable`` says whether the client's retry policy may try the call again (timeouts, 429, 5xx, dropped
    connections, garbled bodies); ``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one.
    """

    retryable: bool = False

    def __init__(self, message: str, *, retry_after: float | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.retry_after = retry_after


class UnknownProviderError(ModelError):
    """The model reference names a provider agentmesh does not have."""


class InvalidModelReferenceError(ModelError):
    """The model reference string is malformed."""


class MissingAPIKeyError(ModelError):
    """The environment variable that should hold the API key is not set (its *name* is in the message)."""


class ServerUnreachableError(ModelError):
    """The model server could not be reached (connection refused, reset, DNS); the URL is in the message."""

    retryable = True


class ModelTimeoutError(ModelError):
    """The server took longer than the endpoint's ``timeout_s`` to answer."""

    retryable = True


class RateLimitedError(ModelError):
    """The server answered 429 Too Many Requests."""

    retryable = True


class ServerError(ModelError):
    """The server answered 5xx."""

    retryable = True


class ModelNotFoundError(ModelError):
    """The server answered but does not serve the requested model (or the GGUF file does not exist)."""


class ContextLengthError(ModelError):
    """The prompt plus the requested completion does not fit the model's context window."""


class ModelRequestError(ModelError):
    """The server rejected the request (4xx other than 404/429); ``context['status']`` holds the HTTP code."""


class AuthenticationError(ModelError):
    """The server refused the API key (401/403); the message names the variable the key came from."""


class MalformedResponseError(ModelError):
    """The server answered with something that is not a valid chat completion (often a proxy's error page)."""

    retryable = True


class ScriptExhaustedError(ModelError):
    """A scripted model was asked for a call that no rule (or no remaining response) covers."""


class ScriptIncompleteError(ModelError):
    """``ScriptedModel.assert_complete()`` found rules that were expected to be used but were not."""


class NotRecordedError(ModelError):
    """A ``replay:<run-id>`` model was asked for a call its run never made (or made with another prompt)."""


class MissingExtraError(ModelError):
    """An optional dependency is needed for this provider; the message names the pip extra to install."""


class ModelConfigError(ModelError, ConfigError):
    """A model's setting that is wrong whatever the run: ``$AGENTMESH_LLAMA_THREADS`` not a whole number, a
    ``sampling.extra_body`` key or value the embedded model has no use for, a GGUF file llama.cpp cannot load. The
    user must fix it before anything can work, so it is a :class:`ConfigError` (the command exits 2, not 1 as for
    a call that failed); it is a :class:`ModelError` too, as a model call raises it: the client records it as the
    call's failure, and callers catching model errors (``except ModelError``) still catch it."""


# --- store ------------------------------------------------------------------------------------------------


class StoreError(AgentmeshError):
    """Base for store failures (bad URL, schema too new, missing run)."""


class DatabaseFailedError(StoreError):
    """The database itself failed a statement while agentmesh used it (a full disk, a read-only file, a lost
    connection): not a refusal of what was asked, but work that could not be stored. ``context['url']`` names the
    database (password masked); ``context['lasting']``, when set, says why every later write would fail too (a
    batch then stops starting new lines)."""


class RunNotFoundError(StoreError):
    """No run with this id (or id prefix) exists in the store."""


class BatchNotFoundError(StoreError):
    """No batch (``run --input-file``'s runs, tagged with its id) has this id or id prefix in the store."""


class JobNotFoundError(StoreError):
    """No job (the runs of ``optimize``, ``calibrate`` or ``eval``, tagged with the job id they print) has this id or
    id prefix in the store."""


class RunDeletedError(RunNotFoundError):
    """A run was deleted (``agentmesh delete --force``) while its process was still running it: its end cannot be
    stored, and what it wrote after the deletion was removed. A :class:`RunNotFoundError`, as the run is gone."""


class SchemaVersionError(StoreError):
    """The database or a persisted record has a schema version this agentmesh cannot read."""
