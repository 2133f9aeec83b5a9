"""The calls-over-time chart of a run (``agentmesh report``): a row per agent, a bar per call, steps in order."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agentmesh.errors import ScriptExhaustedError
from agentmesh.models.providers.scripted import ScriptedModel
from agentmesh.runtime.replay import fork
from agentmesh.runtime.run import run
from agentmesh.store import RunRecord, Store
from agentmesh.timeline import CallView, Step, Timeline, load_timeline
from agentmesh.viz.report import report_html
from agentmesh.viz.svg import esc, text_width
from agentmesh.viz.timeline import nice_step, timeline_svg

SVG = "{http://www.w3.org/2000/svg}"

DEBATE = [
    {"agent": "debater", "round": 1, "responses": ["\\boxed{50}", "\\boxed{51}", "\\boxed{52}"], "delay_s": 0.05},
    {"agent": "debater", "round": 2, "template": "\\boxed{51}", "delay_s": 0.05},
]


def _bars(svg: str) -> list[tuple[str, float, float, float, str]]:
    """(class, x, end x, y, tooltip) of every rectangle of a call."""
    root = ET.fromstring(svg)
    out = []
    for rect in root.iter(f"{SVG}rect"):
        css = rect.get("class") or ""
        if css.startswith("call"):
            x, w = float(rect.get("x") or 0), float(rect.get("width") or 0)
            out.append((css, x, x + w, float(rect.get("y") or 0), rect.findtext(f"{SVG}title") or ""))
    return out


def test_a_run_is_drawn_a_row_per_agent_and_a_bar_per_call_in_step_order(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    result = run("debate", {"question": "What is 17*3?"}, model=ScriptedModel(DEBATE), store=db)
    with Store(db) as store:
        story = load_timeline(store, result.run_id)
    svg = timeline_svg(story)
    assert svg is not None
    root = ET.fromstring(svg)
    labels = [t.findtext(f"{SVG}title") for t in root.iter(f"{SVG}text") if t.find(f"{SVG}title") is not None]
    assert labels == ["debate · debater[0]", "debate · debater[1]", "debate · debater[2]"]
    title = "".join(next(root.iter(f"{SVG}text")).itertext())
    assert re.match(r"debate: 6 calls over [\d.]+ m?s · [\d.]+ m?s of model time, [\d.]+ calls at once", title)

    bars = _bars(svg)
    assert [css for css, *_ in bars] == ["call"] * 6
    rows = sorted({y for *_, y, _ in bars})
    assert len(rows) == 3
    round_1 = [b for b in bars if b[4].startswith("step 1: debate round 1")]
    round_2 = [b for b in bars if b[4].startswith("step 2: debate round 2")]
    assert len(round_1) == len(round_2) == 3
    assert {b[3] for b in round_1} == {b[3] for b in round_2} == set(rows)  # each agent once per round
    assert min(b[1] for b in round_2) >= max(b[2] for b in round_1) - 1.0  # round 2 starts once round 1 is over
    assert any("→ \\boxed{52}" in b[4] for b in round_1)
    assert [r.get("class") for r in root.iter(f"{SVG}rect")].count("step") == 2  # the two rounds' bands

    page = report_html(story)
    assert page.index("<h2>Timeline</h2>") < page.index('class="call-timeline"') < page.index('<details class="step">')


def test_calls_served_from_a_stored_run_are_ticks(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    first = run("debate", {"question": "q"}, model=ScriptedModel(DEBATE), store=db)
    later = ScriptedModel([{"agent": "debater", "round": 2, "template": "\\boxed{50}"}])
    forked = fork(first.run_id, step="debate@2", store=db, model=later)  # round 1 served, round 2 made again
    with Store(db) as store:
        svg = timeline_svg(load_timeline(store, forked.run_id))
    assert svg is not None
    bars = _bars(svg)
    assert sorted(css for css, *_ in bars) == ["call"] * 3 + ["call served"] * 3
    served = [b for b in bars if b[0] == "call served"]
    assert all(b[2] - b[1] == 2 and "served from a stored run" in b[4] for b in served)


def test_a_run_without_calls_has_no_chart_and_ticks_are_round(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    with Store(db) as store:
        run_id = store.create_run("empty", {})
        assert timeline_svg(load_timeline(store, run_id)) is None
    assert [nice_step(span) for span in (0.9, 7.0, 24.9, 130.0)] == [0.2, 1.0, 5.0, 20.0]


def test_failed_calls_are_red_with_their_error(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    model = ScriptedModel(DEBATE[:1])  # nothing answers round 2
    with pytest.raises(ScriptExhaustedError):  # the run fails in round 2, stored with its failed calls
        run("debate", {"question": "q"}, model=model, store=db)
    with Store(db) as store:
        (record,) = store.list_runs()
        svg = timeline_svg(load_timeline(store, record.id))
    assert record.status == "failed" and svg is not None
    bars = _bars(svg)
    failed = [b for b in bars if b[0] == "call failed"]
    assert len(failed) == 3 and len(bars) == 6
    assert all("failed after" in b[4] and "no rule left" in b[4] for b in failed)
    # told apart by more than red, which the steps' orange and pink bars resemble: a thick dark outline
    outlines = {
        (r.get("class"), float(r.get("stroke-width") or 0))
        for r in ET.fromstring(svg).iter(f"{SVG}rect")
        if (r.get("class") or "").startswith("call")
    }
    assert outlines == {("call", 0.4), ("call failed", 1.6)}


def _call(start_s: float, latency_s: float | None, *, timed: bool = True) -> CallView:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    end = t0 + timedelta(seconds=start_s + (latency_s or 0)) if timed else None
    return CallView(
        seq=0, node="n", agent="a", round=1, call_index=0, messages=[], reply="", prompt_tokens=None,
        completion_tokens=None, latency_s=latency_s, cost_usd=None, error=None, replayed=False, request_hash=None,
        finished_at=end,
    )  # fmt: skip


def test_a_steps_duration_is_its_wall_time_with_the_model_time_when_calls_overlapped() -> None:
    together = Step("n", "team", 1, {}, [_call(0, 2.0), _call(0.01, 2.0), _call(0.02, 1.99)])
    assert together.wall_s == pytest.approx(2.01)
    assert together.duration() == "2.01 s (5.99 s of calls at once)"
    one_by_one = Step("n", "team", 1, {}, [_call(0, 0.2), _call(0.2, 0.3)])
    assert one_by_one.duration() == "500 ms"
    untimed = Step("n", "team", 1, {}, [_call(0, 0.2, timed=False), _call(0, 0.3, timed=False)])
    assert untimed.wall_s is None and untimed.duration() == "500 ms"
    served = Step("n", "team", 1, {}, [replace(_call(0, 2.0), replayed=True)])
    assert served.wall_s is None and served.duration() == "served from the stored run"


def test_a_steps_cost_is_unknown_only_when_an_answered_call_of_it_has_no_price() -> None:
    """A fork's served round read "n/a" (it cost nothing), a round of a priced and an unpriced call the priced one's
    sum (an unknown cost is n/a, not a partial sum), and a round whose only call failed "n/a"."""
    priced, unpriced = replace(_call(0, 1.0), cost_usd=0.25), _call(0, 1.0)
    failed = replace(_call(0, 1.0), error="ModelError: timeout")
    assert Step("n", "team", 1, {}, [replace(priced, replayed=True), replace(unpriced, replayed=True)]).cost_usd == 0
    assert Step("n", "team", 1, {}, [priced, unpriced]).cost_usd is None
    assert Step("n", "team", 1, {}, [priced, failed]).cost_usd == 0.25
    assert Step("n", "team", 1, {}, [failed]).cost_usd == 0
    assert Step("n", "team", 1, {}, [priced, replace(unpriced, replayed=True)]).cost_usd == 0.25


def _as_seconds(text: str) -> float:
    number, unit = text.split()
    return float(number) / (1000 if unit == "ms" else 1)


def test_times_of_fast_calls_are_not_rounded_to_zero(tmp_path: Path) -> None:
    """A scripted (or cached) run's calls take well under a millisecond: rounded to hundredths first, the title
    said "0 s of model time, 0.0 calls at once" beside bars that took time, and each bar's tooltip "0 s"."""
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    result = run(
        "debate", {"question": "q"}, model=ScriptedModel([{"agent": "debater", "template": "\\boxed{1}"}]), store=db
    )
    with Store(db) as store:
        story = load_timeline(store, result.run_id)
    calls = [c for step in story.steps for c in step.calls]
    model_time = sum(c.latency_s or 0.0 for c in calls)
    assert model_time > 0
    svg = timeline_svg(story)
    assert svg is not None
    title = "".join(next(ET.fromstring(svg).iter(f"{SVG}text")).itertext())
    match = re.search(r"· ([\d.]+ m?s) of model time, ([\d.]+) calls at once", title)
    assert match is not None, title
    assert _as_seconds(match.group(1)) == pytest.approx(model_time, rel=0.01)
    assert float(match.group(2)) > 0
    for call, (*_, tip) in zip(calls, _bars(svg), strict=True):
        stated = re.search(r": ([\d.]+ m?s), ", tip)
        assert stated is not None and _as_seconds(stated.group(1)) == pytest.approx(call.latency_s, rel=0.01), tip


def test_the_report_of_a_run_without_calls_says_so(tmp_path: Path) -> None:
    """A run interrupted before its first call had a "Timeline" heading over nothing at all."""
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    with Store(db) as store:
        run_id = store.create_run("empty", {})
        page = report_html(load_timeline(store, run_id))
    timeline = page[page.index("<h2>Timeline</h2>") :]
    assert 'id="no-calls"' in timeline and "No model call was recorded" in timeline
    assert "call-timeline" not in page


def _resumed_story() -> Timeline:
    """A run of two rounds of three 1 s calls, interrupted after the first and resumed 500 s later."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def call(index: int, rnd: int, start_s: float) -> CallView:
        view = replace(_call(0, 1.0), agent="debater", call_index=index, round=rnd, reply="\\boxed{1}")
        return replace(view, finished_at=t0 + timedelta(seconds=start_s + 1.0))

    steps = [
        Step("debate", "rounds", 1, {}, [call(i, 1, 0.1) for i in range(3)]),
        Step("debate", "rounds", 2, {}, [call(i, 2, 500.5) for i in range(3)]),
    ]
    record = RunRecord(
        id="r" * 32, graph="debate", spec_hash=None, inputs={}, status="succeeded", stop_reason="completed",
        parent_run_id=None, model="scripted:x", totals={"calls": 6}, error=None, created_at=t0,
        finished_at=t0 + timedelta(seconds=501.7), meta={}, schema_version=1,
    )  # fmt: skip
    return Timeline(run=record, steps=steps, outputs=None, networks=[], spec=None)


def test_a_long_stretch_without_calls_is_cut_short() -> None:
    """Resumed 500 s after its interruption, a run was drawn as 500 s of nothing with its 1 s calls as 1.6 px
    slivers at either end, and the title said 0.012 calls ran at once on average."""
    svg = timeline_svg(_resumed_story())
    assert svg is not None
    root = ET.fromstring(svg)
    bars = _bars(svg)
    assert len(bars) == 6 and all(end - x > 100 for _, x, end, _, _ in bars)  # each 1 s call drawn readable
    (idle,) = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "idle-cut"]
    x0, x1 = float(idle.get("x") or 0), float(idle.get("x") or 0) + float(idle.get("width") or 0)
    first, second = bars[:3], bars[3:]
    assert max(end for _, _, end, _, _ in first) <= x0 + 0.5 and x1 <= min(x for _, x, _, _, _ in second) + 0.5
    assert "499 s" in (idle.findtext(f"{SVG}title") or "")  # from the first round's end to the second's start
    title = "".join(next(root.iter(f"{SVG}text")).itertext())
    assert (
        "over 502 s (499 s idle, cut short)" in title and "6 s of model time, 2.6 calls at once" in title
    )  # 6 / 2.3 s
    # the axis: every label apart from the others, the times in order, within the picture
    bottom = max(float(t.get("y") or 0) for t in root.iter(f"{SVG}text"))
    axis = [t for t in root.iter(f"{SVG}text") if float(t.get("y") or 0) == bottom]
    spans = sorted(  # a label's extent by its anchor: the run's end is anchored there, at the axis's right end
        (x - w * share, x + w * (1 - share), t.text or "")
        for t in axis
        for x, w, share in [
            (
                float(t.get("x") or 0),
                text_width(t.text or "", float(t.get("font-size") or 10)),
                1.0 if t.get("text-anchor") == "end" else 0.5,
            )
        ]
    )
    assert any(text == "499 s idle" for *_, text in spans)
    for (_, right, a), (left, _, b) in itertools.pairwise(spans):
        assert right <= left, (a, b)
    assert spans[-1][1] <= float(root.get("width") or 0)
    # a label says the time at its place: the same px per second on both sides of the cut ("502 s" stood at 501.5 s)
    ticks = sorted((float(t.get("x") or 0), _as_seconds(t.text or "")) for t in axis if "idle" not in (t.text or ""))
    pairs = [(a, b) for a, b in itertools.pairwise(ticks) if (a[0] < x0) == (b[0] < x0)]  # same side of the cut
    scales = [(x2 - x1) / (v2 - v1) for (x1, v1), (x2, v2) in pairs]
    assert len(ticks) >= 4 and max(scales) - min(scales) < 2, ticks


def test_every_picture_of_a_report_scrolls_in_a_box_of_the_pages_width(tmp_path: Path) -> None:
    """The page is 1,200 px wide; a wider picture (SE-Jury's graph is 1,400 px, a network of 20 rounds 2,800)
    made the whole page scroll sideways, its text and tables with it."""
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    result = run("debate", {"question": "q"}, model=ScriptedModel(DEBATE), store=db)
    with Store(db) as store:
        page = report_html(load_timeline(store, result.run_id))
    assert re.search(r"\.figure\{overflow-x:auto;max-width:100%\}", page)
    assert page.count("<svg") == 3  # the graph, the network, the calls over time
    assert page.count('<div class="figure"><svg') == 3 and page.count("</svg></div>") == 3


def test_the_title_fits_the_chart_whatever_the_graphs_name() -> None:
    """A graph named at length (user graphs are) pushed the title past the chart's right edge."""
    story = _resumed_story()
    story.run = story.run.model_copy(update={"graph": "my_team_of_reviewers_for_pull_requests_with_a_long_name_v2"})
    svg = timeline_svg(story)
    assert svg is not None
    title = next(ET.fromstring(svg).iter(f"{SVG}text"))
    text = "".join(title.itertext())
    assert text.startswith("my_team_of_reviewers") and "…: 6 calls over 502 s (499 s idle, cut short)" in text
    assert float(title.get("x") or 0) + text_width(text, 14, bold=True) <= 1000


def test_the_reports_summary_gives_the_runs_answer(tmp_path: Path) -> None:
    """The answer was only in the summary of the last step, folded at the bottom of the page."""
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    done = run("debate", {"question": "q"}, model=ScriptedModel(DEBATE), store=db)
    with pytest.raises(ScriptExhaustedError):
        run("debate", {"question": "q"}, model=ScriptedModel(DEBATE[:1]), store=db)
    with Store(db) as store:
        failed = next(r for r in store.list_runs() if r.id != done.run_id)
        pages = {rid: report_html(load_timeline(store, rid)) for rid in (done.run_id, failed.id)}
    summary = re.search(r'<table class="summary">.*?</table>', pages[done.run_id])
    assert done.answer == "51" and summary is not None and "<tr><td>answer</td><td>51</td></tr>" in summary.group(0)
    assert "<tr><td>answer</td><td>-</td></tr>" in pages[failed.id]


def test_an_unknown_cost_is_na_as_the_command_line_says() -> None:
    """A run with a call of a model without a price: the page said "-", as for a run that made no call."""
    story = _resumed_story()
    story.run = story.run.model_copy(update={"totals": {"calls": 6, "cost_usd": None}})
    assert "<tr><td>cost</td><td>n/a</td></tr>" in report_html(story)
    story.run = story.run.model_copy(update={"totals": {"calls": 0, "cost_usd": None}})
    assert "<tr><td>cost</td><td>-</td></tr>" in report_html(story)


def test_control_characters_of_a_reply_are_replaced_in_the_page(tmp_path: Path) -> None:
    """A model's NUL or terminal colour codes went into the page raw: HTML forbids them, and tools took the page
    for a binary file."""
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    reply = "\\boxed{1} tail \x1b[31mred\x00 \x0c"
    result = run(
        "debate", {"question": "q\x07"}, model=ScriptedModel([{"agent": "debater", "template": reply}]), store=db
    )
    with Store(db) as store:
        page = report_html(load_timeline(store, result.run_id))
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]", page)
    assert "tail \ufffd[31mred\ufffd \ufffd" in page and "\n" in page  # replaced, line breaks kept


def test_the_summary_shows_each_input_and_folds_long_ones() -> None:
    """The inputs were one JSON string, their line breaks shown as \\n, cut at 2,000 characters without a mark:
    a HumanEval prompt read as one unbroken line and its end was lost."""
    prompt = 'def add(a, b):\n    """Return a + b <and> more."""\n' + "    # padding\n" * 300
    story = _resumed_story()
    story.run = story.run.model_copy(update={"inputs": {"prompt": prompt, "entry_point": "add"}})
    page = report_html(story)
    summary = re.search(r'<table class="summary">.*?</table>', page, re.S)
    assert summary is not None
    rows = dict(re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", summary.group(0), re.S))
    assert rows["input entry_point"] == "add"
    assert rows["input prompt"].startswith(
        "<details><summary>def add(a, b): &quot;&quot;&quot;Return a + b &lt;and&gt;"
    )
    assert f"<pre>{esc(prompt)}</pre>" in rows["input prompt"]  # the whole of it, line breaks kept


def test_show_events_leaves_a_node_results_cost_blank(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`agentmesh show --events` said "n/a" (an unknown cost) in the cost column of every node's result."""
    from tests._cli import run_cli

    db = f"sqlite:///{tmp_path / 'runs.db'}"
    first = run("debate", {"question": "q"}, model=ScriptedModel(DEBATE), store=db)
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_cli(["show", first.run_id, "--events", "--db", db], capsys, monkeypatch)
    assert code == 0, err
    rows = [[c.strip() for c in line.split("│")] for line in out.splitlines() if line.startswith("│ ")]
    costs = {(row[2], row[10]) for row in rows if row[1].isdigit()}
    assert ("model_call", "$0.000000") in costs and ("node_result", "") in costs
    assert not any(cost == "n/a" for _, cost in costs)


def test_a_function_nodes_scores_that_are_not_numbers_do_not_break_show_or_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registered function returning {"scores": {...}} (or labels) ran and was stored; `show` and `report` of the
    run then failed with a traceback: "Unknown format code 'g' for object of type 'str'"."""
    from agentmesh.runtime.operators import register_function
    from agentmesh.spec import graph_from_data
    from tests._cli import run_cli

    @register_function("qa_labelled_scores", replace=True)
    def labelled(outputs: dict[str, object], inputs: dict[str, object]) -> dict[str, object]:
        return {"answer": "x", "scores": {"a": 1, "b": "high"}}

    @register_function("qa_mixed_scores", replace=True)
    def mixed(outputs: dict[str, object], inputs: dict[str, object]) -> dict[str, object]:
        return {"answer": "y", "scores": [0.5, None, "low", True]}

    spec = graph_from_data(
        {
            "name": "labels",
            "inputs": {"question": {"type": "string"}},
            "nodes": {
                "w": {"op": "function", "function": "qa_labelled_scores"},
                "m": {"op": "function", "function": "qa_mixed_scores"},
            },
            "edges": [["w", "m"]],
        }
    )
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    result = run(spec, {"question": "q"}, model=ScriptedModel(default="-"), store=db)
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_cli(["show", result.run_id, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    assert 'scores {"a": 1, "b": "high"}' in out and "scores 0.5, -, low, True" in out
    page = tmp_path / "run.html"
    code, _, err = run_cli(["report", result.run_id, "--db", db, "-o", str(page)], capsys, monkeypatch)
    assert code == 0, err
    assert "scores {&quot;a&quot;: 1, &quot;b&quot;: &quot;high&quot;}" in page.read_text(encoding="utf-8")
