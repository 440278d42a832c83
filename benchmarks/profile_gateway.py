"""Where the gateway's time goes under load: py-spy samples the gateway process while `wrk` drives it.

    .venv/bin/python benchmarks/profile_gateway.py [--seconds 15] [--rails] [--stream]

Prints two Markdown tables: the functions with the most self time (where the CPU is spent) and our
own functions with the most inclusive time (which step of the request path pays for it). py-spy is
installed in `.bench-venvs/tools` on first use; the raw collapsed stacks are kept for flame graphs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import tempfile
import threading
from collections import Counter
from pathlib import Path

from common import bench_venv, ensure_tools, machine, procs, wrk_max
from gateway_overhead import HEADERS, body, start_ours

OURS = ("gateway/", "guardrails/", "prompts/", "rag/")


def aggregate(raw: Path) -> tuple[int, Counter[str], Counter[str]]:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        self_time[frames[-1]] += n
        for frame in set(frames):
            if any(f"({p}" in frame or f"/{p}" in frame for p in OURS):
                inclusive[frame] += n
    return total, self_time, inclusive


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rails", action="store_true", help="the default guardrails policy on")
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args()
    ensure_tools("wrk")
    py_spy = bench_venv("tools", "py-spy==0.4.3") / "py-spy"
    tmp = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    fake, fake_url = procs.start_fake_provider(tmp)
    gw, gw_url = start_ours(tmp, fake_url, rails=args.rails)
    url = f"{gw_url}/v1/chat/completions"
    raw = tmp / "gateway.collapsed"
    try:
        wrk_max(url, body(args.stream), HEADERS, seconds=3)  # warm
        load: dict[str, float] = {}
        runner = threading.Thread(target=lambda: load.update(
            wrk_max(url, body(args.stream), HEADERS, seconds=args.seconds + 2, connections=8)))
        runner.start()
        subprocess.run([str(py_spy), "record", "--pid", str(gw.pid), "--duration", str(args.seconds),
                        "--rate", "250", "--format", "raw", "--output", str(raw), "--nonblocking"],
                       check=True, capture_output=True)
        runner.join()
    finally:
        procs.stop(gw)
        procs.stop(fake)
    total, self_time, inclusive = aggregate(raw)
    print(f"# Gateway profile ({datetime.datetime.now():%Y-%m-%d %H:%M}, {machine()})\n")
    flags = (" --rails" if args.rails else "") + (" --stream" if args.stream else "")
    print(f"command: `.venv/bin/python benchmarks/profile_gateway.py --seconds {args.seconds}{flags}`; "
          f"load: wrk 8 connections, {load.get('rps', 0):.0f} req/s; {total} samples; raw stacks: {raw}\n")
    print("| self time | function |\n|---|---|")
    for frame, n in self_time.most_common(15):
        print(f"| {n / total:.1%} | `{frame}` |")
    print("\n| inclusive | our function |\n|---|---|")
    for frame, n in inclusive.most_common(20):
        print(f"| {n / total:.1%} | `{frame}` |")
    (tmp / "summary.json").write_text(json.dumps({"total": total, "self": self_time.most_common(40)}))


if __name__ == "__main__":
    main()
