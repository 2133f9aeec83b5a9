"""The embedded model's settings that are wrong whatever the run are configuration errors (exit 2), not model
errors of a call (exit 1): a ``sampling.extra_body`` key or ``logit_bias`` it cannot take, a file llama.cpp cannot
load. They stay :class:`ModelError` s, which the client records as the call's failure."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from agentmesh.errors import ConfigError, ModelConfigError, ModelError
from agentmesh.models.providers.llamacpp import LlamaCppProvider, _LoadedModel
from agentmesh.models.reference import parse_reference


@pytest.fixture
def provider(tmp_path: Path) -> LlamaCppProvider:
    gguf = tmp_path / "not-a-model.gguf"
    gguf.write_bytes(b"this is no GGUF file")
    return LlamaCppProvider(parse_reference(f"llamacpp:{gguf}"))


def test_an_extra_body_key_llama_cpp_does_not_take_is_a_configuration_error(provider: LlamaCppProvider) -> None:
    with pytest.raises(ModelConfigError, match=r"sampling\.extra_body key 'chat_template_kwargs' is not a llama"):
        provider._extra({"chat_template_kwargs": {"enable_thinking": False}})


def test_a_logit_bias_that_is_no_mapping_of_numbers_is_a_configuration_error(provider: LlamaCppProvider) -> None:
    with pytest.raises(ModelConfigError, match=r"logit_bias must map token ids to numbers") as caught:
        provider._extra({"logit_bias": {"two": "much"}})
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, ModelError)


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="needs llama-cpp-python")
def test_a_file_llama_cpp_cannot_load_is_a_configuration_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"GGUF but not really" * 10)
    with pytest.raises(ModelConfigError, match=r"llama\.cpp could not load .*garbage\.gguf.*is it a GGUF model file"):
        _LoadedModel(garbage, 512, False)
