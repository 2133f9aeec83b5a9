"""The exit status of a command that ended with an :class:`~agentmesh.errors.AgentmeshError`: the one place that
decides it (:func:`error_exit_code`).

Every error used to exit 2, so a script could not tell a mistyped command from a run whose model server went down
mid-way: both said "2", while a batch with a failed item said 1. The convention now:

* **2 -- the command as given cannot work**: a usage error, a bad setting or file (:class:`ConfigError`,
  :class:`SpecError` and their kin, among them :class:`ModelConfigError`: a model's setting wrong whatever the run,
  such as ``$AGENTMESH_LLAMA_THREADS`` or a ``sampling.extra_body`` key the embedded model does not take), a model
  reference that does not resolve (malformed, unknown provider, missing API key or optional extra, a key the server
  refuses, a model the server does not serve), a run, batch or target
  set that does not exist, a database whose schema needs ``agentmesh db upgrade``, a store refusing what was asked
  (a run already there, a running run not deleted). Running the same command again fails alike: fix it first.
* **1 -- the work was attempted and failed**: a run's own failure (:class:`RunError`, a replay that diverged), a
  model call failing at run time (server error, timeout, a prompt too long, a scripted model out of rules), the
  sandbox failing, the database failing to store the work (:class:`DatabaseFailedError`: a full disk, a read-only
  file), a run deleted while it ran, and any error not named here. Such runs are stored and resumable, and a batch
  with a failed item exits 1 too (:func:`agentmesh.cli.batch.run_many`).

Usage errors click itself finds (an unknown option) exit 2 as well, by click; Ctrl-C 130, a signal 128 + its
number (:mod:`agentmesh.cli.app`).
"""

from __future__ import annotations

from agentmesh.errors import (
    AgentmeshError,
    AuthenticationError,
    ConfigError,
    DatabaseFailedError,
    InvalidModelReferenceError,
    MissingAPIKeyError,
    MissingExtraError,
    ModelNotFoundError,
    RunDeletedError,
    StoreError,
    UnknownProviderError,
)

#: Exit status of a command that cannot work as given.
USAGE = 2
#: Exit status of a command whose work was attempted and failed.
FAILED = 1

#: Model errors that say the model reference itself cannot work, whatever the run: fixing the command is the cure.
_UNUSABLE_MODEL = (
    UnknownProviderError,
    InvalidModelReferenceError,
    MissingAPIKeyError,
    MissingExtraError,
    AuthenticationError,
    ModelNotFoundError,
)


def error_exit_code(exc: AgentmeshError) -> int:
    """:data:`USAGE` (2) when ``exc`` says the command as given cannot work, :data:`FAILED` (1) when it says the
    work was attempted and failed; see the module's docstring for the convention, class by class.

    Ordered from the narrowest class: a :class:`DatabaseFailedError` and a :class:`RunDeletedError` are
    :class:`StoreError` s (the first a failure of the database, the second a :class:`RunNotFoundError` that came
    about while the run ran), yet failures of the work, not of the command."""
    if isinstance(exc, DatabaseFailedError | RunDeletedError):
        return FAILED
    if isinstance(exc, (ConfigError, StoreError, *_UNUSABLE_MODEL)):
        return USAGE
    return FAILED  # RunError, the other ModelErrors, SandboxError, BudgetExhausted, a plugin's own errors
