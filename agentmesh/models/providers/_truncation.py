"""Telling a server that cut the prompt short without a word: Ollama, whose ``num_ctx`` is small by default.

llama.cpp's server, vLLM and SGLang refuse a prompt longer than their context window (a 400 that becomes a
:class:`~agentmesh.errors.ContextLengthError`), and the in-process model does too. Ollama instead drops the
oldest messages, or the start of a long one, until the prompt fits its ``num_ctx`` (2048 or 4096 tokens unless
raised), and answers the rest as if nothing were missing: a DyLAN round answers without the previous answers it
was meant to rate, a judge scores half a patch. The one trace is in the usage it reports: ``prompt_tokens`` counts
what was read, not what was sent.

So when a server reports far fewer prompt tokens than the prompt has, we say so, once per endpoint. "Far fewer" is
under :data:`SHARE` of :func:`least_tokens`, a count no tokenizer goes much below: the smaller of agentmesh's usual
estimate (four characters a token) and the number of pieces a BPE tokenizer splits text into before it merges
(a word with its leading space, up to three digits, a run of symbols, a run of spaces), each of which takes at least
one token because merges never cross them. On prose and code a tokenizer gives 0.8 to 1.4 times the estimate; on
text the estimate overrates (long runs of spaces in indented code or JSON, ``|----|`` tables) it still gives at
least the pieces (measured on SmolLM2's tokenizer: 0.48 of the estimate for deeply indented code, 1.0 of the
pieces). Only prompts of at least :data:`MIN_TOKENS` are checked: on a short one a chat template's few tokens per
message weigh enough to move the ratio, and no server's window is that small. A report of 0 is not taken for a cut
(Ollama before mid-2024 said 0 for a prompt it had cached, ollama#2068; those versions could also count only a
prompt's uncached part, which this check would take for a cut), and hosted OpenAI is never checked (it refuses,
never cuts).

What it misses: a prompt cut by less than half (4,500 tokens sent to a 2,048-token window is caught; 3,000 is
not), since a tighter share would take some honest counts for cuts.

The warning goes to the ``agentmesh.models.providers.openai_compat`` logger; with no logging set up (the command
line) Python prints it on stderr. Runs have no channel for warnings in their events, so it is not stored.
"""

from __future__ import annotations

import logging
import re
import threading

from agentmesh.models._tokens import estimate_prompt_tokens, estimate_tokens
from agentmesh.models.messages import CallContext, ModelRequest, Usage

#: A reported prompt under this share of :func:`least_tokens` was most likely cut (see the module docstring).
SHARE = 0.5
#: Prompts of fewer tokens than this (by :func:`least_tokens`) are not checked.
MIN_TOKENS = 1024

#: The pieces a BPE tokenizer's pre-tokenizer splits text into (GPT-2's pattern, Python's ``re``): a word with
#: its leading space, up to three digits, a run of symbols, a run of spaces (its last one left to the next word).
_PIECE = re.compile(r" ?[^\W\d_]+| ?\d{1,3}| ?[^\s\w]+|\s+(?!\S)|\s+|_+")

_warned: set[str] = set()
_lock = threading.Lock()


def least_tokens(request: ModelRequest) -> int:
    """About the fewest tokens any tokenizer makes of ``request``'s messages: per message, the smaller of the
    four-characters-a-token estimate and its pre-tokenizer pieces (see the module docstring)."""
    return sum(min(estimate_tokens(m.content), len(_PIECE.findall(m.content))) for m in request.messages)


def looks_cut(reported: int, least: int) -> bool:
    """Whether a server that reported ``reported`` prompt tokens for a prompt of at least ``least`` tokens (by
    :func:`least_tokens`) most likely read only part of it."""
    return least >= MIN_TOKENS and 0 < reported < SHARE * least


def warn_if_cut(
    log: logging.Logger, endpoint: str, model: str, request: ModelRequest, usage: Usage | None, context: CallContext
) -> bool:
    """Log a warning, the first time for ``endpoint`` in this process, when ``usage`` says the server read far
    less of ``request``'s prompt than it holds; whether it warned now."""
    if usage is None or usage.estimated or usage.prompt_tokens >= SHARE * estimate_prompt_tokens(request):
        return False  # (the quick test first: the pieces are counted only for a count under half the estimate)
    least = least_tokens(request)
    if not looks_cut(usage.prompt_tokens, least):
        return False
    with _lock:
        if endpoint in _warned:
            return False
        _warned.add(endpoint)
    where = ", ".join(
        f"{name} {value}"
        for name, value in (("node", context.node), ("agent", context.agent), ("round", context.round))
        if value is not None
    )
    chars = sum(len(m.content) for m in request.messages)
    log.warning(
        "%s (model %r%s): the server counted %d prompt tokens for a prompt of %d characters (at least about %d "
        "tokens): it most likely cut the prompt to fit its context window and answered without the rest. Ollama "
        "does this without an error when a prompt is longer than its num_ctx (2048 or 4096 tokens unless raised): "
        "raise it for the server (OLLAMA_CONTEXT_LENGTH=32768 ollama serve) or for the model (PARAMETER num_ctx "
        "32768 in a Modelfile, then ollama create), and check the CONTEXT column of `ollama ps`. Said once for this "
        "endpoint.",
        endpoint,
        model,
        f", {where}" if where else "",
        usage.prompt_tokens,
        chars,
        least,
    )
    return True
