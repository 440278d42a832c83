# The two commands: `make serve` (set up, then start the embedded stack) and `make test`.
.PHONY: setup serve test lint bench

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export NEMO_GUARDRAILS_NO_USAGE_STATS := 1

SERVE_ARGS ?= --insecure-local

setup:
	./scripts/setup.sh

serve: setup
	.venv/bin/llmops serve $(SERVE_ARGS)

lint:
	.venv/bin/ruff check .

test: setup lint
	.venv/bin/python -m pytest $(PYTEST_ARGS)

bench: setup
	.venv/bin/python benchmarks/run_all.py
