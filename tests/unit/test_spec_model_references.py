"""Model references in a spec (a card's ``model``, the graph's ``model``) are checked when the spec loads.

A card's model was resolved only at its first call, so ``opnai:gpt-4o`` failed the run there, after the calls of
every node before it; the graph's ``model`` was not checked at all (``openai:`` failed when the run started).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from agentmesh._builtins import is_shipped
from agentmesh.errors import SpecError
from agentmesh.models import registry
from agentmesh.spec import graph_from_data, load_graph
from agentmesh.spec.loader import stored_graph
from tests._cli import run_cli

REPO = Path(__file__).resolve().parents[2]

GRAPH = textwrap.dedent(
    """\
    name: g
    inputs:
      q: {type: string}
    agents:
      solver:
        prompt: "{{ q }}"
        model: openai:gpt-4o-mini
    nodes:
      solve: {op: call, agent: solver}
    """
)


@pytest.fixture(autouse=True)
def _only_shipped_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The providers agentmesh ships, without those other test modules registered in this process."""
    registry.providers()  # (the runtime's replay registered first)
    shipped = {name: factory for name, factory in registry._factories.items() if is_shipped(factory)}
    monkeypatch.setattr(registry, "_factories", shipped)


def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "g.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_graph(path)
    return str(info.value)


def test_a_cards_misspelt_provider_is_refused_with_its_line_and_the_likely_one(tmp_path: Path) -> None:
    message = _error(tmp_path, GRAPH.replace("model: openai:gpt-4o-mini", "model: opnai:gpt-4o"))
    assert message.endswith(
        "g.yaml:7: agents.solver.model: unknown model provider 'opnai' in 'opnai:gpt-4o'; did you mean 'openai'? "
        "known providers: llamacpp, local, openai, replay, scripted (a provider of yours: register it with "
        "agentmesh.models.register_provider in a module that agentmesh --import loads)"
    ), message


def test_the_graphs_own_model_is_checked_as_a_cards_is(tmp_path: Path) -> None:
    message = _error(tmp_path, GRAPH.replace("name: g\n", "name: g\nmodel: opnai:gpt-4o\n"))
    assert "g.yaml:2: model: unknown model provider 'opnai' in 'opnai:gpt-4o'; did you mean 'openai'?" in message
    message = _error(tmp_path, GRAPH.replace("name: g\n", "name: g\nmodel: 'openai:'\n"))
    assert message.endswith("g.yaml:2: model: model reference 'openai:' names no model after 'openai:'"), message
    message = _error(tmp_path, GRAPH.replace("name: g\n", "name: g\nmodel: ''\n"))
    assert "g.yaml:2: model: empty model reference; expected e.g. 'local'" in message


def test_a_card_without_a_model_is_still_refused_for_its_syntax(tmp_path: Path) -> None:
    message = _error(tmp_path, GRAPH.replace("model: openai:gpt-4o-mini", "model: 'openai:'"))
    assert "g.yaml:7: agents.solver.model: model reference 'openai:' names no model after 'openai:'" in message


@pytest.mark.parametrize(
    "model",
    ["local", "openai:gpt-4o-mini", "openai:qwen@http://127.0.0.1:8000/v1", "scripted:s.yaml", "replay:abc", "lab"],
)
def test_references_to_known_providers_and_aliases_load(model: str, tmp_path: Path) -> None:
    """(A graph's ``model`` without a provider may be an alias of the settings of the machine it runs on.)"""
    path = tmp_path / "g.yaml"
    path.write_text(GRAPH.replace("name: g\n", f"name: g\nmodel: '{model}'\n"))
    assert load_graph(path).model == model


def test_a_misspelt_provider_in_a_card_file_names_the_card_file(tmp_path: Path) -> None:
    (tmp_path / "cards").mkdir()
    (tmp_path / "cards" / "solver.yaml").write_text("prompt: '{{ q }}'\nmodel: llamacp:/m.gguf\n")
    text = GRAPH.replace(
        '  solver:\n    prompt: "{{ q }}"\n    model: openai:gpt-4o-mini\n', "  solver: cards/solver.yaml\n"
    )
    message = _error(tmp_path, text)
    assert message.endswith(
        "g.yaml:5: agents.solver.model: unknown model provider 'llamacp' in 'llamacp:/m.gguf'; did you mean "
        "'llamacpp'? known providers: llamacpp, local, openai, replay, scripted (a provider of yours: register it "
        "with agentmesh.models.register_provider in a module that agentmesh --import loads) (in card file "
        "cards/solver.yaml:2)"
    ), message


def test_a_registered_provider_is_known(monkeypatch: pytest.MonkeyPatch) -> None:
    data: dict[str, Any] = {
        "name": "g",
        "agents": {"a": {"prompt": "hi", "model": "qa_mine:m"}},
        "nodes": {"n": {"op": "call", "agent": "a"}},
    }
    with pytest.raises(SpecError, match=r"agents\.a\.model: unknown model provider 'qa_mine' in 'qa_mine:m'"):
        graph_from_data(data)
    monkeypatch.setitem(registry._factories, "qa_mine", lambda ref, limits, options: None)  # type: ignore[arg-type,return-value]
    assert graph_from_data(data).agents["a"].model == "qa_mine:m"


def test_a_stored_spec_naming_a_provider_not_registered_now_still_reads() -> None:
    """A run's stored spec is read back to show or export the run: the module that registered its provider need
    not be imported for that."""
    data = {
        "name": "g",
        "model": "qa_gone:m",
        "agents": {"a": {"prompt": "hi", "model": "qa_gone:m"}},
        "nodes": {"n": {"op": "call", "agent": "a"}},
    }
    assert stored_graph(data, "r1").agents["a"].model == "qa_gone:m"
    with pytest.raises(SpecError, match="unknown model provider 'qa_gone'"):
        graph_from_data(data)


def test_graph_validate_reports_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(GRAPH.replace("model: openai:gpt-4o-mini", "model: opnai:gpt-4o"))
    code, _, err = run_cli(["graph", "validate", str(path)], capsys, monkeypatch)
    assert code == 2
    assert "g.yaml:7: agents.solver.model: unknown model provider 'opnai'" in " ".join(err.split()), err


def test_graph_validate_knows_a_provider_that_an_imported_module_registers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = tmp_path / "qa_provider_plugin.py"
    plugin.write_text(
        "from agentmesh.models import register_provider\n\n\n"
        "@register_provider('qa_lab')\n"
        "def lab(ref, limits, options):\n"
        "    raise NotImplementedError\n"
    )
    path = tmp_path / "g.yaml"
    path.write_text(GRAPH.replace("model: openai:gpt-4o-mini", "model: qa_lab:m"))
    code, _, err = run_cli(["graph", "validate", str(path)], capsys, monkeypatch)
    assert code == 2 and "unknown model provider 'qa_lab'" in err
    code, out, err = run_cli(["--import", str(plugin), "graph", "validate", str(path)], capsys, monkeypatch)
    assert code == 0 and "graph g, 1 node, 1 agent" in out, err


def test_graph_validate_checks_providers_without_importing_them(tmp_path: Path) -> None:
    """Knowing the providers' names imports none of them (the openai SDK, llama-cpp-python, LangGraph)."""
    path = tmp_path / "g.yaml"
    path.write_text(GRAPH.replace("name: g\n", "name: g\nmodel: local\n"))
    probe = (
        "import sys\n"
        f"sys.argv = ['agentmesh', 'graph', 'validate', {str(path)!r}]\n"
        "from agentmesh.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print('HEAVY', sorted({m.split('.')[0] for m in sys.modules} & {'openai', 'llama_cpp', 'langgraph'}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMESH_")}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False, env=env, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert "graph g, 1 node, 1 agent" in done.stdout and "HEAVY []" in done.stdout, done.stdout + done.stderr
