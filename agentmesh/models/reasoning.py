"""A reasoning model's thinking, kept apart from its answer.

Why. Reasoning models (DeepSeek-R1 and its distills, QwQ, Qwen3, gpt-oss, Magistral, ...) write a chain of thought
before their answer. Servers with a reasoning parser (vLLM's ``--reasoning-parser``, SGLang, llama.cpp's server,
Ollama, OpenRouter) return it in a field of its own (``reasoning_content``, or ``reasoning``); others, and the
embedded model, leave it in the text between tags. Either way an agent's answer must be what it concluded:

* parsers read the answer only: a ``\\boxed{}`` or a letter inside the thinking is a draft, not the answer;
* agents that see each other's answers (a debate's rounds, DyLAN's layers, a ranker, a judge) see conclusions, not
  drafts; the drafts would make every later prompt as long as all the thinking of the round before;
* votes and consensus count conclusions.

The thinking is not thrown away: it stays with the call's response in the store (``agentmesh show RUN --events``)
and is counted in its completion tokens, which is what a provider bills.
"""

from __future__ import annotations

from typing import Final

#: (opening, closing) tags of reasoning left inline in the text: DeepSeek-R1, QwQ, Qwen3, Granite (``think``),
#: models tuned to ``thinking`` tags, Magistral (``[THINK]``).
TAGS: Final[tuple[tuple[str, str], ...]] = (
    ("<think>", "</think>"),
    ("<thinking>", "</thinking>"),
    ("[THINK]", "[/THINK]"),
)


def split_reasoning(text: str) -> tuple[str | None, str]:
    """``(reasoning, answer)`` of a reply whose reasoning may be inline; ``(None, text)`` when it has none.

    Recognised (for each pair of :data:`TAGS`):

    * the reply *starts* with an opening tag (after white space): the reasoning runs to the first closing tag and the
      answer is what follows it. Without a closing tag the model was cut off while thinking (its ``max_tokens``
      spent): all of it is reasoning and the answer is empty;
    * a closing tag with no opening tag before it: the chat template opened the block in the prompt (DeepSeek-R1,
      QwQ, Qwen3's thinking models do), so the reply starts inside it; what precedes the closing tag is reasoning.

    A tag in the middle of an answer that does not start with one (an answer *about* such tags) is left alone.
    """
    if "THINK]" not in text and "think" not in text:  # the common case, one scan each
        return None, text
    stripped = text.lstrip()
    for opening, closing in TAGS:
        if stripped.startswith(opening):
            rest = stripped[len(opening) :]
            end = rest.find(closing)
            if end < 0:
                return rest.strip(), ""
            return rest[:end].strip(), rest[end + len(closing) :].strip()
    for opening, closing in TAGS:
        end = text.find(closing)
        if end >= 0 and opening not in text[:end]:
            return text[:end].strip(), text[end + len(closing) :].strip()
    return None, text
