"""What the trainer-throughput benchmarks (ppo_throughput, grpo_throughput) share: the TRL venv,
the prompts, one fresh process per measurement, and FLOP counts of a Llama-shaped model.

FLOPs count 2 per multiply-add of the matrix products, the only work that grows with the model:
per fed token the decoder's weight matrices (attention projections and the gated MLP), the
attention scores and mixing over the token's causal context (``QK^T`` and ``AV``), and the LM
head at each position whose logits are computed. Norms, rotary embeddings, softmaxes and the
optimizer are left out. A backward pass counts twice its forward (gradients with respect to
both the activations and the weights).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
TRL_PYTHON = Path(__file__).parents[1] / "build" / "trl-venv" / "bin" / "python"  # make bench-trl


def prompt_ids(tokenizer: Any, length: int) -> list[list[int]]:
    """Task prompts cut to exactly ``length`` tokens that survive a decode/encode round trip."""
    from rlhf_gym.tasks import get_task

    chosen = []
    for text in get_task("sentiment").prompts("all"):
        ids = tokenizer(text)["input_ids"][:length]
        if len(ids) == length and tokenizer(tokenizer.decode(ids))["input_ids"] == ids:
            chosen.append(ids)
    return chosen


def fresh_process(python: str | Path, argv: list[str]) -> dict[str, Any] | str:
    """Run ``python argv`` with the GPU hidden; the last JSON line it prints, or why it failed."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false"}
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
        [str(python), "-c", "import trl; print(trl.__version__)"],
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

    def generation_flops(self, prompt: int, response: int) -> float:
        """One sequence's sampling of ``response`` tokens after ``prompt`` with a KV cache: the
        prompt in one pass, then one pass per token but the last (sampled, never fed)."""
        decode = (self.forward_flops(1, prompt + t) for t in range(response - 1))
        return self.forward_flops(prompt) + sum(decode)
