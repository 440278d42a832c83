#!/usr/bin/env bash
# One-shot check that LoRA fine-tuning works on CUDA through our own code (finetune/device.py,
# trainer.py, distributed.py, runner.py::run_under_torchrun, worker.py), in three modes:
#   single    Worker.run_one() in one process (SQLite queue, heartbeat, train, checkpoint, merge, publish)
#   torchrun  run_under_torchrun(nproc=1): torchrun -m finetune.distributed, unmodified (world size 1)
#   ddp       the same launcher, child forced into the distributed branch: NCCL process group + DDP
#   oversub   Worker.run_one() asking for one process more than there are GPUs: one per GPU is started
# then prints a table (device, versions, pass/fail, steps, tokens/s, loss, wall time).
#
#   bash scripts/gpu_finetune_check.sh                 # on the GPU machine: carry [".whl", ".gpucheck"]
#   PYTHON=.venv/bin/python bash scripts/gpu_finetune_check.sh   # here, CPU fallback (gloo)
#
# Needs: torch, transformers, peft, accelerate, safetensors, tokenizers, pyyaml, jinja2 in $PYTHON;
# what the GPU image lacks (pydantic, pydantic-core, pydantic-settings, python-dotenv, annotated-types,
# typing-inspection, sqlalchemy, orjson) travels as cp312 wheels in .whl/ and is installed with
# --target into /tmp/site (only when missing); .whl/if-older/ holds typing-extensions, added only
# when the installed one is older than pydantic-core needs.
# To fetch them (they are not kept in git; the versions are the .venv's):
#   P="--no-deps --only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
#      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
#   for x in pydantic==2.14.4 pydantic-core==2.50.5 pydantic-settings==2.16.3 python-dotenv==1.2.4 \
#            annotated-types==0.8.0 typing-inspection==0.4.5 sqlalchemy==2.1.9 orjson==3.13.0; do
#     python3 -m pip download $P -d .whl $x; done
#   python3 -m pip download $P -d .whl/if-older typing-extensions==4.16.0
# .gpucheck/tokenizer holds the SmolLM2 tokenizer files (filled from models/smollm2 by a local run). The base model is a random tiny
# Llama built on the spot, so no weights travel.
#
# Env: OUT (logs; default var/gpucheck-out), PYTHON (default python3), GPUCHECK_BUDGET_S (285),
#      GPUCHECK_MODE_TIMEOUT_S (120), GPUCHECK_MODES ("single torchrun ddp oversub"), GPUCHECK_REQUIRE_CUDA
#      (1: no CUDA is a failure; default 1 when nvidia-smi exists), GPUCHECK_WHEELS (auto|always|never).
# Files in $OUT (flat): 00-env.log 01-single.log 02-torchrun.log 03-ddp.log 04-oversub.log summary.txt results.json
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
START=$(date +%s)
PY=${PYTHON:-python3}
OUT=${OUT:-$ROOT/var/gpucheck-out}
WORK=${GPUCHECK_WORK:-/tmp/gpucheck-work}
SITE=${GPUCHECK_SITE:-/tmp/site}
BUDGET=${GPUCHECK_BUDGET_S:-285}
MODE_TIMEOUT=${GPUCHECK_MODE_TIMEOUT_S:-120}
MODES=${GPUCHECK_MODES:-single torchrun ddp oversub}
if [ -z "${GPUCHECK_REQUIRE_CUDA:-}" ]; then
  if command -v nvidia-smi >/dev/null 2>&1; then GPUCHECK_REQUIRE_CUDA=1; else GPUCHECK_REQUIRE_CUDA=0; fi
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export PYTHONDONTWRITEBYTECODE=1
mkdir -p "$OUT" || exit 2
rm -rf "$WORK" && mkdir -p "$WORK" || exit 2
ENVLOG=$OUT/00-env.log
: >"$ENVLOG"

say() { echo "[gpucheck $(date +%H:%M:%S)] $*" | tee -a "$ENVLOG"; }
fail_early() {  # message; writes summary.txt so the result is never silent
  say "FAIL: $*"
  { echo "OVERALL: FAIL"; echo "$*"; } >"$OUT/summary.txt"
  echo "---- tail of $ENVLOG"; tail -n 40 "$ENVLOG"
  exit 3
}

if ! command -v "$PY" >/dev/null 2>&1; then fail_early "MISSING: python interpreter '$PY' (set PYTHON=...)"; fi
say "host ${HOSTNAME:-?}, python $("$PY" -c 'import sys; print(sys.version.split()[0], sys.executable)' 2>&1), repo $ROOT"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,compute_cap --format=csv >>"$ENVLOG" 2>&1
else
  say "no nvidia-smi on this machine"
fi

# ---- the heavy stack must come with the image (it is never shipped as wheels)
missing_core=$("$PY" -c 'import importlib
missing = []
for name in "torch transformers peft accelerate safetensors tokenizers yaml jinja2".split():
    try:
        importlib.import_module(name)
    except Exception as exc:
        missing.append(f"{name} ({type(exc).__name__})")
print(" ".join(missing))' 2>/dev/null) || missing_core="(the interpreter failed to start)"
[ -z "$missing_core" ] || fail_early "MISSING in $PY: $missing_core (install them in that interpreter, or set PYTHON=...)"

# ---- wheels of the pure-Python / cp312 packages the GPU image lacks (never torch & co.)
NEED='import pydantic, pydantic_core, pydantic_settings, dotenv, sqlalchemy, orjson, typing_inspection, annotated_types'
WHEELS=${GPUCHECK_WHEELS:-auto}
if [ "$WHEELS" = always ] || { [ "$WHEELS" = auto ] && ! "$PY" -c "$NEED" >/dev/null 2>&1; }; then
  shopt -s nullglob
  whls=(.whl/*.whl)
  [ ${#whls[@]} -gt 0 ] || fail_early "MISSING: $("$PY" -c "$NEED" 2>&1 | tail -n 1) and no wheels in .whl/ (carry [\".whl\"])"
  say "installing ${#whls[@]} wheel(s) from .whl/ into $SITE: ${whls[*]##*/}"
  if "$PY" -m pip --version >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
      "${whls[@]}" >>"$ENVLOG" 2>&1 \
      || fail_early "pip could not install .whl/*.whl for $PY (wheels are cp312 manylinux x86-64): $(grep -E '^ERROR' "$ENVLOG" | tail -n 2 | tr '\n' ' ')"
  else
    say "no pip in $PY: unpacking the wheels with zipfile instead"
    for w in "${whls[@]}"; do "$PY" -m zipfile -e "$w" "$SITE" >>"$ENVLOG" 2>&1 || fail_early "cannot unpack $w"; done
  fi
  # pydantic-core needs typing-extensions >= 4.16; add ours only if the image's is older (or absent)
  if ! "$PY" -c 'import sys, importlib.metadata as m
v = tuple(int(x) for x in m.version("typing_extensions").split(".")[:2]); sys.exit(v < (4, 16))' >/dev/null 2>&1; then
    te=(.whl/if-older/*.whl)
    if [ ${#te[@]} -gt 0 ]; then
      say "typing-extensions older than 4.16 (or absent): adding ${te[*]##*/}"
      "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
        "${te[@]}" >>"$ENVLOG" 2>&1 || for w in "${te[@]}"; do "$PY" -m zipfile -e "$w" "$SITE" >>"$ENVLOG" 2>&1; done
    fi
  fi
  export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
  shopt -u nullglob
else
  say "wheels: not needed ($WHEELS; the interpreter already imports pydantic, sqlalchemy, orjson, ...)"
fi
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
say "PYTHONPATH=$PYTHONPATH"

HELPER=(env "$PY" "$ROOT/scripts/gpu_finetune_check.py")
TIMEOUT=$(command -v timeout || true)
[ -n "$TIMEOUT" ] || say "NOTICE: no 'timeout' command here; modes run without a time limit"
say "prepare: environment check, tiny model, data, queue database ($WORK)"
if ! "${HELPER[@]}" prepare --work "$WORK" >>"$ENVLOG" 2>&1; then
  grep -E '^(MISSING|FAIL)' "$ENVLOG" | tail -n 5
  fail_early "prepare failed: $(grep -E '^(MISSING|FAIL)' "$ENVLOG" | tr '\n' ' ' | cut -c1-600)"
fi
grep -E 'accelerator:|NOTICE' "$ENVLOG" | cut -c1-400

n=1
for mode in $MODES; do
  log=$OUT/0$n-$mode.log
  n=$((n + 1))
  left=$((BUDGET - ($(date +%s) - START) - 15))
  limit=$MODE_TIMEOUT
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 20 ]; then
    say "mode $mode: skipped, the time budget (${BUDGET}s) is spent"
    echo "skipped: time budget spent" >"$log"
    continue
  fi
  say "mode $mode: running (timeout ${limit}s) -> ${log##*/}"
  t0=$(date +%s)
  if [ -n "$TIMEOUT" ]; then
    timeout -k 15 "$limit" "${HELPER[@]}" run "$mode" --work "$WORK" >"$log" 2>&1
  else
    "${HELPER[@]}" run "$mode" --work "$WORK" >"$log" 2>&1
  fi
  rc=$?
  echo "$rc" >"$WORK/$mode.rc"
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "TIMEOUT: killed after ${limit}s" >>"$log"
    if [ -s "$WORK/$mode.pgid" ]; then  # torchrun runs in its own session: end what this mode started
      kill -KILL -- "-$(cat "$WORK/$mode.pgid")" 2>/dev/null && say "mode $mode: killed its torchrun group"
    fi
  fi
  say "mode $mode: exit $rc after $(($(date +%s) - t0))s: $(grep -E '^\[gpucheck .*mode '"$mode"': (PASS|FAIL)' "$log" | tail -n 1 | cut -c 21-400)"
  if [ "$rc" -ne 0 ]; then
    echo "---- last lines of ${log##*/}"
    grep -vE '^(NCCL|[a-z0-9-]+:[0-9]+:[0-9]+ \[[0-9]+\] NCCL INFO)' "$log" | grep -vE '^\s' | tail -n 25 | cut -c1-300
  fi
done

# $OUT holds at most 6 files; the job folders, database and child records stay under $WORK
report_args=(--work "$WORK" --out "$OUT" --modes "$MODES")
[ "$GPUCHECK_REQUIRE_CUDA" = 1 ] && report_args+=(--require-cuda)
echo
"${HELPER[@]}" report "${report_args[@]}"
rc=$?
echo "total wall time: $(($(date +%s) - START))s; logs in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
exit $rc
