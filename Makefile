# Two commands do all set-up on a fresh Debian machine (root, apt and PyPI reachable):
#   make demo   — set up, then run the main job on the embedded ImageNet sample → out/demo (+ its dataset card)
#   make test   — set up, then run the whole test suite
#   make lint   — ruff, and the import contracts of ARCHITECTURE.md (import-linter)
PY := .venv/bin/python

.PHONY: setup demo test lint bench
setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m builders.imagenet_qa --out out/demo --overwrite
	$(PY) -m cards write out/demo

test: setup
	$(PY) -m pytest -n auto --dist worksteal

lint: setup
	.venv/bin/ruff check .
	.venv/bin/lint-imports

bench: setup
	$(PY) scripts/bench_builders.py
