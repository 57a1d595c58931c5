# Two commands for a fresh clone: `make run` and `make test`. Both install uv if it is missing.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: run test lint bench sync uv

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

sync: uv
	$(UV) sync --frozen

run: sync
	$(UV) run photo-removal serve

test: sync
	$(UV) run pytest

lint: sync
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

bench: sync
	$(UV) run python tests/bench/engine_bench.py
	$(UV) run python tests/bench/matching_bench.py
	$(UV) run python tests/bench/rule_replay.py --alone
	$(UV) run python tests/bench/decision_bench.py
	$(UV) run python tests/bench/service_bench.py
	$(UV) run python tests/bench/upload_bench.py
	$(UV) run python tests/bench/ingest_bench.py
	$(UV) run python tests/bench/review_bench.py
	$(UV) run python tests/bench/jobs_bench.py
