"""What a node's tooltip says of its parameters, in ``graph show --svg`` and the run report (which draws the same
graph): a setting written with its defaults read ``stop: {'consensus': {}}`` or ``ratings: {}``."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from agentmesh.runtime.arguments import builtin_graphs_dir
from agentmesh.spec import load_graph
from agentmesh.spec.graph import GraphSpec
from agentmesh.viz import graph_svg
from tests._cli import run_cli

SVG = "{http://www.w3.org/2000/svg}"
GRAPHS = Path(__file__).parent.parent / "data" / "graphs"


def tooltip(spec: GraphSpec, node: str) -> list[str]:
    root = ET.fromstring(graph_svg(spec))
    group = next(g for g in root.iter(f"{SVG}g") if g.get("id") == f"node-{node}")
    return (group.findtext(f"{SVG}title") or "").splitlines()


def test_settings_written_with_their_defaults_say_what_they_take() -> None:
    """dylan_mmlu writes ``ratings: {}`` and ``stop: {consensus: {}}``: the tooltip says the rule and the values."""
    lines = tooltip(load_graph(builtin_graphs_dir() / "dylan_mmlu.yaml"), "dylan")
    assert "stop: consensus (> 0.667 of active agents agree)" in lines
    assert "  = {consensus: {fraction: 0.6667, strict: true, min_agents: 2}}" in lines  # every setting it takes
    assert "ratings: {non_integer: zero} (defaults)" in lines
    assert not any(line.endswith("{}") or "{}" in line for line in lines), lines


def test_values_read_as_the_spec_writes_them() -> None:
    """YAML's words and quoting, not Python's reprs (``['debater', ...]``, ``False``, ``None``)."""
    lines = tooltip(load_graph(builtin_graphs_dir() / "debate.yaml"), "debate")
    assert "agents: [debater, debater, debater]" in lines and "include_self: false" in lines
    lines = tooltip(load_graph(builtin_graphs_dir() / "dylan_code.yaml"), "importance")
    assert "args: {source: dylan, answer_from: null}" in lines
    refusal = load_graph(builtin_graphs_dir() / "alu_output_filter.yaml")
    args = next(line for line in tooltip(refusal, "filter") if line.startswith("args: "))
    assert yaml.safe_load(args.removeprefix("args: ")) == refusal.nodes["filter"].params.model_dump()["args"]


def test_a_composite_stop_rule_and_a_condition_are_in_words() -> None:
    """The words leave out min_agents; the settings after them do not."""
    spec = load_graph(GRAPHS / "branch_loop.yaml")
    lines = tooltip(spec, "refine")
    assert "until: consensus (> 0.5 of active agents agree) or max rounds (3)" in lines
    assert "  = {any: [{consensus: {fraction: 0.5, strict: true, min_agents: 1}}, {max_rounds: 3}]}" in lines
    assert "condition: inputs.hard and inputs.question|length > 3" in tooltip(spec, "gate")


def test_graph_show_says_which_values_a_setting_written_with_its_defaults_takes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``agentmesh graph show dylan_mmlu``'s parameters column read ``ratings: {}``, as the tooltip did."""
    monkeypatch.setenv("COLUMNS", "220")
    code, out, err = run_cli(["graph", "show", "dylan_mmlu"], capsys, monkeypatch)
    assert code == 0, err
    assert "ratings: {non_integer: zero} (defaults)" in out and "ratings: {}" not in out
