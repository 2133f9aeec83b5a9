"""Built-in operators; importing this package registers them."""

from agentmesh.runtime.operators import basic, rounds
from agentmesh.runtime.operators import code as code  # registers code_tests
from agentmesh.runtime.operators.registry import (
    NodeOutput,
    NodeRun,
    get_function,
    get_operator,
    operator,
    register_function,
)

__all__ = ["NodeOutput", "NodeRun", "basic", "get_function", "get_operator", "operator", "register_function", "rounds"]
