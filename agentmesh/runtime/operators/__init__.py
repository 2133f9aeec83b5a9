"""Built-in operators; importing this package registers them.

For operators of your own (``@operator``): :func:`gather_answers` asks agents concurrently (recorded, served on
resume, within the run's budget) and :func:`answer_of` votes over their answers, as the built-ins do.
"""

from agentmesh.runtime.operators import basic, rounds
from agentmesh.runtime.operators import code as code  # registers code_tests
from agentmesh.runtime.operators.basic import answer_of, gather_answers
from agentmesh.runtime.operators.registry import (
    FunctionContext,
    NodeOutput,
    NodeRun,
    get_function,
    get_operator,
    operator,
    register_function,
)

__all__ = [
    "FunctionContext",
    "NodeOutput",
    "NodeRun",
    "answer_of",
    "basic",
    "gather_answers",
    "get_function",
    "get_operator",
    "operator",
    "register_function",
    "rounds",
]
