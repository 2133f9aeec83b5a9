"""Reasoning models behind an OpenAI-compatible server, over real HTTP: the thinking a reasoning parser returns
apart (vLLM's ``reasoning_content``, Ollama's ``reasoning``) or inline, the knobs such servers take
(``reasoning_effort``, ``extra_body``), and a run whose agent spent its ``max_tokens`` thinking."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from agentmesh.models import ModelClient, ModelRequest, get_model
from agentmesh.runtime import run
from agentmesh.spec import dump_graph, graph_from_data
from agentmesh.store import Store
from tests._cli import run_cli
from tests._servers import FakeOpenAIServer, Reply


@pytest.fixture
async def client(fake_server: FakeOpenAIServer) -> AsyncIterator[ModelClient]:
    made = get_model(f"openai:fake@{fake_server.url}")
    yield made
    await made.aclose()


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_returned_apart_is_kept_apart(
    fake_server: FakeOpenAIServer, client: ModelClient, field: str
) -> None:
    fake_server.script(Reply.ok("\\boxed{51}", reasoning="17*3: 10*3 + 7*3 = 51", reasoning_field=field))
    response = await client.complete(ModelRequest.of("What is 17*3?"))
    assert response.text == "\\boxed{51}"
    assert response.choices[0].reasoning == "17*3: 10*3 + 7*3 = 51"


async def test_reasoning_left_inline_by_the_server_is_split_out(
    fake_server: FakeOpenAIServer, client: ModelClient
) -> None:
    fake_server.script(Reply.ok("<think>\n10*3 + 7*3\n</think>\n\n\\boxed{51}"))
    response = await client.complete(ModelRequest.of("What is 17*3?"))
    assert response.text == "\\boxed{51}" and response.choices[0].reasoning == "10*3 + 7*3"


async def test_reasoning_effort_and_extra_body_reach_the_server_as_its_own_fields(
    fake_server: FakeOpenAIServer, client: ModelClient
) -> None:
    request = ModelRequest.of(
        "q",
        temperature=0.6,
        reasoning_effort="low",
        extra_body={"top_k": 20, "min_p": 0.0, "chat_template_kwargs": {"enable_thinking": False}},
    )
    await client.complete(request)
    await client.complete(ModelRequest.of("q", temperature=0.6))
    sent, plain = (r.body for r in fake_server.chat_requests)
    assert sent["reasoning_effort"] == "low" and sent["temperature"] == 0.6
    assert sent["top_k"] == 20 and sent["min_p"] == 0.0 and sent["chat_template_kwargs"] == {"enable_thinking": False}
    assert "extra_body" not in sent  # merged into the body, as vLLM reads it
    assert not {"reasoning_effort", "top_k", "chat_template_kwargs"} & set(plain)  # nothing sent unless asked


def _one_thinker(max_tokens: int) -> dict[str, object]:
    return {
        "name": "one_thinker",
        "inputs": {"question": {}},
        "agents": {
            "thinker": {
                "prompt": "{{ question }}",
                "parser": "boxed_math",
                "sampling": {
                    "max_tokens": max_tokens,
                    "reasoning_effort": "high",
                    "extra_body": {"chat_template_kwargs": {"enable_thinking": True}},
                },
            }
        },
        "nodes": {"ask": {"op": "call", "agent": "thinker"}},
    }


def test_a_run_whose_agent_spent_max_tokens_thinking_says_to_raise_it(
    fake_server: FakeOpenAIServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    fake_server.script(Reply.ok("", reasoning="Let me think about 17*3 step by", finish_reason="length"))
    graph = graph_from_data(_one_thinker(32))
    result = run(graph, {"question": "What is 17*3?"}, model=f"openai:fake@{fake_server.url}", store=db)
    answer = result.outputs["ask"]["answers"][0]
    assert answer["ok"] is False
    assert answer["error"] == (
        "the model stopped at max_tokens (32) while still thinking and gave no answer: give the agent a larger "
        "sampling.max_tokens (its reasoning is stored with the call)"
    )
    sent = fake_server.chat_requests[0].body
    assert sent["max_tokens"] == 32 and sent["reasoning_effort"] == "high"
    assert sent["chat_template_kwargs"] == {"enable_thinking": True}
    with Store(db) as store:
        (event,) = store.events(result.run_id, kind="model_call")
    assert event.response["choices"][0]["reasoning"] == "Let me think about 17*3 step by"
    assert event.request["sampling"]["extra_body"] == {"chat_template_kwargs": {"enable_thinking": True}}
    # show --full prints the thinking beside the (empty) reply; show folds it to its length
    code, out, _ = run_cli(["show", result.run_id, "--db", db, "--full"], capsys, monkeypatch)
    assert code == 0 and "reasoning: Let me think about 17*3 step by" in out
    code, out, _ = run_cli(["show", result.run_id, "--db", db], capsys, monkeypatch)
    assert code == 0 and "reasoned 31 chars" in out


def test_sampling_for_reasoning_models_round_trips_through_yaml() -> None:
    spec = graph_from_data(_one_thinker(4096))
    again = graph_from_data(yaml.safe_load(dump_graph(spec)))
    assert again == spec and again.spec_hash() == spec.spec_hash()
    assert again.agents["thinker"].sampling.extra_body == {"chat_template_kwargs": {"enable_thinking": True}}


def test_ask_prints_the_thinking_only_when_asked(
    fake_server: FakeOpenAIServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    model = f"openai:fake@{fake_server.url}"
    thinking = Reply(
        text="Paris", reasoning="The capital of France is Paris.", usage=(10, 9), cached_tokens=8, reasoning_tokens=7
    )
    fake_server.reset(thinking)
    code, out, _ = run_cli(["ask", "Capital of France?", "-m", model, "--db", db], capsys, monkeypatch)
    assert code == 0 and "Paris" in out and "The capital of France" not in out
    assert "10+9 tokens (8 cached, 7 thinking)" in " ".join(out.split())
    assert "reasoned 31 chars (--reasoning prints them)" in " ".join(out.split())
    code, out, _ = run_cli(
        ["ask", "Capital of France?", "-m", model, "--db", db, "--reasoning", "--reasoning-effort", "low"],
        capsys,
        monkeypatch,
    )
    assert code == 0 and out.index("The capital of France is Paris.") < out.rindex("Paris\n")
    assert fake_server.chat_requests[-1].body["reasoning_effort"] == "low"


def test_the_readme_reasoning_graph_votes_on_answers_served_with_their_thinking_apart(
    fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = re.search(r"```yaml\n(name: think_then_vote\n.*?)```", readme, re.DOTALL)
    assert example, "README has the think_then_vote example"
    path = tmp_path / "think_then_vote.yaml"
    path.write_text(example.group(1))
    # each sample drafts 99 while thinking; three of five conclude 51
    fake_server.script(
        *(Reply.ok(f"\\boxed{{{a}}}", reasoning="first guess \\boxed{99}") for a in (51, 50, 51, 52, 51))
    )
    result = run(
        str(path),
        {"question": "What is 17*3?"},
        model=f"openai:qwen3@{fake_server.url}",
        store=f"sqlite:///{tmp_path / 'r.db'}",
    )
    assert result.answer == "51" and result.calls == 5
    for request in fake_server.chat_requests:
        body = request.body
        assert body["messages"][-1]["content"] == "What is 17*3?\nPut the final answer in \\boxed{}."
        assert (body["max_tokens"], body["reasoning_effort"], body["top_k"], body["min_p"]) == (8192, "low", 20, 0.0)
        assert body["chat_template_kwargs"] == {"enable_thinking": True}


def test_cached_prompt_and_thinking_tokens_are_read_priced_and_shown(
    fake_server: FakeOpenAIServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    (tmp_path / "config.yaml").write_text("prices:\n  thinker-1: {input: 2.0, output: 8.0, cached_input: 0.5}\n")
    monkeypatch.setenv("AGENTMESH_CONFIG", str(tmp_path / "config.yaml"))
    fake_server.script(
        Reply(
            text="\\boxed{51}", usage=(10_000, 2_000), cached_tokens=8_000, reasoning_tokens=1_500, reasoning="10*3+7*3"
        )
    )
    graph = graph_from_data(_one_thinker(4096))
    result = run(graph, {"question": "What is 17*3?"}, model=f"openai:thinker-1@{fake_server.url}", store=db)
    assert result.answer == "51"
    assert result.cost_usd == pytest.approx((2_000 * 2.0 + 8_000 * 0.5 + 2_000 * 8.0) / 1e6)
    with Store(db) as store:
        (event,) = store.events(result.run_id, kind="model_call")
    assert event.response["usage"]["cached_prompt_tokens"] == 8_000
    assert event.response["usage"]["reasoning_tokens"] == 1_500
    code, out, _ = run_cli(["show", result.run_id, "--db", db], capsys, monkeypatch)
    assert code == 0 and "10000+2000 tok (8,000 cached, 1,500 thinking)" in " ".join(out.split())
