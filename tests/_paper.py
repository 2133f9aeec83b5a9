"""Where the papers' worked-example vectors are read from: ``$AGENTMESH_EXAMPLES_DIR`` (default ``../shared/papers``
beside the repository), every vector of ``<system>_examples.json`` whatever its id."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def examples_dir() -> Path:
    configured = os.environ.get("AGENTMESH_EXAMPLES_DIR")
    return Path(configured) if configured else (REPO_ROOT / ".." / "shared" / "papers").resolve()


def examples_file(system: str) -> Path:
    return examples_dir() / f"{system}_examples.json"


def load_vectors(system: str) -> list[dict[str, Any]] | None:
    """Every vector of the system's file (``None`` when the file is absent)."""
    path = examples_file(system)
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    vectors = data.get("vectors", []) if isinstance(data, dict) else data
    return [v for v in vectors if isinstance(v, dict)]


def vectors_of_kind(system: str, kind: str) -> list[Any]:
    """pytest params, one per vector of ``kind`` (id: the vector's ``id``); a visible skip when the file or the kind
    is missing, so that a run without the papers says why nothing was checked."""
    import pytest

    vectors = load_vectors(system)
    if vectors is None:
        reason = f"{examples_file(system)} not found (set AGENTMESH_EXAMPLES_DIR)"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="missing")]
    params = [pytest.param(v, id=str(v.get("id", f"#{i}"))) for i, v in enumerate(vectors) if v.get("kind") == kind]
    reason = f"no {kind} vector in {examples_file(system)}"
    return params or [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="none")]
