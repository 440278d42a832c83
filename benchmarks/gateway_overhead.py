"""Gateway overhead, side by side in one run: the same fast fake upstream called directly, through
our gateway (rails off, then the default rails on) and through LiteLLM's own proxy.

    .venv/bin/python benchmarks/gateway_overhead.py [--seconds 8] [--rates 100,200,500] [--no-litellm]

Every path runs one server process (uvicorn, one worker) on the same two cores; the load generators
are the same real ones for all: `hey` at fixed rates (non-streaming and streaming; time to first byte
for streams) and `wrk` with a Lua body for the closed-loop maximum. LiteLLM's proxy is installed by
this script in `.bench-venvs/litellm-proxy` (its own dependencies), with no database, no master-key
lookups beyond the static key, and uvicorn's access log off, as ours is.

Prints Markdown tables: latency per path and rate, latency added over direct, maximum throughput.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import tempfile
from pathlib import Path

import yaml
from common import bench_venv, ensure_tools, hey, machine, procs, wrk_max

from gateway.config import load_settings

KEY = "sk-bench"
HEADERS = {"Authorization": f"Bearer {KEY}"}
MESSAGES = [{"role": "user", "content": "Say hello in five words."}]
LITELLM = "litellm[proxy]==1.108.7"  # the newest release whose [proxy] extra resolves from PyPI here
# Without OpenTelemetry's SDK, litellm's auth step retries a failing import on every request (27% of
# its CPU under py-spy); its own proxy-runtime extra pins these, so they are installed beside it.
LITELLM_EXTRAS = ("opentelemetry-api==1.45.2", "opentelemetry-sdk==1.45.2")
MAX_ERROR_RATE = 0.001


def body(stream: bool) -> str:
    b: dict[str, object] = {"model": "fast", "messages": MESSAGES, "max_tokens": 16}
    if stream:
        b["stream"] = True
    return json.dumps(b)


def start_ours(tmp: Path, fake_url: str, rails: bool) -> tuple[subprocess.Popen[bytes], str]:
    config = tmp / f"gateway-{'rails' if rails else 'norails'}.yaml"
    config.write_text(yaml.safe_dump({
        "triton": {"managed": False},
        "guardrails": load_settings().guardrails.model_dump(mode="json") if rails else {"enabled": False},
        "models": [{"name": "fast", "deployments": [
            {"kind": "litellm", "model": "openai/fast", "api_base": f"{fake_url}/v1", "api_key": "x"}]}],
    }))
    return procs.start_gateway(config, tmp, {"LLMOPS_API_KEY": KEY})


def start_litellm(tmp: Path, fake_url: str) -> tuple[subprocess.Popen[bytes], str]:
    bin_dir = bench_venv("litellm-proxy", LITELLM, *LITELLM_EXTRAS)
    config = tmp / "litellm.yaml"
    config.write_text(yaml.safe_dump({
        "model_list": [{"model_name": "fast", "litellm_params": {
            "model": "openai/fast", "api_base": f"{fake_url}/v1", "api_key": "x"}}],
        # Its "production best practices" settings; with no database_url it keeps no spend logs.
        "general_settings": {"master_key": KEY},
        "litellm_settings": {"drop_params": True, "set_verbose": False, "request_timeout": 600},
    }))
    log_config = tmp / "litellm-logging.json"  # uvicorn's access log off, as in our gateway
    log_config.write_text(json.dumps({
        "version": 1, "disable_existing_loggers": False,
        "loggers": {"uvicorn.access": {"level": "WARNING"}, "uvicorn.error": {"level": "WARNING"}},
    }))
    port = procs.free_port()
    argv = [str(bin_dir / "litellm"), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
            "--num_workers", "1", "--log_config", str(log_config)]
    proc = procs.spawn(argv, tmp / f"litellm-{port}.log", {"LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    url = f"http://127.0.0.1:{port}"
    procs.wait_http(f"{url}/health/liveliness", proc, 240, tmp / f"litellm-{port}.log")
    return proc, url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rates", default="100,200,500")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM's proxy (no install)")
    parser.add_argument("--no-rails", action="store_true", help="skip the gateway-with-rails path")
    args = parser.parse_args()
    ensure_tools("hey", "wrk")
    tmp = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    started: list[subprocess.Popen[bytes]] = []

    def keep(pair: tuple[subprocess.Popen[bytes], str]) -> str:
        started.append(pair[0])
        return pair[1]

    try:
        fake = keep(procs.start_fake_provider(tmp))
        paths = {"direct": fake, "gateway": keep(start_ours(tmp, fake, rails=False))}
        if not args.no_rails:
            paths["gateway + rails"] = keep(start_ours(tmp, fake, rails=True))
        if not args.no_litellm:
            paths["litellm proxy"] = keep(start_litellm(tmp, fake))
        urls = {name: f"{base}/v1/chat/completions" for name, base in paths.items()}
        for url in urls.values():  # warm: connection pools, first-call imports
            for stream in (False, True):
                hey(url, body(stream), 50, 2, HEADERS, workers=2)
        report(args, urls)
    finally:
        for proc in reversed(started):
            procs.stop(proc)


def report(args: argparse.Namespace, urls: dict[str, str]) -> None:
    print(f"# Gateway overhead ({datetime.datetime.now():%Y-%m-%d %H:%M}, {machine()})\n")
    flags = (" --no-litellm" if args.no_litellm else "") + (" --no-rails" if args.no_rails else "")
    print(f"command: `.venv/bin/python benchmarks/gateway_overhead.py --seconds {args.seconds} "
          f"--rates {args.rates}{flags}`\n")
    rates = [int(r) for r in args.rates.split(",")]
    for stream in (False, True):
        kind = "streaming (latency = time to first byte)" if stream else "non-streaming"
        print(f"\n## {kind}\n")
        print("| rate (req/s) | path | achieved req/s | errors | p50 ms | p90 ms | p99 ms | added p50 | added p90 | added p99 |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for rate in rates:
            # hey's workers each tick on their own timer; a few more of them at high rates keep the
            # slower paths from becoming closed-loop bound, and every path gets the same count.
            workers = max(2, rate // 100)
            results = {name: hey(url, body(stream), rate, args.seconds, HEADERS, workers=workers)
                       for name, url in urls.items()}
            pre = "ttfb_" if stream else ""
            base = results["direct"]
            for name, r in results.items():
                added = "| | |" if name == "direct" else " | ".join(
                    f"{r[pre + q] - base[pre + q]:.2f}" for q in ("p50", "p90", "p99")) + " |"
                print(f"| {rate} | {name} | {r['rps']:.0f} | {r['errors']} | {r[pre + 'p50']:.2f} | "
                      f"{r[pre + 'p90']:.2f} | {r[pre + 'p99']:.2f} | {added}")
        print("\n| max throughput (wrk, 2 threads, 32 connections, 10 s) | req/s | error rate | < 0.1% errors | p50 ms | p99 ms |")
        print("|---|---|---|---|---|---|")
        for name, url in urls.items():
            m = wrk_max(url, body(stream), HEADERS)
            rate = m["errors"] / max(1.0, m["rps"] * 10)
            print(f"| {name} | {m['rps']:.0f} | {rate:.2%} | {'yes' if rate < MAX_ERROR_RATE else 'NO'} | "
                  f"{m['p50']:.2f} | {m['p99']:.2f} |")


if __name__ == "__main__":
    main()
