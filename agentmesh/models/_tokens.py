"""Token estimates for when a server does not report usage (and for reserving tokens-per-minute budget).

About four characters per token for English text under BPE tokenizers; a few tokens of framing per chat
message. Estimates are always flagged as such in :class:`~agentmesh.models.messages.Usage`.
"""

from __future__ import annotations

from agentmesh.models.messages import ModelRequest

_CHARS_PER_TOKEN = 4
_PER_MESSAGE = 4
DEFAULT_COMPLETION_RESERVE = 256


def estimate_tokens(text: str) -> int:
    return (len(text) + _CHARS_PER_TOKEN - 1) // _CHARS_PER_TOKEN


def estimate_prompt_tokens(request: ModelRequest) -> int:
    return sum(estimate_tokens(m.content) + _PER_MESSAGE for m in request.messages)


def reserve_tokens(request: ModelRequest) -> int:
    """Tokens to reserve against a tokens-per-minute budget before a call: prompt plus the completion cap."""
    completion = request.sampling.max_tokens or DEFAULT_COMPLETION_RESERVE
    return estimate_prompt_tokens(request) + completion * request.sampling.n
