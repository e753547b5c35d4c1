# One command each, on a fresh machine with Python >= 3.11:
#   make demo   set up .venv, then an offline backtest of HybridAIStrategy
#   make test   set up .venv, then the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Real candles for tests and benchmarks, when present (CI has them); tests skip without.
export HYBRID_AI_SHARED_DATA ?= $(abspath ../shared/data/binance)

.PHONY: venv demo live report walkforward test test-fast lint bench ml-quality label-study clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)
	@echo "venv ready: $$(du -sh $(VENV) | cut -f1) in $(VENV)"

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m lab.demo $(DEMO_ARGS)

live: $(STAMP)
	$(PY) -m lab.live $(if $(SPEED),--speed $(SPEED)) $(LIVE_ARGS)

report: $(STAMP)
	$(PY) -m lab.report $(REPORT_ARGS)

walkforward: $(STAMP)
	$(PY) -m lab.walkforward $(WALKFORWARD_ARGS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

ml-quality: $(STAMP)
	$(PY) -m lab.ml_quality --datadir $(HYBRID_AI_SHARED_DATA) $(ML_QUALITY_ARGS)

label-study: $(STAMP)
	$(PY) -m lab.label_study --datadir $(HYBRID_AI_SHARED_DATA) $(LABEL_STUDY_ARGS)

clean:
	rm -rf $(VENV) user_data/backtest_results user_data/hyperopt_results user_data/bench
