"""The embedded model's filter of llama.cpp's log (agentmesh.models.providers.llamacpp._quiet_rollback_log)."""

from __future__ import annotations

import importlib.util

import pytest

from agentmesh.models.providers import llamacpp

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed (agentmesh[local])"
)


def test_a_binding_without_the_log_hook_keeps_its_log_and_still_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """llama-cpp-python >= 0.3.8 is allowed: a version that renamed its log callback must not stop models loading
    (the filter is a nicety), and nothing is installed in its place."""
    from llama_cpp import _logger

    monkeypatch.setattr(llamacpp, "_log_filter", None)
    monkeypatch.delattr(_logger, "llama_log_callback")
    llamacpp._quiet_rollback_log()
    assert llamacpp._log_filter is None


def test_the_rollback_line_is_dropped_and_other_lines_are_forwarded(monkeypatch: pytest.MonkeyPatch) -> None:
    import llama_cpp
    from llama_cpp import _logger

    seen: list[bytes] = []
    monkeypatch.setattr(llamacpp, "_log_filter", None)
    monkeypatch.setattr(_logger, "llama_log_callback", lambda level, text, data: seen.append(text))
    installed: list[object] = []
    monkeypatch.setattr(llama_cpp, "llama_log_set", lambda callback, data: installed.append(callback))
    llamacpp._quiet_rollback_log()
    (callback,) = installed
    callback(3, b"decode: removing memory module entries for seq_id = 0, pos = [512, +inf)\n", None)
    callback(3, b"llama_model_load: error loading model\n", None)
    assert seen == [b"llama_model_load: error loading model\n"]
