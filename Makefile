# One command each, on a fresh machine with Python >= 3.11:
#   make demo   set up .venv, then an offline backtest of HybridAIStrategy
#   make test   set up .venv, then the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Real candles for tests and benchmarks, when present (CI has them); tests skip without.
export HYBRID_AI_SHARED_DATA ?= $(abspath ../shared/data/binance)

# The three-year research set (2022 bear, 2023 recovery, 2024 chop), when present.
HISTORY_DATA ?= $(abspath ../shared/data/history/binance)
HISTORY_PAIRS := BTC/USDT ETH/USDT SOL/USDT XRP/USDT DOGE/USDT LINK/USDT AVAX/USDT LTC/USDT TRX/USDT ADA/USDT
HISTORY_RANGE := 20220301-20240901

.PHONY: venv demo live report walkforward test test-fast lint bench ml-quality label-study clean \
	llm-model llm-server llm-journal llm-eval \
	report-history walkforward-history ml-quality-history label-study-history

# llama-cpp-python (the `llm` extra) compiles llama.cpp; the multimodal library is not needed.
LLAMA_CMAKE_ARGS ?= -DLLAVA_BUILD=OFF

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
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

# The same tools on the whole history, walk-forward, out of sample from 2022-03: FreqAI
# retrains monthly there (user_data/config.history.json; measured: no skill lost against weekly).
report-history: $(STAMP)
	$(PY) -m lab.report --datadir $(HISTORY_DATA) --timerange $(HISTORY_RANGE) \
		-c user_data/config.history.json --out user_data/reports/history-$(HISTORY_RANGE) $(REPORT_ARGS)

walkforward-history: $(STAMP)
	$(PY) -m lab.walkforward --datadir $(HISTORY_DATA) --pairs $(HISTORY_PAIRS) \
		--timerange 20220104-20240901 --is-days 60 --oos-days 90 --epochs 30 $(WALKFORWARD_ARGS)

ml-quality-history: $(STAMP)
	$(PY) -m lab.ml_quality --datadir $(HISTORY_DATA) --pairs $(HISTORY_PAIRS) \
		--timerange $(HISTORY_RANGE) -c user_data/config.history.json \
		--userdir user_data/reports/ml_quality-history $(ML_QUALITY_ARGS)

label-study-history: $(STAMP)
	$(PY) -m lab.label_study --datadir $(HISTORY_DATA) --pairs $(HISTORY_PAIRS) \
		--start 2022-03-01 --end 2024-09-01 --test-days 30 $(LABEL_STUDY_ARGS)

# A local model for the oracle (llm_oracle/local_model.py; MODEL= one of `python -m
# llm_oracle model list`, default qwen2.5-coder-0.5b). llm-model fetches it once with pip
# (SHA-256 checked); llm-server serves it on 127.0.0.1 and writes user_data/llm-local.json,
# the overlay that points the oracle at it: python -m llm_oracle -c config.json -c
# user_data/llm-local.json run.
llm-model: $(STAMP)
	$(PY) -m llm_oracle model fetch $(MODEL)

llm-server: llm-model
	$(PY) -m llm_oracle model serve $(MODEL) $(LLM_ARGS)

# The local model's journal for a range of the shared candles, for make report --llm-journal.
LLM_RANGE ?= 20240801-20240815
llm-journal: llm-model
	$(PY) -m lab.llm_journal $(if $(MODEL),--model $(MODEL)) --timerange $(LLM_RANGE) \
		--datadir $(HYBRID_AI_SHARED_DATA) $(LLM_JOURNAL_ARGS)

# Valid-answer, clamp and stability rates and latency of the packaged models.
llm-eval: $(STAMP)
	$(PY) -m lab.llm_eval --datadir $(HYBRID_AI_SHARED_DATA) $(LLM_EVAL_ARGS)

clean:
	rm -rf $(VENV) user_data/backtest_results user_data/hyperopt_results user_data/bench
