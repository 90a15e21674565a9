"""benchmarks/trainer_bench.py's linear-layer floor and the passes grpo_throughput gives it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))

import grpo_throughput
from trainer_bench import LinearPass, ModelShape, linear_floor

SHAPE = ModelShape(hidden=4, layers=2, heads=2, kv_heads=1, head_dim=2, intermediate=8, vocab=10)


def multiply_adds(rows: int, dims: tuple[int, int], backward: bool, threads: int) -> float:
    """A stand-in clock: one second per multiply-add, a backward twice its forward on top."""
    return rows * dims[0] * dims[1] * (3 if backward else 1)


def test_a_layers_linear_dims_are_its_weight_matrices():
    # q (4 -> 2 heads x 2), k and v (4 -> 1 kv head x 2), o (4 -> 4), gate and up, down.
    assert SHAPE.linear_dims == ((4, 4), (4, 2), (4, 2), (4, 4), (4, 8), (4, 8), (8, 4))
    assert sum(i * o for i, o in SHAPE.linear_dims) == SHAPE.weights_per_layer


def test_the_floor_adds_every_layer_and_the_head_per_pass_and_count():
    passes = [
        LinearPass("decode", rows=3, logit_rows=3, count=5),
        LinearPass("update", 7, 2, 1, True),
    ]
    floor = linear_floor(SHAPE, passes, threads=1, matmul=multiply_adds)
    per_row = SHAPE.layers * SHAPE.weights_per_layer  # 2 x 88 multiply-adds
    assert floor["decode"] == 5 * (3 * per_row + 3 * 4 * 10)
    assert floor["update"] == 3 * (7 * per_row + 2 * 4 * 10)
    assert floor["total"] == floor["decode"] + floor["update"]


def test_grpos_passes_feed_the_tokens_its_flop_count_does():
    passes = {p.name: p for p in grpo_throughput.step_passes()}
    episodes, prompt, response = (
        grpo_throughput.EPISODES,
        grpo_throughput.PROMPT_TOKENS,
        grpo_throughput.RESPONSE_TOKENS,
    )
    generated = passes["prompt"].rows + passes["decode"].count * passes["decode"].rows
    assert generated == episodes * (prompt + response - 1)  # the last token is never fed
    assert passes["reference"].rows == passes["update"].rows == episodes * (prompt + response - 1)
    assert [p.backward for p in passes.values()] == [False, False, False, True]
    # With a clock of multiply-adds, the floor is the FLOP count without attention's share.
    floor = linear_floor(SHAPE, list(passes.values()), threads=1, matmul=multiply_adds)
    flops = grpo_throughput.step_flops(SHAPE, prompt + response - 1, response, 1)
    assert 2 * floor["total"] == pytest.approx(
        flops["total"] - _attention_flops(SHAPE, prompt, response)
    )


def _attention_flops(shape: ModelShape, prompt: int, response: int) -> float:
    """Attention's FLOPs in one step of grpo_throughput (the rest of the count is linear)."""
    per_context = 4 * shape.layers * shape.heads * shape.head_dim
    generation = prompt * (prompt + 1) // 2 + sum(prompt + t + 1 for t in range(response - 1))
    fed = prompt + response - 1
    forwards = 4 * fed * (fed + 1) // 2  # reference, and the update's forward + backward
    return grpo_throughput.EPISODES * per_context * (generation + forwards)
