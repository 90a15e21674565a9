"""benchmarks/grpo_throughput.py's transformers-passes ceiling: the passes it runs, and how the
comparison and table report it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))

import grpo_throughput as bench
from trainer_bench import ModelShape

P, R, N = bench.PROMPT_TOKENS, bench.RESPONSE_TOKENS, bench.EPISODES


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    return bench.build("tiny")[0]


def fed_shapes(model: torch.nn.Module) -> tuple[list[tuple[int, ...]], object]:
    """Every (B, T) the model's embedding is fed, and the hook's handle."""
    shapes: list[tuple[int, ...]] = []
    handle = model.get_input_embeddings().register_forward_hook(
        lambda _, inputs, __: shapes.append(tuple(inputs[0].shape))
    )
    return shapes, handle


def test_decoding_feeds_the_prompt_then_one_token_per_sampled_token_but_the_last(tiny):
    shapes, handle = fed_shapes(tiny)
    bench.decode_passes(tiny, torch.ones(N, P, dtype=torch.long))
    handle.remove()
    assert shapes == [(N, P)] + [(N, 1)] * (R - 1)  # generation_flops' passes


def test_response_logprobs_feed_p_plus_r_minus_1_tokens_and_score_the_response(tiny):
    sequences = torch.randint(2, tiny.config.vocab_size, (3, P + R))
    shapes, handle = fed_shapes(tiny)
    with torch.no_grad():
        logprobs = bench.response_logprobs(tiny, sequences)
        handle.remove()
        full = tiny(input_ids=sequences).logits.log_softmax(-1)  # (3, P + R, V)
    assert shapes == [(3, P + R - 1)]
    expected = full[:, P - 1 : -1].gather(-1, sequences[:, P:, None]).squeeze(-1)  # (3, R)
    torch.testing.assert_close(logprobs, expected, rtol=1e-5, atol=1e-5)


def test_the_passes_worker_clocks_each_step_with_ours_flop_count(tiny):
    raw = bench.run_passes("tiny", 3, "cpu", "no")
    assert len(raw["steps"]) == 3
    assert all(0 < step["generating"] < step["seconds"] for step in raw["steps"])
    assert raw["flops"] == bench.step_flops(ModelShape.of(tiny.config), P + R - 1, R, 1)
    assert raw["completion_tokens"] == [R, R]


def figures(episodes_per_s: float) -> dict[str, object]:
    return {"episodes_per_s": episodes_per_s, "flops_per_step": {"total": 1.0e9}}


def test_the_passes_ceiling_is_their_rate_over_trls_and_shows_in_the_table():
    by_impl = {"grpo": figures(300.0), "trl": figures(200.0), "passes": figures(500.0)}
    comp = bench.comparison("tiny", by_impl)
    assert comp["speedup"] == pytest.approx(1.5)
    assert comp["passes_ratio"] == pytest.approx(2.5)
    assert comp["floor_ratio"] is None  # no linear floor measured
    assert bench.comparison_cells(comp) == ("1.50x", ">= 2.0x missed", "1.00x", "2.50x", "-")


def test_a_failed_passes_run_leaves_its_ceiling_blank():
    by_impl = {"grpo": figures(300.0), "trl": figures(200.0), "passes": {"error": "killed"}}
    assert bench.comparison_cells(bench.comparison("tiny", by_impl))[3] == "-"
