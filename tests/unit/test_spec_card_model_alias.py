"""A card's ``model:`` may be an alias of the machine's settings (``aliases:`` in config.yaml), as the graph's own
``model:`` may: the card check refused ``model: lab`` ("has no provider prefix") though the runtime resolves a card's
model through the aliases like the run's. An alias the machine does not have is refused when the run starts,
before it is stored (the run's check of its cards' models), naming the agent."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentmesh.errors import ConfigError, SpecError
from agentmesh.models import ScriptedModel
from agentmesh.models.reference import may_be_alias
from agentmesh.models.settings import CONFIG_ENV
from agentmesh.runtime import run
from agentmesh.spec import graph_from_data
from agentmesh.store import Store


def _graph(model: str) -> dict[str, object]:
    return {
        "name": "alias_card",
        "agents": {"lead": {"prompt": "Say hi.", "model": model}, "other": {"prompt": "Say bye."}},
        "nodes": {"a": {"op": "call", "agent": "lead"}, "b": {"op": "call", "agent": "other"}},
        "edges": [["b", "a"]],
        "output": "a",
    }


def test_may_be_alias_is_a_bare_word_other_than_local() -> None:
    assert [may_be_alias(r) for r in ("lab", "my-lab_2", "local", "", " ", "openai:x", "two words")] == [
        True,
        True,
        False,
        False,
        False,
        False,
        False,
    ]


def test_a_card_naming_an_alias_runs_on_the_aliased_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "lab.yaml"
    script.write_text("default: from the lab\n", encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(f"aliases:\n  lab: scripted:{script}\n", encoding="utf-8")
    monkeypatch.setenv(CONFIG_ENV, str(config))
    spec = graph_from_data(_graph("lab"))
    assert spec.agents["lead"].model == "lab"
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    result = run(spec, {}, model=ScriptedModel([], default="from the run's model"), store=db)
    assert result.outputs["a"]["text"] == "from the lab"
    assert result.outputs["b"]["text"] == "from the run's model"


def test_an_alias_the_machine_does_not_have_is_refused_before_the_run_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("aliases: {}\n", encoding="utf-8")
    monkeypatch.setenv(CONFIG_ENV, str(config))
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    with pytest.raises(ConfigError, match=r"agent 'lead' \(model lab\)"):
        run(graph_from_data(_graph("lab")), {}, model=ScriptedModel([], default="x"), store=db)
    with Store(db) as store:
        assert store.list_runs() == []


def test_a_malformed_card_model_is_still_refused_at_load() -> None:
    with pytest.raises(SpecError, match=r"agents\.lead\.model: .*opnai"):
        graph_from_data(_graph("opnai:gpt-4o"))
    with pytest.raises(SpecError, match=r"agents\.lead\.model"):
        graph_from_data(_graph("local:qwen"))
