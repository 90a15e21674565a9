"""The built-in agents: TokenPPO, GRPO / RLOO / REINFORCE, stable-baselines3's PPO / A2C /
TRPO, and DPO.

Each imports its library only when it trains, so listing or checking agents stays cheap.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlhf_gym.pipeline.agents import AgentResult
from rlhf_gym.pipeline.config import RunConfig
from rlhf_gym.seeding import derived_seed

if TYPE_CHECKING:
    from agents.critic_free.config import CriticFreeConfig
    from agents.token_ppo.config import TokenPPOConfig
    from rlhf_gym.pipeline.outputs import RunOutputs
    from rlhf_gym.pipeline.probe import HeldOutProbe
    from rlhf_gym.training.dpo_config import DPOConfig

STAND_IN_LEARNING_RATE = 1e-3
"""Checks run before the policy is loaded, and the default learning rate depends on its size;
it is positive either way, so this stands in for it."""


def refuse_dialogue(config: RunConfig, agent: str) -> None:
    """Raise ``ValueError`` if the run's task is a dialogue task, which ``agent`` does not
    train on in the pipeline (yet)."""
    from rlhf_gym.tasks import get_task

    if get_task(config.task).is_dialogue:
        raise ValueError(
            f"{agent} does not train on dialogue tasks in rlhf-gym run; task {config.task!r} "
            "is one: use token-ppo, grpo, rloo or reinforce"
        )


def token_ppo_config(
    c: RunConfig, learning_rate: float, freeze_layers: int, output_dir: str | Path
) -> TokenPPOConfig:
    from agents.token_ppo.config import TokenPPOConfig

    return TokenPPOConfig(
        total_episodes=c.iterations * c.batch_size,
        batch_size=c.batch_size,
        learning_rate=learning_rate,
        kl_coef=c.kl_coef,
        adaptive_kl=c.adaptive_kl,
        kl_target=c.kl_target,
        kl_horizon=c.kl_horizon,
        kl_budget=c.kl_budget,
        freeze_layers=freeze_layers,
        temperature=c.temperature,
        missing_eos_penalty=c.missing_eos_penalty,
        num_ppo_epochs=c.num_ppo_epochs,
        num_mini_batches=c.num_mini_batches,
        lam=c.lam,
        vf_coef=c.vf_coef,
        seed=derived_seed(c.seed, "agent"),
        output_dir=str(output_dir),
        mixed_precision=c.mixed_precision,
        progress_bar=c.progress_bars,
    )


class TokenPPOAgent:
    """The native batched PPO (``agents.token_ppo``)."""

    data_parallel = True

    def check(self, config: RunConfig) -> None:
        token_ppo_config(config, STAND_IN_LEARNING_RATE, config.freeze_layers or 0, ".")

    def train(self, outputs: RunOutputs, workdir: Path) -> AgentResult:
        from agents.token_ppo.trainer import TokenPPO

        c = outputs.config
        policy, tokenizer = outputs.starting_policy()
        config = token_ppo_config(
            c,
            c.resolved_learning_rate(policy.num_parameters()),
            c.resolved_freeze_layers(policy.config.num_hidden_layers),
            workdir / "token_ppo",
        )
        return _train_native(TokenPPO, config, outputs, policy, tokenizer)


def _train_native(
    trainer_class: type, config: Any, outputs: RunOutputs, policy: Any, tokenizer: Any
) -> AgentResult:
    """Train a native agent (TokenPPO, GRPO, RLOO, REINFORCE: the same constructor and
    ``objective/*`` metrics) on the task's env rewarded by the learned model, with the gold
    scorer logged, a reward ensemble's disagreement monitored and the held-out probe called
    after each iteration."""
    c = outputs.config
    reward = outputs.reward_model()
    env_kwargs = {
        "task": outputs.task.name,
        "reward_predictor": reward,
        "max_new_tokens": c.max_new_tokens,
    }
    if c.turn_reward is not None:
        env_kwargs["turn_reward_predictor"] = c.turn_reward
    # a reward ensemble's disagreement on each batch: does the policy leave its consensus?
    monitors = {"disagreement": reward.disagreement} if hasattr(reward, "disagreement") else {}
    probe = outputs.heldout_probe()
    callbacks = []
    if probe is not None:
        probe.probe(policy, 0)
        callbacks.append(lambda trainer, _: probe.maybe(trainer.policy, trainer.iteration))
    trainer = trainer_class(
        policy, tokenizer, config, env_kwargs, gold_predictor=outputs.task.gold_reward,
        monitors=monitors, callbacks=callbacks,
    )  # fmt: skip
    history = trainer.train()
    curve = [
        {
            "iteration": i + 1,
            "kl": m["objective/kl"],
            "proxy": m["objective/scores"],
            "gold": m["objective/gold_scores"],
            **({"disagreement": m["objective/disagreement"]} if monitors else {}),
        }
        for i, m in enumerate(history)
    ]
    summary = {"iterations": len(history), "episodes_per_second": history[-1]["eps"]}
    if trainer.iteration < trainer.total_iterations:  # the KL budget ended it
        summary["kl_budget_stop"] = trainer.iteration
    return AgentResult(trainer.policy, curve, summary, probe.points if probe else [])


def critic_free_config(
    algorithm: str, c: RunConfig, learning_rate: float, freeze_layers: int, output_dir: str | Path
) -> CriticFreeConfig:
    """The config of ``algorithm`` (grpo, rloo, reinforce) from the run's settings: ``batch_size``
    episodes per iteration are ``batch_size / num_generations`` prompts, k completions each."""
    from agents.critic_free.config import GRPOConfig, ReinforceConfig, RLOOConfig

    k = c.num_generations
    if c.batch_size % k:
        raise ValueError(
            f"batch_size={c.batch_size} must be divisible by num_generations={k}: {algorithm} "
            f"draws batch_size / num_generations prompts and completes each {k} times"
        )
    config_class = {"grpo": GRPOConfig, "rloo": RLOOConfig, "reinforce": ReinforceConfig}
    own = {"scale_rewards": c.grpo_scale_rewards, "loss_type": c.grpo_loss_type}
    return config_class[algorithm](
        **(own if algorithm == "grpo" else {}),
        total_episodes=c.iterations * c.batch_size,
        batch_size=c.batch_size // k,
        num_generations=k,
        learning_rate=learning_rate,
        beta=c.kl_coef,
        adaptive_kl=c.adaptive_kl,
        kl_target=c.kl_target,
        kl_horizon=c.kl_horizon,
        kl_budget=c.kl_budget,
        # the same optimisation passes per batch as token-ppo, so agents get equal updates
        num_iterations=c.num_ppo_epochs,
        num_mini_batches=c.num_mini_batches,
        freeze_layers=freeze_layers,
        temperature=c.temperature,
        missing_eos_penalty=c.missing_eos_penalty,
        seed=derived_seed(c.seed, "agent"),
        output_dir=str(output_dir),
        mixed_precision=c.mixed_precision,
        progress_bar=c.progress_bars,
    )


class CriticFreeAgent:
    """GRPO, RLOO or REINFORCE (``agents.critic_free``): k completions per prompt in one
    batched rollout, no value model."""

    data_parallel = True

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        """``"grpo"``, ``"rloo"`` or ``"reinforce"``."""

    def check(self, config: RunConfig) -> None:
        critic_free_config(
            self.algorithm, config, STAND_IN_LEARNING_RATE, config.freeze_layers or 0, "."
        )

    def train(self, outputs: RunOutputs, workdir: Path) -> AgentResult:
        from agents.critic_free.trainer import GRPO, RLOO, Reinforce

        c = outputs.config
        policy, tokenizer = outputs.starting_policy()
        config = critic_free_config(
            self.algorithm,
            c,
            c.resolved_learning_rate(policy.num_parameters()),
            c.resolved_freeze_layers(policy.config.num_hidden_layers),
            workdir / self.algorithm,
        )
        trainer_class = {"grpo": GRPO, "rloo": RLOO, "reinforce": Reinforce}[self.algorithm]
        return _train_native(trainer_class, config, outputs, policy, tokenizer)


def grpo() -> CriticFreeAgent:
    return CriticFreeAgent("grpo")


def rloo() -> CriticFreeAgent:
    return CriticFreeAgent("rloo")


def reinforce() -> CriticFreeAgent:
    return CriticFreeAgent("reinforce")


def dpo_config(c: RunConfig, learning_rate: float, freeze_layers: int) -> DPOConfig:
    from rlhf_gym.training.dpo_config import DPOConfig

    return DPOConfig(
        beta=c.dpo_beta,
        learning_rate=learning_rate,
        num_train_epochs=1,  # one epoch per curve point
        batch_size=c.batch_size,
        freeze_layers=freeze_layers,
        seed=derived_seed(c.seed, "agent"),
        mixed_precision=c.mixed_precision,
        progress_bar=c.progress_bars,
    )


class DPOAgent:
    """Direct preference optimisation on the run's pairs (no reward model in the loop; the
    curve's proxy score is the learned RM's, for comparison)."""

    data_parallel = True

    def check(self, config: RunConfig) -> None:
        refuse_dialogue(config, "dpo")
        rate = config.dpo_learning_rate or STAND_IN_LEARNING_RATE
        dpo_config(config, rate, config.freeze_layers or 0)

    def train(self, outputs: RunOutputs, workdir: Path) -> AgentResult:
        from rlhf_gym.evaluation import evaluate_policy
        from rlhf_gym.rewards import make_reward_predictor
        from rlhf_gym.training.dpo_trainer import DPOTrainer

        c = outputs.config
        policy, tokenizer = outputs.starting_policy()
        reference = copy.deepcopy(policy).requires_grad_(False)
        config = dpo_config(
            c,
            c.resolved_dpo_learning_rate(policy.num_parameters()),
            c.resolved_freeze_layers(policy.config.num_hidden_layers),
        )
        trainer = DPOTrainer(policy, reference, config, outputs.pairs(), tokenizer)
        gold, proxy = make_reward_predictor(outputs.task.gold_reward), outputs.reward_model()
        prompts = outputs.train_prompts(c.batch_size)
        probe = outputs.heldout_probe()
        if probe is not None:
            probe.probe(policy, 0)
        curve, history = [], []
        for epoch in range(c.dpo_epochs):  # one point of the curve per epoch
            history += trainer.train()
            if probe is not None:
                probe.maybe(policy, epoch + 1)
            result, _ = evaluate_policy(
                policy, reference, tokenizer, prompts, gold, proxy,
                samples_per_prompt=1, max_new_tokens=c.max_new_tokens,
                seed=derived_seed(c.seed, f"dpo-curve-{epoch}"), temperature=c.temperature,
                progress_bar=c.progress_bars,
            )  # fmt: skip
            curve.append(
                {
                    "iteration": epoch + 1,
                    "kl": result.kl,
                    "proxy": result.proxy,
                    "gold": result.gold,
                }
            )
        summary = {"epochs": c.dpo_epochs, "final_loss": history[-1]["loss"]}
        return AgentResult(policy, curve, summary, probe.points if probe else [])


SB3Settings = Callable[[RunConfig], tuple[type, dict[str, Any]]]


class SB3Agent:
    """A stable-baselines3 (or sb3-contrib) algorithm with :class:`agents.sb3.CausalLMPolicy`
    on the task's env, rewarded by the learned model, with the KL penalty as a callback."""

    def __init__(self, settings: SB3Settings) -> None:
        self.settings = settings
        """The algorithm class and its keyword arguments from the run's config."""

    def check(self, config: RunConfig) -> None:
        refuse_dialogue(config, "the SB3 agents")
        if config.temperature != 1.0:
            raise ValueError(
                f"temperature={config.temperature} needs agents that sample at it; the SB3 "
                "agents sample at 1 (use temperature 1 or only token-ppo / dpo)"
            )
        tokens = config.batch_size * config.max_new_tokens
        if tokens // config.num_mini_batches < 2:
            raise ValueError(
                f"num_mini_batches={config.num_mini_batches} leaves SB3 minibatches of fewer "
                f"than 2 of the {tokens} tokens of a rollout"
            )

    def train(self, outputs: RunOutputs, workdir: Path) -> AgentResult:
        from stable_baselines3.common.env_util import make_vec_env

        from agents.sb3 import CausalLMPolicy, KLPenaltyCallback

        c = outputs.config
        policy, tokenizer = outputs.starting_policy()
        env_kwargs = {
            "tokenizer": tokenizer,
            "reward_predictor": outputs.reward_model(),
            "max_new_tokens": c.max_new_tokens,
            "missing_eos_penalty": c.missing_eos_penalty,
            "render_mode": None,  # make_vec_env would ask for rgb_array, which a text env lacks
        }
        seed = derived_seed(c.seed, "agent")
        env = make_vec_env(
            outputs.task.env_id, n_envs=c.batch_size, seed=seed, env_kwargs=env_kwargs
        )
        algorithm, settings = self.settings(c)
        freeze = c.resolved_freeze_layers(policy.config.num_hidden_layers)
        policy_kwargs = {"model": policy, "freeze_layers": freeze}
        model = algorithm(
            CausalLMPolicy,
            env,
            policy_kwargs=policy_kwargs | settings.pop("policy_kwargs", {}),
            learning_rate=c.resolved_learning_rate(policy.num_parameters()),
            n_steps=c.max_new_tokens,  # one rollout ~ one completion per env
            gamma=1.0,
            gae_lambda=c.lam,
            seed=seed,
            **settings,
        )
        callback = KLPenaltyCallback(
            c.kl_coef, c.adaptive_kl, c.kl_target, c.kl_horizon, kl_budget=c.kl_budget,
            gold_reward=outputs.task.gold_reward,
        )  # fmt: skip
        probe = outputs.heldout_probe()
        callbacks = [callback]
        if probe is not None:
            probe.probe(model.policy.lm, 0)
            callbacks.append(_probe_callback(probe))
        model.learn(c.iterations * c.batch_size * c.max_new_tokens, callback=callbacks)
        curve = [
            {"iteration": i + 1, "kl": h["episode_kl"], "proxy": h["proxy"], "gold": h["gold"]}
            for i, h in enumerate(callback.history)
            if {"episode_kl", "proxy", "gold"} <= set(h)
        ]
        summary = {"iterations": len(callback.history)}
        if callback.kl_budget.spent and len(callback.history) < c.iterations:
            summary["kl_budget_stop"] = len(callback.history)
        return AgentResult(model.policy.lm, curve, summary, probe.points if probe else [])


def _probe_callback(probe: HeldOutProbe) -> Any:
    """An SB3 callback that hands the policy to ``probe`` after each update (one per rollout)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class ProbeCallback(BaseCallback):
        updates = 0  # rollouts collected, and so updates done by the next rollout's start

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            self.updates += 1

        def _on_rollout_start(self) -> None:
            if self.updates:
                probe.maybe(self.model.policy.lm, self.updates)

        def _on_training_end(self) -> None:
            probe.maybe(self.model.policy.lm, self.updates)

    return ProbeCallback()


def _ppo_settings(c: RunConfig) -> tuple[type, dict[str, Any]]:
    from stable_baselines3 import PPO

    rollout = c.batch_size * c.max_new_tokens  # tokens per rollout
    return PPO, {
        "batch_size": max(1, rollout // c.num_mini_batches),
        "n_epochs": c.num_ppo_epochs,
        "vf_coef": c.vf_coef,
    }


def _a2c_settings(c: RunConfig) -> tuple[type, dict[str, Any]]:
    from stable_baselines3 import A2C

    return A2C, {"normalize_advantage": True, "use_rms_prop": False, "vf_coef": c.vf_coef}


def _trpo_settings(c: RunConfig) -> tuple[type, dict[str, Any]]:
    from sb3_contrib import TRPO

    # TRPO's Hessian-vector products need attention with a double backward (eager attention);
    # its critic is fitted by separate steps, so there is no vf_coef
    return TRPO, {
        "target_kl": c.trpo_target_kl,
        "cg_max_steps": c.trpo_cg_max_steps,
        "cg_damping": c.trpo_cg_damping,
        "n_critic_updates": c.trpo_n_critic_updates,
        "batch_size": c.batch_size * c.max_new_tokens // c.num_mini_batches,  # critic steps
        "policy_kwargs": {"attn_implementation": "eager"},
    }


def sb3_ppo() -> SB3Agent:
    return SB3Agent(_ppo_settings)


def sb3_a2c() -> SB3Agent:
    return SB3Agent(_a2c_settings)


def sb3_trpo() -> SB3Agent:
    return SB3Agent(_trpo_settings)
