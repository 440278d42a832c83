"""Gateway overhead: the same fast fake upstream called directly and through the gateway, side by side.

    .venv/bin/python benchmarks/gateway_overhead.py [--seconds 10] [--rates 100,200,500]

Prints a Markdown table: p50/p90/p99 latency at fixed rates (hey) for both paths and the added
latency (gateway − direct), then the maximum closed-loop throughput of each path (wrk).
"""

from __future__ import annotations

import argparse
import datetime
import json
import tempfile
from pathlib import Path

import yaml
from common import ensure_tools, hey, machine, procs, wrk_max

from gateway.config import load_settings

BODY = json.dumps({"model": "MODEL", "messages": [{"role": "user", "content": "Say hello in five words."}], "max_tokens": 16})
KEY = "sk-bench"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--no-rails", action="store_true", help="guardrails off (the default policy otherwise)")
    parser.add_argument("--rates", default="100,200,500")
    parser.add_argument("--connections", type=int, default=10,
                        help="hey workers; each ticks on its own timer, so bursts grow with this")
    args = parser.parse_args()
    ensure_tools("hey", "wrk")
    tmp = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    fake, fake_url = procs.start_fake_provider(tmp)
    config = tmp / "gateway.yaml"
    config.write_text(yaml.safe_dump({
        "triton": {"managed": False},
        "guardrails": {"enabled": False} if args.no_rails else load_settings().guardrails.model_dump(mode="json"),
        "models": [{"name": "fast", "deployments": [
            {"kind": "litellm", "model": "openai/fast", "api_base": f"{fake_url}/v1", "api_key": "x"}]}],
    }))
    gw, gw_url = procs.start_gateway(config, tmp, {"LLMOPS_API_KEY": KEY})
    headers = {"Authorization": f"Bearer {KEY}"}
    direct_url = f"{fake_url}/v1/chat/completions"
    gateway_url = f"{gw_url}/v1/chat/completions"
    direct_body = BODY.replace("MODEL", "fast")
    gateway_body = BODY.replace("MODEL", "fast")
    try:
        # Warm both paths (connection pools, first-call imports).
        hey(direct_url, direct_body, 50, 2, headers)
        hey(gateway_url, gateway_body, 50, 2, headers)
        print(f"# Gateway overhead ({datetime.date.today()}, {machine()})\n")
        rails = " --no-rails" if args.no_rails else ""
        print(f"command: `.venv/bin/python benchmarks/gateway_overhead.py --seconds {args.seconds} --rates {args.rates} "
              f"--connections {args.connections}{rails}`\n")
        print("| rate (req/s) | path | achieved req/s | errors | p50 ms | p90 ms | p99 ms |")
        print("|---|---|---|---|---|---|---|")
        added = []
        for rate in (int(r) for r in args.rates.split(",")):
            d = hey(direct_url, direct_body, rate, args.seconds, headers, workers=args.connections)
            g = hey(gateway_url, gateway_body, rate, args.seconds, headers, workers=args.connections)
            for name, r in (("direct", d), ("gateway", g)):
                print(f"| {rate} | {name} | {r['rps']:.0f} | {r['errors']} | {r['p50']:.2f} | {r['p90']:.2f} | {r['p99']:.2f} |")
            added.append((rate, g["p50"] - d["p50"], g["p90"] - d["p90"], g["p99"] - d["p99"]))
        print("\n| rate (req/s) | added p50 ms | added p90 ms | added p99 ms |")
        print("|---|---|---|---|")
        for rate, a50, a90, a99 in added:
            print(f"| {rate} | {a50:.2f} | {a90:.2f} | {a99:.2f} |")
        d = wrk_max(direct_url, direct_body, headers)
        g = wrk_max(gateway_url, gateway_body, headers)
        print("\n| max throughput (wrk, 2 threads, 32 connections) | req/s | errors | p50 ms | p99 ms |")
        print("|---|---|---|---|---|")
        print(f"| direct | {d['rps']:.0f} | {d['errors']} | {d['p50']:.2f} | {d['p99']:.2f} |")
        print(f"| gateway | {g['rps']:.0f} | {g['errors']} | {g['p50']:.2f} | {g['p99']:.2f} |")
    finally:
        procs.stop(gw)
        procs.stop(fake)


if __name__ == "__main__":
    main()
