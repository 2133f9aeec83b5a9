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
