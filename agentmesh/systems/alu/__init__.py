"""ALU (Sanyal & Mandal, arXiv 2502.00406): unlearning at inference time with agents (alu.md).

A vanilla answer is checked against a bounded shortlist of the stored targets, rewritten k ways when it reveals
one, the rewrites rated by a critic, and the best ones composed, or the query refused. This package holds the
method's own rules as pure, typed functions over data:

* :mod:`~agentmesh.systems.alu.targets` — target records, :func:`normalize`, whole-word :func:`lexical_hits`
  through a first-token index (§3.1, §3.2);
* :mod:`~agentmesh.systems.alu.semantic` — embedders and semantic scores (§3.3);
* :mod:`~agentmesh.systems.alu.selection` — shortlist (§3.4), audit parse (§4.2), eraser parse (§4.3), critic
  aggregation (§4.4), top-j gate (§5);
* :mod:`~agentmesh.systems.alu.pipeline` — the control flow with its early stops and ``reference_compat``
  (§6), over agent protocols;
* :mod:`~agentmesh.systems.alu.attacks` — jailbreak transforms (§7);
* :mod:`~agentmesh.systems.alu.metrics` — evaluation metrics (§9.2);
* :mod:`~agentmesh.systems.alu.registry` — versioned target sets with soft delete (§3.1), in memory or read from
  the store (:mod:`agentmesh.store.targets`, ``agentmesh targets``);
* :mod:`~agentmesh.systems.alu.evaluate` — the eval (§9), which ``agentmesh eval alu`` runs with every question a
  stored run, in one import: its data files (:mod:`~agentmesh.systems.alu.items`), its questions
  (:mod:`~agentmesh.systems.alu.cases`), the systems compared (:mod:`~agentmesh.systems.alu.compared`), the
  outcomes (:mod:`~agentmesh.systems.alu.outcomes`) and the summary table (:mod:`~agentmesh.systems.alu.summary`);
* :mod:`~agentmesh.systems.alu.judge` — the eval's optional LLM leak judge, a second measurement beside the
  lexical one;
* :mod:`~agentmesh.systems.alu.bench` — the cost-versus-targets benchmark (§9.6);
* :mod:`~agentmesh.systems.alu.baselines` — the output-filter and target-listing functions of the baseline graphs
  and ICUL demonstrations (§9.4);
* :mod:`~agentmesh.systems.alu.node` — ``op: alu``, the pipeline as a graph node over agent cards (§12);
* :mod:`~agentmesh.systems.alu.input_check` — the targets a run names, checked before the run is stored.

Importing this package registers ``op: alu``, the ``alu_output_filter`` and ``alu_targets`` functions, and the
check of their target inputs that every run makes before it is stored.
"""

from agentmesh.systems.alu import baselines, input_check, node
from agentmesh.systems.alu.attacks import Attack, apply_attack, many_shot, mask_names, masking, parse_attack
from agentmesh.systems.alu.metrics import (
    KSResult,
    McqScores,
    ks_2samp_exact,
    lcs_length,
    leak_rate,
    leaks,
    mcq_scores,
    rouge_l_recall,
    rouge_tokens,
)
from agentmesh.systems.alu.pipeline import (
    DEFAULT_REFUSAL,
    REFERENCE_INTERNAL_ERROR,
    AluAgents,
    AluConfig,
    AluResult,
    AuditRequest,
    ComposeRequest,
    CriticRequest,
    EraseRequest,
    ExtractRequest,
    run_alu,
)
from agentmesh.systems.alu.scripted import ScriptedAgents
from agentmesh.systems.alu.selection import (
    AuditResult,
    Selection,
    Shortlist,
    aggregate_critic,
    gate,
    parse_audit,
    parse_critic,
    parse_erase,
    reference_hf_check,
    semantic_candidates,
    shortlist,
)
from agentmesh.systems.alu.semantic import (
    Embedder,
    EmbeddingScorer,
    HashingEmbedder,
    ScriptedScorer,
    SemanticScorer,
    cosine,
    hashing_vector,
    windows,
)
from agentmesh.systems.alu.targets import (
    AliasIndex,
    Target,
    TargetSnapshot,
    lexical_hits,
    normalize,
    occurs,
    targets_block,
)

__all__ = [
    "DEFAULT_REFUSAL",
    "REFERENCE_INTERNAL_ERROR",
    "AliasIndex",
    "AluAgents",
    "AluConfig",
    "AluResult",
    "Attack",
    "AuditRequest",
    "AuditResult",
    "ComposeRequest",
    "CriticRequest",
    "Embedder",
    "EmbeddingScorer",
    "EraseRequest",
    "ExtractRequest",
    "HashingEmbedder",
    "KSResult",
    "McqScores",
    "ScriptedAgents",
    "ScriptedScorer",
    "Selection",
    "SemanticScorer",
    "Shortlist",
    "Target",
    "TargetSnapshot",
    "aggregate_critic",
    "apply_attack",
    "baselines",
    "cosine",
    "gate",
    "hashing_vector",
    "input_check",
    "ks_2samp_exact",
    "lcs_length",
    "leak_rate",
    "leaks",
    "lexical_hits",
    "many_shot",
    "mask_names",
    "masking",
    "mcq_scores",
    "node",
    "normalize",
    "occurs",
    "parse_attack",
    "parse_audit",
    "parse_critic",
    "parse_erase",
    "reference_hf_check",
    "rouge_l_recall",
    "rouge_tokens",
    "run_alu",
    "semantic_candidates",
    "shortlist",
    "targets_block",
    "windows",
]
