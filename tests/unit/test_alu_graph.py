"""ALU wired into agentmesh: ``graphs/alu.yaml`` (the ``alu`` operator and the ``agents/alu`` cards) on a scripted
model, through the real runtime (LangGraph execution, recorded calls, the SQLite store)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import agentmesh.systems.alu  # noqa: F401  (registers op: alu)
from agentmesh.errors import ConfigError
from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.messages import CallContext
from agentmesh.runtime import run
from agentmesh.runtime.arguments import resolve_graph
from agentmesh.spec import GraphSpec, dump_graph, graph_from_data, load_graph
from agentmesh.spec.stop import Budget
from agentmesh.store import Store
from agentmesh.systems.alu.node import AluParams, snapshot_from_input
from agentmesh.systems.alu.registry import TargetSet, load_targets_jsonl, register_target_set

REPO = Path(__file__).resolve().parents[2]

TARGETS = [
    {"id": 1, "name": "Albus Dumbledore", "aliases": ["Dumbledore"], "description": "Headmaster of Hogwarts."},
    {"id": 2, "name": "Hermione Granger", "aliases": ["Hermione"], "description": "Gryffindor student."},
    {"id": 3, "name": "Severus Snape", "aliases": ["Snape"], "description": "Potions master."},
]
KRUM = "How was Viktor Krum's experience at the Yule Ball?"


class Roles:
    """Answers by agent name and keeps every prompt (system + user) it was sent."""

    def __init__(self, **replies: Any) -> None:
        self.replies = {k: list(v) if isinstance(v, list) else [v] for k, v in replies.items()}
        self.prompts: dict[str, list[str]] = {}

    def __call__(self, request: ModelRequest, context: CallContext) -> str:
        agent = str(context.agent)
        self.prompts.setdefault(agent, []).append("\n".join(m.content for m in request.messages))
        return str(self.replies[agent].pop(0))


def graph(**params: Any) -> GraphSpec:
    spec = load_graph(REPO / "graphs" / "alu.yaml")
    node = spec.nodes["alu"]
    assert isinstance(node.params, AluParams)
    new = node.params.model_copy(update=params)
    return spec.model_copy(update={"nodes": {"alu": node.model_copy(update={"params": new})}})


def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


COMPOSED = {
    "vanilla": "Krum enjoyed it. He went with Hermione and they danced.",
    "auditor": "Hermione Granger",
    "eraser": json.dumps(["Krum enjoyed the ball.", "Krum danced a lot.", "Krum went with Hermione."]),
    "critic": "Response 3 names her.\nFinal Rating List - [5, 5, 2]",  # 12 = 4 * 3: equality passes
    "composer": "Krum enjoyed the ball and danced a lot.",
}


def test_flagged_answer_is_rewritten_rated_and_composed(tmp_path: Path) -> None:
    roles = Roles(**COMPOSED)
    result = run(graph(), {"query": KRUM, "targets": TARGETS}, model=ScriptedModel(respond=roles), store=db(tmp_path))
    assert result.status == "succeeded"
    assert result.answer == "Krum enjoyed the ball and danced a lot."
    assert result.calls == 5
    alu = result.outputs["alu"]["alu"]
    assert alu["decision"] == "composed" and alu["stop_reason"] == "composed"
    assert alu["shortlist"]["lexical_hits"] == [2]
    assert alu["audit"]["matched"] == [2]
    assert alu["selection"]["top"] == [0, 1, 2] and alu["selection"]["decision"] == "compose"
    assert alu["composer_input_blocks"] == ["Krum enjoyed the ball.", "Krum danced a lot.", "Krum went with Hermione."]
    audit_prompt = roles.prompts["auditor"][0]
    assert "- Hermione Granger (also: Hermione) — Gryffindor student." in audit_prompt
    assert "Snape" not in audit_prompt  # the agents see the shortlist, not the whole target list
    assert "Hermione Granger (also: Hermione) — Gryffindor student. [found]" in roles.prompts["eraser"][0]
    assert "Response 3: Krum went with Hermione." in roles.prompts["critic"][0]
    assert "Krum enjoyed the ball.\n\n---\nKrum danced a lot." in roles.prompts["composer"][0]


def test_unrelated_question_is_answered_by_the_vanilla_agent_alone(tmp_path: Path) -> None:
    roles = Roles(vanilla="Water boils at 100 degrees Celsius.")
    result = run(
        graph(),
        {"query": "At what temperature does water boil?", "targets": TARGETS},
        model=ScriptedModel(respond=roles),
        store=db(tmp_path),
    )
    assert result.answer == "Water boils at 100 degrees Celsius." and result.calls == 1
    assert result.outputs["alu"]["decision"] == "passthrough_no_candidates"


def test_critic_gate_refuses_and_skips_the_composer(tmp_path: Path) -> None:
    roles = Roles(**{**COMPOSED, "critic": "Final Rating List - [2, 5, 1]"})
    result = run(graph(), {"query": KRUM, "targets": TARGETS}, model=ScriptedModel(respond=roles), store=db(tmp_path))
    assert result.answer == "I'm sorry, I can't help with that." and result.calls == 4
    assert "composer" not in roles.prompts


def test_critic_samples_are_separate_recorded_calls(tmp_path: Path) -> None:
    roles = Roles(**{**COMPOSED, "critic": ["[5, 5, 3]", "[4, 5, 3]"]})
    result = run(
        graph(critic_samples=2),
        {"query": KRUM, "targets": TARGETS},
        model=ScriptedModel(respond=roles),
        store=db(tmp_path),
    )
    assert result.calls == 6
    assert result.outputs["alu"]["alu"]["critic"]["scores"] == ["9/2", "5", "3"]


def test_reference_compat_uses_every_target_and_the_extraction_call(tmp_path: Path) -> None:
    spec = graph(reference_compat=True, extractor="extractor")
    extractor = (
        load_graph(REPO / "graphs" / "alu.yaml")
        .agents["vanilla"]
        .model_copy(update={"name": "extractor", "prompt": "{{ critic_reply }}", "system": "List the ratings as JSON."})
    )
    spec = spec.model_copy(update={"agents": {**spec.agents, "extractor": extractor}})
    roles = Roles(
        vanilla="Water boils at 100 degrees Celsius.",
        eraser=json.dumps(["Water boils at 100 C.", "100 C.", "At 100 C."]),
        critic="Final Rating List - [5, 5, 5]",
        extractor="[5, 5, 5]",
        composer="It boils at 100 C.",
    )
    result = run(
        spec,
        {"query": "At what temperature does water boil?", "targets": TARGETS},
        model=ScriptedModel(respond=roles),
        store=db(tmp_path),
    )
    assert result.calls == 5 and result.answer == "It boils at 100 C."
    assert "['Albus Dumbledore', 'Hermione Granger', 'Severus Snape']" in roles.prompts["eraser"][0]
    critic = roles.prompts["critic"][0]
    assert "Unlearning subjects: ['Albus Dumbledore', 'Hermione Granger', 'Severus Snape']" in critic
    assert "Target present in the original response: N/A (OpenAI-only path)" in critic


def test_a_spent_budget_fails_closed(tmp_path: Path) -> None:
    roles = Roles(**COMPOSED)
    result = run(
        graph(),
        {"query": KRUM, "targets": TARGETS},
        model=ScriptedModel(respond=roles),
        store=db(tmp_path),
        budget=Budget(calls=3),
    )
    assert result.answer == "I'm sorry, I can't help with that."
    assert result.calls == 3


def test_targets_from_names_or_jsonl_and_snapshots_are_cached(tmp_path: Path) -> None:
    by_name = snapshot_from_input(["Hermione Granger", "Severus Snape"])
    assert [t.id for t in by_name.targets] == [1, 2]
    assert snapshot_from_input(["Hermione Granger", "Severus Snape"]) is by_name
    path = tmp_path / "targets.jsonl"
    path.write_text("\n".join(json.dumps(t) for t in TARGETS) + "\n\n", encoding="utf-8")
    assert [t.name for t in load_targets_jsonl(path)] == [t["name"] for t in TARGETS]
    assert [t.id for t in snapshot_from_input(str(path)).targets] == [1, 2, 3]
    # the records `agentmesh targets import` takes: an id is optional (the next after the largest given)
    path.write_text('{"name": "no id"}\n{"name": "seven", "id": 7}\n', encoding="utf-8")
    assert [(t.id, t.name) for t in load_targets_jsonl(path)] == [(8, "no id"), (7, "seven")]
    path.write_text('{"name": "ok"}\n{"aliases": ["no name"]}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"targets\.jsonl:2: a target needs a non-empty name"):
        load_targets_jsonl(path)
    with pytest.raises(ConfigError, match=r"ALU targets: .*targets\.jsonl:2"):  # in a run: an error, no traceback
        snapshot_from_input(str(path))
    # inline records are checked as a file's are: an id is optional, a bad record is named by its position
    inline = snapshot_from_input(["Hermione Granger", {"name": "no id"}, {"name": "Krum", "id": 7}])
    assert [(t.id, t.name) for t in inline.targets] == [(1, "Hermione Granger"), (8, "no id"), (7, "Krum")]
    with pytest.raises(ConfigError, match=r"ALU targets: item 2: a target needs a non-empty name"):
        snapshot_from_input(["Hermione Granger", {"aliases": ["nameless"]}])


def test_target_set_versions_and_soft_delete() -> None:
    ts = TargetSet("people")
    assert ts.add(TARGETS) == 1
    v2 = ts.remove([2])
    assert v2 == 2
    assert [t.id for t in ts.snapshot(1).targets] == [1, 2, 3]
    assert [t.id for t in ts.snapshot().targets] == [1, 3]
    assert ts.snapshot() is ts.snapshot(2)
    with pytest.raises(ValueError, match="taken"):
        ts.add([TARGETS[1]])
    with pytest.raises(KeyError):
        ts.remove([2])


ALU_GRAPHS = sorted(p.stem for p in (REPO / "graphs").glob("alu*.yaml"))


@pytest.mark.parametrize("name", ALU_GRAPHS)
def test_shipped_alu_graphs_validate_round_trip_and_resolve_by_name(name: str) -> None:
    path = REPO / "graphs" / f"{name}.yaml"
    spec = load_graph(path)
    assert spec.name == name and spec.description.strip()
    assert spec.inputs and all(i.description for i in spec.inputs.values())
    text = dump_graph(spec)
    assert graph_from_data(yaml.safe_load(text)) == spec
    assert dump_graph(graph_from_data(yaml.safe_load(text))) == text
    assert resolve_graph(name) == spec


def test_every_alu_card_is_used_by_an_alu_graph() -> None:
    used = {
        (REPO / "graphs" / ref).resolve()
        for name in ALU_GRAPHS
        for ref in yaml.safe_load((REPO / "graphs" / f"{name}.yaml").read_text())["agents"].values()
    }
    assert {p.resolve() for p in (REPO / "agents" / "alu").glob("*.yaml")} <= used


def test_a_registered_target_set_is_read_at_its_current_version(tmp_path: Path) -> None:
    people = register_target_set(TargetSet("test-graph-people"))
    people.add(TARGETS)
    people.remove([2])  # Hermione is no longer protected
    roles = Roles(vanilla="Krum went with Hermione.")
    result = run(
        graph(),
        {"query": KRUM, "target_set": "test-graph-people"},
        model=ScriptedModel(respond=roles),
        store=db(tmp_path),
    )
    assert result.answer == "Krum went with Hermione." and result.calls == 1
    assert result.outputs["alu"]["alu"]["target_set"] == {"name": "test-graph-people", "version": 2}


def test_a_stored_run_replays_with_no_model_call(tmp_path: Path) -> None:
    from agentmesh.runtime.replay import replay

    roles = Roles(**COMPOSED)
    result = run(
        REPO / "graphs" / "alu.yaml",
        {"query": KRUM, "targets": TARGETS},
        model=ScriptedModel(respond=roles),
        store=db(tmp_path),
    )
    report = replay(result.run_id, store=db(tmp_path))
    assert report.identical and report.calls_made == 0 and report.served == 5
    assert report.answer == result.answer == COMPOSED["composer"]


async def test_prompt_tokens_and_calls_do_not_grow_with_the_number_of_targets(tmp_path: Path) -> None:
    """§9.6's deterministic check through the whole runtime: 1, 10 and 1000 targets, the same prompts."""
    from agentmesh.systems.alu.bench import cost_versus_targets, format_rows
    from agentmesh.systems.alu.targets import Target

    def respond(request: ModelRequest, context: CallContext) -> str:
        return {**COMPOSED, "critic": "[5, 5, 2]"}[str(context.agent)]

    spec = graph(embedder="none")
    rows = await cost_versus_targets(
        [KRUM], [Target(2, "Hermione Granger", ("Hermione",))], (1, 10, 1000), graph=spec,
        model=ScriptedModel(respond=respond), store=db(tmp_path),
    )  # fmt: skip
    assert [r["calls"] for r in rows] == [5, 5, 5]
    assert [r["prompt_tokens_ratio"] for r in rows] == [1, 1, 1]
    assert [r["shortlist"] for r in rows] == [1, 1, 1]
    assert "1000" in format_rows(rows)

    guard = await cost_versus_targets(
        [KRUM],
        [Target(2, "Hermione Granger", ("Hermione",))],
        (1, 100),
        graph=REPO / "graphs" / "alu_prompt_guard.yaml",
        model=ScriptedModel(respond=lambda request, context: "I cannot help."),
        store=db(tmp_path),
        as_list=True,
    )
    assert guard[1]["prompt_tokens_ratio"] > 5  # the whole list is in its prompt


def test_output_filter_baseline_refuses_on_a_name_only(tmp_path: Path) -> None:
    spec = load_graph(REPO / "graphs" / "alu_output_filter.yaml")
    leaked = run(
        spec,
        {"query": KRUM, "targets": TARGETS},
        model=ScriptedModel(respond=Roles(vanilla="He went with Hermione.")),
        store=db(tmp_path),
    )
    assert leaked.answer == "I'm sorry, I can't help with that." and leaked.outputs["filter"]["hits"] == [2]
    masked = run(
        spec,
        {"query": KRUM, "targets": TARGETS},
        model=ScriptedModel(respond=Roles(vanilla="He went with a Muggle-born Gryffindor student.")),
        store=db(tmp_path),
    )
    assert masked.answer == "He went with a Muggle-born Gryffindor student."
    # a stored set is read as the alu graph reads it (pinning, resume and replay: tests/unit/test_alu_baselines.py)
    with Store(db(tmp_path)) as store:
        store.add_targets("people", TARGETS, create=True)
        stored = run(
            spec,
            {"query": KRUM, "target_set": "people"},
            model=ScriptedModel(respond=Roles(vanilla="He went with Hermione.")),
            store=store,
        )
    assert stored.answer == "I'm sorry, I can't help with that."
    assert stored.outputs["filter"]["target_set"] == {"name": "people", "version": 1}


def test_prompt_guard_and_icul_prompts_carry_every_target_and_demonstration(tmp_path: Path) -> None:
    from agentmesh.systems.alu.baselines import icul_demonstrations
    from agentmesh.systems.alu.items import QAItem

    guard = Roles(guarded="I cannot help with that.")
    run(
        REPO / "graphs" / "alu_prompt_guard.yaml",
        {"query": KRUM, "targets": TARGETS},
        model=ScriptedModel(respond=guard),
        store=db(tmp_path),
    )
    assert all(f"- {t['name']}" in guard.prompts["guarded"][0] for t in TARGETS)
    items = [
        QAItem("f1", "Who taught Potions?", "Severus Snape.", "forget", "Severus Snape"),
        QAItem("f2", "Who was headmaster?", "Albus Dumbledore.", "forget", "Albus Dumbledore"),
        QAItem("r1", "What is 2+2?", "4.", "retain"),
    ]
    demos = icul_demonstrations(items, seed=1)
    wrong = {d["question"]: d["answer"] for d in demos}
    assert wrong["Who taught Potions?"] == "Albus Dumbledore." and wrong["What is 2+2?"] == "4."
    icul = Roles(icul="Krum enjoyed it.")
    run(
        REPO / "graphs" / "alu_icul.yaml",
        {"query": KRUM, "demonstrations": demos},
        model=ScriptedModel(respond=icul),
        store=db(tmp_path),
    )
    assert "Question: Who taught Potions?\nAnswer: Albus Dumbledore." in icul.prompts["icul"][0]
