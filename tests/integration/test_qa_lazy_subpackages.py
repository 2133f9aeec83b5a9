"""After a bare ``import agentmesh``, its subpackages are attributes of it, as they were when the package imported
them eagerly: the README writes ``agentmesh.spec.dump_graph(spec)``, ``@agentmesh.parsers.register_parser`` and
``agentmesh.optimize.optimize(...)`` after ``import agentmesh`` alone.

In a fresh interpreter: in this one, other tests imported every subpackage long ago.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def test_subpackages_are_attributes_of_the_package_after_a_bare_import(tmp_path: Path) -> None:
    code = """
        import sys
        import agentmesh

        print("heavy after import:", [m for m in ("agentmesh.spec", "agentmesh.parsers") if m in sys.modules])
        print(agentmesh.spec.dump_graph(agentmesh.resolve_graph("debate")).splitlines()[0])

        @agentmesh.parsers.register_parser("qa_upper")
        def upper(text):
            return agentmesh.parsers.Parsed.success(text.upper(), text.upper())

        print(agentmesh.parsers.get_parser("qa_upper") is not None)
        print(agentmesh.optimize.optimize.__module__, agentmesh.store.Store.__name__,
              agentmesh.errors.SpecError.__name__)
        for missing in ("no_such_module", "_yaml_typo"):
            try:
                getattr(agentmesh, missing)
            except AttributeError as exc:
                print("missing:", exc)
        """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "heavy after import: []",
        "name: debate",
        "True",
        "agentmesh.optimize.job Store SpecError",
        "missing: module 'agentmesh' has no attribute 'no_such_module'",
        "missing: module 'agentmesh' has no attribute '_yaml_typo'",
    ]
