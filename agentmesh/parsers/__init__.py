"""Output parsers: model reply text → :class:`Parsed` data, by the rules of the papers agentmesh ships.

Agent cards name a parser (``parser: boxed_math`` or ``parser: {name: score, min: 0, max: 100}``); the spec is
checked against this registry before any model call. Built-ins:

=================  =============================================================================================
``boxed_math``     math answer: ``\\boxed{}`` and fallbacks (DyLAN §1.4 / MAgICoRe §2.2), MATH normaliser as key
``choice_letter``  multiple-choice letter (DyLAN §1.4, MAgICoRe §2.2, ALU §9.2 rules)
``python_code``    last ```` ```python ```` block, DyLAN HumanEval fallbacks (§5.3)
``score``          judge score, SE-Jury ``NN [END]`` by default (§3), range/delimiter/scale configurable
``score_0_100``    ``score`` with min 0, max 100
``ratings``        DyLAN ``[[a, b, c]]`` ratings of n predecessors → edge weights (§4.1, §4.4)
``ranking``        DyLAN ranker ``[i, j]`` → top-k indices with clip and fallback (§2)
``critic_ratings`` ALU critic list → K scores clipped to [1, 5] (§4.4)
``text_list``      ALU eraser rewrites: JSON array / ``---`` blocks / numbered list (§4.3)
``yes_no_verdict`` a judge's yes/no (ALU's judge leak rate, §9.2): first word, else the only one present
``json``           first JSON object/array, fenced or inline
``text``           the reply, stripped
=================  =============================================================================================

Users add their own with :func:`register_parser`. This package is a leaf: it imports nothing from agentmesh
but :mod:`agentmesh.errors`, so the spec layer and voting code can use it freely.
"""

from agentmesh.parsers.choice import ChoiceStyle, choice_letter, extract_choice_letter, normalize_choice_letter
from agentmesh.parsers.code import extract_python_code, python_code
from agentmesh.parsers.math import (
    MathStyle,
    boxed_math,
    extract_boxed,
    extract_math_answer,
    is_math_equiv,
    last_boxed_only_string,
    normalize_math_answer,
    strip_math_string,
)
from agentmesh.parsers.ratings import (
    CriticRatings,
    DylanRatings,
    critic_ratings,
    dylan_rating_weights,
    parse_critic_ratings,
    parse_dylan_ratings,
    parse_ranking,
    ranking,
    ratings,
)
from agentmesh.parsers.registry import (
    Parsed,
    Parser,
    ParserParams,
    ParserSpec,
    get_parser,
    list_parsers,
    parse,
    parsers_json_schema,
    register_alias,
    register_parser,
    unregister_parser,
)
from agentmesh.parsers.scores import (
    ScoreScale,
    apply_scale,
    extract_score,
    score,
    score_to_0_1,
    score_to_1_5,
    score_to_1_5_rounded,
)
from agentmesh.parsers.structured import NO_JSON, extract_json, json_parser, split_text_list, text_list, text_parser
from agentmesh.parsers.verdict import extract_yes_no, yes_no_verdict

__all__ = [
    "NO_JSON",
    "ChoiceStyle",
    "CriticRatings",
    "DylanRatings",
    "MathStyle",
    "Parsed",
    "Parser",
    "ParserParams",
    "ParserSpec",
    "ScoreScale",
    "apply_scale",
    "boxed_math",
    "choice_letter",
    "critic_ratings",
    "dylan_rating_weights",
    "extract_boxed",
    "extract_choice_letter",
    "extract_json",
    "extract_math_answer",
    "extract_python_code",
    "extract_score",
    "extract_yes_no",
    "get_parser",
    "is_math_equiv",
    "json_parser",
    "last_boxed_only_string",
    "list_parsers",
    "normalize_choice_letter",
    "normalize_math_answer",
    "parse",
    "parse_critic_ratings",
    "parse_dylan_ratings",
    "parse_ranking",
    "parsers_json_schema",
    "python_code",
    "ranking",
    "ratings",
    "register_alias",
    "register_parser",
    "score",
    "score_to_0_1",
    "score_to_1_5",
    "score_to_1_5_rounded",
    "split_text_list",
    "strip_math_string",
    "text_list",
    "text_parser",
    "unregister_parser",
    "yes_no_verdict",
]
