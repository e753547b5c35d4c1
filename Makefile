# One command each, on a fresh machine with Python >= 3.11:
#   make demo   set up .venv (the pack alone), then an offline backtest of the shipped trend core
#   make test   set up .venv with the test tools and llama.cpp's server, then the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Real candles for tests and benchmarks, when present (CI has them); tests skip without.
export HYBRID_AI_SHARED_DATA ?= $(abspath ../shared/data/binance)

# The three-year research set (2022 bear, 2023 recovery, 2024 chop), when present.
HISTORY_DATA ?= $(abspath ../shared/data/history/binance)
HISTORY_PAIRS := BTC/USDT ETH/USDT SOL/USDT XRP/USDT DOGE/USDT LINK/USDT AVAX/USDT LTC/USDT TRX/USDT ADA/USDT
HISTORY_RANGE := 20220301-20240901

.PHONY: venv demo live report walkforward test test-fast lint bench ml-quality label-study clean \
	llm-model llm-server llm-journal llm-eval \
	report-history walkforward-history ml-quality-history label-study-history core-study

# Three install stamps, each installing only what its commands use:
#   $(STAMP)      the pack (freqtrade, FreqAI's LightGBM, ONNX, openai): demo, report, live...
#   $(TEST_STAMP) + the `test` extra (pytest, ruff, import-linter, playwright) and the server
#   $(LLM_STAMP)  + llama.cpp's server (the `llm` extra), for the local-model commands only
STAMP      := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
LLM_STAMP  := $(VENV)/.installed-llm
PIP        := $(PY) -m pip install --quiet --disable-pip-version-check

# llama-cpp-python has no binary wheel on PyPI: pip compiles llama.cpp (~6 min on 2 cores).
# A native build (-march=native) turns on AMX on Sapphire Rapids-class Xeons, whose kernels
# segfault on the first answer (llama.cpp #20824, ollama #17205): on x86-64 the build is
# portable instead, AVX2/FMA/F16C (every x86-64 CPU since 2013-2015), no AVX-512, no AMX.
# The built wheel is kept in a folder named by version and flags, so a changed flag builds
# anew while pip's own cache (keyed by the sdist alone) could hand back a native build.
LLAMA_VERSION := $(shell sed -n 's/.*"llama-cpp-python\[server\]==\([0-9.]*\)".*/\1/p' pyproject.toml)
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON \
	-DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF \
	-DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
else
LLAMA_CMAKE_ARGS ?= -DLLAVA_BUILD=OFF
endif
LLAMA_WHEELS ?= $(HOME)/.cache/hybrid-ai/llama-cpp-python-$(LLAMA_VERSION)-$(shell \
	echo '$(LLAMA_CMAKE_ARGS)' | md5sum | cut -c1-10)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	@touch $(STAMP)
	@echo "venv ready: $$(du -sh $(VENV) | cut -f1) in $(VENV)"

$(LLM_STAMP): $(STAMP)
	@ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || { \
		echo "building llama.cpp's server once ($(LLAMA_CMAKE_ARGS)), ~6 min on 2 cores"; \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
		$(PY) -m pip wheel --quiet --disable-pip-version-check --no-deps --no-cache-dir \
			-w $(LLAMA_WHEELS) llama-cpp-python==$(LLAMA_VERSION); }
	$(PIP) --no-deps --force-reinstall $(LLAMA_WHEELS)/llama_cpp_python-*.whl
	$(PIP) --find-links $(LLAMA_WHEELS) --only-binary llama-cpp-python -e '.[llm]'
	@touch $(LLM_STAMP)

$(TEST_STAMP): $(LLM_STAMP)
	$(PIP) -e '.[test]'
	@touch $(TEST_STAMP)
	@echo "test venv ready: $$(du -sh $(VENV) | cut -f1) in $(VENV)"

venv: $(TEST_STAMP)

demo: $(STAMP)
	$(PY) -m lab.demo $(DEMO_ARGS)

live: $(STAMP)
	$(PY) -m lab.live $(if $(SPEED),--speed $(SPEED)) $(LIVE_ARGS)

report: $(STAMP)
	$(PY) -m lab.report $(REPORT_ARGS)

walkforward: $(STAMP)
	$(PY) -m lab.walkforward $(WALKFORWARD_ARGS)

test: $(TEST_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(TEST_STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(TEST_STAMP)
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

# The trend core's declared alternatives, the 200-day rule and buy and hold (issue #32).
core-study: $(STAMP)
	$(PY) -m lab.core_study --datadir $(HISTORY_DATA) --timerange $(HISTORY_RANGE) \
		--out user_data/reports/core-study-$(HISTORY_RANGE) $(CORE_STUDY_ARGS)

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

llm-server: llm-model $(LLM_STAMP)
	$(PY) -m llm_oracle model serve $(MODEL) $(LLM_ARGS)

# The local model's journal for a range of the shared candles, for make report --llm-journal.
LLM_RANGE ?= 20240801-20240815
llm-journal: llm-model $(LLM_STAMP)
	$(PY) -m lab.llm_journal $(if $(MODEL),--model $(MODEL)) --timerange $(LLM_RANGE) \
		--datadir $(HYBRID_AI_SHARED_DATA) $(LLM_JOURNAL_ARGS)

# Valid-answer, clamp and stability rates and latency of the packaged models.
llm-eval: $(LLM_STAMP)
	$(PY) -m lab.llm_eval --datadir $(HYBRID_AI_SHARED_DATA) $(LLM_EVAL_ARGS)

clean:
	rm -rf $(VENV) user_data/backtest_results user_data/hyperopt_results user_data/bench
