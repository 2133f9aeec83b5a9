"""Output parsers: the registry (specs, parameter validation, user parsers) and the answer parsers.

Scores, ratings, rankings, JSON and text lists are in ``test_parsers_scoring.py``; the papers' worked vectors in
``test_parsers_paper.py``.
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from agentmesh.errors import ConfigError
from agentmesh.parsers import (
    Parsed,
    Parser,
    ParserParams,
    ParserSpec,
    boxed_math,
    choice_letter,
    extract_boxed,
    extract_choice_letter,
    extract_math_answer,
    extract_python_code,
    get_parser,
    is_math_equiv,
    last_boxed_only_string,
    list_parsers,
    normalize_choice_letter,
    normalize_math_answer,
    parse,
    parsers_json_schema,
    python_code,
    register_alias,
    register_parser,
    strip_math_string,
    unregister_parser,
)

BUILTINS = [
    "boxed_math",
    "choice_letter",
    "critic_ratings",
    "json",
    "python_code",
    "ranking",
    "ratings",
    "score",
    "score_0_100",
    "text",
    "text_list",
    "yes_no_verdict",
]


# --- registry ---------------------------------------------------------------------------------------------------


def test_builtins_are_registered():
    assert set(BUILTINS) <= set(list_parsers())
    assert list_parsers() == sorted(list_parsers())


def test_unknown_parser_lists_known_names():
    with pytest.raises(ConfigError) as info:
        get_parser("boxd")
    message = str(info.value)
    assert message.startswith("unknown parser 'boxd'; known parsers: boxed_math, choice_letter, ")
    for name in BUILTINS:
        assert name in message
    assert info.value.context == {"parser": "boxd"}


def test_unknown_parser_in_spec_names_the_place():
    with pytest.raises(ConfigError) as info:
        ParserSpec.from_config({"name": "boxd"}, where="agents/dylan/math.yaml:7")
    assert str(info.value).startswith("agents/dylan/math.yaml:7: unknown parser 'boxd'; known parsers: ")
    assert info.value.context["where"] == "agents/dylan/math.yaml:7"


BAD_SPECS = [
    (
        {"name": "score", "min": "abc"},
        "parser 'score': parameter 'min': expected an integer or a number (got 'abc')",
        "min",
    ),
    (
        {"name": "score", "delimeter": "Score:"},
        "parser 'score': unknown parameter 'delimeter'; known parameters: delimiter, position, integer, occurrence, "
        "pattern, ignore_case, min, max, out_of_range, fallback, scale",
        "delimeter",
    ),
    (
        {"name": "score", "min": 5, "max": 1},
        "parser 'score': min (5) must not exceed max (1)",
        None,
    ),
    (
        {"name": "score", "pattern": "Score: \\d+"},
        "parser 'score': parameter 'pattern': expected a regex with a group capturing the number, "
        "e.g. 'Score: (\\d+)' (got 'Score: \\\\d+')",
        "pattern",
    ),
    (
        {"name": "score", "position": "left"},
        "parser 'score': parameter 'position': Input should be 'before' or 'after' (got 'left')",
        "position",
    ),
    (
        {"name": "boxed_math", "style": "minerva"},
        "parser 'boxed_math': parameter 'style': Input should be 'dylan' or 'magicore' (got 'minerva')",
        "style",
    ),
    (
        {"name": "boxed_math", "normalize": "maybe"},
        "parser 'boxed_math': parameter 'normalize': Input should be a valid boolean, unable to interpret input "
        "(got 'maybe')",
        "normalize",
    ),
    (
        {"name": "choice_letter", "letters": "abcd"},
        "parser 'choice_letter': parameter 'letters': expected distinct capital letters A-Z, e.g. 'ABCD' (got 'abcd')",
        "letters",
    ),
    (
        {"name": "choice_letter", "letters": "AAB"},
        "parser 'choice_letter': parameter 'letters': expected distinct capital letters A-Z, e.g. 'ABCD' (got 'AAB')",
        "letters",
    ),
    (
        {"name": "ratings", "n": 0},
        "parser 'ratings': parameter 'n': Input should be greater than or equal to 1 (got 0)",
        "n",
    ),
    (
        {"name": "ratings", "non_integer": "drop"},
        "parser 'ratings': parameter 'non_integer': Input should be 'zero' or 'invalidate' (got 'drop')",
        "non_integer",
    ),
    (
        {"name": "ranking", "k": 3, "max_label": 2},
        "parser 'ranking': parameter 'max_label': k (3) cannot exceed max_label (2) (got 2)",
        "max_label",
    ),
    (
        {"name": "critic_ratings", "min": 5, "max": 1},
        "parser 'critic_ratings': parameter 'max': min (5) must not exceed max (1) (got 1)",
        "max",
    ),
    (
        {"name": "ranking", "fallback": "none"},
        "parser 'ranking': parameter 'fallback': Input should be 'random' or 'first' (got 'none')",
        "fallback",
    ),
    (
        {"name": "text_list", "k": 0},
        "parser 'text_list': parameter 'k': Input should be greater than or equal to 1 (got 0)",
        "k",
    ),
    (
        {"name": "json", "expect": "string"},
        "parser 'json': parameter 'expect': Input should be 'any', 'object' or 'array' (got 'string')",
        "expect",
    ),
    (
        {"name": "text", "strip": True},
        "parser 'text': unknown parameter 'strip'; known parameters: (none)",
        "strip",
    ),
    (
        {"nam": "score"},
        "parser spec {'nam': 'score'} has no 'name'; expected a parser name or {name: <parser>, <param>: <value>, ...}",
        None,
    ),
    (
        {"name": 3},
        "parser name must be a string, got 3",
        None,
    ),
    (
        ["score"],
        "parser spec must be a name or a mapping with 'name', got list",
        None,
    ),
]


@pytest.mark.parametrize(("raw", "message", "param"), BAD_SPECS, ids=[str(i) for i in range(len(BAD_SPECS))])
def test_bad_spec_is_a_config_error_naming_param_and_expectation(raw, message, param):
    with pytest.raises(ConfigError) as info:
        ParserSpec.from_config(raw, where="agents/x.yaml:3")
    assert str(info.value) == f"agents/x.yaml:3: {message}"
    assert info.value.context.get("param") == param


def test_bad_param_also_fails_a_direct_call():
    with pytest.raises(ConfigError, match=r"^parser 'boxed_math': parameter 'style': Input should be"):
        boxed_math("\\boxed{1}", style="other")


def test_call_params_may_be_absent_from_the_spec_but_not_from_the_call():
    spec = ParserSpec.from_config({"name": "ratings", "non_integer": "invalidate"})
    assert spec.params == {"non_integer": "invalidate"}
    with pytest.raises(ConfigError) as info:
        spec("[[1, 2]]")
    assert str(info.value) == "parser 'ratings': missing required parameter 'n' (passed per call by the runtime)"
    assert spec("[[1, 2]]", n=2).ok


@pytest.mark.parametrize(
    "raw",
    [
        "boxed_math",
        {"name": "score", "min": 0, "max": 100, "delimiter": "Score:", "position": "after"},
        {"name": "choice_letter", "letters": "ABCDE", "style": "magicore"},
        {"name": "ratings"},
    ],
)
def test_spec_round_trips_to_the_same_yaml_form(raw):
    spec = ParserSpec.from_config(raw)
    expected = raw if not isinstance(raw, dict) or len(raw) > 1 else raw["name"]
    assert spec.to_config() == expected
    assert spec.model_dump() == expected
    again = ParserSpec.model_validate(spec.model_dump())
    assert again == spec
    assert ParserSpec.model_validate_json(spec.model_dump_json()) == spec


def test_spec_inside_a_pydantic_model_accepts_both_forms_and_reports_errors():
    class Card(BaseModel):
        parser: ParserSpec

    card = Card.model_validate({"parser": {"name": "score", "min": 0, "max": 10}})
    assert card.parser.name == "score"
    assert card.parser("Score is 7 [END]").value == 7
    assert Card.model_validate({"parser": "text"}).model_dump() == {"parser": "text"}
    with pytest.raises(ValidationError) as info:
        Card.model_validate({"parser": {"name": "score", "max": "ten"}})
    assert "parser 'score': parameter 'max': expected an integer or a number (got 'ten')" in str(info.value)
    assert info.value.errors()[0]["loc"] == ("parser",)
    schema = Card.model_json_schema()
    assert "parser" in schema["properties"]


def test_json_schema_lists_every_parser_with_its_params():
    schema = parsers_json_schema()
    names = schema["anyOf"][0]["enum"]
    assert set(BUILTINS) <= set(names)
    by_name = {s["title"]: s for s in schema["anyOf"][1:]}
    score_schema = by_name["score"]
    assert score_schema["properties"]["name"] == {"const": "score"}
    assert score_schema["additionalProperties"] is False
    assert "delimiter" in score_schema["properties"]
    assert by_name["ratings"]["required"] == ["name"]  # n is a call parameter
    assert "min" not in by_name["score_0_100"]["properties"]  # preset by the alias


def test_parse_convenience_takes_any_spec_form():
    assert parse("text", "  hi  ").value == "hi"
    assert parse({"name": "score", "scale": "to_0_1"}, "50 [END]").value == 0.5
    assert parse(ParserSpec.from_config("ratings"), "[[5, 5]]", n=2).value["weights"] == [0.5, 0.5]


def test_alias_presets_can_be_overridden():
    assert parse("score_0_100", "150 [END]").value == 100
    assert parse("score_0_100", "-3 [END]").value == 3  # only digits are read (SE-Jury's \d+)
    assert parse({"name": "score_0_100", "max": 10}, "150 [END]").value == 10
    assert get_parser("score_0_100").alias_of == "score"


# --- user parsers -------------------------------------------------------------------------------------------------


@pytest.fixture
def cleanup():
    names: list[str] = []
    yield names
    for name in names:
        if name in list_parsers():
            unregister_parser(name)


def test_user_parser_with_params_from_its_signature(cleanup):
    cleanup.append("yes_no")

    @register_parser("yes_no")
    def yes_no(text: str, *, yes: str = "yes", strict: bool = False) -> Parsed:
        """Yes/no verdicts."""
        word = text.strip().lower().rstrip(".")
        if word == yes:
            return Parsed.success(True, "yes")
        if strict or word != "no":
            return Parsed.failure(f"not {yes!r} or 'no': {text!r}")
        return Parsed.success(False, "no")

    assert isinstance(yes_no, Parser)
    assert "yes_no" in list_parsers()
    assert yes_no("Yes.").value is True
    assert parse({"name": "yes_no", "yes": "oui"}, "oui").normalized == "yes"
    assert not parse("yes_no", "maybe").ok
    assert yes_no.description == "Yes/no verdicts."
    with pytest.raises(ConfigError) as info:
        ParserSpec.from_config({"name": "yes_no", "strict": "sometimes"})
    assert str(info.value).startswith("parser 'yes_no': parameter 'strict': Input should be a valid boolean")
    with pytest.raises(ConfigError, match="unknown parameter 'no'; known parameters: yes, strict"):
        ParserSpec.from_config({"name": "yes_no", "no": "non"})


def test_user_parser_with_an_explicit_params_model(cleanup):
    cleanup.append("prefixed")

    class PrefixedParams(ParserParams):
        prefix: str

    @register_parser("prefixed", params=PrefixedParams)
    def prefixed(text: str, **params: str) -> Parsed:
        return Parsed.success(params["prefix"] + text)

    assert prefixed("x", prefix="> ").value == "> x"
    with pytest.raises(ConfigError, match=r"^parser 'prefixed': missing required parameter 'prefix'$"):
        ParserSpec.from_config("prefixed")


def test_value_error_in_a_user_parser_is_bad_output_not_a_crash(cleanup):
    cleanup.append("as_int")

    @register_parser("as_int")
    def as_int(text: str) -> Parsed:
        return Parsed.success(int(text))

    assert as_int("12").value == 12
    result = as_int("twelve")
    assert not result.ok
    assert result.error == "parser 'as_int' could not parse the reply: invalid literal for int() with base 10: 'twelve'"


def test_registry_guards(cleanup):
    cleanup.append("dup")

    @register_parser("dup")
    def dup(text: str) -> Parsed:
        return Parsed.success(text)

    with pytest.raises(ConfigError, match=r"^parser 'dup' is already registered; pass replace=True to override it$"):
        register_parser("dup")(dup.fn)
    register_parser("dup", replace=True)(dup.fn)

    with pytest.raises(ConfigError, match=r"^parser 'score' is already registered"):

        @register_parser("score")
        def score(text: str) -> Parsed:
            return Parsed.success(text)

    with pytest.raises(ConfigError, match="invalid parser name 'has space'"):
        register_parser("has space")

    with pytest.raises(TypeError, match="reserved"):

        @register_parser("reserved_param")
        def reserved(text: str, *, name: str = "") -> Parsed:
            return Parsed.success(text)

    with pytest.raises(TypeError, match="differ from"):

        class P(ParserParams):
            a: int = 1

        @register_parser("mismatch", params=P)
        def mismatch(text: str, *, b: int) -> Parsed:
            return Parsed.success(text)

    with pytest.raises(TypeError, match=r"\*\*kwargs"):

        @register_parser("kw")
        def kw(text: str, **params: int) -> Parsed:
            return Parsed.success(text)

    assert "reserved_param" not in list_parsers()
    assert "mismatch" not in list_parsers()

    with pytest.raises(ConfigError, match=r"^unknown parser 'never'$"):
        unregister_parser("never")


def test_parser_returning_something_else_is_a_bug(cleanup):
    cleanup.append("broken")

    @register_parser("broken")
    def broken(text: str) -> Parsed:
        return text  # type: ignore[return-value]

    with pytest.raises(TypeError, match=r"^parser 'broken' returned str, expected Parsed$"):
        broken("x")
    with pytest.raises(TypeError, match="parses text, got bytes"):
        broken(b"x")  # type: ignore[arg-type]


def test_parser_building_an_invalid_parsed_is_a_bug_not_bad_output(cleanup):
    cleanup.append("not_json")

    @register_parser("not_json")
    def not_json(text: str) -> Parsed:
        return Parsed.success({1, 2})  # a set is not JSON: it could not be stored

    with pytest.raises(ValidationError):
        not_json("x")


def test_register_alias_checks_its_preset(cleanup):
    cleanup.append("score_1_10")
    alias = register_alias("score_1_10", "score", min=1, max=10, delimiter="Score:", position="after")
    assert alias("Score: 12").value == 10
    assert alias("Score: 0").value == 1
    with pytest.raises(ConfigError, match="parser 'score': parameter 'min'"):
        register_alias("bad_alias", "score", min="low")


def test_parsed_invariants():
    with pytest.raises(ValidationError, match="must say why"):
        Parsed(ok=False)
    with pytest.raises(ValidationError, match="cannot carry an 'error'"):
        Parsed(ok=True, error="x")
    with pytest.raises(ValidationError):
        Parsed(ok=True, value=object())  # values must be JSON-able: they go to the store
    parsed = Parsed.success({"a": [1, 2.5, None, "x"]}, "k")
    with pytest.raises(ValidationError):
        parsed.ok = False  # type: ignore[misc]
    assert Parsed.model_validate_json(parsed.model_dump_json()) == parsed


# --- math (dylan.md §1.4, §3.2; magicore.md §2.2) ----------------------------------------------------------------

NORMALISER = [
    ("\\dfrac{1}{2}", "\\frac{1}{2}"),
    ("\\tfrac{3}{4}", "\\frac{3}{4}"),
    ("0.5", "\\frac{1}{2}"),
    (".5", "\\frac{1}{2}"),
    ("1/2", "\\frac{1}{2}"),
    ("12/4", "\\frac{12}{4}"),
    ("1.5/2", "1.5/2"),
    ("\\frac12", "\\frac{1}{2}"),
    ("\\frac1{72}", "\\frac{1}{72}"),
    ("\\frac{72}1", "\\frac{72}1"),
    ("\\sqrt3", "\\sqrt{3}"),
    ("2\\sqrt{2}", "2\\sqrt{2}"),
    ("x = 5", "5"),
    ("ab=5", "5"),
    ("ab = 5", "ab=5"),  # the left side is measured before spaces are removed
    ("abc=5", "abc=5"),
    ("y = x = 5", "y=x=5"),
    ("10\\%", "10"),
    ("50%", "50%"),
    ("\\$5", "5"),
    ("$5", "$5"),
    ("5 \\text{ cm}", "5"),
    ("5\\text{cm}", "5\\text{cm}"),
    ("90^\\circ", "90"),
    ("90^{\\circ}", "90"),
    ("\\left( 1, 2 \\right)", "(1,2)"),
    ("1\\!000", "1000"),
    ("1,000", "1,000"),
    ("a\\\\b", "a\\b"),
    ("\n 3 \n", "3"),
    ("{.5}", "{0.5}"),
    ("", ""),
]


@pytest.mark.parametrize(("raw", "expected"), NORMALISER)
def test_math_normaliser(raw, expected):
    assert normalize_math_answer(raw) == expected
    assert strip_math_string(raw) == expected


def test_math_normaliser_falls_back_to_raw_on_error():
    with pytest.raises(IndexError):
        strip_math_string("3\\sqrt")  # the original raises on a trailing \sqrt
    assert normalize_math_answer("3\\sqrt") == "3\\sqrt"
    assert normalize_math_answer(None) is None


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ("\\dfrac{1}{2}", "0.5", True),
        ("1/2", "\\frac12", True),
        ("x=3", "3", True),
        ("3", "3.0", False),
        ("3\\sqrt", "3\\sqrt", True),
        ("3\\sqrt", "3 \\sqrt", False),
        (None, None, True),
        (None, "1", False),
        ("1", None, False),
    ],
)
def test_is_math_equiv(a, b, equal):
    assert is_math_equiv(a, b) is equal


DYLAN_MATH = [
    ("The answer is \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
    ("So the answer is 42.", "42"),
    ("the answer is 3, The answer is 9/", "9"),  # the capitalised form wins, '/' is dropped
    ("The answer is 9. the answer is 3", "9.theansweris3"),  # ... even when earlier: everything after it
    ("The answer is $x = 5$.", "$x=5$"),
    ("so $\\boxed{\\dfrac{3}{4}}$ done", "\\frac{3}{4}"),
    ("first \\boxed{1} then \\boxed{2}", "2"),
    ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}"),
    ("\\boxed{\\left( 1, 2 \\right)}", "(1,2)"),
    ("\\boxed 5$ and more", "5"),
    ("\\boxed{x = 5}", "5"),
    ("\\boxed{10\\%}", "10"),
    ("\\boxed{\\$5}", "5"),
    ("\\boxed{5 \\text{ cm}}", "5"),
    ("\\boxed{90^\\circ}", "90"),
    ("\\boxed{\\sqrt3}", "\\sqrt{3}"),
    ("\\boxed{1/2}", "\\frac{1}{2}"),
    ("\\boxed{2", "2"),  # unclosed: the rest of the reply
    ("\\fbox{5}", "5"),  # no 'boxed' substring: last number
    ("we get 12 apples and 13.5 pears.", "13.5"),
    ("total -7", "-7"),
    ("answer: 0.5", "\\frac{1}{2}"),
]


@pytest.mark.parametrize(("reply", "answer"), DYLAN_MATH)
def test_boxed_math_dylan(reply, answer):
    result = boxed_math(reply)
    assert result.ok
    assert result.value == answer
    assert result.normalized == normalize_math_answer(answer)
    assert extract_math_answer(reply) == answer


MAGICORE_MATH = [
    ("The answer is \\boxed{\\dfrac{1}{2}}.", "\\dfrac{1}{2}"),
    ("first \\boxed{1} then \\boxed{2}", "2"),
    ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}"),
    ("\\boxed{18.0}", "18.0"),
    ("\\boxed{x = 5}", "x = 5"),
]


@pytest.mark.parametrize(("reply", "answer"), MAGICORE_MATH)
def test_boxed_math_magicore_keeps_the_exact_string(reply, answer):
    result = boxed_math(reply, style="magicore", normalize=False)
    assert (result.ok, result.value, result.normalized) == (True, answer, answer)
    assert boxed_math(reply, style="magicore").normalized == normalize_math_answer(answer)


@pytest.mark.parametrize(
    ("reply", "style", "error"),
    [
        ("nothing to see", "dylan", "no 'The answer is', \\boxed or number in the reply"),
        ("", "dylan", "no 'The answer is', \\boxed or number in the reply"),
        ("\\boxed{}", "dylan", "the reply's answer is empty ('The answer is' or \\boxed with nothing readable in it)"),
        (
            "ends with boxed",
            "dylan",
            "the reply's answer is empty ('The answer is' or \\boxed with nothing readable in it)",
        ),
        (
            "The answer is .",
            "dylan",
            "the reply's answer is empty ('The answer is' or \\boxed with nothing readable in it)",
        ),
        ("The answer is 12 but no box", "magicore", "no \\boxed{...} with an answer in the reply"),
        ("\\boxed 5", "magicore", "no \\boxed{...} with an answer in the reply"),
        ("\\fbox{5}", "magicore", "no \\boxed{...} with an answer in the reply"),
        ("\\boxed{}", "magicore", "no \\boxed{...} with an answer in the reply"),
        ("\\boxed{2", "magicore", "no \\boxed{...} with an answer in the reply"),
        ("", "magicore", "no \\boxed{...} with an answer in the reply"),
    ],
)
def test_boxed_math_no_answer(reply, style, error):
    result = boxed_math(reply, style=style)
    assert result == Parsed(ok=False, error=error)


def test_boxed_helpers():
    assert last_boxed_only_string("a \\boxed{x{y}} b \\boxed{\\frac{1}{2}} c") == "\\boxed{\\frac{1}{2}}"
    assert last_boxed_only_string("\\fbox{3}") == "\\fbox{3}"
    assert last_boxed_only_string("\\boxed{3") is None
    assert extract_boxed("a \\boxed{x{y}} b") == "x{y}"
    assert extract_boxed("no box") is None


# --- multiple choice (dylan.md §1.4, magicore.md §2.2, alu.md §9.2) ---------------------------------------------

CHOICES = [
    # reply, dylan, magicore (ABCDE), alu
    ("The answer is (B).", "B", "B", "B"),
    ("(A) is wrong, so (C)", "C", "C", "A"),
    ("the answer is (b)", "B", "N/A", None),
    ("I pick C) final", "C", "C", None),
    ("b) looks right", "B", "N/A", None),
    ("Calculate it", None, "C", None),
    ("I think it's A, but the answer is D", None, "D", "D"),
    ("Answer: A", None, "A", "A"),
    ("The answer is Definitely (D)", "D", "D", "D"),
    ("C) Sodium chloride", "C", "C", "C"),
    ("D. because", None, "D", "D"),
    ("E", None, "E", None),
    ("Probably (E)", None, "E", None),
    ("no letter here", None, "N/A", None),
    ("", None, "N/A", None),
]


@pytest.mark.parametrize(("reply", "dylan", "magicore", "alu"), CHOICES)
def test_choice_letter_styles(reply, dylan, magicore, alu):
    assert extract_choice_letter(reply) == dylan
    assert extract_choice_letter(reply, letters="ABCDE", style="magicore") == magicore
    assert extract_choice_letter(reply, style="alu") == alu
    result = choice_letter(reply)
    assert (result.value, result.normalized, result.ok) == (dylan, dylan, dylan is not None)


def test_choice_letter_magicore_na_is_voted_like_an_answer():
    result = choice_letter("no letter", style="magicore")
    assert (result.ok, result.value, result.normalized) == (False, "N/A", "N/A")
    assert result.error == "no option letter (A, B, C, D) found; 'N/A' is voted like an answer (MAgICoRe's rule)"


def test_choice_letter_alu_refusal_and_custom_letters():
    refusal = "I'm sorry, I can't help with that."
    result = choice_letter(refusal, style="alu", refusal_text=refusal)
    assert result == Parsed(ok=False, error="the reply is the refusal text")
    assert choice_letter("The answer is (F)", letters="ABCDEF", style="alu").value == "F"
    assert choice_letter("(E) surely", letters="ABCDE").value == "E"
    assert choice_letter("(E) surely").error == "no option letter (A, B, C, D) found in the reply"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("B", "B"), (" (b) ", "B"), ("C.", "C"), ("D)", "D"), ("[a]", "A"), ("E", None), ("AB", None), (None, None)],
)
def test_normalize_choice_letter(raw, expected):
    assert normalize_choice_letter(raw) == expected


# --- code (dylan.md §5.3) ------------------------------------------------------------------------------------------

PROMPT = 'def add(a, b):\n    """Add."""\n'


@pytest.mark.parametrize(
    ("reply", "code", "ok"),
    [
        ("```python\ndef f():\n    return 1\n```", "def f():\n    return 1", True),
        (
            "first\n```python\ndef f():\n    return 1\n```\nbetter:\n```Python\ndef f():\n    return 2\n```\n",
            "def f():\n    return 2",
            True,
        ),
        ("```python\n    return a + b\n```", PROMPT + "return a + b", True),  # strip() then the prompt
        ("```python3\nprint(1)\n```", PROMPT + "3\nprint(1)", True),  # reference regex quirk
        ("[improved impl]:\n    return a + b\n", PROMPT + "    return a + b\n\n", False),
        ("prose\n[improved impl]:\ndef add(a, b):\n    return a+b", "def add(a, b):\n    return a+b\n", False),
        ("    return a + b", PROMPT + "    return a + b", False),
        ("```\ndef f(): pass\n```", "```\ndef f(): pass\n```", False),  # unlabelled fences are not blocks
        ("```python\n```", PROMPT, False),
    ],
)
def test_python_code(reply, code, ok):
    result = python_code(reply, prompt=PROMPT)
    assert result.value == code
    assert result.ok is ok
    assert result.normalized == code.strip()


def test_python_code_errors_and_options():
    result = python_code("    return 1")
    assert result.value == "    return 1"
    assert result.error == "no ```python block in the reply; used the whole reply (DyLAN's rule)"
    assert python_code("x\n[improved impl]\ny").error == (
        "no ```python block in the reply; used the lines after 'impl]' (DyLAN's rule)"
    )
    assert python_code("```python\n```").error == "the ```python block is empty"
    fenced = python_code("```\ndef f(): pass\n```\n```py\ndef g(): pass\n```", any_fence=True)
    assert (fenced.ok, fenced.value) == (True, "def g(): pass")
    preferred = python_code("```python\ndef f(): pass\n```\n```\ndef g(): pass\n```", any_fence=True)
    assert preferred.value == "def f(): pass"
    assert extract_python_code("just text") == ("just text", "whole")
    assert extract_python_code("default = 1", "def h():\n") == ("default = 1", "whole")  # 'def' in 'default'
