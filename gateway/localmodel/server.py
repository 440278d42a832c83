"""Serve the local model through Triton Inference Server (PyTriton), under TensorRT-LLM's interface.

    python -m gateway.localmodel.server --model-dir models/smollm2 --model-name smollm2 \\
        --http-port 8100 --grpc-port 8101 --metrics-port 8102

The model is bound like TensorRT-LLM's "ensemble" model, so one client path reaches both:

    inputs   text_input BYTES [1]      max_tokens INT32 [1] (optional here, required by TRT-LLM)
             temperature FP32 [1]      top_p FP32 [1]       stop_words BYTES [-1]
             stream BOOL [1]           random_seed UINT64 [1] (TRT-LLM's name)
             seed INT64 [1] (extra)    -- all but text_input optional; a leading batch dimension
    outputs  text_output BYTES [-1]    plus extras a TRT-LLM deployment lacks:
             finish_reason BYTES [1] ("stop" | "length"), prompt_tokens INT32 [1], completion_tokens INT32 [1]

It is a *decoupled* model: with stream=true it sends one response per text delta and a last one
carrying the finish information (and the final flag); with stream=false a single response. gRPC
clients use the bidirectional stream API for both; over HTTP use KServe's `generate` (stream=false)
and `generate_stream` (SSE) endpoints — Triton's plain `infer` does not serve decoupled models.

Concurrency: the inference callable is an async generator, so PyTriton runs every request as a
task on its event loop and all requests in flight reach the engine at once; the engine batches them
(continuous batching, see `gateway.localmodel.engine`). Triton's own dynamic batcher is off by
default (`--triton-batch-delay-us 0`): it does work with decoupled models, but PyTriton answers a
batch in lock-step (each yield carries one response per request, and the final flag reaches every
request of the batch only when the longest one ends), which adds the queue delay and head-of-line
blocking and gains nothing the engine does not already do. With a delay > 0 it is enabled and the
callable answers grouped requests in lock-step (empty responses for requests with nothing new).

The Triton Python backend stub bundled with PyTriton carries an older libpython that breaks on 3.11
(`'_thread.RLock' object has no attribute '_recursion_count'`); the stub must run with this
interpreter's libpython preloaded. PyTriton starts tritonserver with a copy of `os.environ`, so
setting `LD_PRELOAD` in this process before Triton starts is enough (no re-exec needed): this
module does it in `main()`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger("gateway.localmodel.server")

INPUT_NAMES = ("text_input", "max_tokens", "temperature", "top_p", "stop_words", "stream", "random_seed", "seed")


def libpython_path() -> str | None:
    libdir = sysconfig.get_config_var("LIBDIR")
    soname = sysconfig.get_config_var("INSTSONAME")  # e.g. libpython3.11.so.1.0
    if not libdir or not soname or ".so" not in str(soname):
        return None
    path = os.path.join(libdir, soname)
    return path if os.path.exists(path) else None


def ensure_ld_preload() -> None:
    """Put this interpreter's libpython into LD_PRELOAD for the processes Triton will start."""
    lib = libpython_path()
    if lib is None:
        log.warning("no shared libpython found; the Triton Python backend stub may fail to load the model")
        return
    current = [p for p in os.environ.get("LD_PRELOAD", "").replace(" ", ":").split(":") if p]
    if lib not in current:
        os.environ["LD_PRELOAD"] = ":".join([lib, *current])


class _ClientErrorFilter(logging.Filter):
    """PyTriton logs every exception of the inference callable with its traceback; a rejected
    request (our BadRequest) is the client's problem: log one line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # pragma: no cover - never break logging
            return True
        if "BadRequest: [" in msg:
            reason = msg.rsplit("BadRequest: ", 1)[1].strip().splitlines()[0]
            record.msg, record.args = "request rejected: %s", (reason,)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info = None
        return True


# ------------------------------------------------------------------------------------ request parsing
class BadRequest(ValueError):
    """Raised for invalid inputs; the message starts with `[code]` so clients can map it."""


@dataclass
class _Unit:
    """One generation: one row of one request."""

    req: int
    row: int
    prompt: str
    params: Any  # SamplingParams
    stream: bool


def _scalar(req: Any, name: str, row: int) -> Any:
    if name not in req.data:
        return None
    arr = np.asarray(req[name])
    if arr.ndim == 0:
        return arr.item()
    if arr.shape[0] <= row:
        row = 0
    flat = np.asarray(arr[row]).reshape(-1)
    if not flat.size:
        return None
    v = flat[0]
    return v.item() if isinstance(v, np.generic) else v


def _strings(req: Any, name: str, row: int) -> list[str]:
    if name not in req.data:
        return []
    arr = np.asarray(req[name], dtype=object)
    if arr.ndim == 0:
        vals = [arr.item()]
    else:
        if arr.shape[0] <= row:
            row = 0
        vals = list(arr[row].reshape(-1)) if arr.ndim > 1 else [arr[row]]
    out = []
    for v in vals:
        if isinstance(v, bytes):
            v = v.decode("utf-8", errors="replace")
        if v:
            out.append(str(v))
    return out


def _rows(req: Any) -> int:
    arr = np.asarray(req["text_input"])
    return 1 if arr.ndim == 0 else max(1, arr.shape[0])


def parse_units(requests: list[Any]) -> list[_Unit]:
    from gateway.localmodel.engine import SamplingParams

    units = []
    for i, req in enumerate(requests):
        if "text_input" not in req.data:
            raise BadRequest("[invalid_request] text_input is required")
        for row in range(_rows(req)):
            text = _scalar(req, "text_input", row)
            if isinstance(text, bytes):
                text = text.decode("utf-8", errors="replace")
            if not isinstance(text, str):
                raise BadRequest("[invalid_request] text_input must be a string")
            max_tokens = _scalar(req, "max_tokens", row)
            temperature = _scalar(req, "temperature", row)
            top_p = _scalar(req, "top_p", row)
            seed = _scalar(req, "seed", row)
            if seed is None:
                seed = _scalar(req, "random_seed", row)
            stream = bool(_scalar(req, "stream", row) or False)
            params = SamplingParams(
                max_tokens=int(max_tokens) if max_tokens is not None else None,
                temperature=float(temperature) if temperature is not None else None,
                top_p=float(top_p) if top_p is not None else None,
                stop=tuple(_strings(req, "stop_words", row)),
                seed=int(seed) if seed is not None else None,
            )
            units.append(_Unit(i, row, text, params, stream))
    return units


def _bytes_col(values: list[str]) -> np.ndarray:
    return np.array([[v.encode("utf-8")] for v in values], dtype=object)


def _int_col(values: list[int]) -> np.ndarray:
    return np.array([[v] for v in values], dtype=np.int32)


# ------------------------------------------------------------------------------------ the model
class LocalModelServer:
    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def _submit(self, unit: _Unit, sink: Any) -> Any:
        from gateway.localmodel.engine import EngineError

        try:
            return self.engine.submit(unit.prompt, unit.params, sink=sink)
        except EngineError as exc:
            code = getattr(exc, "code", "invalid_request")
            raise BadRequest(f"[{code}] {exc}") from None

    async def infer(self, requests: list[Any]):  # async generator: PyTriton runs each call as a task
        units = parse_units(requests)
        if len(requests) > 1:
            log.debug("%d requests batched by Triton: answering in lock-step", len(requests))
        if len(units) == 1:
            async for resp in self._single(units[0]):
                yield [resp]
        else:
            async for resps in self._lockstep(requests, units):
                yield resps

    async def _single(self, unit: _Unit):
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[Any] = asyncio.Queue()
        handle = self._submit(unit, lambda item: loop.call_soon_threadsafe(q.put_nowait, item))
        parts: list[str] = []
        try:
            while True:
                ev = await q.get()
                if isinstance(ev, BaseException):
                    raise ev
                if ev.finish_reason is None:
                    if unit.stream:
                        yield {"text_output": _bytes_col([ev.text])}
                    else:
                        parts.append(ev.text)
                    continue
                text = ev.text if unit.stream else "".join(parts) + ev.text
                yield {
                    "text_output": _bytes_col([text]),
                    "finish_reason": _bytes_col([ev.finish_reason]),
                    "prompt_tokens": _int_col([ev.prompt_tokens]),
                    "completion_tokens": _int_col([ev.completion_tokens]),
                }
                return
        finally:
            handle.cancel()  # no-op when finished; stops generating if the call was abandoned

    async def _lockstep(self, requests: list[Any], units: list[_Unit]):
        """Several requests (Triton's dynamic batcher) or rows in one call: PyTriton wants one
        response per request on every yield, so answer in lock-step."""
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[Any] = asyncio.Queue()
        handles = []
        try:
            for idx, unit in enumerate(units):
                handles.append(
                    self._submit(unit, lambda item, idx=idx: loop.call_soon_threadsafe(q.put_nowait, (idx, item)))
                )
            n_req = len(requests)
            rows: list[list[int]] = [[] for _ in range(n_req)]
            for idx, u in enumerate(units):
                rows[u.req].append(idx)
            text: list[list[str]] = [[] for _ in units]  # pending text per unit
            final: list[Any] = [None] * len(units)
            sent_final = [False] * n_req
            any_stream = any(u.stream for u in units)
            while not all(sent_final):
                idx, ev = await q.get()
                batch = [(idx, ev)]
                while not q.empty():
                    batch.append(q.get_nowait())
                for idx, ev in batch:
                    if isinstance(ev, BaseException):
                        raise ev
                    text[idx].append(ev.text)
                    if ev.finish_reason is not None:
                        final[idx] = ev
                responses: list[dict[str, np.ndarray]] = []
                changed = False
                for r in range(n_req):
                    members = rows[r]
                    done = all(final[i] is not None for i in members)
                    if sent_final[r] or (not done and not units[members[0]].stream):
                        responses.append({})
                        continue
                    out = {"text_output": _bytes_col(["".join(text[i]) for i in members])}
                    for i in members:
                        text[i].clear()
                    if done:
                        out["finish_reason"] = _bytes_col([final[i].finish_reason for i in members])
                        out["prompt_tokens"] = _int_col([final[i].prompt_tokens for i in members])
                        out["completion_tokens"] = _int_col([final[i].completion_tokens for i in members])
                        sent_final[r] = True
                    responses.append(out)
                    changed = True
                if changed and (any_stream or all(sent_final)):
                    yield responses
        finally:
            for h in handles:
                h.cancel()


def bind(triton: Any, model_name: str, server: LocalModelServer, max_batch_size: int, batch_delay_us: int) -> None:
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor

    config = ModelConfig(
        batching=True,
        max_batch_size=max_batch_size,
        decoupled=True,
        batcher=DynamicBatcher(max_queue_delay_microseconds=batch_delay_us) if batch_delay_us > 0 else None,
    )
    triton.bind(
        model_name=model_name,
        infer_func=server.infer,
        inputs=[
            Tensor(name="text_input", dtype=bytes, shape=(1,)),
            Tensor(name="max_tokens", dtype=np.int32, shape=(1,), optional=True),
            Tensor(name="temperature", dtype=np.float32, shape=(1,), optional=True),
            Tensor(name="top_p", dtype=np.float32, shape=(1,), optional=True),
            Tensor(name="stop_words", dtype=bytes, shape=(-1,), optional=True),
            Tensor(name="stream", dtype=np.bool_, shape=(1,), optional=True),
            Tensor(name="random_seed", dtype=np.uint64, shape=(1,), optional=True),
            Tensor(name="seed", dtype=np.int64, shape=(1,), optional=True),
        ],
        outputs=[
            Tensor(name="text_output", dtype=bytes, shape=(-1,)),
            Tensor(name="finish_reason", dtype=bytes, shape=(1,)),
            Tensor(name="prompt_tokens", dtype=np.int32, shape=(1,)),
            Tensor(name="completion_tokens", dtype=np.int32, shape=(1,)),
        ],
        config=config,
        strict=False,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m gateway.localmodel.server", description=__doc__.split("\n")[0])
    p.add_argument("--model-dir", default="models/smollm2")
    p.add_argument("--gguf-file", default=None, help="GGUF file inside --model-dir (found if omitted)")
    p.add_argument("--model-name", default="smollm2")
    p.add_argument("--host", default="127.0.0.1", help="address the HTTP and gRPC endpoints bind to")
    p.add_argument("--http-port", type=int, default=8100)
    p.add_argument("--grpc-port", type=int, default=8101)
    p.add_argument("--metrics-port", type=int, default=8102)
    p.add_argument("--weight-format", default="auto", choices=["auto", "float32", "bfloat16", "q4"])
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: CPUs available)")
    p.add_argument("--max-batch", type=int, default=16, help="sequences decoded together")
    p.add_argument("--max-context", type=int, default=None, help="cap the context (default: the model's)")
    p.add_argument("--prefill-chunk", type=int, default=512)
    p.add_argument("--triton-max-batch-size", type=int, default=64)
    p.add_argument("--triton-batch-delay-us", type=int, default=0, help="> 0 enables Triton's dynamic batcher")
    p.add_argument("--exit-timeout", type=int, default=3)
    p.add_argument("--log-level", default="INFO")
    # Fine-tuned models (finetune/ publishes them): see gateway/localmodel/extra_models.py.
    p.add_argument("--models-dir", default=None, help="also serve each model folder in this directory (polled)")
    p.add_argument("--models-dir-weight-format", default="float32", choices=["float32", "bfloat16", "q4"],
                   help="weights of those models (float32: exactly what the fine-tuning eval gate scored)")
    return p.parse_args(argv)


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM us when the process that started us dies, even by SIGKILL: an orphaned
    Triton would keep the ports and block the next `llmops serve` from starting its own."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() == 1:  # the parent was already gone before the request took effect
        raise SystemExit("parent process exited while Triton was starting")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _die_with_parent()
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("pytriton", "sh"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    logging.getLogger("pytriton.proxy.inference").addFilter(_ClientErrorFilter())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    ensure_ld_preload()

    stop = threading.Event()
    serving = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %s: shutting down", signal.Signals(signum).name)
        stop.set()
        if not serving.is_set():
            raise KeyboardInterrupt  # abort a start-up in progress

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    t0 = time.monotonic()
    from gateway.localmodel.engine import Engine, SamplingParams

    try:
        engine = Engine.load(
            args.model_dir,
            args.gguf_file,
            weight_format=args.weight_format,
            threads=args.threads,
            max_batch=args.max_batch,
            max_context=args.max_context,
            prefill_chunk=args.prefill_chunk,
            name=args.model_name,
        )
        engine.generate("Hello", SamplingParams(max_tokens=2))  # warm up kernels and caches
    except KeyboardInterrupt:
        return 1
    log.info(
        "engine ready in %.1fs: format=%s threads=%d context=%d max_batch=%d",
        time.monotonic() - t0,
        engine.weight_format,
        engine.threads,
        engine.context_length,
        engine.max_batch,
    )

    from pytriton.triton import Triton, TritonConfig

    config = TritonConfig(
        http_address=args.host,
        http_port=args.http_port,
        grpc_address=args.host,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        exit_timeout_secs=args.exit_timeout,
        allow_gpu_metrics=False,
    )
    triton = Triton(config=config)
    extra: tuple[Any, list[Any]] | None = None  # (models-dir watcher, its engines)
    try:
        bind(triton, args.model_name, LocalModelServer(engine), args.triton_max_batch_size, args.triton_batch_delay_us)
        triton.run()  # starts tritonserver, loads the model, waits until it is ready
        if args.models_dir:  # fine-tuned models: bound as their folders appear
            from gateway.localmodel.extra_models import watch

            extra = watch(args.models_dir, triton, bind, LocalModelServer,
                          {"weight_format": args.models_dir_weight_format, "threads": args.threads,
                           "max_batch": args.max_batch, "max_context": args.max_context,
                           "prefill_chunk": args.prefill_chunk},
                          args.triton_max_batch_size, args.triton_batch_delay_us)
        serving.set()
        print(
            f"READY model={args.model_name} grpc={args.host}:{args.grpc_port} http={args.host}:{args.http_port} "
            f"metrics={args.metrics_port} startup={time.monotonic() - t0:.1f}s",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(1.0):
            if not (extra[0].alive(triton) if extra is not None else triton.is_alive()):
                log.error("Triton Inference Server or its model stopped; exiting")
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if extra is not None:
            extra[0].close()
        triton.stop()
        for extra_engine in extra[1] if extra is not None else []:
            extra_engine.close()
        engine.close()
        log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
