"""The agent stage: train the policy against the learned reward (or on the pairs, for DPO).

Every agent returns the same summary with a ``curve``: a list of points with ``kl`` (to the
reference, nats), ``proxy`` (learned-RM score) and ``gold`` (the task's gold score), which the
report plots as the over-optimisation picture.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from rlhf_gym.rewards import make_reward_predictor

if TYPE_CHECKING:
    from rlhf_gym.pipeline.run import Pipeline


def train_agent(
    pipeline: Pipeline,
    agent: str,
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    out: Path,
) -> dict[str, Any]:
    """Train ``agent`` from ``policy``; the trained policy goes to ``out / "policy"``."""
    if agent in ("sb3-ppo", "sb3-a2c"):
        return _sb3(pipeline, agent == "sb3-a2c", policy, tokenizer, out)
    trainers = {"token-ppo": _token_ppo, "dpo": _dpo}
    return trainers[agent](pipeline, policy, tokenizer, out)


def default_learning_rate(policy: PreTrainedModel) -> float:
    """Small models from scratch take larger steps than a pretrained 100M+ model (whose lower
    layers are frozen by default, so the top layers can take 2e-4)."""
    return 1e-3 if policy.num_parameters() < 5_000_000 else 2e-4


def default_frozen_layers(pipeline: Pipeline, policy: PreTrainedModel) -> int:
    if pipeline.config.freeze_layers is not None:
        return pipeline.config.freeze_layers
    return 0 if pipeline.config.is_preset else max(policy.config.num_hidden_layers - 4, 0)


def _token_ppo(
    pipeline: Pipeline, policy: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out: Path
) -> dict[str, Any]:
    from agents.token_ppo.config import TokenPPOConfig
    from agents.token_ppo.trainer import TokenPPO

    c = pipeline.config
    config = TokenPPOConfig(
        total_episodes=c.iterations * c.batch_size,
        batch_size=c.batch_size,
        learning_rate=c.learning_rate or default_learning_rate(policy),
        kl_coef=c.kl_coef,
        freeze_layers=default_frozen_layers(pipeline, policy),
        seed=c.seed,
        output_dir=str(out / "token_ppo"),
        missing_eos_penalty=None,
    )
    env_kwargs = {
        "task": pipeline.task.name,
        "reward_predictor": pipeline._reward_model(),
        "max_new_tokens": c.max_new_tokens,
    }
    trainer = TokenPPO(
        policy, tokenizer, config, env_kwargs, gold_predictor=pipeline.task.gold_reward
    )
    history = trainer.train()
    trainer.save_pretrained(out / "policy")
    curve = [
        {
            "iteration": i + 1,
            "kl": m["objective/kl"],
            "proxy": m["objective/scores"],
            "gold": m["objective/gold_scores"],
        }
        for i, m in enumerate(history)
    ]
    return {"curve": curve, "iterations": len(history), "episodes_per_second": history[-1]["eps"]}


def _dpo(
    pipeline: Pipeline, policy: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out: Path
) -> dict[str, Any]:
    from rlhf_gym.evaluation import evaluate_policy
    from rlhf_gym.training.dpo_config import DPOConfig
    from rlhf_gym.training.dpo_trainer import DPOTrainer

    c = pipeline.config
    reference = copy.deepcopy(policy).requires_grad_(False)
    trained = copy.deepcopy(policy)
    config = DPOConfig(
        beta=c.kl_coef if c.kl_coef > 0 else 0.1,
        learning_rate=c.learning_rate or default_learning_rate(policy) / 2,
        num_epochs=1,
        batch_size=c.batch_size,
        seed=c.seed,
    )
    trainer = DPOTrainer(trained, reference, config, pipeline._pairs(), tokenizer)
    gold, proxy = make_reward_predictor(pipeline.task.gold_reward), pipeline._reward_model()
    prompts = pipeline._train_prompts(c.batch_size)
    curve, history = [], []
    for epoch in range(c.dpo_epochs):  # one point of the curve per epoch
        history += trainer.train()
        result, _ = evaluate_policy(
            trained, reference, tokenizer, prompts, gold, proxy,
            samples_per_prompt=1, max_new_tokens=c.max_new_tokens, seed=c.seed + epoch,
        )  # fmt: skip
        curve.append(
            {"iteration": epoch + 1, "kl": result.kl, "proxy": result.proxy, "gold": result.gold}
        )
    trained.save_pretrained(out / "policy")
    tokenizer.save_pretrained(out / "policy")
    return {"curve": curve, "epochs": c.dpo_epochs, "final_loss": history[-1]["loss"]}


def _sb3(
    pipeline: Pipeline,
    a2c: bool,
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    out: Path,
) -> dict[str, Any]:
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common.env_util import make_vec_env

    from agents.sb3 import CausalLMPolicy, KLPenaltyCallback

    c = pipeline.config
    env_kwargs = {
        "tokenizer": tokenizer,
        "reward_predictor": pipeline._reward_model(),
        "max_new_tokens": c.max_new_tokens,
    }
    env = make_vec_env(
        pipeline.task.env_id, n_envs=c.batch_size, seed=c.seed, env_kwargs=env_kwargs
    )
    common = {
        "policy_kwargs": {
            "model": policy,
            "freeze_layers": default_frozen_layers(pipeline, policy),
        },
        "learning_rate": c.learning_rate or default_learning_rate(policy),
        "n_steps": c.max_new_tokens,  # one rollout ~ one completion per env
        "gamma": 1.0,
        "gae_lambda": 0.95,
        "vf_coef": 0.1,
        "seed": c.seed,
    }
    if a2c:
        agent = A2C(CausalLMPolicy, env, normalize_advantage=True, use_rms_prop=False, **common)
    else:
        agent = PPO(CausalLMPolicy, env, batch_size=c.batch_size * 4, n_epochs=2, **common)
    callback = KLPenaltyCallback(c.kl_coef, gold_reward=pipeline.task.gold_reward)
    agent.learn(c.iterations * c.batch_size * c.max_new_tokens, callback=callback)
    agent.policy.lm.save_pretrained(out / "policy")
    tokenizer.save_pretrained(out / "policy")
    curve = [
        {"iteration": i + 1, "kl": h["episode_kl"], "proxy": h["proxy"], "gold": h["gold"]}
        for i, h in enumerate(callback.history)
        if {"episode_kl", "proxy", "gold"} <= set(h)
    ]
    return {"curve": curve, "iterations": len(callback.history)}
