"""Model reference strings: the one way to name a model in the CLI, in YAML and in Python.

``openai:gpt-4o-mini``, ``openai:qwen2.5@http://127.0.0.1:8000/v1``, ``llamacpp:/models/x.gguf``, ``local``,
``scripted:tests/script.yaml``, ``replay:<run-id>``. The part before the first colon picks the provider; the
provider interprets the rest. Parsing is kept here, apart from the providers, so that specs can be validated
(and ``agentmesh models`` can explain a reference) without importing any provider's heavy dependency.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from agentmesh.errors import InvalidModelReferenceError

_PROVIDER = re.compile(r"^[a-z][a-z0-9_-]*$")
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
# After '@': a server address the user meant as a URL but wrote without 'http://' (host:port[/path]), or with
# another scheme. Read as part of the model name, it would send the request to hosted OpenAI instead.
_NOT_HTTP = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://\S*|[A-Za-z0-9.-]+:\d+(/\S*)?)$")
# After '@': an address that is not a model name's version tag either, sent to the hosted service all the same: a
# misspelt scheme ('http//h:8000/v1', 'http:/h/v1', 'https:h/v1'), localhost or an IP address without a port, or a
# dotted host name with a path ('gpu.lab.example/v1'). ('org@model' and 'claude@20240620' stay model names.)
_ADDRESS = re.compile(
    r"^(?:https?(?!://)[:/]\S*"
    r"|(?:localhost|\d{1,3}(?:\.\d{1,3}){3})(?::\d+)?(?:/\S*)?"
    r"|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+/\S*)$",
    re.IGNORECASE,
)
# The path of the endpoint itself where the base URL belongs: the SDK adds '/chat/completions' to the base URL.
_ENDPOINT_PATH = re.compile(r"/(chat/)?completions/?$")
# A URL's user information (``http://user:password@host``): a credential, never kept, never repeated in a message.
_USERINFO = re.compile(r"(://)[^/\s@]*@")


class ModelReference(BaseModel):
    """A parsed reference: ``provider`` plus the provider-specific ``target`` and optional ``base_url``."""

    model_config = ConfigDict(frozen=True)

    raw: str
    provider: str
    target: str
    base_url: str | None = None

    def __str__(self) -> str:
        return self.raw


def may_be_alias(ref: str) -> bool:
    """Whether ``ref`` may name an alias of the machine's settings (``aliases:`` in ``config.yaml``, e.g. ``lab``)
    rather than be a reference itself: a word without a provider prefix, other than ``local``. Such a name in a spec
    is resolved where the run starts (by :meth:`~agentmesh.models.settings.ModelSettings.resolve_alias`, then
    parsed); a spec cannot tell it from a mistake, as the machine that runs it holds the aliases."""
    text = ref.strip()
    return bool(text) and text != "local" and ":" not in text and not any(c.isspace() for c in text)


def parse_reference(ref: str) -> ModelReference:
    """Split a reference string into provider, target and base URL, or say precisely what is wrong."""
    text = ref.strip()
    if not text:
        raise InvalidModelReferenceError(
            "empty model reference; expected e.g. 'local', 'openai:gpt-4o-mini' or "
            "'openai:<model>@http://host:port/v1'",
            reference=ref,
        )
    if text == "local":
        return ModelReference(raw=text, provider="local", target="")
    provider, sep, rest = text.partition(":")
    if provider in ("http", "https") and rest.startswith("//"):
        raise InvalidModelReferenceError(
            f"model reference {ref!r} is a server's URL without a model; a server is named as "
            f"'openai:<model>@{text}' (GET {text.rstrip('/')}/models lists the names it serves)",
            reference=ref,
        )
    if not sep or not _PROVIDER.match(provider):
        raise InvalidModelReferenceError(
            f"model reference {ref!r} has no provider prefix; expected '<provider>:<model>' "
            "(providers: openai, llamacpp, scripted, replay) or 'local'",
            reference=ref,
        )
    if provider == "local":
        # ('local:qwen2.5-7b' ran SmolLM2: the name after 'local:' was ignored)
        raise InvalidModelReferenceError(
            f"model reference {ref!r}: 'local' is the embedded SmolLM2 and is written alone; a GGUF file of your own "
            "is 'llamacpp:/path/to/model.gguf', a model on a server 'openai:<model>@http://host:port/v1'",
            reference=ref,
        )
    if _USERINFO.search(rest):
        shown = _USERINFO.sub(r"\1[redacted]@", text)
        raise InvalidModelReferenceError(
            f"model reference {shown!r} puts a user name or password in the server URL; agentmesh never keeps "
            "credentials: put the key in an environment variable and name it with api_key_env in the server's "
            "entry of config.yaml",
            reference=shown,
        )
    base_url: str | None = None
    # Model names may contain '@' or ':' (Ollama's 'llama3:8b'); only a trailing '@http(s)://...' is a URL.
    head, at, tail = rest.rpartition("@")
    if at and head and _NOT_HTTP.match(tail) and not tail.startswith(("http://", "https://")):
        address = tail.split("://", 1)[-1]
        raise InvalidModelReferenceError(
            f"model reference {ref!r}: {tail!r} after '@' is not an http(s) URL; a server is named as "
            f"'{provider}:{head}@http://{address}' (without a scheme the whole text would be taken for a model "
            "name, and the request would go to the provider's hosted service)",
            reference=ref,
        )
    if at and head and _ADDRESS.match(tail):
        raise InvalidModelReferenceError(
            f"model reference {ref!r}: {tail!r} after '@' reads as a server address but is not an http(s) URL; a "
            f"server is named as '{provider}:{head}@http://host:port/v1' (as it is, the whole text would be taken for "
            "a model name, and the request would go to the provider's hosted service)",
            reference=ref,
        )
    if at and tail.startswith(("http://", "https://")):
        if not _URL.match(tail):
            raise InvalidModelReferenceError(
                f"model reference {ref!r}: {tail!r} is not a valid server URL; expected http(s)://host:port/v1",
                reference=ref,
            )
        if "?" in tail or "#" in tail:
            # The SDK appends '/chat/completions' to the base URL's text, query and all ('/v1/?key=xchat/completions'),
            # so a query never reached the server as written; a key in it ('?api_key=sk-...') is not repeated here.
            base = re.split(r"[?#]", tail, maxsplit=1)[0]
            raise InvalidModelReferenceError(
                f"model reference '{provider}:{head}@{base}?...': the server URL has a query string or fragment, "
                "which the client cannot send (it appends /chat/completions to the base URL); give the base URL "
                f"alone, such as {base!r}, and a key in an environment variable named with api_key_env in the "
                "server's entry of config.yaml",
                reference=f"{provider}:{head}@{base}",
            )
        if _ENDPOINT_PATH.search(tail):
            raise InvalidModelReferenceError(
                f"model reference {ref!r}: the server URL ends with the endpoint's path; give its base, such as "
                f"'{_ENDPOINT_PATH.sub('', tail)}' (the client adds /chat/completions itself)",
                reference=ref,
            )
        rest, base_url = head, tail.rstrip("/")
    if not rest:
        raise InvalidModelReferenceError(f"model reference {ref!r} names no model after '{provider}:'", reference=ref)
    if provider != "llamacpp" and rest != rest.strip():
        # (' qwen' went to the server as it is, which answered that no model ' qwen' exists; a file name may
        # really hold spaces, model names do not)
        raise InvalidModelReferenceError(
            f"model reference {ref!r}: the model name {rest!r} starts or ends with a space; write "
            f"'{provider}:{rest.strip()}{'@' + base_url if base_url else ''}'",
            reference=ref,
        )
    return ModelReference(raw=text, provider=provider, target=rest, base_url=base_url)
