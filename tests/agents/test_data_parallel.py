"""Data parallelism of the native agents: two gloo processes with half the batch each make
the same update, and log the same metrics, as one process with the whole batch."""

from __future__ import annotations

import json

import pytest
import torch

from agents import (
    GRPO,
    RLOO,
    GRPOConfig,
    Reinforce,
    ReinforceConfig,
    RLOOConfig,
    TokenPPO,
    TokenPPOConfig,
)
from agents.token_ppo.rollout import Rollout

COMMON = {"learning_rate": 1e-2, "progress_bar": False, "seed": 3, "anneal_lr": False}
CASES = {
    # two micro-batches and two epochs: the loss's global token count, accumulation, whitening
    "token-ppo": (TokenPPO, TokenPPOConfig(
        total_episodes=8, batch_size=8, num_ppo_epochs=2, gradient_accumulation_steps=2,
        **COMMON,
    )),
    # DAPO's token-mean loss and the whole batch's std: both need global statistics
    "grpo-dapo": (GRPO, GRPOConfig(
        total_episodes=8, batch_size=4, num_generations=2, num_iterations=2, loss_type="dapo",
        scale_rewards="batch", **COMMON,
    )),
    "rloo": (RLOO, RLOOConfig(
        total_episodes=8, batch_size=2, num_generations=4, num_iterations=2, **COMMON
    )),
    "reinforce": (Reinforce, ReinforceConfig(total_episodes=8, batch_size=8, **COMMON)),
}  # fmt: skip
UNEQUAL_ACROSS_RUNS = ("time/", "eps")


def _one_step(case, rollout: Rollout, model, tokenizer, env_kwargs) -> tuple[dict, dict]:
    """One iteration of ``case`` on this process's share of ``rollout``: metrics, parameters."""
    trainer_class, config = CASES[case]
    trainer = trainer_class(model, tokenizer, config, env_kwargs=env_kwargs)
    share = len(rollout.prompts) // trainer.dp.world_size
    mine = rollout.rows(slice(trainer.dp.rank * share, (trainer.dp.rank + 1) * share))
    trainer.rollout = lambda: mine
    metrics = trainer.step()
    metrics = {k: v for k, v in metrics.items() if not k.startswith(UNEQUAL_ACROSS_RUNS)}
    params = {n: p.detach().clone() for n, p in trainer.policy.named_parameters()}
    return metrics, params


def _worker(case, rollout_path, out, model, tokenizer, env_kwargs):
    rollout = torch.load(rollout_path, weights_only=False)
    metrics, params = _one_step(case, rollout, model, tokenizer, env_kwargs)
    rank = torch.distributed.get_rank()
    torch.save(params, out / f"params{rank}.pt")
    (out / f"metrics{rank}.json").write_text(json.dumps(metrics))


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_with_half_the_batch_each_update_as_one_with_all(
    case, tmp_path, launch_data_parallel, toy_model, toy_tokenizer, toy_env_kwargs
):
    trainer_class, config = CASES[case]
    sampler = trainer_class(toy_model, toy_tokenizer, config, env_kwargs=toy_env_kwargs)
    rollout = sampler.rollout()
    assert len(set(rollout.response_mask.sum(1).tolist())) > 1  # unequal token counts
    torch.save(rollout, tmp_path / "rollout.pt")
    expected_metrics, expected_params = _one_step(
        case, rollout, toy_model, toy_tokenizer, toy_env_kwargs
    )

    launch_data_parallel(
        _worker, case, tmp_path / "rollout.pt", tmp_path, toy_model, toy_tokenizer,
        toy_env_kwargs,
    )  # fmt: skip

    for rank in range(2):
        params = torch.load(tmp_path / f"params{rank}.pt")
        for name, value in expected_params.items():
            torch.testing.assert_close(params[name], value, atol=1e-6, rtol=1e-5, msg=name)
        metrics = json.loads((tmp_path / f"metrics{rank}.json").read_text())
        assert metrics.keys() == expected_metrics.keys()
        for name, value in expected_metrics.items():
            assert metrics[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    changed = [not torch.equal(v, p) for v, p in zip(
        expected_params.values(), sampler.policy.parameters(), strict=True
    )]  # fmt: skip
    assert any(changed)  # the step did update the policy
