"""A continuous-batching generation engine for a small causal LM on CPU.

One background thread owns the model. Each scheduler step

1. admits waiting requests (up to `max_batch` in flight) and prefills their prompts — several
   prompts packed into one forward pass, long prompts in chunks of `prefill_chunk` tokens so that
   running streams keep moving;
2. runs one decode forward pass over every running sequence (one new token each), with a slot-based
   KV cache (see `gateway.localmodel.model`);
3. samples, detokenises incrementally, checks stop words and hands text deltas to each request's
   queue; finished sequences leave the batch at once, new ones join at the next step boundary.

Callers on any thread use `submit()` (returns a `RequestHandle` whose `events()` yields
`StreamEvent`s), `stream()` or `generate()`. Prompt validation (empty, longer than the context)
happens synchronously in `submit()`.

Numerics: a sequence's logits can depend (slightly, in the last bits) on which other sequences
share its batch, because matrix kernels block differently for different batch sizes (and "q4"
switches from 4-bit to bfloat16 weights above 4 rows). Greedy and seeded outputs are exactly
reproducible for the same batch composition (e.g. one request at a time); the thread count does
not change results.

Threads: `ThreadTuner` measures 1 vs all cores now and then and keeps the faster, because on a
small machine shared with busy processes two OpenMP threads can be 3x slower than one; libgomp's
barrier spin is shortened for the same reason (see below).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# libgomp (torch's OpenMP) spins ~300k iterations at each barrier by default. On a small machine
# shared with other busy processes (the gateway itself, Triton, tests) a spinning or descheduled
# worker stalls every parallel region: decode steps measured 15 ms idle went to 0.5-1 s at load
# average 4-5 with 2 threads. A short spin keeps the idle speed and degrades gracefully. Only
# effective if torch (libgomp) is not loaded yet, hence before `import torch`.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")

import torch  # noqa: E402

from gateway.localmodel.model import LlamaLite, PrefillItem  # noqa: E402

log = logging.getLogger("gateway.localmodel.engine")

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


# ---------------------------------------------------------------------------------------- loading
def load_tokenizer(model_dir: str | os.PathLike[str], gguf_file: str | None = None) -> Any:
    """The tokenizer exported next to the model (fast), else the one inside the GGUF file (slow)."""
    from transformers import AutoTokenizer

    model_dir = Path(model_dir)
    if (model_dir / "tokenizer.json").exists() or (model_dir / "tokenizer_config.json").exists():
        return AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    if gguf_file is None:
        raise FileNotFoundError(f"no tokenizer in {model_dir}")
    return AutoTokenizer.from_pretrained(str(model_dir), gguf_file=gguf_file, local_files_only=True)


@contextlib.contextmanager
def _fast_gguf_parsing() -> Iterator[None]:
    """Cut transformers' GGUF load time: it parses the file twice (config, then tensors) and builds
    gguf's tensor-name map once per tensor (~8 s on 2 cores). Both are pure, so memoise them for the
    duration of one load."""
    try:
        import gguf
    except ImportError:  # pragma: no cover - transformers reports it
        yield
        return
    orig_reader, orig_map = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict[tuple[str, str], Any] = {}

    def reader(path: Any, mode: Any = "r") -> Any:
        key = (str(path), mode)
        if key not in readers:
            readers[key] = orig_reader(path, mode)
        return readers[key]

    gguf.GGUFReader = reader  # type: ignore[assignment,misc]
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(orig_map)  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = orig_reader, orig_map  # type: ignore[misc]


# ---------------------------------------------------------------------------------------- errors
class EngineError(Exception):
    """Base class of the engine's errors."""


class PromptTooLong(EngineError, ValueError):
    code = "context_length_exceeded"


class InvalidInput(EngineError, ValueError):
    code = "invalid_request"


class EngineClosed(EngineError):
    pass


# ---------------------------------------------------------------------------------------- types
@dataclass(frozen=True, slots=True)
class SamplingParams:
    max_tokens: int | None = None
    temperature: float | None = None  # 0 or None: greedy
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def validate(self) -> None:
        if self.max_tokens is not None and self.max_tokens < 1:
            raise InvalidInput("max_tokens must be at least 1")
        if self.temperature is not None and (self.temperature < 0 or self.temperature != self.temperature):
            raise InvalidInput("temperature must be >= 0")
        if self.top_p is not None and not (0.0 < self.top_p <= 1.0):
            raise InvalidInput("top_p must be in (0, 1]")
        if any(not isinstance(s, str) for s in self.stop):
            raise InvalidInput("stop words must be strings")


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """A text delta; the last event of a request has `finish_reason` set (and maybe text too)."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True)
class GenerationResult:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


class RequestHandle:
    """What `Engine.submit` returns: the request's events, and a way to cancel it.

    By default events go to a thread-safe queue read with `events()` / `result()`. With
    `loop=` (an asyncio loop) they go to an asyncio queue read with `aevents()` / `aresult()`.
    With `sink=` the engine thread calls `sink(event_or_exception)` itself (keep it cheap).
    """

    def __init__(
        self,
        prompt_tokens: int,
        loop: asyncio.AbstractEventLoop | None = None,
        sink: Callable[[StreamEvent | BaseException], None] | None = None,
    ) -> None:
        self.prompt_tokens = prompt_tokens
        self.cancelled = False
        self.done = False
        self._q: queue.SimpleQueue[Any] | None = None
        self._aq: asyncio.Queue[Any] | None = None
        if sink is not None:
            self._sink = sink
        elif loop is not None:
            aq: asyncio.Queue[Any] = asyncio.Queue()
            self._aq = aq

            def to_loop(item: StreamEvent | BaseException) -> None:
                loop.call_soon_threadsafe(aq.put_nowait, item)

            self._sink = to_loop
        else:
            q: queue.SimpleQueue[Any] = queue.SimpleQueue()
            self._q = q
            self._sink = q.put

    # engine side
    def _put(self, ev: StreamEvent) -> None:
        self._sink(ev)

    def _fail(self, exc: BaseException) -> None:
        self._sink(exc)

    # caller side
    def cancel(self) -> None:
        self.cancelled = True

    def _check(self, item: Any) -> StreamEvent:
        if isinstance(item, BaseException):
            self.done = True
            raise item
        if item.finish_reason is not None:
            self.done = True
        return item

    def events(self, timeout: float | None = None) -> Iterator[StreamEvent]:
        """Yield events until the final one. Raises the engine's error, or queue.Empty on timeout."""
        if self._q is None:
            raise RuntimeError("this handle delivers to an asyncio loop or a sink")
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self.done:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                yield self._check(self._q.get(timeout=left))
        finally:
            if not self.done:
                self.cancel()

    async def aevents(self) -> AsyncIterator[StreamEvent]:
        if self._aq is None:
            raise RuntimeError("submit(..., loop=...) to read events with asyncio")
        try:
            while not self.done:
                yield self._check(await self._aq.get())
        finally:
            if not self.done:
                self.cancel()

    def result(self, timeout: float | None = None) -> GenerationResult:
        return _collect(self.events(timeout))

    async def aresult(self) -> GenerationResult:
        parts: list[str] = []
        async for ev in self.aevents():
            parts.append(ev.text)
            if ev.finish_reason is not None:
                return GenerationResult("".join(parts), ev.finish_reason, ev.prompt_tokens, ev.completion_tokens)
        raise EngineError("stream ended without a final event")  # pragma: no cover


def _collect(events: Iterable[StreamEvent]) -> GenerationResult:
    parts: list[str] = []
    for ev in events:
        parts.append(ev.text)
        if ev.finish_reason is not None:
            return GenerationResult("".join(parts), ev.finish_reason, ev.prompt_tokens, ev.completion_tokens)
    raise EngineError("stream ended without a final event")  # pragma: no cover


# ---------------------------------------------------------------------------------------- sequence
@dataclass(eq=False)
class _Seq:
    handle: RequestHandle
    prompt: list[int]
    max_new: int
    temperature: float
    top_p: float
    stop: tuple[str, ...]
    generator: torch.Generator | None
    k: list[torch.Tensor] | None = None  # scratch cache while prefilling
    v: list[torch.Tensor] | None = None
    prefilled: int = 0
    out: list[int] = field(default_factory=list)
    # incremental detokenisation (vLLM-style offsets into `out`)
    prefix_offset: int = 0
    read_offset: int = 0
    text: str = ""  # all text decoded so far
    emitted: int = 0  # chars of `text` already handed out
    finished: str | None = None
    t_submit: float = field(default_factory=time.monotonic)

    @property
    def position(self) -> int:
        """Position of the last sampled token, i.e. the next decode step's input."""
        return len(self.prompt) + len(self.out) - 1


def _pick_threads() -> int:
    env = os.environ.get("LOCALMODEL_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover
        return max(1, os.cpu_count() or 1)


class ThreadTuner:
    """Pick the intra-op thread count by measurement, and keep re-checking it.

    On a small shared machine the best count changes with what else runs: with 2 cores idle,
    2 threads decode ~1.5x faster than 1; with one core taken by another process, 2 threads are
    ~3x *slower* than 1 (every parallel region waits for the descheduled worker). So every
    `period` decode steps the engine runs `probe` steps at the other count and `probe` at the
    current one (same batch size) and switches when the other is clearly faster.
    """

    def __init__(self, max_threads: int, adaptive: bool, period: int = 256, probe: int = 5) -> None:
        self.current = max_threads
        self.candidates = sorted({max_threads, 1}, reverse=True)
        self.adaptive = adaptive and len(self.candidates) > 1
        self.period, self.probe = period, probe
        self._countdown = period // 4  # first check soon after start
        self._plan: list[int] = []
        self._samples: list[tuple[int, int, float]] = []
        self.switches = 0

    def threads_for_step(self) -> int:
        if not self.adaptive:
            return self.current
        if not self._plan:
            self._countdown -= 1
            if self._countdown > 0:
                return self.current
            other = next(c for c in self.candidates if c != self.current)
            self._plan = [other] * self.probe + [self.current] * self.probe
            self._samples = []
        return self._plan[len(self._samples)]

    def record(self, threads: int, batch: int, seconds: float) -> None:
        if not self._plan:
            return
        if self._samples and self._samples[0][1] != batch:  # batch changed: not comparable
            self._plan, self._countdown = [], 16
            return
        self._samples.append((threads, batch, seconds))
        if len(self._samples) < len(self._plan):
            return
        other = self._plan[0]
        t_other = sorted(t for n, _, t in self._samples if n == other)[self.probe // 2]
        t_cur = sorted(t for n, _, t in self._samples if n == self.current)[self.probe // 2]
        if t_other < 0.85 * t_cur:
            log.info(
                "threads %d -> %d (decode step %.1f ms -> %.1f ms)", self.current, other, t_cur * 1000, t_other * 1000
            )
            self.current = other
            self.switches += 1
        self._plan, self._countdown = [], self.period


class Engine:
    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        weight_format: str = "auto",
        max_batch: int = 16,
        max_context: int | None = None,
        prefill_chunk: int = 512,
        threads: int | None = None,
        name: str = "localmodel",
    ) -> None:
        self.threads = threads or _pick_threads()
        # fixed when given (argument or LOCALMODEL_THREADS), measured and adapted otherwise
        self.tuner = ThreadTuner(self.threads, adaptive=threads is None and "LOCALMODEL_THREADS" not in os.environ)
        self._active_threads = self.threads
        torch.set_num_threads(self.threads)
        if weight_format == "auto":
            # 4-bit layers need ATen's int4 CPU kernel; weights from GGUF Q4 files lose nothing
            weight_format = "q4" if hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu") else "float32"
        self.name = name
        self.tokenizer = tokenizer
        self._tok = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
        self.model = LlamaLite(model, weight_format)
        self.weight_format = weight_format
        limit = self.model.max_positions
        self.context_length = min(limit, max_context) if max_context else limit
        self.max_batch = max_batch
        self.prefill_chunk = prefill_chunk
        self.eos_ids = self._eos_ids(model, tokenizer)
        self._lock = threading.Condition()
        self._waiting: deque[_Seq] = deque()
        self._prefilling: list[_Seq] = []
        self._running: list[_Seq] = []  # index == KV slot
        self._closed = False
        self.steps = 0
        self._thread = threading.Thread(target=self._loop, name=f"{name}-engine", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def load(cls, model_dir: str | os.PathLike[str], gguf_file: str | None = None, **kw: Any) -> Engine:
        """Load tokenizer and model from `model_dir` (offline). The GGUF file is found if not named."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from transformers import AutoModelForCausalLM

        model_dir = Path(model_dir)
        if gguf_file is None:
            ggufs = sorted(p.name for p in model_dir.glob("*.gguf"))
            gguf_file = DEFAULT_GGUF if DEFAULT_GGUF in ggufs else (ggufs[0] if ggufs else None)
        t0 = time.monotonic()
        tokenizer = load_tokenizer(model_dir, gguf_file)
        t1 = time.monotonic()
        if gguf_file:
            with _fast_gguf_parsing():
                model = AutoModelForCausalLM.from_pretrained(
                    str(model_dir), gguf_file=gguf_file, dtype=torch.float32, local_files_only=True
                )
        else:
            model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32, local_files_only=True)
        model.eval()
        log.info("tokenizer %.1fs, model %.1fs (%s)", t1 - t0, time.monotonic() - t1, gguf_file or model_dir)
        return cls(model, tokenizer, **kw)

    @staticmethod
    def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
        ids: set[int] = set()
        for src in (getattr(model, "generation_config", None), getattr(model, "config", None), tokenizer):
            e = getattr(src, "eos_token_id", None)
            if isinstance(e, int):
                ids.add(e)
            elif isinstance(e, (list, tuple)):
                ids.update(int(x) for x in e)
        for name in ("<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end|>"):
            tid = tokenizer.convert_tokens_to_ids(name) if name in tokenizer.get_vocab() else None
            if isinstance(tid, int):
                ids.add(tid)
        return frozenset(ids)

    # ------------------------------------------------------------------ public API
    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def encode(self, text: str) -> list[int]:
        if self._tok is not None:
            return self._tok.encode(text, add_special_tokens=False).ids
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def submit(
        self,
        prompt: str | Sequence[int],
        params: SamplingParams | None = None,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        sink: Callable[[StreamEvent | BaseException], None] | None = None,
    ) -> RequestHandle:
        params = params or SamplingParams()
        params.validate()
        ids = self.encode(prompt) if isinstance(prompt, str) else [int(t) for t in prompt]
        if not ids:
            raise InvalidInput("the prompt is empty")
        if len(ids) >= self.context_length:
            raise PromptTooLong(
                f"the prompt has {len(ids)} tokens; this model's context is {self.context_length} tokens "
                "(prompt plus at least one generated token)"
            )
        room = self.context_length - len(ids)
        max_new = room if params.max_tokens is None else min(params.max_tokens, room)
        temp = float(params.temperature or 0.0)
        gen = None
        if temp > 0:
            gen = torch.Generator()
            gen.manual_seed(params.seed if params.seed is not None else int.from_bytes(os.urandom(8), "little") >> 1)
        handle = RequestHandle(len(ids), loop=loop, sink=sink)
        seq = _Seq(
            handle=handle,
            prompt=ids,
            max_new=max_new,
            temperature=temp,
            top_p=float(params.top_p) if params.top_p is not None else 1.0,
            stop=tuple(s for s in params.stop if s),
            generator=gen,
        )
        with self._lock:
            if self._closed:
                raise EngineClosed("the engine is shut down")
            self._waiting.append(seq)
            self._lock.notify()
        return handle

    def stream(self, prompt: str | Sequence[int], params: SamplingParams | None = None) -> Iterator[StreamEvent]:
        return self.submit(prompt, params).events()

    def generate(self, prompt: str | Sequence[int], params: SamplingParams | None = None) -> GenerationResult:
        return self.submit(prompt, params).result()

    async def astream(
        self, prompt: str | Sequence[int], params: SamplingParams | None = None
    ) -> AsyncIterator[StreamEvent]:
        handle = self.submit(prompt, params, loop=asyncio.get_running_loop())
        async for ev in handle.aevents():
            yield ev

    async def agenerate(self, prompt: str | Sequence[int], params: SamplingParams | None = None) -> GenerationResult:
        return await self.submit(prompt, params, loop=asyncio.get_running_loop()).aresult()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "waiting": len(self._waiting),
                "prefilling": len(self._prefilling),
                "running": len(self._running),
                "steps": self.steps,
                "threads": self._active_threads,
                "thread_switches": self.tuner.switches,
            }

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join(timeout)

    # ------------------------------------------------------------------ scheduler
    def _loop(self) -> None:
        torch.set_num_threads(self._active_threads)
        with torch.inference_mode():
            while True:
                with self._lock:
                    while not self._closed and not (self._waiting or self._prefilling or self._running):
                        if self.model.cache_len > 1024:  # idle: give long-context memory back
                            self.model.reset_cache()
                        self._lock.wait()
                    if self._closed:
                        break
                    while self._waiting and len(self._prefilling) + len(self._running) < self.max_batch:
                        self._prefilling.append(self._waiting.popleft())
                try:
                    self._step()
                except Exception as exc:  # a bug or OOM: fail what is in flight, keep serving
                    log.exception("engine step failed")
                    for s in self._prefilling + self._running:
                        s.handle._fail(EngineError(f"generation failed: {type(exc).__name__}"))
                    self._prefilling, self._running = [], []
                    self.model.reset_cache()
        err = EngineClosed("the engine shut down")
        with self._lock:
            pending = list(self._waiting) + self._prefilling + self._running
            self._waiting.clear()
        for s in pending:
            s.handle._fail(err)

    def _step(self) -> None:
        self.steps += 1
        # drop cancelled requests
        if any(s.handle.cancelled for s in self._prefilling):
            self._prefilling = [s for s in self._prefilling if not s.handle.cancelled]
        for s in self._running:
            if s.handle.cancelled and s.finished is None:
                s.finished = "cancelled"
        with self._lock:
            if any(s.handle.cancelled for s in self._waiting):
                self._waiting = deque(s for s in self._waiting if not s.handle.cancelled)

        # 1. prefill (packed, chunked)
        if self._prefilling:
            budget = self.prefill_chunk
            items: list[tuple[_Seq, PrefillItem]] = []
            for s in self._prefilling:
                if budget <= 0:
                    break
                if s.k is None or s.v is None:
                    s.k, s.v = self.model.new_scratch(len(s.prompt))
                n = min(len(s.prompt) - s.prefilled, budget)
                items.append((s, PrefillItem(s.prompt[s.prefilled : s.prefilled + n], s.prefilled, s.k, s.v)))
                budget -= n
            logits = self.model.prefill([it for _, it in items])
            done: list[tuple[_Seq, int]] = []
            for row, (s, it) in enumerate(items):
                s.prefilled += len(it.ids)
                if s.prefilled == len(s.prompt):
                    done.append((s, row))
            if done:
                toks = self._sample([s for s, _ in done], logits[[r for _, r in done]])
                finished_prefill = {id(s) for s, _ in done}
                self._prefilling = [s for s in self._prefilling if id(s) not in finished_prefill]
                for (s, _), tok in zip(done, toks, strict=True):
                    slot = len(self._running)
                    assert s.k is not None and s.v is not None
                    self.model.load_slot(slot, s.k, s.v, len(s.prompt))
                    s.k = s.v = None
                    self._running.append(s)
                    self._accept(s, tok)

        # 2. one decode step for every running sequence (finished ones give their slots back first)
        self._compact()
        if self._running:
            run = self._running
            n = self.tuner.threads_for_step()
            if n != self._active_threads:
                torch.set_num_threads(n)
                self._active_threads = n
            t0 = time.perf_counter()
            logits = self.model.decode([s.out[-1] for s in run], [s.position for s in run])
            self.tuner.record(n, len(run), time.perf_counter() - t0)
            for s, tok in zip(run, self._sample(run, logits), strict=True):
                self._accept(s, tok)
        self._compact()

    def _compact(self) -> None:
        keep: list[_Seq] = []
        for slot, s in enumerate(self._running):
            if s.finished is not None:
                continue
            if slot != len(keep):
                self.model.move_slot(slot, len(keep), s.position)
            keep.append(s)
        self._running = keep

    # ------------------------------------------------------------------ sampling
    def _sample(self, seqs: list[_Seq], logits: torch.Tensor) -> list[int]:
        out = logits.argmax(dim=-1).tolist()
        for i, s in enumerate(seqs):
            if s.temperature <= 0:
                continue
            row = logits[i] / s.temperature
            if s.top_p < 1.0:
                sorted_l, order = torch.sort(row, descending=True)
                probs = torch.softmax(sorted_l, dim=-1)
                cum = torch.cumsum(probs, dim=-1)
                keep = (cum - probs) < s.top_p  # always keeps the first token
                probs = probs * keep
                pick = torch.multinomial(probs, 1, generator=s.generator)
                out[i] = int(order[pick])
            else:
                probs = torch.softmax(row, dim=-1)
                out[i] = int(torch.multinomial(probs, 1, generator=s.generator))
        return out

    # ------------------------------------------------------------------ detokenisation & stops
    def _decode(self, ids: list[int]) -> str:
        if self._tok is not None:
            return self._tok.decode(ids, skip_special_tokens=True)
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _accept(self, s: _Seq, tok: int) -> None:
        if s.finished is not None:
            return
        s.out.append(tok)
        if tok in self.eos_ids:
            self._finish(s, "stop")
            return
        # incremental detokenisation: only complete characters leave
        prefix = self._decode(s.out[s.prefix_offset : s.read_offset])
        full = self._decode(s.out[s.prefix_offset :])
        if len(full) > len(prefix) and not full.endswith("\ufffd"):
            s.text += full[len(prefix) :]
            s.prefix_offset, s.read_offset = s.read_offset, len(s.out)
        if s.stop and self._check_stop(s):
            return
        if len(s.out) >= s.max_new:
            self._finish(s, "length")
            return
        self._emit(s)

    def _check_stop(self, s: _Seq) -> bool:
        best = -1
        for word in s.stop:
            i = s.text.find(word, max(0, s.emitted - len(word) + 1))
            if i >= 0 and (best < 0 or i < best):
                best = i
        if best < 0:
            return False
        s.text = s.text[:best]
        self._finish(s, "stop", flushed=True)
        return True

    def _holdback(self, s: _Seq) -> int:
        """How many trailing chars of the text could still become a stop word."""
        hold = 0
        tail = s.text[s.emitted :]
        for word in s.stop:
            for k in range(min(len(word) - 1, len(tail)), hold, -1):
                if tail.endswith(word[:k]):
                    hold = k
                    break
        return hold

    def _emit(self, s: _Seq) -> None:
        end = len(s.text) - (self._holdback(s) if s.stop else 0)
        if end > s.emitted:
            s.handle._put(StreamEvent(s.text[s.emitted : end]))
            s.emitted = end

    def _finish(self, s: _Seq, reason: str, flushed: bool = False) -> None:
        if not flushed:
            # flush what the incremental decoder still holds (e.g. a cut UTF-8 sequence); special
            # tokens such as EOS decode to nothing
            rest = self._decode(s.out[s.prefix_offset :])
            prefix = self._decode(s.out[s.prefix_offset : s.read_offset])
            if len(rest) > len(prefix):
                s.text += rest[len(prefix) :]
                s.prefix_offset = s.read_offset = len(s.out)
                if s.stop and self._check_stop(s):
                    return
        s.finished = reason
        tail = s.text[s.emitted :]
        s.emitted = len(s.text)
        s.handle._put(StreamEvent(tail, reason, len(s.prompt), len(s.out)))
