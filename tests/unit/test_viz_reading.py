"""What a reader of a drawing could not tell, found by looking at ``graph show --png`` and the run report of a real
debate run on the embedded model: a description cut mid-word, numbers beside a network's nodes that nothing
explained, steps numbered without names, the calls after a cut stretch with no time on the axis, "1 calls"."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agentmesh.runtime.arguments import builtin_graphs_dir
from agentmesh.spec import load_graph
from agentmesh.store import RunRecord
from agentmesh.timeline import Step, Timeline
from agentmesh.viz import graph_svg
from agentmesh.viz.graph import DESCRIPTION_LINES, description_lines, word_lines
from agentmesh.viz.importance import importance_svg
from agentmesh.viz.network import network_svg
from agentmesh.viz.report import importance_table
from agentmesh.viz.svg import text_width
from agentmesh.viz.timeline import timeline_svg
from tests.unit.test_viz_timeline import _call, _resumed_story

SVG = "{http://www.w3.org/2000/svg}"
GRAPHS = Path(__file__).parent.parent / "data" / "graphs"


def texts(svg: str) -> list[str]:
    return ["".join(t.itertext()) for t in ET.fromstring(svg).iter(f"{SVG}text")]


def test_a_graphs_description_is_broken_between_words_not_cut() -> None:
    """debate's description (224 characters) was one line cut at 110, mid-word: "each reads th…"."""
    spec = load_graph(builtin_graphs_dir() / "debate.yaml")
    words = texts(graph_svg(spec))
    shown = [w for w in words if w in description_lines(spec.description)]
    assert len(shown) >= 2 and " ".join(shown) == " ".join(spec.description.split())
    assert not any(w.endswith("…") for w in words)


def test_a_description_too_long_for_the_picture_is_cut_after_its_last_line_only() -> None:
    text = " ".join(f"word{i}" for i in range(400))
    lines = description_lines(text)
    assert len(lines) == DESCRIPTION_LINES and lines[-1].endswith("…")
    assert " ".join(lines[:-1]).split() == text.split()[: len(" ".join(lines[:-1]).split())]  # whole words


def test_the_network_says_what_the_text_beside_a_node_is_and_the_caption_fits() -> None:
    history = [{"round": 1, "nodes": [{"slot": 0, "key": "51"}, {"slot": 1, "key": "17"}]}]
    for importance in (None, {"1,0": 0.5, "1,1": 0.5}):
        svg = network_svg(history, ["a", "b"], title="debate", importance=importance)
        root = ET.fromstring(svg)
        (caption,) = [t for t in root.iter(f"{SVG}text") if (t.text or "").startswith("beside a node: its answer")]
        right = float(caption.get("x") or 0) + text_width(caption.text or "", float(caption.get("font-size") or 0))
        assert right <= float(root.get("width") or 0)


def test_a_steps_band_is_named_when_it_has_room() -> None:
    """The bands over the calls read "1", "2": what step 2 was took the list under the chart."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    steps = [
        Step("debate", "rounds", 1, {}, [replace(_call(0, 20.0), node="debate")]),
        Step("debate", "rounds", 2, {}, [replace(_call(20.0, 1.5), node="debate")]),
    ]
    record = RunRecord(
        id="r" * 32, graph="debate", spec_hash=None, inputs={}, status="succeeded", stop_reason="completed",
        parent_run_id=None, model="local", totals={"calls": 2}, error=None, created_at=t0,
        finished_at=t0 + timedelta(seconds=21.5), meta={}, schema_version=1,
    )  # fmt: skip
    svg = timeline_svg(Timeline(run=record, steps=steps, outputs=None, networks=[], spec=None))
    assert svg is not None
    words = texts(svg)
    assert "1. debate round 1" in words  # a wide band: its name
    assert "2" in words and "2. debate round 2" not in words  # a sliver: its number only
    assert "1 call at once on average" in words[0]  # one after the other: not "1 calls"


def test_the_calls_after_a_cut_stretch_have_a_time_on_the_axis() -> None:
    """After a cut stretch, the last calls had no tick: the axis ended at the cut's "499 s idle"."""
    svg = timeline_svg(_resumed_story())
    assert svg is not None
    root = ET.fromstring(svg)
    (cut,) = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "idle-cut"]
    after = float(cut.get("x") or 0) + float(cut.get("width") or 0)
    axis_y = max(float(t.get("y") or 0) for t in root.iter(f"{SVG}text"))
    times = [
        t.text or ""
        for t in root.iter(f"{SVG}text")
        if float(t.get("y") or 0) == axis_y and float(t.get("x") or 0) > after and "idle" not in (t.text or "")
    ]
    assert "501.7 s" in times  # the run's end (501.7 s), to the ticks' precision


def test_the_optimize_picture_says_what_its_small_grey_dots_are() -> None:
    """A job whose items all stopped at layer 1 drew layers 2 and 3 as small grey dots that nothing explained."""
    scores = {"lawyer": 0.2, "economist": 0.0}

    def picture(node_means: dict[str, float]) -> str:
        return importance_svg(
            title="t", candidates=list(scores), scores=scores, team=["lawyer"], node_means=node_means, layers=2
        )

    root = ET.fromstring(picture({"1,0": 0.2, "1,1": 0.0}))
    (note,) = [t for t in root.iter(f"{SVG}text") if (t.text or "").startswith("small grey dot: the agent never ran")]
    right = float(note.get("x") or 0) + text_width(note.text or "", float(note.get("font-size") or 0))
    assert right <= float(root.get("width") or 0)
    full = picture({"1,0": 0.2, "1,1": 0.0, "2,0": 0.1, "2,1": 0.0})
    assert "never ran" not in " ".join(texts(full))  # no dots, no note


def test_a_long_stretch_without_calls_drawn_to_scale_says_what_it_is() -> None:
    """A resumed debate's 247 s between rounds 2 and 3, under a quarter of its 1361 s and so not cut short, was a
    blank stretch of the chart that read as a drawing fault."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    steps = [
        Step("debate", "rounds", 1, {}, [replace(_call(0, 100.0), node="debate")]),
        Step("debate", "rounds", 2, {}, [replace(_call(160.0, 140.0), node="debate")]),
    ]
    record = RunRecord(
        id="r" * 32, graph="debate", spec_hash=None, inputs={}, status="succeeded", stop_reason="completed",
        parent_run_id=None, model="local", totals={"calls": 2}, error=None, created_at=t0,
        finished_at=t0 + timedelta(seconds=300), meta={}, schema_version=1,
    )  # fmt: skip
    svg = timeline_svg(Timeline(run=record, steps=steps, outputs=None, networks=[], spec=None))
    assert svg is not None and "60 s without a call" in texts(svg)
    cut = timeline_svg(_resumed_story())  # a stretch cut short says so on the axis, and only there
    assert cut is not None and not any("without a call" in t for t in texts(cut))


def test_a_branchs_condition_is_in_its_box_whole_over_lines() -> None:
    """The box said "if inputs.hard and inputs.questio…": the test itself cut, in a picture without tooltips."""
    spec = load_graph(GRAPHS / "branch_loop.yaml")
    words = texts(graph_svg(spec))
    assert "if inputs.hard and" in words and "inputs.question|length > 3" in words
    assert word_lines("if " + "x" * 200, 34, 3) == ["if", "x" * 67 + "…"]  # a word longer than two lines: cut


def test_the_reports_importance_table_says_what_its_numbers_add_up_to() -> None:
    """A DyLAN run's table listed 1.1685 and 1.1620 beside 0.09 with nothing to say the scores sum over 3 layers."""
    stored = {
        "per_agent": {"lawyer": 1069 / 920, "programmer": 83 / 920, "doctor": 1 - 83 / 920 + 2 - 1069 / 920},
        "layer_sums": [1.0, 1.0, 1.0],
    }
    html = importance_table(stored)
    assert "over this run's 3 layers they add up to 3." in html
    assert "add up to" not in importance_table({"per_agent": stored["per_agent"]})  # no sums stored: no claim
    # a run that agreed in its first layer: "over this run's 1 layers"
    assert "over this run's 1 layer they add up to 1." in importance_table({**stored, "layer_sums": [1.0]})


def test_a_steps_line_on_the_page_counts_its_calls_in_words_and_says_nothing_when_there_is_nothing() -> None:
    """A call node's step read "1 calls", and a loop's start (a result with nothing in it) "refine (loop) — "."""
    from agentmesh.viz.report import report_html

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    steps = [
        Step("refine", "loop", 0, {}, []),
        Step("draft", "call", None, {"answer": "one"}, [replace(_call(0, 1.0), node="draft")]),
    ]
    record = RunRecord(
        id="r" * 32, graph="g", spec_hash=None, inputs={}, status="succeeded", stop_reason="completed",
        parent_run_id=None, model="local", totals={"calls": 1}, error=None, created_at=t0,
        finished_at=t0 + timedelta(seconds=1), meta={}, schema_version=1,
    )  # fmt: skip
    page = report_html(Timeline(run=record, steps=steps, outputs=None, networks=[], spec=None))
    assert "<summary>1. refine (loop)</summary>" in page
    assert "2. draft (call) — answer <b>one</b> · 1 call, " in page and "1 calls" not in page


def test_the_pages_call_count_says_what_it_leaves_out_and_what_failed() -> None:
    """A fork's page said "calls 5" above its 12 calls (7 served from its parent, not counted), and a failed run's
    "calls 6" with nothing of the 2 that had failed (show says "errors 2")."""
    from agentmesh.viz.report import report_html

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    served = [replace(_call(0, 1.0), node="debate", replayed=True) for _ in range(2)]
    made = [replace(_call(1.0, 1.0), node="debate")]
    record = RunRecord(
        id="r" * 32, graph="g", spec_hash=None, inputs={}, status="failed", stop_reason="error",
        parent_run_id="p" * 32, model="local", totals={"calls": 3, "errors": 2}, error="boom", created_at=t0,
        finished_at=t0 + timedelta(seconds=2), meta={}, schema_version=1,
    )  # fmt: skip
    steps = [Step("debate", "rounds", 1, {}, [*served, *made])]
    page = report_html(Timeline(run=record, steps=steps, outputs=None, networks=[], spec=None))
    assert "<tr><td>calls</td><td>3 (2 failed, 2 more served from the record)</td></tr>" in page
    plain = record.model_copy(update={"totals": {"calls": 1}})
    story = Timeline(run=plain, steps=[Step("debate", "rounds", 1, {}, made)], outputs=None, networks=[], spec=None)
    page = report_html(story)
    assert "<tr><td>calls</td><td>1</td></tr>" in page
