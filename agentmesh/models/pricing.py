"""Cost of a call from a price table.

Hosted prices change; the built-in table is a convenience, dated, and any entry can be overridden in the
settings file (``prices:``). A model with no known price gets ``cost_usd = None`` rather than a guess, and
in-process, scripted and replayed models cost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from agentmesh.models.messages import Usage
from agentmesh.models.settings import Price

# USD per million tokens, from OpenAI's public price list (2025); override in .agentmesh/config.yaml.
DEFAULT_PRICES: Mapping[str, Price] = {
    "gpt-4o": Price(input=2.50, output=10.00, cached_input=1.25),
    "gpt-4o-mini": Price(input=0.15, output=0.60, cached_input=0.075),
    "gpt-4.1": Price(input=2.00, output=8.00, cached_input=0.50),
    "gpt-4.1-mini": Price(input=0.40, output=1.60, cached_input=0.10),
    "gpt-4.1-nano": Price(input=0.10, output=0.40, cached_input=0.025),
    "o4-mini": Price(input=1.10, output=4.40, cached_input=0.275),
    "gpt-3.5-turbo": Price(input=0.50, output=1.50),
}


def price_for(model: str, table: Mapping[str, Price]) -> Price | None:
    """Exact name first, then the longest table key that prefixes the name (dated snapshots)."""
    if model in table:
        return table[model]
    matches = [k for k in table if model.startswith(k + "-")]
    return table[max(matches, key=len)] if matches else None


def cost_usd(price: Price | None, usage: Usage) -> float | None:
    """What ``usage`` costs at ``price``: cached prompt tokens at the cached rate when the price has one (reasoning
    tokens are completion tokens, billed as output)."""
    if price is None:
        return None
    cached = min(usage.cached_prompt_tokens, usage.prompt_tokens)
    cached_rate = price.input if price.cached_input is None else price.cached_input
    prompt = (usage.prompt_tokens - cached) * price.input + cached * cached_rate
    return (prompt + usage.completion_tokens * price.output) / 1_000_000
