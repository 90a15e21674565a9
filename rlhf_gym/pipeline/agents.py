"""The agent stage: train the policy against the learned reward (or on the pairs, for DPO).

Every agent returns the same summary with a ``curve``: a list of points with ``kl`` (to the
reference, nats), ``proxy`` (learned-RM score) and ``gold`` (the task's gold score), which the
report plots as the over-optimisation picture, and ``trainable_parameters``: every agent trains
the parameters :func:`rlhf_gym.models.freeze_lower_layers` leaves trainable under the run's
``freeze_layers`` (plus, for the RL agents, a value head).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from rlhf_gym.models import layer_count, trainable_parameter_count
from rlhf_gym.pipeline.config import RunConfig
from rlhf_gym.rewards import make_reward_predictor
from rlhf_gym.seeding import derived_seed

if TYPE_CHECKING:
    from agents.token_ppo.config import TokenPPOConfig
    from rlhf_gym.pipeline.run import Pipeline
    from rlhf_gym.training.dpo_config import DPOConfig


def train_agent(
    pipeline: Pipeline,
    agent: str,
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    out: Path,
) -> dict[str, Any]:
    """Train ``agent`` from ``policy``; the trained policy goes to ``out / "policy"``."""
    if agent in SB3_ALGORITHMS:
        return _sb3(pipeline, agent, policy, tokenizer, out)
    trainers = {"token-ppo": _token_ppo, "dpo": _dpo}
    return trainers[agent](pipeline, policy, tokenizer, out)


def rl_learning_rate(c: RunConfig, policy: PreTrainedModel) -> float:
    """``learning_rate``, else by size: small models from scratch take larger steps than a
    pretrained 100M+ model (whose lower layers are frozen by default, so the top layers can
    take 2e-4)."""
    return c.learning_rate or (1e-3 if policy.num_parameters() < 5_000_000 else 2e-4)


def dpo_learning_rate(c: RunConfig, rl_learning_rate: float) -> float:
    """DPO's steps move the log-ratio of whole sequences directly and compound over every pair,
    so a tenth of the RL step keeps its KL in the RL agents' range."""
    return c.dpo_learning_rate or rl_learning_rate / 10


def frozen_layers(c: RunConfig, num_layers: int) -> int:
    """``freeze_layers``, else none for a preset and all but the top four for a larger model."""
    if c.freeze_layers is not None:
        return c.freeze_layers
    return 0 if c.is_preset else max(num_layers - 4, 0)


def token_ppo_config(
    c: RunConfig, learning_rate: float, freeze_layers: int, output_dir: str | Path
) -> TokenPPOConfig:
    from agents.token_ppo.config import TokenPPOConfig

    return TokenPPOConfig(
        total_episodes=c.iterations * c.batch_size,
        batch_size=c.batch_size,
        learning_rate=learning_rate,
        kl_coef=c.kl_coef,
        freeze_layers=freeze_layers,
        temperature=c.temperature,
        missing_eos_penalty=c.missing_eos_penalty,
        ppo_epochs=c.ppo_epochs,
        num_minibatches=c.num_minibatches,
        lam=c.lam,
        vf_coef=c.vf_coef,
        seed=derived_seed(c.seed, "agent"),
        output_dir=str(output_dir),
    )


def dpo_config(c: RunConfig, learning_rate: float, freeze_layers: int) -> DPOConfig:
    from rlhf_gym.training.dpo_config import DPOConfig

    return DPOConfig(
        beta=c.dpo_beta,
        learning_rate=learning_rate,
        num_epochs=1,  # one epoch per curve point
        batch_size=c.batch_size,
        freeze_layers=freeze_layers,
        seed=derived_seed(c.seed, "agent"),
    )


def check_agent_settings(c: RunConfig) -> None:
    """Build every agent's own config before the first stage runs, so that a bad combination
    (a batch that ``num_minibatches`` does not divide, more frozen layers than the model has)
    fails at once instead of after the earlier stages. The learning rate's default depends on
    the policy's size and is positive either way, so a stand-in takes its place here."""
    num_layers = layer_count(c.model)
    freeze = frozen_layers(c, num_layers)
    if freeze > num_layers:
        raise ValueError(f"freeze_layers={freeze} exceeds the {num_layers} layers of {c.model!r}")
    learning_rate = c.learning_rate or 1e-3
    for agent in c.agents:
        if agent == "token-ppo":
            token_ppo_config(c, learning_rate, freeze, output_dir=".")
        elif agent == "dpo":
            dpo_config(c, dpo_learning_rate(c, learning_rate), freeze)
        elif c.batch_size * c.max_new_tokens // c.num_minibatches < 2:
            raise ValueError(
                f"num_minibatches={c.num_minibatches} leaves SB3 minibatches of fewer than 2 of "
                f"the {c.batch_size * c.max_new_tokens} tokens of a rollout"
            )


def _token_ppo(
    pipeline: Pipeline, policy: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out: Path
) -> dict[str, Any]:
    from agents.token_ppo.trainer import TokenPPO

    c = pipeline.config
    config = token_ppo_config(
        c,
        rl_learning_rate(c, policy),
        frozen_layers(c, policy.config.num_hidden_layers),
        out / "token_ppo",
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
    return {
        "curve": curve,
        "iterations": len(history),
        "episodes_per_second": history[-1]["eps"],
        "trainable_parameters": trainable_parameter_count(trainer.policy),
    }


def _dpo(
    pipeline: Pipeline, policy: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out: Path
) -> dict[str, Any]:
    from rlhf_gym.evaluation import evaluate_policy
    from rlhf_gym.training.dpo_trainer import DPOTrainer

    c = pipeline.config
    reference = copy.deepcopy(policy).requires_grad_(False)
    trained = copy.deepcopy(policy)
    learning_rate = dpo_learning_rate(c, rl_learning_rate(c, policy))
    config = dpo_config(c, learning_rate, frozen_layers(c, policy.config.num_hidden_layers))
    trainer = DPOTrainer(trained, reference, config, pipeline._pairs(), tokenizer)
    gold, proxy = make_reward_predictor(pipeline.task.gold_reward), pipeline._reward_model()
    prompts = pipeline._train_prompts(c.batch_size)
    curve, history = [], []
    for epoch in range(c.dpo_epochs):  # one point of the curve per epoch
        history += trainer.train()
        result, _ = evaluate_policy(
            trained, reference, tokenizer, prompts, gold, proxy,
            samples_per_prompt=1, max_new_tokens=c.max_new_tokens,
            seed=derived_seed(c.seed, f"dpo-curve-{epoch}"), temperature=c.temperature,
        )  # fmt: skip
        curve.append(
            {"iteration": epoch + 1, "kl": result.kl, "proxy": result.proxy, "gold": result.gold}
        )
    trained.save_pretrained(out / "policy")
    tokenizer.save_pretrained(out / "policy")
    return {
        "curve": curve,
        "epochs": c.dpo_epochs,
        "final_loss": history[-1]["loss"],
        "trainable_parameters": trainable_parameter_count(trained),
    }


def _sb3(
    pipeline: Pipeline,
    agent: str,
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    out: Path,
) -> dict[str, Any]:
    from stable_baselines3.common.env_util import make_vec_env

    from agents.sb3 import CausalLMPolicy, KLPenaltyCallback

    c = pipeline.config
    env_kwargs = {
        "tokenizer": tokenizer,
        "reward_predictor": pipeline._reward_model(),
        "max_new_tokens": c.max_new_tokens,
        "missing_eos_penalty": c.missing_eos_penalty,
    }
    seed = derived_seed(c.seed, "agent")
    env = make_vec_env(pipeline.task.env_id, n_envs=c.batch_size, seed=seed, env_kwargs=env_kwargs)
    algorithm, settings = SB3_ALGORITHMS[agent](c)
    freeze = frozen_layers(c, policy.config.num_hidden_layers)
    policy_kwargs = {"model": policy, "freeze_layers": freeze}
    model = algorithm(
        CausalLMPolicy,
        env,
        policy_kwargs=policy_kwargs | settings.pop("policy_kwargs", {}),
        learning_rate=rl_learning_rate(c, policy),
        n_steps=c.max_new_tokens,  # one rollout ~ one completion per env
        gamma=1.0,
        gae_lambda=c.lam,
        seed=seed,
        **settings,
    )
    callback = KLPenaltyCallback(c.kl_coef, gold_reward=pipeline.task.gold_reward)
    model.learn(c.iterations * c.batch_size * c.max_new_tokens, callback=callback)
    model.policy.lm.save_pretrained(out / "policy")
    tokenizer.save_pretrained(out / "policy")
    curve = [
        {"iteration": i + 1, "kl": h["episode_kl"], "proxy": h["proxy"], "gold": h["gold"]}
        for i, h in enumerate(callback.history)
        if {"episode_kl", "proxy", "gold"} <= set(h)
    ]
    return {
        "curve": curve,
        "iterations": len(callback.history),
        "trainable_parameters": trainable_parameter_count(model.policy.lm),
    }


def _sb3_ppo(c: RunConfig) -> tuple[type, dict[str, Any]]:
    from stable_baselines3 import PPO

    rollout = c.batch_size * c.max_new_tokens  # tokens per rollout
    return PPO, {
        "batch_size": max(1, rollout // c.num_minibatches),
        "n_epochs": c.ppo_epochs,
        "vf_coef": c.vf_coef,
    }


def _sb3_a2c(c: RunConfig) -> tuple[type, dict[str, Any]]:
    from stable_baselines3 import A2C

    return A2C, {"normalize_advantage": True, "use_rms_prop": False, "vf_coef": c.vf_coef}


def _sb3_trpo(c: RunConfig) -> tuple[type, dict[str, Any]]:
    from sb3_contrib import TRPO

    # TRPO's Hessian-vector products need attention with a double backward (eager attention);
    # its critic is fitted by separate steps, so there is no vf_coef
    return TRPO, {
        "target_kl": c.trpo_target_kl,
        "cg_max_steps": c.trpo_cg_max_steps,
        "cg_damping": c.trpo_cg_damping,
        "n_critic_updates": c.trpo_n_critic_updates,
        "batch_size": c.batch_size * c.max_new_tokens // c.num_minibatches,  # critic steps
        "policy_kwargs": {"attn_implementation": "eager"},
    }


SB3_ALGORITHMS: dict[str, Callable[[RunConfig], tuple[type, dict[str, Any]]]] = {
    "sb3-ppo": _sb3_ppo,
    "sb3-a2c": _sb3_a2c,
    "sb3-trpo": _sb3_trpo,
}
"""Each SB3 agent's algorithm class and its settings from the run's config."""
