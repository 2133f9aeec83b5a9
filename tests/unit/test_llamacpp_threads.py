"""The embedded model's thread count: every CPU this process may use, unless told (a Ray worker is told its share)."""

from __future__ import annotations

import os

import pytest

from agentmesh.errors import ConfigError, ModelConfigError, ModelError
from agentmesh.models.providers.llamacpp import THREADS_ENV, llama_threads


def test_threads_default_to_the_cpus_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert llama_threads() == len(os.sched_getaffinity(0))


def test_threads_are_taken_from_the_environment_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THREADS_ENV, "1")
    assert llama_threads() == 1
    for bad in ("0", "two", "-3", "1.5"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(ModelError, match=rf"\$AGENTMESH_LLAMA_THREADS must be a whole number .* got '{bad}'"):
            llama_threads()


def test_a_wrong_thread_count_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A setting the user must fix (exit 2), not a model call that failed (exit 1); still a ModelError, which the
    client records as the call's failure."""
    monkeypatch.setenv(THREADS_ENV, "two")
    with pytest.raises(ModelConfigError) as caught:
        llama_threads()
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, ModelError)
