"""The one packaging rule pyproject.toml cannot state: which packages ship.

``agents/`` and ``graphs/`` are data folders at the top of the repository (not Python packages: a top-level
package named ``agents`` would collide with other distributions), yet ``pip install agentmesh`` users must get
the built-in graphs. So the wheel carries them inside the package, as ``agentmesh/_builtin/agents`` and
``agentmesh/_builtin/graphs``: ``[tool.setuptools.package-dir]`` in pyproject.toml maps those two names to the
folders and ``[tool.setuptools.package-data]`` takes their YAML. Setuptools' package discovery cannot add them
to the packages it finds under ``agentmesh/`` (they have no folder there), hence this list; the card folders
(``agents/<graph>/``) are listed too, as data-only packages, so that setuptools knows they are meant to ship.
Everything else is in pyproject.toml; ``agentmesh.runtime.run.builtin_dir`` finds the folders in both layouts.
"""

from setuptools import find_namespace_packages, setup

BUILTIN = "agentmesh._builtin"

setup(
    packages=[
        *find_namespace_packages(include=["agentmesh", "agentmesh.*"]),
        f"{BUILTIN}.graphs",
        f"{BUILTIN}.agents",
        *(f"{BUILTIN}.agents.{name}" for name in find_namespace_packages(where="agents")),
    ]
)
