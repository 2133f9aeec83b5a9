"""The scripted model: rules by agent, node, round and prompt regex; lists and templates; completeness."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from agentmesh.errors import ConfigError, ScriptExhaustedError, ScriptIncompleteError
from agentmesh.models import CallContext, ModelClient, ModelRequest, ModelSettings, ScriptedModel, ScriptRule, get_model


def ctx(
    agent: str | None = None, round: int | None = None, node: str | None = None, call_index: int = 0
) -> CallContext:
    return CallContext(agent=agent, round=round, node=node, call_index=call_index)


async def ask(model: ScriptedModel, prompt: str, context: CallContext | None = None, **sampling: object) -> list[str]:
    result = await model.complete(ModelRequest.of(prompt, **sampling), context or CallContext())
    return [c.text for c in result.choices]


async def test_responses_are_given_in_order_per_rule() -> None:
    model = ScriptedModel([{"agent": "solver", "responses": ["first", "second"]}])
    assert await ask(model, "q", ctx("solver")) == ["first"]
    assert await ask(model, "q", ctx("solver")) == ["second"]
    model.assert_complete()


async def test_rules_match_on_agent_node_round_and_prompt_regex() -> None:
    model = ScriptedModel(
        [
            {"name": "critic", "agent": "critic", "responses": ["critique"], "cycle": True},
            {"name": "r2", "agent": "solver", "round": [2, 3], "responses": ["late"], "cycle": True},
            {"name": "math", "agent": "solver", "prompt": r"What is \d+", "responses": ["a number"], "cycle": True},
            {"name": "judge-node", "node": "judge", "responses": ["verdict"], "cycle": True},
        ],
        default="fallback",
    )
    assert await ask(model, "anything", ctx("critic")) == ["critique"]
    assert await ask(model, "What is 3?", ctx("solver", round=2)) == ["late"]
    assert await ask(model, "What is 3?", ctx("solver", round=1)) == ["a number"]
    assert await ask(model, "Tell me", ctx("solver", round=1)) == ["fallback"]
    assert await ask(model, "x", ctx("other", node="judge")) == ["verdict"]
    assert [c.rule for c in model.calls] == [0, 1, 2, None, 3]


async def test_prompt_regex_searches_all_messages_across_lines() -> None:
    model = ScriptedModel([{"prompt": r"system rule.*user line", "responses": ["hit"]}])
    result = await model.complete(ModelRequest.of("first\nuser line", system="the system rule"), CallContext())
    assert result.choices[0].text == "hit"


async def test_template_sees_regex_groups_and_the_call() -> None:
    model = ScriptedModel(
        [
            {
                "agent": "solver",
                "prompt": r"What is (\d+)\*(\d+)",
                "template": "{{ match[1]|int * match[2]|int }} from {{ agent }} r{{ round }} #{{ use }}",
                "times": 2,
            }
        ]
    )
    assert await ask(model, "What is 6*7?", ctx("solver", round=1)) == ["42 from solver r1 #0"]
    assert await ask(model, "What is 2*5?", ctx("solver", round=2)) == ["10 from solver r2 #1"]
    model.assert_complete()


async def test_template_with_undefined_variable_is_an_error() -> None:
    model = ScriptedModel([{"template": "{{ nope }}"}])
    with pytest.raises(ScriptExhaustedError, match="undefined variable"):
        await ask(model, "q")


@pytest.mark.parametrize(
    "template",
    [
        "{{ cycler.__init__.__globals__.os.getcwd() }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    ],
)
async def test_a_script_template_cannot_reach_python_internals(template: str) -> None:
    # Script files are data like graph specs; their templates ran in Jinja's unsandboxed environment.
    model = ScriptedModel([{"template": template}])
    with pytest.raises(ScriptExhaustedError, match="template of"):
        await ask(model, "q")


async def test_cycle_repeats_and_times_caps_a_rule() -> None:
    model = ScriptedModel(
        [
            {"agent": "a", "responses": ["x", "y"], "cycle": True},
            {"agent": "b", "responses": ["only"], "times": 2},
        ]
    )
    assert [(await ask(model, "q", ctx("a")))[0] for _ in range(5)] == ["x", "y", "x", "y", "x"]
    assert await ask(model, "q", ctx("b")) == ["only"]
    assert await ask(model, "q", ctx("b")) == ["only"]
    with pytest.raises(ScriptExhaustedError, match="no rule left for the call agent='b'"):
        await ask(model, "q", ctx("b"))


async def test_exhausted_rule_falls_through_to_the_next_matching_one() -> None:
    model = ScriptedModel([{"responses": ["first"]}, {"responses": ["then this"], "cycle": True}])
    assert await ask(model, "q") == ["first"]
    assert await ask(model, "q") == ["then this"]
    assert await ask(model, "q") == ["then this"]


async def test_unmatched_call_without_default_names_the_call() -> None:
    model = ScriptedModel([{"agent": "solver", "responses": ["a"]}])
    with pytest.raises(ScriptExhaustedError) as info:
        await ask(model, "Prompt text here", ctx("critic", round=3, node="n1"))
    message = str(info.value)
    assert "agent='critic'" in message and "node='n1'" in message and "round=3" in message
    assert "Prompt text here" in message
    assert info.value.context == {"agent": "critic", "node": "n1", "round": 3}


async def test_default_and_respond_callable_answer_unmatched_calls() -> None:
    seen: list[tuple[str, str | None]] = []

    def respond(request: ModelRequest, context: CallContext) -> str:
        seen.append((request.prompt_text, context.agent))
        return f"echo: {request.prompt_text}"

    assert await ask(ScriptedModel(default="dunno"), "q") == ["dunno"]
    assert await ask(ScriptedModel(respond=respond), "hello", ctx("bob")) == ["echo: hello"]
    assert seen == [("hello", "bob")]


async def test_n_samples_consume_consecutive_responses() -> None:
    model = ScriptedModel([{"responses": ["a", "b", "c"]}])
    assert await ask(model, "q", n=3) == ["a", "b", "c"]
    model.assert_complete()


async def test_assert_complete_reports_unused_short_and_unscripted_calls() -> None:
    model = ScriptedModel(
        [
            {"name": "never", "agent": "ghost", "template": "boo"},
            {"name": "short", "agent": "solver", "responses": ["1", "2", "3"]},
            {"name": "maybe", "agent": "x", "responses": ["m"], "optional": True},
            {"name": "exact", "agent": "y", "responses": ["e"], "times": 1},
        ]
    )
    await ask(model, "q", ctx("solver"))
    await ask(model, "q", ctx("y"))
    with pytest.raises(ScriptExhaustedError):
        await ask(model, "q", ctx("stranger", round=4))
    with pytest.raises(ScriptIncompleteError) as info:
        model.assert_complete()
    problems = info.value.context["problems"]
    assert problems == [
        "never was never used",
        "short expected 3 call(s), got 1",
        "unscripted call: agent='stranger' node=None round=4",
    ]
    assert all(p in str(info.value) for p in problems)


async def test_assert_complete_passes_after_exact_use_and_reset_starts_over() -> None:
    model = ScriptedModel([ScriptRule(responses=["one"])])
    await ask(model, "q")
    model.assert_complete()
    model.reset()
    assert model.calls == []
    with pytest.raises(ScriptIncompleteError, match="expected 1 call"):
        model.assert_complete()
    assert await ask(model, "q") == ["one"]


async def test_calls_are_recorded_with_rule_and_context() -> None:
    model = ScriptedModel([{"agent": "a", "responses": ["r"]}], default="d")
    await ask(model, "p1", ctx("a", round=1, call_index=4))
    await ask(model, "p2", ctx("b"))
    assert [(c.prompt, c.rule, c.response, c.context.call_index) for c in model.calls] == [
        ("p1", 0, "r", 4),
        ("p2", None, "d", 0),
    ]


async def test_delay_is_simulated_without_blocking_other_calls() -> None:
    model = ScriptedModel([{"agent": "slow", "responses": ["s"], "delay_s": 0.2}], default="fast")
    slow = asyncio.create_task(ask(model, "q", ctx("slow")))
    await asyncio.sleep(0)  # let the slow call start (it runs until its simulated latency)
    assert await ask(model, "q", ctx("quick")) == ["fast"]
    assert not slow.done()  # the fast call finished while the slow one was still sleeping
    assert await slow == ["s"]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"agent": "a"}, "exactly one of 'responses'"),
        ({"responses": ["a"], "template": "b"}, "exactly one of 'responses'"),
        ({"responses": []}, "'responses' is empty"),
        ({"prompt": "(unclosed", "responses": ["a"]}, "not a valid regular expression"),
        ({"template": "{{ broken"}, "not a valid Jinja2 template"),
        ({"responses": ["a"], "colour": "red"}, r"unknown field\(s\) colour; a rule has name, agent"),
    ],
)
def test_invalid_rules_are_rejected(rule: dict[str, object], expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        ScriptedModel([rule])


async def test_through_the_client_usage_is_estimated_and_free() -> None:
    client = ModelClient(ScriptedModel([{"responses": ["four words of answer"]}]))
    response = await client.complete(ModelRequest.of("a prompt of some length"))
    assert response.text == "four words of answer"
    assert response.usage.estimated is True
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0
    assert response.cost_usd == 0.0
    assert response.attempts == 1
    assert client.reference == "scripted:scripted"


# --- scripted:<file.yaml> ---------------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "script.yaml"
    path.write_text(textwrap.dedent(text))
    return path


async def test_yaml_script_through_get_model(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        r"""
        default: "I am not sure."
        rules:
          - agent: solver
            round: [1, 2]
            prompt: 'What is (\d+)\*(\d+)'
            template: "{{ match[1]|int * match[2]|int }}"
            times: 2
          - agent: critic
            responses: ["Looks right.", "Still right."]
        """,
    )
    client = get_model(f"scripted:{path}", settings=ModelSettings())
    assert isinstance(client.provider, ScriptedModel)
    answers = [
        (await client.complete(ModelRequest.of("What is 6*7?"), ctx("solver", round=1))).text,
        (await client.complete(ModelRequest.of("What is 3*3?"), ctx("solver", round=2))).text,
        (await client.complete(ModelRequest.of("check"), ctx("critic"))).text,
        (await client.complete(ModelRequest.of("check"), ctx("critic"))).text,
        (await client.complete(ModelRequest.of("What is 1*1?"), ctx("solver", round=3))).text,
    ]
    assert answers == ["42", "9", "Looks right.", "Still right.", "I am not sure."]
    client.provider.assert_complete()
    assert client.provider.label == f"scripted:{path}"


def test_yaml_delay_and_default_are_read(tmp_path: Path) -> None:
    model = ScriptedModel.from_yaml(write(tmp_path, "delay_s: 0.5\ndefault: d\nrules: []\n"))
    assert (model.delay_s, model.default, model.rules) == (0.5, "d", [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules: [", "not valid YAML"),
        ("default: a\ndefault: b\nrules: []\n", "script.yaml:2: top level: key 'default' again (first at line 1)"),
        ("- a\n- b\n", "expected a mapping with a 'rules' list"),
        ("rules: {a: 1}\n", "expected a mapping with a 'rules' list"),
        ("rules: []\nextra: 1\n", "unknown top-level key(s) ['extra']"),
        ("rules:\n  - responses: [a]\n  - agent: x\n", "rules[1]"),
        (
            "rules:\n  - when: x\n    reply: y\n    responses: [a]\n",
            "rules[0]: unknown field(s) when, reply; a rule has name, agent, node, round, prompt, responses",
        ),
        ("rules:\n  - prompt: '('\n    responses: [a]\n", "not a valid regular expression"),
        ("default: 3\nrules: []\n", "'default' must be a string"),
        ("delay_s: -1\nrules: []\n", "'delay_s' must be a number >= 0"),
    ],
)
def test_yaml_errors_name_the_file_and_the_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        ScriptedModel.from_yaml(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_missing_script_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        get_model(f"scripted:{tmp_path / 'nope.yaml'}", settings=ModelSettings())
