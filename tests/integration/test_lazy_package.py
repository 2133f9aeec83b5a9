"""``import agentmesh`` imports nothing heavy, and what the package used to import eagerly -- the research systems'
operators and functions, the runtime's ``replay:`` provider -- is still there whatever part of agentmesh a
program imported: the registries load it on first use (:mod:`agentmesh._builtins`).

Each check runs in a fresh interpreter: in this one, the systems were imported long ago by other tests.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

GRAPHS = Path(__file__).resolve().parents[2] / "graphs"


def _python(code: str, cwd: Path) -> str:
    """Run ``code`` in a fresh interpreter (from ``cwd``, so that the installed agentmesh is the one imported); its
    stdout, after checking that it succeeded."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_package_imports_its_names_on_first_use(tmp_path: Path) -> None:
    out = _python(
        """
        import sys
        import agentmesh

        heavy = [m for m in ("agentmesh.runtime", "agentmesh.systems", "agentmesh.spec", "agentmesh.models")
                 if m in sys.modules]
        print("heavy after import:", heavy)
        print("version:", agentmesh.__version__)
        print("listed:", all(name in dir(agentmesh) for name in agentmesh.__all__))
        from agentmesh import run, RunResult, load_graph, AgentmeshError
        import agentmesh.runtime, agentmesh.spec, agentmesh.errors
        print("same:", run is agentmesh.run is agentmesh.runtime.run, RunResult is agentmesh.runtime.RunResult,
              load_graph is agentmesh.spec.load_graph, AgentmeshError is agentmesh.errors.AgentmeshError)
        print("systems:", agentmesh.systems.__name__)
        try:
            agentmesh.no_such_name
        except AttributeError as exc:
            print("missing:", exc)
        """,
        tmp_path,
    )
    assert out.splitlines() == [
        "heavy after import: []",
        "version: 0.1.0",
        "listed: True",
        "same: True True True True",
        "systems: agentmesh.systems",
        "missing: module 'agentmesh' has no attribute 'no_such_name'",
    ]


def test_a_graph_naming_a_systems_operator_or_function_loads_with_only_the_spec_imported(tmp_path: Path) -> None:
    """``op: alu``, ``op: magicore`` and ``function: sejury_verdict`` were known only because ``agentmesh``
    imported the systems; a program importing only :mod:`agentmesh.spec` or the runtime's registry still gets them."""
    out = _python(
        f"""
        from agentmesh.spec import load_graph
        from agentmesh.runtime.operators.registry import check_functions, get_function, get_operator

        for name in ("alu", "magicore", "sejury", "dylan_math"):
            spec = load_graph({str(GRAPHS)!r} + "/" + name + ".yaml")
            check_functions(spec)
            print(name, sorted({{node.op for node in spec.nodes.values()}} & {{"alu", "magicore"}}))
        print(get_function("dylan_importance").__module__, get_operator("dylan_code").__module__)
        """,
        tmp_path,
    )
    assert out.splitlines() == [
        "alu ['alu']",
        "magicore ['magicore']",
        "sejury []",
        "dylan_math []",
        "agentmesh.systems.dylan.functions agentmesh.systems.dylan.code",
    ]


def test_the_operator_list_and_a_lookup_know_the_systems_operators(tmp_path: Path) -> None:
    out = _python(
        """
        from agentmesh.spec.operators import operator_names, operator_params

        print("alu" in operator_names(), "magicore" in operator_names())
        """,
        tmp_path,
    )
    assert out.split() == ["True", "True"]
    out = _python(
        """
        from agentmesh.spec.operators import operator_params

        print(operator_params("alu").__name__)
        """,
        tmp_path,
    )
    assert out.strip() == "AluParams"


def test_a_shipped_name_is_refused_before_the_systems_were_ever_used(tmp_path: Path) -> None:
    """A user's ``@register_function("dylan_importance")`` was refused (it would change every graph using it); were
    the systems loaded only later, theirs would silently have replaced the user's, or the user's taken the name."""
    out = _python(
        """
        from agentmesh.errors import ConfigError
        from agentmesh.runtime import register_function

        try:
            @register_function("dylan_importance")
            def mine(outputs, inputs):
                return {}
        except ConfigError as exc:
            print("refused:", "is agentmesh's own" in str(exc))
        from agentmesh.runtime.operators.registry import get_function

        print(get_function("dylan_importance").__module__)
        """,
        tmp_path,
    )
    assert out.splitlines() == ["refused: True", "agentmesh.systems.dylan.functions"]


def test_the_replay_provider_resolves_with_only_the_models_imported(tmp_path: Path) -> None:
    out = _python(
        """
        from agentmesh.errors import UnknownProviderError
        from agentmesh.models import get_model
        from agentmesh.models.registry import providers

        print("replay" in providers())
        """,
        tmp_path,
    )
    assert out.strip() == "True"
    out = _python(
        """
        from agentmesh.errors import AgentmeshError, UnknownProviderError
        from agentmesh.models import get_model

        try:
            get_model("replay:0123456789ab", store="sqlite:///nothing-here.db")
        except UnknownProviderError as exc:
            print("unknown provider:", exc)
        except AgentmeshError as exc:
            print("known provider")
        else:
            print("known provider")
        """,
        tmp_path,
    )
    assert out.strip() == "known provider"


def test_threads_asking_at_once_all_get_the_systems(tmp_path: Path) -> None:
    """The first lookups may come from several threads at once (a batch's runs): each waits for the one import."""
    out = _python(
        """
        import threading
        from agentmesh.runtime.operators.registry import get_function, get_operator
        from agentmesh.spec.operators import operator_params

        found, errors = [], []
        start = threading.Barrier(8)

        def look() -> None:
            start.wait()
            try:
                found.append((get_function("sejury_verdict"), get_operator("alu"), operator_params("magicore")))
            except Exception as exc:
                errors.append(repr(exc))

        threads = [threading.Thread(target=look) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(len(found), len(set(found)), errors)
        """,
        tmp_path,
    )
    assert out.strip() == "8 1 []"


def test_subpackages_are_attributes_of_the_package_after_a_bare_import(tmp_path: Path) -> None:
    """The README writes ``agentmesh.spec.dump_graph(spec)``, ``@agentmesh.parsers.register_parser`` and
    ``agentmesh.optimize.optimize(...)`` after ``import agentmesh`` alone: the subpackages are attributes of it, as
    when the package imported them eagerly."""
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
    assert _python(code, tmp_path).splitlines() == [
        "heavy after import: []",
        "name: debate",
        "True",
        "agentmesh.optimize.job Store SpecError",
        "missing: module 'agentmesh' has no attribute 'no_such_module'",
        "missing: module 'agentmesh' has no attribute '_yaml_typo'",
    ]
