"""Loopback model servers for tests: llama-cpp-python's real OpenAI-compatible server and a scriptable fake.

``llama_server()`` starts ``python -m llama_cpp.server`` on the SmolLM2 GGUF and yields its ``/v1`` URL.
``FakeOpenAIServer`` is a starlette app served by uvicorn in a background thread; each request to
``POST /v1/chat/completions`` is answered by the next scripted :class:`Reply` (then by ``default``), and every
request's arrival time (``time.monotonic()``, the clock the client's timers use) and JSON body are recorded.

Both bind 127.0.0.1 only and stop at the end of their ``with`` block; a hanging reply is released at stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------------------------------------------
# helpers


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (for servers that must be told their port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port_url() -> str:
    """A ``/v1`` URL on a loopback port nobody listens on: connections are refused at once."""
    return f"http://127.0.0.1:{free_port()}/v1"


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no output captured)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


# --------------------------------------------------------------------------------------------------------------
# llama-cpp-python's OpenAI-compatible server


@contextlib.contextmanager
def llama_server(
    model_path: str | os.PathLike[str] | None = None,
    *,
    n_ctx: int = 2048,
    startup_timeout_s: float = 60.0,
    extra_args: tuple[str, ...] = (),
) -> Iterator[str]:
    """Run ``python -m llama_cpp.server`` on a free loopback port; yield ``http://127.0.0.1:<port>/v1``.

    Waits (at most ``startup_timeout_s``) until ``GET /v1/models`` answers; on failure the error carries the
    tail of the server's stderr. The process is terminated (then killed) when the block exits.
    """
    if model_path is None:
        from agentmesh.models.providers.llamacpp import local_model_path

        model_path = local_model_path()
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        *extra_args,
    ]
    with tempfile.TemporaryDirectory(prefix="llama-server-") as tmp:
        log = Path(tmp) / "server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            _wait_until_serving(proc, url, log, startup_timeout_s)
            yield url
        finally:
            _stop(proc)


def _wait_until_serving(proc: subprocess.Popen[bytes], url: str, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last_error = "no attempt made"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"llama_cpp.server exited with code {proc.returncode} before serving {url}; its output ends with:\n"
                f"{_tail(log)}"
            )
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2.0) as resp:
                if resp.status == 200:
                    return
                last_error = f"HTTP {resp.status}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        time.sleep(0.1)  # polling a child process: there is no event to wait on
    _stop(proc)
    raise RuntimeError(
        f"llama_cpp.server did not answer GET {url}/models within {timeout_s:g} s (last: {last_error}); "
        f"its output ends with:\n{_tail(log)}"
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


# --------------------------------------------------------------------------------------------------------------
# the scriptable fake


@dataclass(frozen=True)
class Reply:
    """How the fake answers one request. Build with the class methods."""

    status: int = 200
    body: Any = None  # dict -> JSON; str/bytes -> sent verbatim; None -> a completion built from the fields below
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    text: str = "ok"
    choices: int | None = None  # None: as many as the request's n
    usage: tuple[int, int] | None = (10, 2)
    logprobs: tuple[tuple[str, float], ...] | None = None
    hang_s: float = 0.0  # wait this long (or until the server stops) before answering
    delay_s: float = 0.0
    finish_reason: str = "stop"
    reasoning: str | None = None  # a reasoning parser's output, in the message field named below
    reasoning_field: str = "reasoning_content"  # vLLM, SGLang, llama.cpp; Ollama and OpenRouter say "reasoning"
    cached_tokens: int | None = None  # usage.prompt_tokens_details.cached_tokens, as OpenAI reports prompt caching
    reasoning_tokens: int | None = None  # usage.completion_tokens_details.reasoning_tokens

    # -- successful answers --
    @classmethod
    def ok(
        cls,
        text: str = "ok",
        *,
        usage: tuple[int, int] | None = (10, 2),
        choices: int | None = None,
        logprobs: tuple[tuple[str, float], ...] | None = None,
        delay_s: float = 0.0,
        finish_reason: str = "stop",
        reasoning: str | None = None,
        reasoning_field: str = "reasoning_content",
    ) -> Reply:
        """A valid chat completion; ``usage=None`` omits the usage object; ``reasoning`` is returned apart from the
        text, as a server with a reasoning parser does."""
        return cls(
            text=text,
            usage=usage,
            choices=choices,
            logprobs=logprobs,
            delay_s=delay_s,
            finish_reason=finish_reason,
            reasoning=reasoning,
            reasoning_field=reasoning_field,
        )

    # -- failures --
    @classmethod
    def error(
        cls,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """An OpenAI-shaped error body: ``{"error": {"message", "type", "code"}}``."""
        body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
        return cls(status=status, body=body, headers=dict(headers or {}))

    @classmethod
    def rate_limited(cls, retry_after_s: float = 1.0) -> Reply:
        """429 with both ``Retry-After`` (whole seconds) and ``retry-after-ms``."""
        headers = {"Retry-After": str(max(1, round(retry_after_s))), "retry-after-ms": str(int(retry_after_s * 1000))}
        return cls.error(
            429, "Rate limit reached for requests", type_="requests", code="rate_limit_exceeded", headers=headers
        )

    @classmethod
    def server_error(cls, status: int = 500, *, headers: Mapping[str, str] | None = None) -> Reply:
        return cls.error(
            status, "The server had an error while processing your request.", type_="server_error", headers=headers
        )

    @classmethod
    def not_found(cls, model: str = "fake") -> Reply:
        return cls.error(
            404, f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found"
        )

    @classmethod
    def context_too_long(cls) -> Reply:
        return cls.error(
            400,
            "This model's maximum context length is 2048 tokens. However, you requested 9000 tokens.",
            code="context_length_exceeded",
        )

    @classmethod
    def unauthorized(cls, message: str = "Incorrect API key provided.") -> Reply:
        return cls.error(401, message, type_="invalid_request_error", code="invalid_api_key")

    @classmethod
    def hang(cls, seconds: float = 30.0) -> Reply:
        """Say nothing for ``seconds`` (released early when the server stops), then answer normally."""
        return cls(hang_s=seconds)

    @classmethod
    def malformed_json(cls) -> Reply:
        """200 claiming JSON, with a truncated body."""
        return cls(body='{"id": "chatcmpl-1", "choices": [{"index": 0, "mess')

    @classmethod
    def html_page(cls) -> Reply:
        """200 with a proxy's HTML page instead of JSON."""
        return cls(body="<html><body>502 Bad Gateway</body></html>", content_type="text/html")


Responder = Callable[[dict[str, Any]], Reply]


@dataclass(frozen=True)
class Recorded:
    """One request the fake received."""

    at: float  # time.monotonic() at arrival
    path: str
    body: dict[str, Any] | None
    headers: dict[str, str]


class FakeOpenAIServer:
    """A scriptable OpenAI-compatible server on a free loopback port, run by uvicorn in a thread.

    ``script(*replies)`` queues answers for the next chat-completion requests; when the queue is empty,
    ``default`` (a :class:`Reply` or a function of the request body) answers. ``requests`` lists what arrived.
    """

    def __init__(self, *, default: Reply | Responder | None = None, model: str = "fake") -> None:
        self.model = model
        self.default: Reply | Responder = default or Reply.ok()
        self.requests: list[Recorded] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None

    # -- scripting --
    def script(self, *replies: Reply) -> FakeOpenAIServer:
        with self._lock:
            self._queue.extend(replies)
        return self

    def reset(self, default: Reply | Responder | None = None) -> None:
        """Forget the script and the recorded requests, and release any request still hanging."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.default = default or Reply.ok()
        self._release_hanging()

    def _release_hanging(self) -> None:
        loop, old = self._loop, self._release
        if loop is None or old is None or loop.is_closed():
            return
        self._release = asyncio.Event()
        with contextlib.suppress(RuntimeError):  # the loop just closed
            loop.call_soon_threadsafe(old.set)

    @property
    def chat_requests(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return self.default(body) if callable(self.default) else self.default

    # -- lifecycle --
    def start(self, timeout_s: float = 10.0) -> FakeOpenAIServer:
        import uvicorn

        config = uvicorn.Config(
            self._app(), log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name=f"fake-openai:{self.port}", daemon=True
        )
        self._thread.start()
        if not self._started.wait(timeout_s):
            self.stop()
            raise RuntimeError(f"fake OpenAI server on {self.url} did not start within {timeout_s:g} s")
        return self

    def stop(self) -> None:
        self._release_hanging()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                raise RuntimeError(f"fake OpenAI server on {self.url} did not stop")
        self._sock.close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the app --
    def _app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> Any:
            self._loop = asyncio.get_running_loop()
            self._release = asyncio.Event()
            self._started.set()
            yield

        def record(request: Request, at: float, body: dict[str, Any] | None) -> None:
            with self._lock:
                self.requests.append(Recorded(at=at, path=request.url.path, body=body, headers=dict(request.headers)))

        async def models(request: Request) -> Response:
            record(request, time.monotonic(), None)
            return JSONResponse({"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "me"}]})

        async def chat(request: Request) -> Response:
            arrived = time.monotonic()
            raw = await request.body()
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            record(request, arrived, body)
            reply = self._next(body or {})
            if reply.hang_s > 0:
                release = self._release
                assert release is not None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(release.wait(), reply.hang_s)
            if reply.delay_s > 0:
                await asyncio.sleep(reply.delay_s)
            headers = dict(reply.headers)
            if reply.body is None:
                return JSONResponse(self._completion(reply, body or {}), status_code=reply.status, headers=headers)
            if isinstance(reply.body, dict):
                return JSONResponse(reply.body, status_code=reply.status, headers=headers)
            return Response(reply.body, status_code=reply.status, headers=headers, media_type=reply.content_type)

        return Starlette(
            routes=[
                Route("/v1/models", models, methods=["GET"]),
                Route("/v1/chat/completions", chat, methods=["POST"]),
            ],
            lifespan=lifespan,
        )

    def _completion(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        n = reply.choices if reply.choices is not None else int(body.get("n") or 1)
        logprobs = None
        if reply.logprobs is not None:
            logprobs = {
                "content": [
                    {
                        "token": t,
                        "logprob": lp,
                        "bytes": list(t.encode()),
                        "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())}],
                    }
                    for t, lp in reply.logprobs
                ]
            }
        out: dict[str, Any] = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.model,
            "choices": [
                {
                    "index": i,
                    "message": {
                        "role": "assistant",
                        "content": reply.text if n == 1 else f"{reply.text} {i}",
                        **({reply.reasoning_field: reply.reasoning} if reply.reasoning is not None else {}),
                    },
                    "finish_reason": reply.finish_reason,
                    "logprobs": logprobs,
                }
                for i in range(n)
            ],
        }
        if reply.usage is not None:
            prompt, completion = reply.usage
            out["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
            if reply.cached_tokens is not None:
                out["usage"]["prompt_tokens_details"] = {"cached_tokens": reply.cached_tokens, "audio_tokens": 0}
            if reply.reasoning_tokens is not None:
                out["usage"]["completion_tokens_details"] = {"reasoning_tokens": reply.reasoning_tokens}
        return out
