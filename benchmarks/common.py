"""Shared helpers for the benchmark scripts: processes, load generators, percentiles."""

from __future__ import annotations

import csv
import io
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import procs  # noqa: E402  (the same process helpers the live tests use)


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{platform.node()} · {os.cpu_count()} cores · {cpu} · Python {platform.python_version()}"


def ensure_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, capture_output=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def hey(url: str, body: str, rate: int, seconds: int, headers: dict[str, str], workers: int = 10) -> dict[str, float]:
    """Fixed-rate load with `hey` (rate = workers × per-worker QPS); per-request latencies in ms."""
    per_worker = max(1, rate // workers)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(body)
    argv = ["hey", "-z", f"{seconds}s", "-c", str(workers), "-q", str(per_worker), "-m", "POST",
            "-T", "application/json", "-D", f.name, "-o", "csv"]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    ok = [r for r in rows if r.get("status-code") == "200"]
    lat = [float(r["response-time"]) * 1000 for r in ok]
    # Time to first byte: everything but reading the body (hey's response-read), so for a stream
    # it is the wait for the status line and the first bytes, not for the last chunk.
    ttfb = [(float(r["response-time"]) - float(r["Response-read"])) * 1000 for r in ok]
    errors = len(rows) - len(ok)
    return {
        "n": len(rows), "errors": errors, "rps": len(rows) / seconds,
        "p50": percentile(lat, 50), "p90": percentile(lat, 90), "p99": percentile(lat, 99),
        "mean": statistics.fmean(lat) if lat else float("nan"),
        "ttfb_p50": percentile(ttfb, 50), "ttfb_p90": percentile(ttfb, 90), "ttfb_p99": percentile(ttfb, 99),
    }


def wrk_max(url: str, body: str, headers: dict[str, str], seconds: int = 10, connections: int = 32) -> dict[str, float]:
    """Closed-loop maximum throughput with `wrk` and a Lua body."""
    lua = "wrk.method = 'POST'\nwrk.body = [[" + body + "]]\n"
    lua += "wrk.headers['Content-Type'] = 'application/json'\n"
    for k, v in headers.items():
        lua += f"wrk.headers['{k}'] = '{v}'\n"
    lua += (
        "done = function(summary, latency, requests)\n"
        "  io.write(string.format('RESULT %d %d %d %d\\n', summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, latency:percentile(50), latency:percentile(99)))\n"
        "end\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", f.name, url],
                         capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT"))
    requests, errors, p50_us, p99_us = (int(x) for x in line.split()[1:])
    return {"rps": requests / seconds, "errors": errors, "p50": p50_us / 1000, "p99": p99_us / 1000}


def bench_venv(name: str, *requirements: str) -> Path:
    """A separate virtual environment under .bench-venvs/ (for tools that must not share our venv,
    like LiteLLM's proxy); created and filled on first use, reused after. Returns its bin folder."""
    venv = ROOT / ".bench-venvs" / name
    stamp = venv / f".installed-{'-'.join(sorted(requirements)).replace('/', '_')[:150]}"
    if not stamp.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        uv = Path(sys.executable).with_name("uv")
        installer = [str(uv), "pip", "install", "--python", str(venv / "bin/python")] if uv.exists() \
            else [str(venv / "bin/pip"), "install", "-q"]
        subprocess.run([*installer, *requirements], check=True)
        stamp.touch()
    return venv / "bin"


__all__ = ["ROOT", "procs", "machine", "ensure_tools", "hey", "wrk_max", "percentile", "bench_venv"]
