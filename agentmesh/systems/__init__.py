"""The research methods' own maths, as pure typed functions, and the operators and functions that reach them from
YAML by registered name.

Importing :mod:`agentmesh.systems` registers them; the registries import it on first use
(:mod:`agentmesh._builtins`), so a graph spec can name ``dylan_importance``, ``sejury_verdict``, ``op: magicore`` or
``op: alu`` without an import of its own. Everything
generic (rounds, votes, rankers, stop policies) lives in :mod:`agentmesh.runtime`; only what a paper defines and
nothing else does lives here.
"""

from agentmesh.systems import alu, dylan, magicore, sejury

__all__ = ["alu", "dylan", "magicore", "sejury"]
