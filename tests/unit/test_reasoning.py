"""Reasoning models: their thinking kept apart from their answers (parsers, peers and votes see answers only), kept
in the store, and an answer cut off while thinking said to be so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentmesh.models import ModelRequest, ScriptedModel, get_model
from agentmesh.models.messages import Sampling
from agentmesh.models.reasoning import split_reasoning
from agentmesh.runtime import run
from agentmesh.spec import graph_from_data
from agentmesh.store import Store


@pytest.mark.parametrize(
    ("text", "reasoning", "answer"),
    [
        ("<think>17*3 = 51</think>\n\nThe answer is \\boxed{51}.", "17*3 = 51", "The answer is \\boxed{51}."),
        ("  \n<think>\nfirst\nsecond\n</think>51", "first\nsecond", "51"),
        ("<thinking>hmm</thinking> B", "hmm", "B"),
        ("[THINK]Magistral drafts here[/THINK]The answer: 4", "Magistral drafts here", "The answer: 4"),
        # the chat template opened the block in the prompt (DeepSeek-R1, QwQ): the reply starts inside it
        ("so 51 it is\n</think>\n\n\\boxed{51}", "so 51 it is", "\\boxed{51}"),
        # cut off while thinking: all of it is reasoning, no answer
        ("<think>let me count: 1, 2, 3, 4", "let me count: 1, 2, 3, 4", ""),
        # an empty block (Qwen3 with thinking switched off)
        ("<think>\n\n</think>\n\nParis", "", "Paris"),
        # only the first block is reasoning; the answer keeps the rest verbatim
        ("<think>a</think>x <think>b</think> y", "a", "x <think>b</think> y"),
    ],
)
def test_inline_reasoning_is_split_from_the_answer(text: str, reasoning: str, answer: str) -> None:
    assert split_reasoning(text) == (reasoning, answer)


@pytest.mark.parametrize(
    "text",
    [
        "I think the answer is 51.",
        "Wrap your draft in <think> tags, like <think>this</think>.",  # an answer about the tags
        "<b>think</b> again",
        "",
    ],
)
def test_replies_without_leading_reasoning_are_left_alone(text: str) -> None:
    assert split_reasoning(text) == (None, text)


async def test_the_client_moves_inline_reasoning_out_of_the_answer_and_counts_it() -> None:
    model = ScriptedModel([{"responses": ["<think>" + "draft " * 50 + "</think>\\boxed{51}", "\\boxed{7}"]}])
    client = get_model(model)
    try:
        thought = await client.complete(ModelRequest.of("q"))
        plain = await client.complete(ModelRequest.of("q"))
    finally:
        await client.aclose()
    assert thought.text == "\\boxed{51}" and thought.choices[0].reasoning == ("draft " * 50).strip()
    assert plain.text == "\\boxed{7}" and plain.choices[0].reasoning is None
    # the scripted model reports no usage: the estimate counts the thinking too (a provider bills it)
    assert thought.usage.estimated and thought.usage.completion_tokens > plain.usage.completion_tokens + 40


THINKER = {
    "prompt": "{{ question }}{% for p in previous %}\nPeer: {{ p.text }}{% endfor %}",
    "parser": "boxed_math",
    "sampling": {"max_tokens": 64},
}


def _debate(rounds: int) -> Any:
    return graph_from_data(
        {
            "name": "thinking_debate",
            "inputs": {"question": {}},
            "agents": {"thinker": THINKER},
            "nodes": {
                "debate": {"op": "rounds", "agents": ["thinker"] * 3, "rounds": rounds, "stop": {"consensus": {}}},
                "vote": {"op": "vote", "from": "debate"},
            },
            "edges": [["debate", "vote"]],
        }
    )


def test_a_debate_of_reasoning_models_votes_on_answers_and_shows_peers_no_drafts(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    # each agent's draft holds a boxed answer that is not its answer: a parser reading the thinking would take it
    model = ScriptedModel(
        [
            {
                "round": 1,
                "template": "<think>draft-{{ call_index }}: maybe \\boxed{99}</think>"
                "\\boxed{ {{- 50 + call_index -}} }",
            },
            {"round": 2, "template": "<think>draft-r2-{{ call_index }} \\boxed{98}</think>I agree: \\boxed{51}"},
        ]
    )
    result = run(_debate(rounds=3), {"question": "What is 17*3?"}, model=model, store=db)
    assert result.answer == "51" and result.calls == 6  # round 1: 50, 51, 52; round 2 all 51: consensus
    round2 = [c for c in model.calls if c.context.round == 2]
    for call in round2:
        assert "draft" not in call.prompt and "99" not in call.prompt
        assert sorted(line for line in call.prompt.splitlines() if line.startswith("Peer")) == [
            f"Peer: \\boxed{{{50 + i}}}" for i in range(3)
        ]
    with Store(db) as store:
        events = store.events(result.run_id, kind="model_call")
    kept = sorted(e.response["choices"][0]["reasoning"] for e in events)  # the thinking stays with each call
    drafts = [f"draft-{i}: maybe \\boxed{{99}}" for i in range(3)] + [f"draft-r2-{i} \\boxed{{98}}" for i in range(3)]
    assert kept == drafts
    assert all("draft" not in e.response["choices"][0]["text"] for e in events)


def test_a_reply_that_is_all_reasoning_has_no_answer_and_says_why(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    graph = graph_from_data(
        {
            "name": "one",
            "inputs": {"question": {}},
            "agents": {"thinker": {**THINKER, "prompt": "{{ question }}"}},
            "nodes": {"ask": {"op": "call", "agent": "thinker"}},
        }
    )
    model = ScriptedModel([{"responses": ["<think>Let me carefully consider every step of"]}])
    result = run(graph, {"question": "q"}, model=model, store=db)
    answer = result.outputs["ask"]["answers"][0]
    assert answer["ok"] is False and answer["text"] == ""
    assert answer["error"] == (
        "the model reasoned but gave no answer after its reasoning (its reasoning is stored with the call)"
    )


def test_sampling_fields_for_reasoning_models_leave_older_requests_and_their_hashes_as_they_were() -> None:
    plain = ModelRequest.of("What is 17*3?", temperature=0, max_tokens=64)
    assert Sampling(temperature=0, max_tokens=64) == plain.sampling
    assert "reasoning_effort" not in plain.model_dump()["sampling"] and "extra_body" not in plain.to_json()["sampling"]
    # the hash every run recorded before these fields existed (this request, as it was stored then)
    assert plain.request_hash() == "a73183ef4fd98e0177b427bb1b2ab92cdbac0956881d67826ace5fa642115fd7"


def test_sampling_for_servers_beyond_the_openai_api_is_hashable_and_checked() -> None:
    body = {"top_k": 20, "chat_template_kwargs": {"enable_thinking": False}}
    a = Sampling(reasoning_effort="low", extra_body=body)
    b = Sampling(reasoning_effort="low", extra_body=dict(reversed(body.items())))
    assert a == b and hash(a) == hash(b)  # an agent's sampling is a cache key: equal ones hash alike
    assert a.model_dump()["extra_body"] == body
    assert ModelRequest(messages=(), sampling=a).request_hash() != ModelRequest(messages=()).request_hash()
    with pytest.raises(ValueError, match="extra_body"):
        Sampling(extra_body={"f": object()})  # type: ignore[dict-item]
