"""The output-parser registry: from a name in an agent card to a callable that turns model text into data.

An agent card names its parser either as a bare string (``parser: boxed_math``) or as a mapping with the
parameters inline (``parser: {name: score, min: 0, max: 100, delimiter: "Score:", position: after}``). Both
forms are checked here *before any model call*: an unknown name or a bad parameter is a :class:`ConfigError`
that names the parser, the parameter and what was expected, so a typo in a YAML file never costs a model call.

A parser is a callable ``(text: str, **params) -> Parsed``. Its parameters are declared once, as a pydantic
model, so they are validated, documented and exported to JSON Schema for editors the same way as the rest of
a spec. Some parameters only exist per call (DyLAN's rating count ``n`` depends on how many predecessors a node
saw; the HumanEval prompt depends on the item); those are *call parameters*: a spec may leave them out and the
runtime passes them when it parses a reply.

Model output that does not have the expected shape is *data*, not a bug: parsers return
``Parsed(ok=False, error=...)`` for it and never raise. Exceptions are kept for configuration errors (which the
user must fix) and for bugs in a parser (which a test must catch).
"""

from __future__ import annotations

import inspect
import re
import threading
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    GetJsonSchemaHandler,
    JsonValue,
    ValidationError,
    create_model,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from agentmesh.errors import ConfigError

__all__ = [
    "Parsed",
    "Parser",
    "ParserParams",
    "ParserSpec",
    "get_parser",
    "list_parsers",
    "parse",
    "parsers_json_schema",
    "register_alias",
    "register_parser",
    "unregister_parser",
]

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_RESERVED_PARAMS = frozenset({"name", "params", "text"})
_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "a boolean",
    "list": "a list",
    "dict": "a mapping",
    "none": "null",
}


class Parsed(BaseModel):
    """What a parser made of one model reply.

    * ``value`` -- what the method uses downstream, always JSON-able so it can be stored in events and replayed.
      When ``ok`` is true it is the parsed value; when ``ok`` is false it is the fallback the method's spec
      prescribes (SE-Jury scores an unparsable judge as 0, DyLAN gives uniform weights to a missing rating
      list, ...), or ``None`` when the spec has no fallback.
    * ``ok`` -- whether the reply had the expected shape.
    * ``error`` -- why not, in words a person can act on (required when ``ok`` is false).
    * ``normalized`` -- the key answers are compared by for voting and consensus (e.g. a MATH answer after the
      Hendrycks normaliser); ``None`` means "no answer" and must not count as agreement.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: JsonValue = None
    ok: bool
    error: str | None = None
    normalized: str | None = None

    @model_validator(mode="after")
    def _error_iff_failed(self) -> Parsed:
        if not self.ok and not self.error:
            raise ValueError("a failed parse (ok=False) must say why in 'error'")
        if self.ok and self.error is not None:
            raise ValueError("a successful parse (ok=True) cannot carry an 'error'")
        return self

    @classmethod
    def success(cls, value: JsonValue, normalized: str | None = None) -> Parsed:
        """A reply that had the expected shape."""
        return cls(value=value, ok=True, normalized=normalized)

    @classmethod
    def failure(cls, error: str, value: JsonValue = None, normalized: str | None = None) -> Parsed:
        """A reply without the expected shape; ``value`` is the spec's fallback, if it has one."""
        return cls(value=value, ok=False, error=error, normalized=normalized)


class ParserParams(BaseModel):
    """Base for parser parameter models: unknown keys are errors (a misspelt parameter must not be ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def _model_from_signature(name: str, fn: Callable[..., Any]) -> type[BaseModel]:
    """Derive the params model of a user parser from its keyword parameters, so a plain function is enough."""
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    if not params or params[0].kind not in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
        raise TypeError(f"parser {name!r}: the first parameter must take the model's text")
    hints = typing.get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    for p in params[1:]:
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise TypeError(f"parser {name!r} takes *args/**kwargs: declare its parameters with params=<a model>")
        fields[p.name] = (hints.get(p.name, Any), ... if p.default is inspect.Parameter.empty else p.default)
    model: type[BaseModel] = create_model(f"{_camel(name)}Params", __base__=ParserParams, **fields)
    return model


def _describe_input(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Parser:
    """A registered parser: the function plus its parameter model, name and call parameters.

    Calling it validates the parameters (spec preset, then keyword arguments) and runs the function, so
    ``boxed_math(text, style="magicore")`` is safe to call directly from Python too.
    """

    def __init__(
        self,
        name: str,
        fn: Callable[..., Parsed],
        params_model: type[BaseModel],
        call_params: Iterable[str] = (),
        preset: Mapping[str, Any] | None = None,
        alias_of: str | None = None,
    ) -> None:
        self.name = name
        self.fn = fn
        self.params_model = params_model
        self.call_params = frozenset(call_params)
        self.preset: dict[str, Any] = dict(preset or {})
        self.alias_of = alias_of
        doc = inspect.getdoc(fn) or ""
        self.description = doc.split("\n\n", 1)[0].replace("\n", " ").strip()
        self.__doc__ = doc
        unknown = self.call_params - set(params_model.model_fields)
        if unknown:
            raise TypeError(f"parser {name!r}: call parameters {sorted(unknown)} are not fields of its params model")

    def __repr__(self) -> str:
        return f"<Parser {self.name!r}>"

    @property
    def param_names(self) -> list[str]:
        """The parameters this parser accepts, in declaration order."""
        return list(self.params_model.model_fields)

    def _errors_to_message(self, exc: ValidationError, skip_missing: frozenset[str]) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        known = ", ".join(self.param_names) or "(none)"
        union_branches: dict[str, list[str]] = {}
        union_inputs: dict[str, Any] = {}
        for err in exc.errors():
            loc = err.get("loc") or ()
            param = str(loc[0]) if loc else ""
            kind = err.get("type", "")
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            got = _describe_input(err.get("input"))
            if not loc:  # a check across parameters (e.g. min <= max)
                problems.append(("", msg))
            elif kind == "missing":
                if param in skip_missing:
                    continue
                hint = " (passed per call by the runtime)" if param in self.call_params else ""
                problems.append((param, f"missing required parameter '{param}'{hint}"))
            elif kind == "extra_forbidden":
                problems.append((param, f"unknown parameter '{param}'; known parameters: {known}"))
            elif len(loc) == 2 and isinstance(loc[1], str) and loc[1] in _TYPE_WORDS:
                if param not in union_branches:  # one message per union parameter, not one per member type
                    problems.append((param, ""))
                union_branches.setdefault(param, []).append(_TYPE_WORDS[loc[1]])
                union_inputs[param] = got
            else:
                sub = "".join(f"[{p!r}]" for p in loc[1:])
                problems.append((param, f"parameter '{param}'{sub}: {msg} (got {got})"))
        return [
            (p, m or f"parameter '{p}': expected {' or '.join(union_branches[p])} (got {union_inputs[p]})")
            for p, m in problems
        ]

    def _raise(self, problems: list[tuple[str, str]], where: str | None) -> typing.NoReturn:
        prefix = f"{where}: " if where else ""
        message = f"{prefix}parser '{self.name}': " + "; ".join(p for _, p in problems)
        raise ConfigError(message, parser=self.name, param=problems[0][0] or None, where=where)

    def check_params(self, params: Mapping[str, Any], *, where: str | None = None) -> None:
        """Validate spec-level parameters; call parameters may be absent (the runtime supplies them)."""
        merged = {**self.preset, **params}
        try:
            self.params_model.model_validate(merged)
        except ValidationError as exc:
            problems = self._errors_to_message(exc, skip_missing=self.call_params)
            if problems:
                self._raise(problems, where)

    def bind(self, params: Mapping[str, Any], *, where: str | None = None) -> BaseModel:
        """Validate the full parameter set of one call and return the params model instance."""
        merged = {**self.preset, **params}
        try:
            return self.params_model.model_validate(merged)
        except ValidationError as exc:
            self._raise(self._errors_to_message(exc, skip_missing=frozenset()), where)

    def __call__(self, text: str, /, **params: Any) -> Parsed:
        if not isinstance(text, str):
            raise TypeError(f"parser '{self.name}' parses text, got {type(text).__name__}")
        bound = self.bind(params)
        kwargs = {field: getattr(bound, field) for field in type(bound).model_fields}
        try:
            result = self.fn(text, **kwargs)
        except ValidationError:  # building an invalid Parsed (say, a non-JSON value) is a bug in the parser
            raise
        except ValueError as exc:  # a user parser's int()/json.loads() failing is bad model output, not a bug
            return Parsed.failure(f"parser '{self.name}' could not parse the reply: {exc}")
        if not isinstance(result, Parsed):
            raise TypeError(f"parser '{self.name}' returned {type(result).__name__}, expected Parsed")
        return result

    def json_schema(self) -> dict[str, Any]:
        """JSON Schema of the mapping form ``{name: <this parser>, <params>...}`` (for editor completion)."""
        schema = self.params_model.model_json_schema()
        properties: dict[str, Any] = {"name": {"const": self.name}}
        required = ["name"]
        if "$defs" in schema:  # nested models would need $ref rewriting; accept any params rather than lie
            return {"type": "object", "properties": properties, "required": required}
        for field, prop in schema.get("properties", {}).items():
            if field in self.preset:
                continue
            properties[field] = prop
        required += [f for f in schema.get("required", []) if f not in self.call_params and f not in self.preset]
        return {
            "type": "object",
            "title": self.name,
            "description": self.description,
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }


_registry: dict[str, Parser] = {}
_lock = threading.Lock()


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(
            f"invalid parser name {name!r}: expected letters, digits, '_', '.', '-', starting with a letter or '_'",
            parser=str(name),
        )


def _add(parser: Parser, replace: bool) -> None:
    with _lock:
        if parser.name in _registry and not replace:
            raise ConfigError(
                f"parser '{parser.name}' is already registered; pass replace=True to override it",
                parser=parser.name,
            )
        _registry[parser.name] = parser


def register_parser(
    name: str,
    *,
    params: type[BaseModel] | None = None,
    call_params: Iterable[str] = (),
    replace: bool = False,
) -> Callable[[Callable[..., Parsed]], Parser]:
    """Decorator: register ``fn(text, **params) -> Parsed`` under ``name`` and return it as a :class:`Parser`.

    ``params`` is the pydantic model of the parameters (use :class:`ParserParams` as base so unknown keys are
    rejected); without it the model is derived from ``fn``'s keyword parameters and their annotations.
    ``call_params`` names parameters a spec may omit because the runtime passes them per call.
    Registering a taken name is an error unless ``replace=True`` (silently shadowing a built-in is worse).
    """
    _check_name(name)
    call = tuple(call_params)

    def decorate(fn: Callable[..., Parsed]) -> Parser:
        model = params if params is not None else _model_from_signature(name, fn)
        bad = _RESERVED_PARAMS & set(model.model_fields)
        if bad:
            raise TypeError(f"parser {name!r}: parameter names {sorted(bad)} are reserved")
        if params is not None:
            sig = inspect.signature(fn)
            takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
            if not takes_kwargs:
                declared = [p.name for p in list(sig.parameters.values())[1:]]
                if set(declared) != set(model.model_fields):
                    raise TypeError(
                        f"parser {name!r}: function parameters {sorted(declared)} differ from "
                        f"{model.__name__} fields {sorted(model.model_fields)}"
                    )
        parser = Parser(name, fn, model, call)
        _add(parser, replace)
        return parser

    return decorate


def register_alias(name: str, target: str, *, replace: bool = False, **preset: Any) -> Parser:
    """Register ``name`` as ``target`` with some parameters fixed (``score_0_100`` = ``score`` with 0..100).

    Spec parameters still override the preset, so an alias is a default, not a cage.
    """
    _check_name(name)
    base = get_parser(target)
    base.check_params(preset)
    alias = Parser(
        name,
        base.fn,
        base.params_model,
        base.call_params,
        preset={**base.preset, **preset},
        alias_of=base.alias_of or base.name,
    )
    _add(alias, replace)
    return alias


def unregister_parser(name: str) -> None:
    """Remove a parser (mainly for tests that register throw-away parsers)."""
    with _lock:
        if name not in _registry:
            raise ConfigError(f"unknown parser '{name}'", parser=name)
        del _registry[name]


def list_parsers() -> list[str]:
    """Names of all registered parsers, sorted."""
    with _lock:
        return sorted(_registry)


def get_parser(name: str, *, where: str | None = None) -> Parser:
    """The parser registered under ``name``; an unknown name is a :class:`ConfigError` listing the known ones."""
    with _lock:
        parser = _registry.get(name) if isinstance(name, str) else None
        known = sorted(_registry) if parser is None else []  # (looked up on every model call: no sort then)
    if parser is None:
        prefix = f"{where}: " if where else ""
        raise ConfigError(
            f"{prefix}unknown parser {name!r}; known parsers: {', '.join(known)} (a parser of yours: register it "
            "with @agentmesh.parsers.register_parser and load its module with agentmesh --import)",
            parser=str(name),
            where=where,
        )
    return parser


def _spec_parts(raw: Any, where: str | None) -> tuple[str, dict[str, Any]]:
    prefix = f"{where}: " if where else ""
    if isinstance(raw, str):
        return raw, {}
    if isinstance(raw, ParserSpec):
        return raw.name, dict(raw.params)
    if isinstance(raw, Mapping):
        if "name" not in raw:
            raise ConfigError(
                f"{prefix}parser spec {dict(raw)!r} has no 'name'; expected a parser name or "
                f"{{name: <parser>, <param>: <value>, ...}}",
                where=where,
            )
        name = raw["name"]
        if not isinstance(name, str):
            raise ConfigError(f"{prefix}parser name must be a string, got {name!r}", where=where)
        if set(raw) == {"name", "params"} and isinstance(raw["params"], Mapping):
            return name, dict(raw["params"])
        return name, {str(k): v for k, v in raw.items() if k != "name"}
    raise ConfigError(
        f"{prefix}parser spec must be a name or a mapping with 'name', got {type(raw).__name__}",
        where=where,
    )


class ParserSpec(BaseModel):
    """A parser named in a spec, with its spec-level parameters, checked when the spec is loaded.

    Loads from ``"boxed_math"`` or ``{name: score, min: 0, max: 100}`` and dumps back to the same form, so an
    agent card round-trips. Calling it parses a reply: ``spec(text, n=3)`` (call parameters as keywords).
    """

    model_config = ConfigDict(frozen=True)

    name: str
    params: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _accept_short_forms(cls, data: Any) -> Any:
        try:
            name, params = _spec_parts(data, None)
        except ConfigError as exc:
            raise ValueError(exc.message) from None
        return {"name": name, "params": params}

    @model_validator(mode="after")
    def _check_registered(self) -> ParserSpec:
        try:
            get_parser(self.name).check_params(self.params)
        except ConfigError as exc:
            raise ValueError(exc.message) from None
        return self

    @classmethod
    def from_config(cls, raw: Any, *, where: str | None = None) -> ParserSpec:
        """Build from YAML data, raising :class:`ConfigError` (prefixed with ``where``) instead of pydantic's."""
        name, params = _spec_parts(raw, where)
        get_parser(name, where=where).check_params(params, where=where)
        return cls.model_construct(name=name, params=params)

    @model_serializer(mode="plain")
    def to_config(self) -> str | dict[str, Any]:
        """The YAML form: a bare name when there are no parameters, else ``{name: ..., <params>}``."""
        if not self.params:
            return self.name
        return {"name": self.name, **self.params}

    @property
    def parser(self) -> Parser:
        return get_parser(self.name)

    def __call__(self, text: str, /, **call_params: Any) -> Parsed:
        return self.parser(text, **{**self.params, **call_params})

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return parsers_json_schema()


def parsers_json_schema() -> dict[str, Any]:
    """JSON Schema of a parser spec for every parser registered now: a name, or a mapping with its params."""
    with _lock:
        parsers = [(_registry[n]) for n in sorted(_registry)]
    return {
        "title": "ParserSpec",
        "description": "An output parser: its name, or {name: <parser>, <param>: <value>, ...}.",
        "anyOf": [
            {"type": "string", "enum": [p.name for p in parsers]},
            *(p.json_schema() for p in parsers),
        ],
    }


def parse(spec: str | Mapping[str, Any] | ParserSpec, text: str, /, **call_params: Any) -> Parsed:
    """Parse ``text`` with the parser a spec names (convenience for scripts and tests)."""
    name, params = _spec_parts(spec, None)
    return get_parser(name)(text, **{**params, **call_params})
