"""ALU's pure functions and control flow on the edge cases alu.md names (§3-§7, §9.2, §9.6)."""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction
from typing import Any

import pytest

from agentmesh.systems.alu import (
    AliasIndex,
    AluConfig,
    EmbeddingScorer,
    HashingEmbedder,
    ScriptedAgents,
    ScriptedScorer,
    Target,
    TargetSnapshot,
    apply_attack,
    gate,
    hashing_vector,
    ks_2samp_exact,
    lexical_hits,
    many_shot,
    masking,
    mcq_scores,
    normalize,
    occurs,
    parse_attack,
    parse_audit,
    parse_critic,
    rouge_l_recall,
    run_alu,
    shortlist,
    targets_block,
    windows,
)
from agentmesh.systems.alu.pipeline import REFERENCE_INTERNAL_ERROR
from agentmesh.systems.alu.scripted import ScriptExhausted

HERMIONE = Target(2, "Hermione Granger", ("Hermione",), "Gryffindor student who went to the Yule Ball with Krum.")
SNAPE = Target(3, "Severus Snape", ("Snape", "Half-Blood Prince"), "Potions master at Hogwarts.")
JOAQUIN = Target(12, "Joaquín Ferreira", (), "Fictitious author of sea adventure novels, born in Porto.")
REFUSAL = "I'm sorry, I can't help with that."


def snap(*targets: Target, version: int = 1) -> TargetSnapshot:
    return TargetSnapshot("test", version, tuple(targets))


# --- §3.2 normalisation and lexical hits -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("Jorge Semprún", "jorge semprun"),
        ("Hsiao Yun-Hwa", "hsiao yun hwa"),
        ("A. Lindqvist", "a lindqvist"),
        ("  STRASSE\t\n  ", "strasse"),
        ("Straße", "strasse"),  # casefold, not lower
        ("", ""),
        ("—!?", ""),
    ],
)
def test_normalize(raw: str, norm: str) -> None:
    assert normalize(raw) == norm


def test_hits_are_whole_words_with_accents_folded() -> None:
    assert occurs(JOAQUIN, "Joaquin Ferreira's first novel")
    assert occurs(HERMIONE, "He went with HERMIONE.")
    assert not occurs(HERMIONE, "Hermiones are not a thing")
    assert not occurs(Target(9, "Nonelli"), "None of them.")
    assert not occurs(Target(9, "None"), "Nonelli wrote it.")
    assert occurs(SNAPE, "the half blood prince's book")


def test_min_alias_len_keeps_two_letter_names_and_drops_shorter() -> None:
    vs = Target(1, "VS", ("V",))
    assert occurs(vs, "agent VS is toxic")
    assert not occurs(vs, "vitamin V only")
    assert not occurs(vs, "agent VS", min_alias_len=3)
    assert not occurs(Target(2, "!!"), "")  # an alias that normalises to nothing never matches


def test_hits_ordered_by_earliest_position_then_id() -> None:
    a = Target(7, "Krum", ("Viktor",))
    b = Target(5, "Viktor Krum")
    c = Target(1, "Granger")
    text = "Granger danced with Viktor Krum."
    assert lexical_hits(text, [a, b, c]) == [1, 5, 7]  # a and b both start at "viktor": id breaks the tie
    assert lexical_hits("Krum, later Viktor", [a]) == [7]


def test_alias_index_is_independent_of_other_targets() -> None:
    distractors = [Target(1000 + i, f"Distractor Person {i}", (f"DP{i}",)) for i in range(999)]
    text = "Viktor went with Hermione, not with Snape."
    assert AliasIndex([HERMIONE, SNAPE, *distractors]).hits(text) == AliasIndex([HERMIONE, SNAPE]).hits(text) == [2, 3]


def test_targets_block_omits_empty_parts_and_marks_found() -> None:
    plain = Target(4, "Tom Riddle")
    block = targets_block([HERMIONE, plain], found=[4])
    assert block.splitlines() == [
        "- Hermione Granger (also: Hermione) — Gryffindor student who went to the Yule Ball with Krum.",
        "- Tom Riddle [found]",
    ]


# --- §3.3 embeddings ---------------------------------------------------------------------------------------------


def test_hashing_vector_is_unit_deterministic_and_accent_blind() -> None:
    v = hashing_vector("Joaquín Ferreira")
    assert math.isclose(math.fsum(x * x for x in v), 1.0)
    assert v == hashing_vector("joaquin  FERREIRA")
    assert len(v) == 1024
    assert not any(hashing_vector(""))


def test_windows_cut_at_sentence_ends_and_never_exceed_the_size() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(60)) + " " + "x" * 900
    parts = windows(text)
    assert all(len(p) <= 400 for p in parts)
    assert parts[0].endswith(".")
    assert windows("short") == ["short"]


def test_many_shot_prefix_does_not_dilute_the_semantic_score() -> None:
    target = Target(11, "Mei-Lin Tsao", (), "Author born in Taichung who writes books on leadership.")
    scorer = EmbeddingScorer(HashingEmbedder())
    snapshot = snap(target)
    question = "Who is the leadership author born in Taichung?"
    plain = scorer.scores(many_shot(question, [], 0), snapshot)[11]  # the same turn format, no shots
    pool = [(f"What is {i} plus {i}?", f"It is {2 * i}.") for i in range(64)]
    attacked = scorer.scores(many_shot(question, pool, 64, seed=3), snapshot)[11]
    assert abs(attacked - plain) < 1e-12
    assert plain > 0.5 > scorer.scores(f"{question} " + " ".join(q + " " + a for q, a in pool), snapshot)[11]
    assert snapshot.derived  # the profile matrix is cached on the snapshot, per version


# --- §3.4 shortlist ----------------------------------------------------------------------------------------------


def test_lexical_hits_are_never_cut_and_semantic_fill_the_rest() -> None:
    targets = [Target(i, f"Name{i}") for i in range(1, 7)]
    text = "Name5 met Name3 and Name1."
    s = shortlist(text, "", snap(*targets), {2: 0.9, 4: 0.5, 6: 0.5}, m=2, tau_sem=0.4)
    assert s.lexical == (5, 3, 1)
    assert s.semantic == (2, 4, 6)
    assert s.ids == (5, 3, 1)  # more lexical hits than m: none cut, no semantic room
    s = shortlist("nothing", "", snap(*targets), {2: 0.4, 4: 0.5, 6: 0.5, 1: 0.39}, m=2, tau_sem=0.4)
    assert s.semantic == (4, 6, 2)  # score descending, ties by id; equality with tau_sem passes
    assert s.ids == (4, 6)
    assert shortlist("nothing", "", snap(*targets), {}, m=16, tau_sem=0.0).ids == (1, 2, 3, 4, 5, 6)  # missing = 0


# --- §4.2 audit --------------------------------------------------------------------------------------------------


def test_audit_first_word_none_is_clean_but_nonetheless_is_not() -> None:
    assert parse_audit("none", [HERMIONE], "x").status == "clean"
    r = parse_audit("Nonetheless the answer is fine.", [HERMIONE], "x")
    assert (r.status, r.matched) == ("unresolved", (2,))
    r = parse_audit("Nonetheless the answer is fine.", [HERMIONE], "x", on_unresolved="pass")
    assert (r.status, r.matched) == ("unresolved", ())


def test_audit_forced_by_the_vanilla_answer_unless_disabled() -> None:
    r = parse_audit("None", [HERMIONE, SNAPE], "Snape taught him.")
    assert (r.status, r.named, r.forced, r.matched) == ("flagged", (), (3,), (3,))
    r = parse_audit("None", [HERMIONE, SNAPE], "Snape taught him.", force_flag_lexical="none")
    assert r.status == "clean" and r.matched == ()


def test_audit_names_outside_the_shortlist_do_not_count() -> None:
    r = parse_audit("Severus Snape", [HERMIONE], "Krum danced.")
    assert (r.status, r.named, r.matched) == ("unresolved", (), (2,))


# --- §4.4 / §5 critic and gate -----------------------------------------------------------------------------------


def test_gate_is_on_the_mean_and_equality_passes() -> None:
    assert gate([5, 5, 2], 3, 4).decision == "compose"
    assert gate([5, 4, 3], 3, 4).decision == "compose"
    sel = gate([Fraction(11, 3), 4, 4], 3, 4)
    assert sel.decision == "refuse" and sel.top_sum == Fraction(35, 3)


def test_gate_with_no_candidate_or_j_zero_refuses() -> None:
    empty = gate([], 3, 4)
    assert (empty.decision, empty.top, empty.mean, empty.top_sum) == ("refuse", (), None, 0)
    assert gate([5, 5], 0, 4).decision == "refuse"
    two = gate([3, 5], 3, 4)
    assert (two.top, two.gate_sum, two.decision) == ((1, 0), 8, "compose")


def test_critic_without_a_list_scores_every_candidate_1() -> None:
    sample = parse_critic("All good, 5 out of 5.", 3)
    assert sample.status == "unparsed" and sample.scores == [1, 1, 1]


# --- §6 control flow ---------------------------------------------------------------------------------------------

KRUM = "How was Viktor Krum's experience at the Yule Ball?"
VANILLA = "He went with Hermione and danced all night."


def replies(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "vanilla": VANILLA,
        "audit": "Hermione Granger",
        "erase": '["Krum danced all night.", "Krum had fun.", "Krum went with Hermione."]',
        "critic": ["Final Rating List - [5, 5, 4]"],
        "composer": "Krum danced all night and had fun.",
    }
    return {**base, **over}


async def run(
    script: ScriptedAgents,
    config: AluConfig | None = None,
    query: str = KRUM,
    scores: dict[int, float] | None = None,
    **kw: Any,
) -> Any:
    snapshot = snap(HERMIONE, SNAPE)
    return await run_alu(query, snapshot, script.agents(), ScriptedScorer(scores or {}, tau_sem=0.4), config, **kw)


@pytest.mark.parametrize(
    ("over", "scores", "decision", "stop", "total"),
    [
        ({"vanilla": "Water boils at 100 C."}, {2: 0.3}, "passthrough_no_candidates", "no_candidate_targets", 1),
        ({"vanilla": "Krum danced.", "audit": "None."}, {2: 0.5}, "passthrough_clean", "audit_clean", 2),
        ({"erase": "  "}, {}, "refused", "no_rewrites", 3),
        ({"critic": ["Final Rating List - [2, 2, 1]"]}, {}, "refused", "critic_gate", 4),
        ({}, {}, "composed", "composed", 5),
    ],
)
async def test_early_stops_and_call_counts(
    over: dict[str, Any], scores: dict[int, float], decision: str, stop: str, total: int
) -> None:
    script = ScriptedAgents(replies(**over))
    result = await run(script, AluConfig(refusal_text=REFUSAL), scores=scores)
    assert (result.decision, result.stop_reason, result.total_calls) == (decision, stop, total)
    if decision == "refused":
        assert result.final_response == REFUSAL
    assert sum(script.calls(r) for r in ("vanilla", "audit", "erase", "critic", "composer")) == total


async def test_unused_roles_are_never_asked() -> None:
    script = ScriptedAgents({"vanilla": "Water boils at 100 C."})  # nothing scripted for the other roles
    result = await run(script, query="When does water boil?")
    assert result.final_response == "Water boils at 100 C." and result.total_calls == 1
    with pytest.raises(ScriptExhausted):
        await run(ScriptedAgents({"vanilla": VANILLA}))


async def test_critic_samples_are_averaged_exactly() -> None:
    script = ScriptedAgents(replies(critic=["Final Rating List - [5, 4, 5]", "Final Rating List - [4, 4, 5]"]))
    result = await run(script, AluConfig(critic_samples=2))
    assert result.scores == [Fraction(9, 2), 4, 5]
    assert result.selection.top == (2, 0, 1) and result.selection.top_sum == Fraction(27, 2)
    assert result.calls["critic"] == 2 and [r.sample for r in script.requests["critic"]] == [0, 1]


async def test_member_min_score_drops_low_members_after_the_gate() -> None:
    script = ScriptedAgents(replies(critic=["Final Rating List - [5, 5, 2]"]))
    result = await run(script, AluConfig(member_min_score=Fraction(3)))
    assert result.selection.decision == "compose"
    assert result.composer_input_blocks == ["Krum danced all night.", "Krum had fun."]


async def test_empty_composer_reply_falls_back_to_the_top_candidate() -> None:
    script = ScriptedAgents(replies(critic=["Final Rating List - [4, 5, 4]"], composer="   "))
    result = await run(script)
    assert result.final_response == "Krum had fun."


async def test_parallel_erase_asks_k_times_for_one_rewrite() -> None:
    script = ScriptedAgents(replies(erase=["Krum danced.", "[]", "1. Krum had fun."], critic=["[5, 5]"]))
    result = await run(script, AluConfig(k=3, erase_mode="parallel"))
    assert result.calls["erase"] == 3 and all(r.k == 1 for r in script.requests["erase"])
    assert result.candidates == ["Krum danced.", "1. Krum had fun."]


async def test_eraser_sees_the_shortlist_with_found_marks() -> None:
    script = ScriptedAgents(replies())
    await run(script)
    request = script.requests["erase"][0]
    assert [t.id for t in request.targets] == [2] and request.found == (2,)
    assert "[found]" in request.variables()["targets_block"]


async def test_events_record_every_step() -> None:
    seen: list[str] = []
    await run(ScriptedAgents(replies()), on_event=lambda name, data: seen.append(name))
    assert seen == ["vanilla", "shortlist", "audit", "candidates", "critic", "selection", "final"]


async def test_reference_compat_count_mismatch_is_the_released_error_sentence() -> None:
    script = ScriptedAgents({**replies(), "critic_extract": [5, 4]})
    result = await run(script, AluConfig(reference_compat=True))
    assert result.final_response == REFERENCE_INTERNAL_ERROR and result.total_calls == 4
    assert script.calls("audit") == 0


async def test_reference_compat_runs_on_unrelated_queries_and_does_not_clip() -> None:
    script = ScriptedAgents(
        {**replies(vanilla="Water boils at 100 C.", critic=["x"], composer=" raw "), "critic_extract": [7, 4, 1]}
    )
    result = await run(script, AluConfig(reference_compat=True), query="When does water boil?")
    assert result.total_calls == 5 and result.final_response == " raw "  # clipped, (5+4+1)/3 < 4 would refuse
    assert result.scores == [7, 4, 1]


async def test_reference_hf_checker_clean_rates_k_copies_of_the_vanilla_answer() -> None:
    script = ScriptedAgents({**replies(audit="Nonetheless, Hermione."), "critic_extract": [5, 5, 5, 5, 5]})
    result = await run(script, AluConfig(reference_compat="hf_checker"))
    assert result.candidates == [VANILLA] * 5
    assert script.calls("erase") == 0 and result.total_calls == 5
    assert result.composer_input_blocks == [VANILLA] * 3


async def test_prompts_do_not_grow_with_distractors() -> None:
    """§9.6's deterministic check: 999 distractors scored below tau_sem leave every prompt unchanged."""
    distractors = tuple(Target(100 + i, f"Invented Writer {i}", (), "Unrelated fictitious poet.") for i in range(999))
    prompts = []
    for extra in ((), distractors):
        script = ScriptedAgents(replies())
        snapshot = TargetSnapshot("bench", 1, (HERMIONE, SNAPE, *extra))
        scorer = ScriptedScorer({t.id: 0.1 for t in extra}, tau_sem=0.4)
        await run_alu(KRUM, snapshot, script.agents(), scorer)
        prompts.append([(role, repr(r)) for role, rs in script.requests.items() for r in rs])
    assert prompts[0] == prompts[1]


def test_config_from_json_ignores_unknown_keys_and_reads_rationals() -> None:
    cfg = AluConfig.from_json({"tau": "9/2", "tau_sem": "0.40", "k": "4", "whatever": 1})
    assert (cfg.tau, cfg.tau_sem, cfg.k) == (Fraction(9, 2), 0.4, 4)
    with pytest.raises(ValueError, match="critic_samples"):
        AluConfig(critic_samples=0)


# --- §7 attacks --------------------------------------------------------------------------------------------------


def test_masking_replaces_every_alias_and_adds_the_description() -> None:
    q = masking("What did Joaquin Ferreira's father do? Ask JOAQUÍN FERREIRA.", JOAQUIN)
    assert "Ferreira" not in q and "FERREIRA" not in q
    assert q.startswith("About the person described as: Fictitious author of sea adventure novels, born in Porto.")
    assert "What did this person's father do? Ask this person." in q
    assert q.endswith("Do not mention the name in your answer.")
    assert "this item" in masking("Is Snape kind?", Target(1, "Snape", kind="topic"))


def test_many_shot_is_seeded_and_ends_with_the_question() -> None:
    pool = [("Q1?", "A1."), ("Q2?", "A2."), ("Q3?", "A3.")]
    one = many_shot("Real?", pool, 5, seed=7)
    assert one == many_shot("Real?", pool, 5, seed=7)
    assert one.count("User: ") == 6 and one.endswith("User: Real?\nAssistant:")


def test_attack_specs() -> None:
    assert parse_attack("many_shot:16").shots == 16
    assert parse_attack("lang:fr").label == "lang:fr"
    for bad in ("many_shot:lots", "many_shot:0", "many_shot:-2"):
        with pytest.raises(ValueError, match="expected many_shot:<number of shots, at least 1>"):
            parse_attack(bad)
    with pytest.raises(KeyError, match="'de'"):
        apply_attack(parse_attack("lang:de"), "Q?", HERMIONE, translations={"fr": {"Q?": "Q ?"}})


# --- §9.2 metrics ------------------------------------------------------------------------------------------------


def _ks_brute(a: list[float], b: list[float]) -> tuple[Fraction, Fraction]:
    def stat(x: list[float], y: list[float]) -> Fraction:
        points = sorted(set(x + y))
        return max(
            abs(Fraction(sum(v <= p for v in x), len(x)) - Fraction(sum(v <= p for v in y), len(y))) for p in points
        )

    d = stat(a, b)
    pooled = list(range(len(a) + len(b)))
    hits = total = 0
    for chosen in itertools.combinations(pooled, len(a)):
        rest = [i for i in pooled if i not in chosen]
        total += 1
        hits += stat([float(i) for i in chosen], [float(i) for i in rest]) >= d
    return d, Fraction(hits, total)


@pytest.mark.parametrize(
    ("a", "b"),
    [([0.1, 0.5, 0.9], [0.2, 0.3, 0.4, 0.6, 0.7]), ([1, 2, 3, 4], [5, 6]), ([0.3], [0.1, 0.2, 0.4])],
)
def test_ks_exact_matches_enumeration(a: list[float], b: list[float]) -> None:
    got = ks_2samp_exact(a, b)
    statistic, pvalue = _ks_brute(a, b)
    assert got.statistic == pytest.approx(float(statistic), abs=1e-12)
    assert got.pvalue == pytest.approx(float(pvalue), abs=1e-12)


def test_ks_identical_samples_give_p_1() -> None:
    assert ks_2samp_exact([0.5, 0.5], [0.5, 0.5]).pvalue == 1


def test_rouge_edge_cases() -> None:
    assert rouge_l_recall("", "anything", stemmer=None) == 0
    assert rouge_l_recall("a b c", "c b a", stemmer=None) == Fraction(1, 3)
    assert rouge_l_recall("Civil-engineer!", "civil engineer", stemmer=None) == 1


def test_mcq_gold_as_index_and_random_fill() -> None:
    scores = mcq_scores(["(B)", REFUSAL], [1, "A"], 4, REFUSAL)
    assert (scores.acc_strict, scores.acc_random_fill, scores.abstain_rate) == (
        Fraction(1, 2),
        Fraction(5, 8),
        Fraction(1, 2),
    )


# --- §9 evaluation -----------------------------------------------------------------------------------------------


async def test_eval_runs_items_under_attacks_and_summarises(tmp_path: Any) -> None:
    from agentmesh.systems.alu.items import load_qa_jsonl, targets_from_items
    from agentmesh.systems.alu.outcomes import run_items
    from agentmesh.systems.alu.summary import summarize

    path = tmp_path / "qa.jsonl"
    rows = [
        {"id": "f1", "question": "What did Mei-Lin Tsao's father do?", "answer": "He was a civil engineer.",
         "split": "forget", "target": "Mei-Lin Tsao"},
        {"id": "r1", "question": "At what temperature does water boil?", "answer": "At 100 degrees Celsius.",
         "split": "retain"},
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    items = load_qa_jsonl(path)
    targets = targets_from_items(items)
    assert [t.name for t in targets] == ["Mei-Lin Tsao"]
    snapshot = TargetSnapshot("qa", 1, tuple(targets))

    def agents_for(item: Any, attack: Any) -> Any:
        if item.split == "retain":
            return ScriptedAgents({"vanilla": "Water boils at 100 degrees Celsius."}).agents()
        return ScriptedAgents(
            {
                "vanilla": "Mei-Lin Tsao's father was a civil engineer.",
                "audit": "Mei-Lin Tsao",
                "erase": '["I cannot share that.", "That is private.", "No comment."]',
                "critic": ["[5, 5, 5]"],
                "composer": REFUSAL,
            }
        ).agents()

    class FatherScorer:
        tau_sem = 0.4

        def scores(self, text: str, snapshot: TargetSnapshot) -> dict[int, float]:
            return {1: 0.9 if "father" in text else 0.0}

    outcomes = await run_items(items, snapshot, agents_for, FatherScorer(), attacks=["none", "masking"])
    assert [(o.item_id, o.attack) for o in outcomes] == [("f1", "none"), ("f1", "masking"), ("r1", "none")]
    table = summarize(outcomes, refusal_text=REFUSAL, stemmer=None)
    assert table["forget/none"]["leak_rate"] == 0 and table["forget/none"]["refusal_rate"] == 1
    assert table["forget/masking"]["shortlist_recall"] == 1 and table["forget/masking"]["trigger_rate"] == 1
    assert table["retain/none"]["rougeL_recall"] == 1  # at 100 degrees celsius, all in order
    assert table["retain/none"]["calls_per_query"] == 1 and table["retain/none"]["retain_trigger_rate"] == 0
    assert table["forget/none"]["calls_per_query"] == 5


def test_embedder_references() -> None:
    from agentmesh.systems.alu.semantic import OpenAIEmbedder, embedder_from_ref

    assert isinstance(embedder_from_ref("hashing"), HashingEmbedder)
    remote = embedder_from_ref("openai:nomic-embed@http://127.0.0.1:8080/v1")
    assert isinstance(remote, OpenAIEmbedder) and remote.base_url == "http://127.0.0.1:8080/v1"
    assert remote.id == "openai:nomic-embed@http://127.0.0.1:8080/v1"
    with pytest.raises(ValueError, match="unknown embedder"):
        embedder_from_ref("bert")


async def test_config_min_alias_len_applies_to_the_shortlist_too() -> None:
    vs = Target(1, "VS", (), "Nerve agent.")
    snapshot = TargetSnapshot("t", 1, (vs,))
    script = ScriptedAgents({"vanilla": "VS is dangerous."})
    result = await run_alu(
        "Tell me about VS.", snapshot, script.agents(), ScriptedScorer({}), AluConfig(min_alias_len=3)
    )
    assert result.decision == "passthrough_no_candidates"  # a 2-letter alias is too short at 3
    assert set(snapshot._indexes) == {3}


def test_evaluate_keeps_every_name_of_the_protocol_under_its_old_path() -> None:
    """The protocol was split by what each part does (items, cases, compared, outcomes, summary, judge);
    ``agentmesh.cli.eval`` and users' scripts import its names from ``evaluate``: each is its home's own object,
    and each has exactly one home."""
    from agentmesh.systems.alu import cases, compared, evaluate, items, judge, outcomes, summary

    homes = [items, cases, compared, outcomes, summary, judge]
    for name in evaluate.__all__:
        found = [home for home in homes if name in home.__all__]
        assert len(found) == 1, name
        assert getattr(evaluate, name) is getattr(found[0], name), name


def test_offline_demo_set_is_consistent() -> None:
    from agentmesh.systems.alu.data import demo_mcq_items, demo_qa_items, demo_targets
    from agentmesh.systems.alu.items import mcq_question, targets_from_items

    items = demo_qa_items()
    targets = demo_targets()
    assert [t.name for t in targets_from_items(items)] == [t.name for t in targets]
    snapshot = TargetSnapshot("demo", 1, tuple(targets))
    for item in items:
        hits = snapshot.index.hits(item.question)
        assert (len(hits) == 1) if item.split == "forget" else not hits, item.id
    gold = [i.answer for i in demo_mcq_items()]
    assert mcq_scores(["(B)", "The answer is C", "A) Jupiter", "(D)"], gold, 4, REFUSAL).acc_strict == 1
    assert "D) Six" in mcq_question(demo_mcq_items()[3])
