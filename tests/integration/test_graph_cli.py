"""``agentmesh graph schema | validate | show`` through the real entry point (``main``)."""

from __future__ import annotations

import importlib
import json
import shutil
import struct
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import yaml

from agentmesh.runtime.arguments import builtin_graphs, builtin_graphs_dir
from agentmesh.spec import load_graph
from agentmesh.viz import graph_mermaid, graph_svg
from tests._cli import run_cli

GRAPHS = Path(__file__).parent.parent / "data" / "graphs"
VALID = ["debate", "branch_loop", "loop_one", "escapes"]


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)


# --- schema ----------------------------------------------------------------------------------------------------


def test_schema_is_json_schema_that_accepts_the_specs(capsys, monkeypatch) -> None:
    code, out, err = run_cli(["graph", "schema"], capsys, monkeypatch)
    assert code == 0, err
    schema = json.loads(out)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for name in VALID:
        data = yaml.safe_load((GRAPHS / f"{name}.yaml").read_text())
        errors = [e.message for e in validator.iter_errors(data)]
        assert errors == [], (name, errors)
    for name in builtin_graphs():
        data = yaml.safe_load((builtin_graphs_dir() / f"{name}.yaml").read_text())
        assert list(validator.iter_errors(data)) == [], name
    invalid = yaml.safe_load((GRAPHS / "invalid.yaml").read_text())
    assert not validator.is_valid(invalid)  # rounds: 0


def test_schema_to_a_file(tmp_path: Path, capsys, monkeypatch) -> None:
    target = tmp_path / "out" / "graph.schema.json"
    code, out, _ = run_cli(["graph", "schema", "-o", str(target)], capsys, monkeypatch)
    assert code == 0 and f"wrote {target}" in out
    jsonschema.Draft202012Validator.check_schema(json.loads(target.read_text()))


# --- validate --------------------------------------------------------------------------------------------------


def test_validate_valid_files_and_builtins(tmp_path: Path, capsys, monkeypatch) -> None:
    files = [str(GRAPHS / f"{name}.yaml") for name in VALID]
    module = tmp_path / "tick_function.py"  # loop_one.yaml calls a function of the user's: loaded as a run would
    module.write_text(
        "import agentmesh\n\n@agentmesh.register_function('tick')\ndef tick(outputs, inputs):\n    return {}\n"
    )
    code, out, err = run_cli(["--import", str(module), "graph", "validate", *files, "debate"], capsys, monkeypatch)
    assert code == 0, err
    assert f"✓ {GRAPHS / 'debate.yaml'}: graph debate, 2 nodes, 1 agent\n" in out
    assert f"✓ {GRAPHS / 'branch_loop.yaml'}: graph refine, 7 nodes, 3 agents\n" in out
    assert f"✓ {GRAPHS / 'loop_one.yaml'}: graph ticks, 2 nodes, 0 agents\n" in out
    assert "✓ debate: graph debate, 2 nodes, 1 agent\n" in out
    assert err == ""


def test_validate_reports_every_invalid_file_with_its_line(tmp_path: Path, capsys, monkeypatch) -> None:
    broken = tmp_path / "unknown_agent.yaml"
    broken.write_text("name: x\nagents:\n  a: {prompt: hi}\nnodes:\n  one:\n    op: team\n    agents: [a, ghost]\n")
    invalid = GRAPHS / "invalid.yaml"
    ok = GRAPHS / "debate.yaml"
    code, out, err = run_cli(["graph", "validate", str(invalid), str(ok), str(broken)], capsys, monkeypatch)
    assert code == 2
    assert f"✓ {ok}: graph debate" in out  # valid files are still checked and reported
    # both problems of invalid.yaml in one attempt: the bad type, and the unknown agent of the same node
    assert f"✗ 2 problems in {invalid}:" in err
    assert f"{invalid}:9: nodes.one.rounds: Input should be greater than or equal to 1 (got 0)" in err
    assert f"{invalid}:8: nodes.one.agents[1]: unknown agent 'ghost'; known agents: a" in err
    assert f"✗ {broken}:7: nodes.one.agents[1]: unknown agent 'ghost'; known agents: a" in err
    assert "Traceback" not in err

    code, _, err = run_cli(["graph", "validate", str(tmp_path / "missing.yaml")], capsys, monkeypatch)
    assert code == 2 and "missing.yaml: file not found" in err


def test_validate_reports_a_function_nobody_registered(tmp_path: Path, capsys, monkeypatch) -> None:
    """A misspelt function (or a module not imported) passed validation and failed the run at its node, after the
    calls of every node before it."""
    graph = tmp_path / "pick.yaml"
    graph.write_text(
        "name: pick\nagents:\n  a: {prompt: hi}\nnodes:\n  ask: {op: call, agent: a}\n"
        "  choose: {op: function, function: longst}\nedges: [[ask, choose]]\n"
    )
    code, _, err = run_cli(["graph", "validate", str(graph)], capsys, monkeypatch)
    assert code == 2
    # at its line, as the spec's own problems are (it said only the file)
    assert f"✗ {graph}:6: nodes.choose.function: unknown function 'longst'; registered: " in err
    assert "agentmesh --import" in err


# --- show ------------------------------------------------------------------------------------------------------


def test_show_prints_summary_and_mermaid(capsys, monkeypatch) -> None:
    code, out, err = run_cli(["graph", "show", str(GRAPHS / "debate.yaml")], capsys, monkeypatch)
    assert code == 0, err
    for expected in (
        "graph debate",
        "LLM debate",
        "Inputs",
        "question",
        "Agents",
        "debater",
        "boxed_math",
        "temperature=0.7, max_tokens=256",
        "Nodes",
        "agents: [debater, debater, debater]",
        "rounds: 3",
        "stop: consensus (> 0.66 of active agents agree)",
        "from: debate",
        "Edges and routes",
        "Stop policy: none at graph level",
        "Output node: vote",
        "flowchart LR",
        "n0 --> n1",
    ):
        assert expected in out, expected


def test_show_summary_of_branch_and_loop(capsys, monkeypatch) -> None:
    code, out, err = run_cli(["graph", "show", str(GRAPHS / "branch_loop.yaml")], capsys, monkeypatch)
    assert code == 0, err
    for expected in (
        "condition: inputs.hard and inputs.question|length > 3",
        "body: [draft, critique]",
        "until: consensus (> 0.5 of active agents agree) or max rounds (3)",
        'score {"min": 0, "max": 10}',
        "check",
        "iterate",
        "Output node: final",
    ):
        assert expected in out, expected


def test_show_mermaid_only(capsys, monkeypatch) -> None:
    code, out, _ = run_cli(["graph", "show", str(GRAPHS / "branch_loop.yaml"), "--mermaid"], capsys, monkeypatch)
    assert code == 0
    assert out == graph_mermaid(load_graph(GRAPHS / "branch_loop.yaml"))
    code, out, _ = run_cli(["graph", "show", "debate", "--mermaid", "-d", "TD"], capsys, monkeypatch)
    assert code == 0 and out.startswith("flowchart TD\n")


def test_show_writes_svg(tmp_path: Path, capsys, monkeypatch) -> None:
    target = tmp_path / "drawings" / "debate.svg"
    code, out, err = run_cli(["graph", "show", str(GRAPHS / "debate.yaml"), "--svg", str(target)], capsys, monkeypatch)
    assert code == 0, err
    assert f"wrote {target}" in out and "flowchart" not in out
    root = ET.fromstring(target.read_text())
    words = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert {"debate", "vote", "START", "END"} <= set(words)


def test_show_png_needs_cairosvg(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "cairosvg", None)  # import fails
    target = tmp_path / "g.png"
    code, _, err = run_cli(["graph", "show", str(GRAPHS / "debate.yaml"), "--png", str(target)], capsys, monkeypatch)
    assert code == 2
    flat = " ".join(err.split())
    assert "cairosvg" in flat and "--svg OUT.svg" in flat
    assert not target.exists()


def _cairo_missing() -> str | None:
    """Why cairosvg cannot draw here (not installed, or no cairo library to load), or ``None``."""
    try:
        importlib.import_module("cairosvg")
    except (ImportError, OSError) as exc:
        return f"cairosvg cannot draw here ({type(exc).__name__}: {exc}; Debian: apt-get install libcairo2)"
    return None


@pytest.mark.skipif(_cairo_missing() is not None, reason=str(_cairo_missing()))
def test_show_png_is_a_real_png_of_the_graph(tmp_path: Path, capsys, monkeypatch) -> None:
    target = tmp_path / "g.png"
    code, out, err = run_cli(["graph", "show", "debate", "--png", str(target)], capsys, monkeypatch)
    assert code == 0, err
    assert f"wrote {target}" in out
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    svg = ET.fromstring(graph_svg(load_graph(builtin_graphs_dir() / "debate.yaml")))
    assert (width, height) == (round(2 * float(svg.attrib["width"])), round(2 * float(svg.attrib["height"])))


def test_show_png_without_the_cairo_library_says_what_to_install(tmp_path: Path, capsys, monkeypatch) -> None:
    def no_cairo(name: str) -> object:
        raise OSError("no library called 'cairo-2' was found")

    monkeypatch.setattr(importlib, "import_module", no_cairo)
    target = tmp_path / "g.png"
    code, _, err = run_cli(["graph", "show", "debate", "--png", str(target)], capsys, monkeypatch)
    assert code == 2 and not target.exists()
    assert "needs the cairo library" in " ".join(err.split()) and "libcairo2" in err


def test_show_refuses_a_drawing_named_for_another_format(tmp_path: Path, capsys, monkeypatch) -> None:
    """--png x.jpg wrote a PNG under a JPEG's name (viewers then call it broken)."""
    for option, name, expected in (("--png", "g.jpg", "name the file *.png"), ("--svg", "g.png", "*.svg")):
        code, _, err = run_cli(["graph", "show", "debate", option, str(tmp_path / name)], capsys, monkeypatch)
        assert code == 2 and expected in err and not (tmp_path / name).exists()


def test_show_invalid_file(tmp_path: Path, capsys, monkeypatch) -> None:
    shutil.copy(GRAPHS / "invalid.yaml", tmp_path / "bad.yaml")
    code, out, err = run_cli(["graph", "show", "bad.yaml"], capsys, monkeypatch)
    assert code == 2 and out == ""
    assert "bad.yaml:9: nodes.one.rounds" in err and "Traceback" not in err
