"""Drawing graph specs: Mermaid text and the self-contained SVG (parsed back as XML, checked for overlaps)."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from agentmesh.spec import load_graph
from agentmesh.spec.graph import GraphSpec
from agentmesh.viz import Arrow, Box, Line, assign_layers, graph_flow, graph_mermaid, graph_svg, svg_layers
from agentmesh.viz.graph import TIMES
from agentmesh.viz.svg import esc, shorten, text_width, wrap

GRAPHS = Path(__file__).parent.parent / "data" / "graphs"
SVG = "{http://www.w3.org/2000/svg}"


def spec(name: str) -> GraphSpec:
    return load_graph(GRAPHS / f"{name}.yaml")


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def node_rects(root: ET.Element) -> dict[str, tuple[float, float, float, float]]:
    """Node id -> (x0, y0, x1, y1) of its shape, in the drawing's inner coordinates."""
    out = {}
    for g in root.iter(f"{SVG}g"):
        if g.get("class") != "node":
            continue
        shape = g.find(f"{SVG}rect")
        if shape is not None:
            x, y = float(shape.get("x", 0)), float(shape.get("y", 0))
            out[g.get("id", "")] = (x, y, x + float(shape.get("width", 0)), y + float(shape.get("height", 0)))
        else:
            c = g.find(f"{SVG}circle")
            assert c is not None
            cx, cy, r = float(c.get("cx", 0)), float(c.get("cy", 0)), float(c.get("r", 0))
            out[g.get("id", "")] = (cx - r, cy - r, cx + r, cy + r)
    return out


def label_rects(root: ET.Element) -> list[tuple[float, float, float, float]]:
    labels = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "labels")
    out = []
    for r in labels.iter(f"{SVG}rect"):
        x, y = float(r.get("x", 0)), float(r.get("y", 0))
        out.append((x, y, x + float(r.get("width", 0)), y + float(r.get("height", 0))))
    return out


def overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def edges(root: ET.Element) -> list[ET.Element]:
    return [p for p in root.iter(f"{SVG}path") if (p.get("class") or "").startswith("edge")]


# --- what is drawn ---------------------------------------------------------------------------------------------


def test_flow_of_debate() -> None:
    flow = [(e.src, e.dst, e.kind, e.label) for e in graph_flow(spec("debate"))]
    assert flow == [
        ("START", "debate", "edge", ""),
        ("debate", "vote", "edge", ""),
        ("vote", "END", "edge", "answer"),
    ]


def test_flow_of_branch_and_loop() -> None:
    flow = {(e.src, e.dst): (e.kind, e.label) for e in graph_flow(spec("branch_loop"))}
    assert flow == {
        ("START", "gate"): ("edge", ""),  # branch targets and the loop body are entered by routes, not START
        ("gate", "refine"): ("route", "then"),
        ("gate", "quick"): ("route", "else"),
        ("refine", "draft"): ("route", "iterate"),
        ("draft", "critique"): ("route", ""),  # the body's chain
        ("critique", "refine"): ("back", "check"),
        ("refine", "scored"): ("edge", "done"),  # a loop leaves through its declared edges when done
        ("scored", "final"): ("edge", ""),
        ("draft", "scored"): ("reads", "from"),  # data read without an edge
        ("draft", "final"): ("reads", "from"),
        ("quick", "END"): ("edge", ""),
        ("final", "END"): ("edge", "answer"),
    }


def test_flow_loop_without_successor_and_branch_without_else() -> None:
    loop = {(e.src, e.dst): (e.kind, e.label) for e in graph_flow(spec("loop_one"))}
    assert loop == {
        ("START", "again"): ("edge", ""),
        ("again", "work"): ("route", "iterate"),
        ("work", "again"): ("back", "check"),
        ("again", "END"): ("edge", "done, answer"),
    }
    branch = {(e.src, e.dst): (e.kind, e.label) for e in graph_flow(spec("escapes"))}
    assert branch[("check", "END")] == ("route", "else")
    assert branch[("check", "ask")] == ("route", "then")


# --- Mermaid ---------------------------------------------------------------------------------------------------


def test_mermaid_debate() -> None:
    text = graph_mermaid(spec("debate"))
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    assert (
        f'  n0["<b>debate</b><br/>rounds {TIMES}3<br/>debater {TIMES}3<br/><i>stop: consensus #62; 0.66</i>"]' in lines
    )
    assert '  n1["<b>vote</b><br/>vote"]' in lines
    assert '  START(["START<br/><small>question</small>"])' in lines
    for edge in ("  START --> n0", "  n0 --> n1", '  n1 -->|"answer"| END'):
        assert edge in lines
    assert "  class n1 output" in lines
    assert graph_mermaid(spec("debate"), "TD").startswith("flowchart TD\n")


def test_mermaid_routes_are_dashed_and_labelled() -> None:
    lines = graph_mermaid(spec("branch_loop")).splitlines()
    ids = {m.group(2): m.group(1) for line in lines if (m := re.match(r'\s+(n\d+)\["<b>(\w+)</b>', line))}
    assert set(ids) == {"gate", "quick", "refine", "draft", "critique", "scored", "final"}
    expected = [
        f'{ids["gate"]} -.->|"then"| {ids["refine"]}',
        f'{ids["gate"]} -.->|"else"| {ids["quick"]}',
        f'{ids["refine"]} -.->|"iterate"| {ids["draft"]}',
        f"{ids['draft']} -.-> {ids['critique']}",
        f'{ids["critique"]} -.->|"check"| {ids["refine"]}',
        f'{ids["refine"]} -->|"done"| {ids["scored"]}',
        f"{ids['scored']} --> {ids['final']}",
        f'{ids["draft"]} -.->|"reads from"| {ids["final"]}',
    ]
    for edge in expected:
        assert f"  {edge}" in lines, edge
    label = next(line for line in lines if "<b>refine</b>" in line)
    assert "loop ≤5" in label and "until consensus #62; 0.5 or 3 rounds" in label
    assert "judge: judge" in next(line for line in lines if "<b>scored</b>" in line)


def test_mermaid_escapes_text() -> None:
    text = graph_mermaid(spec("escapes"))
    check = next(line for line in text.splitlines() if "<b>check</b>" in line)
    assert "if nodes.ask.answer#60;3 and '#38;#38;'#62;#34;y#34;" in check
    label = check.split('["', 1)[1].rsplit('"]', 1)[0]
    assert '"' not in label and "&" not in label
    assert re.sub(r"</?(b|i|br/)>", "", label).count("<") == 0


# --- SVG -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["debate", "branch_loop", "loop_one", "escapes"])
@pytest.mark.parametrize("direction", ["LR", "TD"])
def test_svg_is_xml_with_every_node_and_no_overlaps(name: str, direction: str) -> None:
    g = spec(name)
    svg = graph_svg(g, direction)  # type: ignore[arg-type]
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert float(root.get("width", 0)) > 100 and float(root.get("height", 0)) > 50
    words = texts(root)
    for node in [*g.nodes, "START", "END"]:
        assert node in words
    flow = graph_flow(g)
    drawn = edges(root)
    assert len(drawn) == len(flow)
    dashed = [p for p in drawn if p.get("stroke-dasharray") and "edge-dashed" in (p.get("class") or "")]
    assert len(dashed) == sum(e.kind in ("route", "back") for e in flow)
    markers = {m.get("id") for m in root.iter(f"{SVG}marker")}
    for p in drawn:
        assert p.get("marker-end", "")[5:-1] in markers
    boxes = node_rects(root)
    assert len(boxes) == len(g.nodes) + 2
    for (a, ra), (b, rb) in itertools.combinations(boxes.items(), 2):
        assert not overlap(ra, rb), (a, b)
    for label in label_rects(root):
        for node, rect in boxes.items():
            assert not overlap(label, rect), (node, label)


def test_svg_node_text_and_title() -> None:
    root = ET.fromstring(graph_svg(spec("debate")))
    words = texts(root)
    for expected in (
        "graph debate",
        f"rounds {TIMES}3",
        f"debater {TIMES}3",
        "stop: consensus > 0.66",
        "vote",
        "answer",
    ):
        assert expected in words
    assert any("output: vote" in w for w in words)
    output = next(g for g in root.iter(f"{SVG}g") if g.get("id") == "node-vote")
    assert output.find(f"{SVG}rect") is not None and output.find(f"{SVG}rect").get("stroke-width") == "3"  # type: ignore[union-attr]
    assert graph_svg(spec("debate"), title=False).count("graph debate") == 0


def test_svg_escapes_text() -> None:
    svg = graph_svg(spec("escapes"))
    assert "<tags>" not in svg and "&lt;tags&gt; &amp; ampersands &gt;" in svg
    root = ET.fromstring(svg)
    words = texts(root)
    assert "Text with <tags> & ampersands > everywhere" in words
    assert any(w.startswith("if nodes.ask.answer<3 and '&&'>\"y\"") for w in words)
    tooltips = ["".join(t.itertext()) for t in root.iter(f"{SVG}title")]
    assert any("calls <a> & waits" in t for t in tooltips)


def test_svg_layers_escapes_ids_labels_and_control_characters() -> None:
    boxes = [
        Box("a<&>b", (Line('name <&> "q"', bold=True),), tooltip="t < & >"),
        Box("c", (Line("bell\x07 here"),), shape="circle"),
    ]
    arrows = [Arrow("a<&>b", "c", label="x & y < z"), Arrow("c", "a<&>b", label="back >", style="dashed")]
    svg = svg_layers(boxes, arrows, title="T <&>", subtitle=["s & t"])
    root = ET.fromstring(svg)
    words = texts(root)
    assert 'name <&> "q"' in words and "x & y < z" in words and "back >" in words and "T <&>" in words
    assert any(g.get("id") == "node-a<&>b" for g in root.iter(f"{SVG}g"))
    assert "bell\ufffd here" in words


def test_svg_layers_for_agent_networks() -> None:
    """Agents per round (given layers), greyed deactivated agents, size by importance, round headers."""
    agents = ["a", "b", "c"]
    boxes, layers = [], []
    for r in (1, 2, 3):
        layer = []
        for i, name in enumerate(agents):
            off = r == 3 and name == "b"
            boxes.append(
                Box(
                    f"{name}{r}",
                    (Line(name, bold=True),),
                    shape="circle",
                    opacity=0.4 if off else 1.0,
                    dashed=off,
                    scale=0.8 + 0.4 * i,
                    min_width=50,
                    min_height=50,
                )
            )
            layer.append(f"{name}{r}")
        layers.append(layer)
    arrows = [
        Arrow(f"{x}{r}", f"{y}{r + 1}", width=0.8)
        for r in (1, 2)
        for x in agents
        for y in agents
        if not (r == 2 and y == "b")
    ]
    svg = svg_layers(boxes, arrows, layers=layers, layer_labels=["round 1", "round 2", "round 3"])
    root = ET.fromstring(svg)
    assert {"round 1", "round 2", "round 3"} <= set(texts(root))
    rects = node_rects(root)
    assert len(rects) == 9
    for (a, ra), (b, rb) in itertools.combinations(rects.items(), 2):
        assert not overlap(ra, rb), (a, b)
    sizes = {k: r[2] - r[0] for k, r in rects.items()}
    assert sizes["node-a1"] < sizes["node-b1"] < sizes["node-c1"]  # importance grows the circle
    faded = next(g for g in root.iter(f"{SVG}g") if g.get("id") == "node-b3")
    assert faded.get("opacity") == "0.4"
    xs = {k: (r[0] + r[2]) / 2 for k, r in rects.items()}
    assert xs["node-a1"] < xs["node-a2"] < xs["node-a3"]  # one column per round
    assert len(edges(root)) == len(arrows)


def test_svg_layers_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="no box 'z'"):
        svg_layers([Box("a", (Line("a"),))], [Arrow("a", "z")])
    with pytest.raises(ValueError, match="every box exactly once"):
        svg_layers([Box("a", (Line("a"),)), Box("b", (Line("b"),))], [], layers=[["a"]])
    with pytest.raises(ValueError, match="unique"):
        svg_layers([Box("a", (Line("a"),)), Box("a", (Line("b"),))], [])


def test_self_loop_and_same_layer_arrows_are_drawn() -> None:
    boxes = [Box(i, (Line(i),)) for i in "abc"]
    svg = svg_layers(boxes, [Arrow("a", "a", label="again"), Arrow("b", "c")], layers=[["a"], ["b", "c"]])
    root = ET.fromstring(svg)
    assert len(edges(root)) == 2 and "again" in texts(root)


# --- helpers ---------------------------------------------------------------------------------------------------


def test_assign_layers() -> None:
    arrows = [Arrow("s", "a"), Arrow("a", "b"), Arrow("b", "a"), Arrow("x", "b"), Arrow("b", "end")]
    layers = assign_layers(["s", "a", "b", "x", "end"], arrows, last=["end"])
    # b -> a closes a cycle and is left out; x (a source) sits next to its successor; end is last
    assert layers == [["s"], ["a", "x"], ["b"], ["end"]]
    assert assign_layers(["p", "q"], [Arrow("p", "q", back=True)]) == [["p", "q"]]


def test_text_helpers() -> None:
    assert esc('<a href="x">&\'') == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
    assert esc("a\x00b") == "a\ufffdb"
    assert text_width("mmm", 10) > text_width("iii", 10)
    assert text_width("abc", 10, bold=True) > text_width("abc", 10)
    assert text_width("ab", 10, mono=True) == pytest.approx(12.2)
    assert shorten("a  b\nc", 10) == "a b c" and shorten("abcdefghijkl", 6) == "abcde…"
    assert wrap(["debater 3", "critic", "judge: long_name"], 14) == ["debater 3,", "critic,", "judge: long_name"]
    assert wrap(["a", "b"], 10) == ["a, b"]


@pytest.mark.parametrize("direction", ["LR", "TD"])
def test_svg_has_a_legend_of_the_colours_and_arrows_it_uses(direction: str) -> None:
    """Nothing said what an amber box, a green one, a thick border or a dashed or dotted arrow meant."""
    root = ET.fromstring(graph_svg(spec("branch_loop"), direction))  # type: ignore[arg-type]
    legend = next((g for g in root.iter(f"{SVG}g") if g.get("class") == "legend"), None)
    assert legend is not None
    assert texts(legend) == [
        "branch, loop",
        "calls agents",
        "vote, rank, score",
        "the run's answer",
        "edge",
        "route (branch, loop)",
        "reads a node's output",
    ]
    # each family's swatch has its boxes' colours; each arrow kind's sample its arrows' stroke and dashes
    swatches = {(r.get("fill"), r.get("stroke")) for r in legend.iter(f"{SVG}rect")}
    boxes = {(g.find(f"{SVG}rect").get("fill"), g.find(f"{SVG}rect").get("stroke")) for g in root.iter(f"{SVG}g")  # type: ignore[union-attr]
             if g.get("class") == "node" and g.get("id") not in ("node-START", "node-END")}  # fmt: skip
    assert boxes <= swatches
    samples = {(ln.get("stroke"), ln.get("stroke-dasharray")) for ln in legend.iter(f"{SVG}line")}
    assert samples == {(p.get("stroke"), p.get("stroke-dasharray")) for p in edges(root)}
    # under the drawing, inside the picture
    width, height = float(root.get("width", 0)), float(root.get("height", 0))
    drawing = next(g for g in root.iter(f"{SVG}g") if g.get("transform"))
    dy = float(re.findall(r"[-\d.]+", drawing.get("transform", ""))[1])
    lowest = max(r[3] for r in [*node_rects(root).values(), *label_rects(root)]) + dy
    for t in legend.iter(f"{SVG}text"):
        x, y = float(t.get("x", 0)), float(t.get("y", 0))
        assert y - 11 > lowest and y < height and x + text_width(t.text or "", 11) <= width, t.text
    debate = ET.fromstring(graph_svg(spec("debate")))
    only = next(g for g in debate.iter(f"{SVG}g") if g.get("class") == "legend")
    assert texts(only) == ["calls agents", "vote, rank, score", "the run's answer", "edge"]  # what it uses only


def test_a_role_is_named_once_before_its_agents() -> None:
    """Each of dylan_code_candidates' 12 agents had its role before it: a column of "writers:" and "judges:"."""
    from agentmesh import resolve_graph
    from agentmesh.viz.graph import node_text

    text = " ".join(node_text(resolve_graph("dylan_code_candidates"), "dylan").agents)
    assert text.count("writers:") == 1 and text.count("judges:") == 1 and text.count("ranker:") == 1
    assert text.startswith("writers: python_assistant, algorithm_developer,")
    assert "software_architect, judges: passer, tester," in text
    for agent in ("coding_artist", "debugger", "quality_manager"):
        assert agent in text
