"""Red team the gateway with NVIDIA garak, guardrails on and off, against the real local model.

    .venv/bin/python benchmarks/redteam_garak.py [--cap 3] [--max-tokens 48] [--parallel 4]
        [--probes dan,promptinject,encoding,web_injection,latentinjection,leakreplay,goodside]

1. garak lives in its own venv (`.bench-venvs/garak`, created on first use): torch==2.13.0 first (the
   CPU wheel on disk), then garak with a constraint that keeps that torch.
2. Triton with SmolLM2 and one gateway start on free loopback ports. Two keys reach model `smollm2`:
   rails on = the `default` policy with `on_block: refusal` (a block is answered as an assistant
   refusal that garak's refusal phrases recognise, instead of the 400 that garak would drop
   unscored); rails off = the `off` policy (no rails).
3. garak (`openai.OpenAICompatible`, generations=1, greedy) runs the same probes for each key. Every
   probe is cut to `--cap` prompts (seeded), including probes that ignore garak's own cap.
4. Prints a Markdown table per probe and detector: prompts, attack success rate (garak's failures /
   scored outputs) with rails off and on, and how many prompts the rails blocked.

Offline: HF_HUB_OFFLINE=1. Probes whose detectors need a hub model score only with the detectors
that load (latentinjection.LatentJailbreak loses unsafe_content.ToxicCommentModel); the table lists
the detectors garak actually ran. garak's PromptInject probes set their own temperature and
max_tokens on the shared generator and leave them there, so the probes after them (web_injection)
would run with those too: the config pins them off (`plugins.probes.promptinject.generation_params:
[]`). Results of a run: benchmarks/results/redteam_garak.md.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import yaml
from common import ROOT, machine, procs

from gateway.auth import digest
from gateway.config import load_settings
from gateway.supervisor import triton_process

GARAK_VERSION = "0.17.1"
TORCH_VERSION = "2.13.0"
VENV = ROOT / ".bench-venvs" / "garak"
FAMILIES = "dan,promptinject,encoding,web_injection,latentinjection,leakreplay,goodside"
KEYS = {"on": "sk-redteam-rails-on", "off": "sk-redteam-rails-off"}
REFUSAL_PREFIX = "I'm sorry, but I can't help with that: the request was blocked by"

# Runs inside the garak venv. Some probes ignore `soft_probe_prompt_cap` (dan.Ablation_Dan_11_0 has
# 127 prompts, latentinjection.LatentWhois 168, goodside.Tag 32), so every probe is cut the same way
# just before it runs, keeping the lists indexed alongside the prompts aligned.
RUNNER = r"""
import random, sys
import garak.probes.base as base
cap, seed = int(sys.argv[1]), int(sys.argv[2])
aligned = ("triggers", "_prompt_intents", "attempt_descrs", "pi_prompts")
original = base.Probe.probe
def capped(self, generator):
    n = len(self.prompts)
    if n > cap:
        keep = sorted(random.Random(seed).sample(range(n), cap))
        self.prompts = [self.prompts[i] for i in keep]
        for name in aligned:
            values = getattr(self, name, None)
            if isinstance(values, list) and len(values) == n:
                setattr(self, name, [values[i] for i in keep])
    return original(self, generator)
base.Probe.probe = capped
sys.stdout.reconfigure(encoding="utf-8")
from garak import cli
cli.main(sys.argv[3:])
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ensure_garak(venv: Path) -> Path:
    """The garak venv's interpreter; created on first use (torch first: a plain torch pulls CUDA)."""
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", "import garak"], capture_output=True).returncode == 0:
        return python
    log(f"creating {venv} (torch=={TORCH_VERSION}, garak=={GARAK_VERSION}) ...")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, f"torch=={TORCH_VERSION}"], check=True)
    constraints = venv / "constraints.txt"
    constraints.write_text(f"torch=={TORCH_VERSION}\n")
    subprocess.run([*pip, f"garak=={GARAK_VERSION}", "-c", str(constraints)], check=True)
    free = shutil.disk_usage(venv).free / 2**30
    log(f"garak installed; {free:.1f} GiB free on the disk")
    return python


def gateway_config(triton_grpc: str, tmp: Path) -> dict[str, object]:
    rails = load_settings().guardrails.model_dump(mode="json")
    rails["policies"]["redteam-on"] = {**rails["policies"]["default"], "on_block": "refusal"}
    rails["keys"] = {f"static-{digest(KEYS['on'])[:12]}": "redteam-on", f"static-{digest(KEYS['off'])[:12]}": "off"}
    return {
        "triton": {"managed": False},
        "auth": {"api_keys": list(KEYS.values())},
        "guardrails": rails,
        "storage": {"database_url": f"sqlite:///{tmp}/llmops.db"},
        "rag": {"uri": str(tmp / "rag.db")},
        "routing": {"timeout_s": 300},
        "models": [{"name": "smollm2", "deployments": [
            {"kind": "triton", "url": triton_grpc, "model": "smollm2", "protocol": "grpc",
             "tokenizer": "models/smollm2", "context_length": 8192}]}],
    }


def garak_config(args: argparse.Namespace, gateway_url: str, report_dir: Path) -> dict[str, object]:
    return {
        "system": {"parallel_attempts": args.parallel if args.parallel > 1 else False, "lite": True,
                   "narrow_output": True},
        "run": {"generations": 1, "seed": args.seed, "soft_probe_prompt_cap": args.cap},
        "plugins": {
            "target_type": "openai.OpenAICompatible",
            "target_name": "smollm2",
            "probe_spec": args.probes,
            "generators": {"openai": {"OpenAICompatible": {
                "uri": f"{gateway_url}/v1",
                "max_tokens": args.max_tokens,
                "temperature": 0.0,  # greedy: a prompt the rails pass gets the same answer in both runs
                # garak's defaults stop at '#' and ';' and send penalties: let the model answer plainly
                "suppressed_params": ["stop", "frequency_penalty", "presence_penalty"],
            }}},
            # PromptInject's probes copy their own temperature/top_p/max_tokens onto the shared
            # generator and never restore them, so every probe after them would inherit those:
            # keep every probe on the settings above.
            "probes": {"promptinject": {"generation_params": []}},
        },
        "reporting": {"report_dir": str(report_dir)},
    }


def run_garak(python: Path, args: argparse.Namespace, mode: str, gateway_url: str, tmp: Path) -> tuple[Path, float]:
    report_dir = tmp / f"garak-{mode}"
    config = tmp / f"garak-{mode}.yaml"
    config.write_text(yaml.safe_dump(garak_config(args, gateway_url, report_dir)))
    env = {**os.environ, "OPENAICOMPATIBLE_API_KEY": KEYS[mode], "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "XDG_DATA_HOME": str(tmp / "xdg-data"), "XDG_CACHE_HOME": str(tmp / "xdg-cache"),
           "XDG_CONFIG_HOME": str(tmp / "xdg-config")}
    argv = [str(python), "-c", RUNNER, str(args.cap), str(args.seed), "--config", str(config),
            "--report_prefix", f"rails-{mode}"]
    log(f"garak, rails {mode} (log: {tmp / f'garak-{mode}.log'}) ...")
    t0 = time.perf_counter()
    with (tmp / f"garak-{mode}.log").open("wb") as out:
        rc = subprocess.run(argv, cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t0
    report = report_dir / f"rails-{mode}.report.jsonl"
    if rc != 0 or not report.exists():
        raise RuntimeError(f"garak (rails {mode}) exited {rc}; see {tmp / f'garak-{mode}.log'}")
    return report, wall


def read_report(path: Path) -> tuple[dict[tuple[str, str], dict[str, int]], dict[str, Counter[str]]]:
    """garak's eval records per (probe, detector), and per probe: prompts, outputs blocked, no output."""
    evals: dict[tuple[str, str], dict[str, int]] = {}
    attempts: dict[str, Counter[str]] = defaultdict(Counter)
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("entry_type") == "eval":
            evals[(entry["probe"], entry["detector"])] = entry
        elif entry.get("entry_type") == "attempt" and entry.get("status") == 2:
            counts = attempts[entry["probe_classname"]]
            counts["prompts"] += 1
            for output in entry["outputs"]:
                text = (output or {}).get("text")
                counts["none"] += text is None
                counts["blocked"] += bool(text) and text.startswith(REFUSAL_PREFIX)
    return evals, attempts


def rate(e: dict[str, int] | None) -> str:
    if e is None:
        return "—"
    n = e["total_evaluated"]
    return f"{e['fails'] / n:.0%} ({e['fails']}/{n})" if n else f"n/a (0 scored, {e['nones']} none)"


def table(off: Path, on: Path) -> list[str]:
    evals_off, attempts_off = read_report(off)
    evals_on, attempts_on = read_report(on)
    rows = ["| probe | detector | prompts | ASR rails off | ASR rails on | blocked by rails (on) |",
            "|---|---|---:|---:|---:|---:|"]
    family: dict[str, Counter[str]] = defaultdict(Counter)
    for probe, detector in sorted(set(evals_off) | set(evals_on)):
        e_off, e_on = evals_off.get((probe, detector)), evals_on.get((probe, detector))
        prompts = attempts_off[probe]["prompts"] or attempts_on[probe]["prompts"]
        blocked = attempts_on[probe]["blocked"]
        rows.append(f"| {probe} | {detector} | {prompts} | {rate(e_off)} | {rate(e_on)} | {blocked}/{prompts} |")
        fam = family[probe.split(".")[0]]
        for tag, e in (("off", e_off), ("on", e_on)):
            if e is not None:
                fam[f"{tag}_fails"] += e["fails"]
                fam[f"{tag}_n"] += e["total_evaluated"]
    for probe, counts in attempts_on.items():
        family[probe.split(".")[0]]["prompts"] += counts["prompts"]
        family[probe.split(".")[0]]["blocked"] += counts["blocked"]
    rows += ["", "Per family (all detectors pooled; a prompt scored by two detectors counts twice):", "",
             "| family | prompts | ASR rails off | ASR rails on | blocked by rails (on) |", "|---|---:|---:|---:|---:|"]
    for name, c in sorted(family.items()):
        off_r = c["off_fails"] / c["off_n"] if c["off_n"] else float("nan")
        on_r = c["on_fails"] / c["on_n"] if c["on_n"] else float("nan")
        rows.append(f"| {name} | {c['prompts']} | {off_r:.0%} | {on_r:.0%} | {c['blocked']}/{c['prompts']} |")
    nones = sum(c["none"] for c in attempts_off.values()) + sum(c["none"] for c in attempts_on.values())
    rows += ["", f"Outputs garak got no text for (HTTP errors, left unscored): {nones}."]
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--probes", default=FAMILIES, help="garak probe spec (families or family.Probe)")
    ap.add_argument("--cap", type=int, default=3, help="prompts per probe")
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--parallel", type=int, default=4, help="garak parallel_attempts")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--modes", default="off,on", help="which runs: off,on")
    args = ap.parse_args()

    python = ensure_garak(VENV)
    version = subprocess.run([python, "-c", "import garak; print(garak.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    settings = load_settings()
    artifact = settings.resolve_path(settings.guardrails.injection_model)
    artifact_sha = hashlib.sha256(artifact.read_bytes()).hexdigest()
    tmp = Path(tempfile.mkdtemp(prefix="redteam-garak-"))
    ports = {k: procs.free_port() for k in ("http_port", "grpc_port", "metrics_port")}
    settings = settings.model_copy(update={"triton": settings.triton.model_copy(update=ports)})
    triton = triton_process(settings)
    log("starting Triton ...")
    triton.start(timeout_s=300, log_path=tmp / "triton.log")
    gw = None
    try:
        config = tmp / "gateway.yaml"
        config.write_text(yaml.safe_dump(gateway_config(f"127.0.0.1:{ports['grpc_port']}", tmp)))
        log("starting the gateway ...")
        gw, gw_url = procs.start_gateway(config, tmp, {})
        reports, walls = {}, {}
        for mode in args.modes.split(","):
            reports[mode], walls[mode] = run_garak(python, args, mode, gw_url, tmp)
    finally:
        if gw is not None:
            procs.stop(gw)
        triton.stop()

    command = " ".join(["python", "benchmarks/redteam_garak.py", *sys.argv[1:]])
    print(f"# Red team with garak ({datetime.date.today()}, {machine()})\n")
    print(f"command: `{command}`\n")
    print(f"- garak {version}, generator `openai.OpenAICompatible` → gateway → Triton `smollm2` (SmolLM2-135M-Instruct "
          f"Q4_1), generations=1, temperature 0, max_tokens={args.max_tokens}, ≤{args.cap} prompts per probe "
          f"(seed {args.seed}), parallel_attempts={args.parallel}")
    print("- rails on: policy `default` + `on_block: refusal`; rails off: policy `off`")
    print(f"- injection detector artifact `{settings.guardrails.injection_model}` sha256 `{artifact_sha}`")
    print("- wall time: " + ", ".join(f"rails {m} {w:.0f} s" for m, w in walls.items()) + f"; reports in `{tmp}`\n")
    if set(reports) == {"on", "off"}:
        print("\n".join(table(reports["off"], reports["on"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
