"""ALU's semantic candidates (alu.md §3.3) from a real OpenAI-compatible ``/v1/embeddings`` endpoint: llama-cpp-python's
server with embeddings on, on the SmolLM2 GGUF.

That server does no pooling for a generative model: it answers with one vector per token. The embedder must turn
that into one vector per text (their mean), or every similarity would be computed on nested lists.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from agentmesh.systems.alu.registry import snapshot_of_records
from agentmesh.systems.alu.semantic import EmbeddingScorer, OpenAIEmbedder, cosine
from tests._servers import llama_server

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python is not installed: pip install 'agentmesh[local]' to run the real-model tests",
    ),
]


@pytest.fixture(scope="module")
def embeddings_url() -> Iterator[str]:
    with llama_server(n_ctx=512, extra_args=("--embedding", "true")) as url:
        yield url


def test_the_embedder_gives_one_vector_per_text(embeddings_url: str) -> None:
    embedder = OpenAIEmbedder("smollm2", embeddings_url, api_key_env="AGENTMESH_TEST_NO_KEY")
    texts = ["Hermione Granger went to the Yule Ball.", "Hermione Granger went to the Yule Ball.", "Potions class."]
    vectors = embedder.embed(texts)
    assert len(vectors) == 3
    assert len({len(v) for v in vectors}) == 1 and len(vectors[0]) > 16  # one vector per text, the model's width
    assert all(isinstance(x, float) for x in vectors[0])
    assert cosine(vectors[0], vectors[1]) == pytest.approx(1.0, abs=1e-6)
    assert cosine(vectors[0], vectors[2]) < cosine(vectors[0], vectors[1])


def test_semantic_scores_come_from_the_served_embeddings(embeddings_url: str) -> None:
    snapshot = snapshot_of_records(
        [
            {"id": 1, "name": "Hermione Granger", "description": "A Gryffindor student who went to the Yule Ball."},
            {"id": 2, "name": "Severus Snape", "description": "The potions master at Hogwarts."},
        ]
    )
    scorer = EmbeddingScorer(OpenAIEmbedder("smollm2", embeddings_url, api_key_env="AGENTMESH_TEST_NO_KEY"))
    scores = scorer.scores("Who went to the Yule Ball with Viktor Krum?", snapshot)
    assert set(scores) <= {1, 2}
    assert all(-1.0 <= s <= 1.0 for s in scores.values())
