"""Python code from a code-writer's reply (DyLAN HumanEval, dylan.md §5.3, ``parse_code_completion``).

The rule, in order: the *last* fenced block opened with ```` ```python ```` (or ```` ```Python ````); if there is
none, the lines after the first line containing ``impl]`` (writers fill an ``[improved impl]`` template); if
there is no such line, the whole reply. If the result contains no ``def`` anywhere, the HumanEval prompt
(signature and docstring) is prepended, because writers are asked to complete the function body.

Plain ```` ``` ```` fences are *not* code blocks in the reference (the whole reply, fences included, is used);
``any_fence: true`` accepts them after the python blocks, for models that do not label their fences.
"""

from __future__ import annotations

import re

from agentmesh.parsers.registry import Parsed, ParserParams, register_parser

__all__ = ["extract_python_code", "python_code"]

_PYTHON_BLOCK_RE = re.compile(r"```[pP]ython(.*?)```", re.DOTALL)
_ANY_BLOCK_RE = re.compile(r"```[^\n`]*\n(.*?)```", re.DOTALL)


def _after_impl_marker(text: str) -> str | None:
    if "impl]" not in text:
        return None
    out: list[str] = []
    inside = False
    for line in text.split("\n"):
        if inside:
            out.append(line + "\n")
        if "impl]" in line:
            inside = True
    return "".join(out)


def _find_code(text: str, any_fence: bool) -> tuple[str, str]:
    blocks = _PYTHON_BLOCK_RE.findall(text)
    if blocks:
        return blocks[-1].strip(), "fence"
    if any_fence:
        others = _ANY_BLOCK_RE.findall(text)
        if others:
            return others[-1].strip(), "any_fence"
    after = _after_impl_marker(text)
    if after is not None:
        return after, "impl_marker"
    return text, "whole"


def _with_prompt(code: str, prompt: str | None) -> str:
    return prompt + code if prompt and "def" not in code else code


def extract_python_code(text: str, prompt: str | None = None, *, any_fence: bool = False) -> tuple[str, str]:
    """The code a reply gives and how it was found: ``("...", "fence" | "any_fence" | "impl_marker" | "whole")``.

    ``prompt`` (the HumanEval prompt) is prepended when the code has no ``def`` (dylan.md §5.3).
    """
    code, source = _find_code(text, any_fence)
    return _with_prompt(code, prompt), source


class PythonCodeParams(ParserParams):
    """Parameters of :data:`python_code`."""

    prompt: str | None = None
    """The function's prompt (signature + docstring), prepended when the code has no ``def``; usually passed
    per call by the runtime (one per HumanEval item)."""
    any_fence: bool = False
    """Also accept unlabelled / other-language fences when no ```` ```python ```` block exists."""


@register_parser("python_code", params=PythonCodeParams, call_params=("prompt",))
def python_code(text: str, *, prompt: str | None, any_fence: bool) -> Parsed:
    """Python code from the last ```` ```python ```` block, with DyLAN's HumanEval fallbacks (dylan.md §5.3).

    ``ok`` is false when no fenced block was found: the value is then the spec's fallback (text after
    ``impl]`` or the whole reply), which the method still executes.
    """
    found, source = _find_code(text, any_fence)
    code = _with_prompt(found, prompt)
    key = code.strip() or None
    if source in ("fence", "any_fence"):
        if not found.strip():
            return Parsed.failure("the ```python block is empty", code, key)
        return Parsed.success(code, key)
    how = "the lines after 'impl]'" if source == "impl_marker" else "the whole reply"
    return Parsed.failure(f"no ```python block in the reply; used {how} (DyLAN's rule)", code, key)
