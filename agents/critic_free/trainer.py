"""GRPO, RLOO and REINFORCE: critic-free policy gradients on TokenPPO's rollout machinery.

Each step: draw ``batch_size`` prompts, repeat each ``num_generations`` times, generate all the
completions in one batched rollout against the vector env (TokenPPO's ``generate``), compute the
reference's log-probs, per-completion advantages (the algorithm's baseline), then
``num_iterations`` passes of minibatch updates on the algorithm's loss. The subclasses differ
only in ``advantages`` (where the KL goes, which baseline) and ``loss``.
"""

from __future__ import annotations

import copy
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from agents.critic_free.config import CriticFreeConfig, GRPOConfig, ReinforceConfig, RLOOConfig
from agents.critic_free.losses import (
    global_std,
    group_advantages,
    grouped,
    grpo_loss,
    kl_penalised_scores,
    leave_one_out_baseline,
    moving_average,
    sequence_loss,
)
from agents.loop import IterativeTrainer
from agents.rng import generator_from_state, rng_state, seed_everything, set_rng_state
from agents.token_ppo.losses import entropy_from_logprobs, masked_mean
from agents.token_ppo.metrics_log import check_finite_losses, text_metrics
from agents.token_ppo.rollout import (
    ResponseLogits,
    Rollout,
    Sampler,
    generate,
    merge_env_kwargs,
    response_logprobs,
)
from rlhf_gym.distributed import DataParallel
from rlhf_gym.envs import make_vector_env
from rlhf_gym.models import freeze_lower_layers
from rlhf_gym.rewards import RewardSpec, make_reward_predictor

_STAT_NAMES = {
    "kl": "kl",
    "ratio": "policy/ratio_mean",
    "clip_low": "clip_ratio/low_mean",
    "clip_high": "clip_ratio/high_mean",
    "clip_region": "clip_ratio/region_mean",
}
"""Loss statistics -> logged names (TRL's GRPO names where it has them)."""


@dataclass
class Batch:
    """A rollout with what the update needs."""

    rollout: Rollout
    ref_logprobs: torch.Tensor  # (B, R) reference log-probs, 0 outside the mask
    kl: torch.Tensor  # (B,) k1 KL of each completion, summed over its tokens
    rewards: torch.Tensor  # (B,) what the advantages were computed from
    advantages: torch.Tensor  # (B,)


class CriticFreeTrainer(IterativeTrainer):
    """The loop shared by :class:`GRPO`, :class:`RLOO` and :class:`Reinforce`.

    Args:
        model: the causal LM to start from. It is copied: the copy is trained, another frozen
            copy is the reference, and ``model`` itself is never modified.
        tokenizer: its tokenizer (never modified); the env uses it too.
        config: the algorithm's config (default: its defaults).
        env_kwargs: keyword arguments of :class:`rlhf_gym.TextGenerationVectorEnv` (``task``,
            ``prompts``, ``reward_predictor``, ``max_prompt_tokens``...), or of
            :class:`rlhf_gym.DialogueVectorEnv` for a dialogue task: a group is then ``k``
            conversations from one opening (each with its own secret) and a completion's
            reward is its conversation's return.
        gold_predictor: an optional second scorer logged as ``objective/gold_scores``.
        monitors: more functions of ``(prompts, completions)`` logged as ``objective/<name>``.
        callbacks: functions called as ``callback(trainer, metrics)`` after each step (its
            metrics logged, before any checkpoint), e.g. a held-out probe of the policy; with
            several processes, on rank 0 only.

    Under ``accelerate launch`` or ``torchrun`` each process draws ``batch_size / N`` of the
    prompts and completes them (whole groups, so the baselines stay exact); the update is
    data-parallel (:mod:`rlhf_gym.distributed`) and "batch" std scaling, DAPO's token count and
    the logged metrics are the global batch's.
    """

    name = "critic-free"
    config_class: type[CriticFreeConfig] = CriticFreeConfig

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        config: CriticFreeConfig | None = None,
        env_kwargs: dict[str, Any] | None = None,
        gold_predictor: RewardSpec | None = None,
        monitors: Mapping[str, Callable[[list[str], list[str]], Any]] | None = None,
        callbacks: Sequence[Callable[[CriticFreeTrainer, dict[str, float]], None]] = (),
    ) -> None:
        self.config = config or self.config_class()
        self.tokenizer = tokenizer
        cfg = self.config
        self.dp = DataParallel(cfg.mixed_precision)
        self.local_prompts = self.dp.local_size(cfg.batch_size, "batch_size")
        self.local_episodes = self.local_prompts * cfg.num_generations
        self.dp.local_size(cfg.batch_size // cfg.num_mini_batches, "batch_size / num_mini_batches")
        seed_everything(self.dp.process_seed(cfg.seed))
        self.env_kwargs = merge_env_kwargs(
            env_kwargs or {}, tokenizer, max_new_tokens=cfg.max_new_tokens,
            missing_eos_penalty=cfg.missing_eos_penalty,
        )  # fmt: skip
        self.env = make_vector_env(
            self.local_episodes, autoreset_mode=AutoresetMode.DISABLED, **self.env_kwargs
        )
        self.prompts: list[str] = self.env.get_attr("prompts")[0]
        self.prompt_rng = np.random.default_rng(self.dp.process_seed(cfg.seed, "prompt-order"))
        self.gold = make_reward_predictor(gold_predictor) if gold_predictor is not None else None
        self.monitors = dict(monitors or {})
        self.callbacks = list(callbacks)
        self.policy = copy.deepcopy(model).eval().to(self.dp.device)  # eval(): dropout off
        self.ref_model = copy.deepcopy(model).eval().requires_grad_(False).to(self.dp.device)
        freeze_lower_layers(self.policy, cfg.freeze_layers)
        self.trained_policy = self.dp.prepare(ResponseLogits(self.policy))  # DDP in several
        self.sampler = Sampler(cfg.temperature)
        trainable = [p for p in self.policy.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(
            trainable, lr=cfg.learning_rate, eps=cfg.adam_epsilon, fused=True
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.kl_controller = cfg.kl_controller()
        self.kl_budget = cfg.kl_budget_stop()
        self.iteration = 0
        self.episodes = 0
        self._env_seeded = False

    # ------------------------------------------------------------------ the algorithm
    def advantages(
        self, scores: torch.Tensor, penalised: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """From the env's scores (B,) and the KL-penalised ones ``score - beta * KL`` (B,): the
        rewards (B,) the algorithm uses, and their advantages (B,)."""
        raise NotImplementedError

    def loss(
        self,
        logprobs: torch.Tensor,
        batch: Batch,
        index: torch.Tensor,
        mask: torch.Tensor,
        token_count: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The minibatch ``index``'s loss from its current log-probs (b, L) and mask (b, L);
        ``token_count`` is the global minibatch's token count over the number of processes
        (DDP averages the processes' gradients, so a token mean divides by it)."""
        raise NotImplementedError

    def extra_state(self) -> dict[str, Any]:
        """Algorithm state to checkpoint besides the weights (REINFORCE's baseline)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""

    # ------------------------------------------------------------------ training loop
    @property
    def total_iterations(self) -> int:
        return self.config.total_steps

    def step(self) -> dict[str, float]:
        """One step: a rollout of k completions per prompt, advantages, the update."""
        rollout = self.rollout()
        batch = self.make_batch(rollout)
        metrics = self._rollout_metrics(batch)
        start = time.perf_counter()
        metrics.update(self.update(batch))
        check_finite_losses(metrics, self.iteration + 1, self.name)
        metrics["lr"] = self.scheduler.get_last_lr()[0]
        self.scheduler.step()
        self.kl_controller.update(metrics["objective/kl"], self.config.episodes_per_step)
        self.kl_budget.update(metrics["objective/kl"])
        self.iteration += 1
        self.episodes += self.config.episodes_per_step
        metrics.update({
            "episode": self.episodes,
            "time/rollout": rollout.seconds,
            "time/update": time.perf_counter() - start,
        })  # fmt: skip
        return metrics

    def draw_prompts(self) -> list[str]:
        """This process's ``batch_size / N`` prompts, drawn uniformly (with replacement), each
        repeated ``num_generations`` times in a row: ``[p0, p0, ..., p1, p1, ...]``."""
        chosen = self.prompt_rng.integers(len(self.prompts), size=self.local_prompts)
        return [self.prompts[i] for i in chosen for _ in range(self.config.num_generations)]

    def rollout(self) -> Rollout:
        """All the step's completions in one batched rollout against the vector env."""
        seed = None if self._env_seeded else self.dp.process_seed(self.config.seed, "env")
        observation, _ = self.env.reset(seed=seed, options={"prompts": self.draw_prompts()})
        self._env_seeded = True
        with self.dp.autocast():
            return generate(self.policy, self.env, observation, self.sampler)

    @torch.no_grad()
    def make_batch(self, rollout: Rollout) -> Batch:
        """Reference log-probs, each completion's KL, rewards and advantages."""
        mask = rollout.response_mask
        with self.dp.autocast():
            ref_logprobs = response_logprobs(self.ref_model, rollout, self.sampler) * mask
        penalised, kl = kl_penalised_scores(
            rollout.scores, rollout.logprobs, ref_logprobs, mask, self.kl_controller.value
        )  # (B,), (B,)
        rewards, advantages = self.advantages(rollout.scores, penalised)
        return Batch(rollout, ref_logprobs, kl, rewards, advantages)

    def update(self, batch: Batch) -> dict[str, float]:
        """``num_iterations`` passes of ``num_mini_batches`` steps over whole, shuffled groups."""
        cfg = self.config
        k, groups = cfg.num_generations, self.local_prompts
        size = self.local_episodes // cfg.num_mini_batches
        stats: dict[str, list[float]] = defaultdict(list)
        for _ in range(cfg.num_iterations):
            order = torch.randperm(groups)
            rows = (order[:, None] * k + torch.arange(k)).reshape(-1)  # (B,) groups kept whole
            for index in rows.split(size):
                for name, value in self._minibatch_step(batch, index).items():
                    stats[name].append(value)
        return self.dp.reduce_metrics({name: float(np.mean(v)) for name, v in stats.items()})

    def _minibatch_step(self, batch: Batch, index: torch.Tensor) -> dict[str, float]:
        rollout = batch.rollout
        length = int(rollout.response_mask[index].sum(1).max())  # nothing to learn after it
        mask = rollout.response_mask[index, :length]  # (b, L)
        with self.dp.autocast():
            raw = self.trained_policy(
                rollout.input_ids[index], rollout.attention_mask[index],
                rollout.sources[index, :length],
            )  # fmt: skip
        logp_all = torch.log_softmax(self.sampler.logits(raw), -1)  # (b, L, V)
        tokens = rollout.responses[index, :length, None]
        logprobs = logp_all.gather(-1, tokens).squeeze(-1)  # (b, L)
        token_count = self.dp.sum(mask.sum()).clamp(min=1) / self.dp.world_size
        loss, loss_stats = self.loss(logprobs, batch, index, mask, token_count)
        loss.backward()
        trainable = [p for g in self.optimizer.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(trainable, self.config.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            entropy = masked_mean(entropy_from_logprobs(logp_all), mask, token_count)
        named = {_STAT_NAMES[name]: value for name, value in loss_stats.items()}
        values = torch.stack([loss.detach(), entropy, *named.values()]).tolist()  # one copy out
        return dict(zip(["loss", "entropy", *named], values, strict=True))

    # ------------------------------------------------------------------ metrics
    def _rollout_metrics(self, batch: Batch) -> dict[str, float]:
        rollout, cfg, beta = batch.rollout, self.config, self.kl_controller.value
        mask = rollout.response_mask
        lengths = mask.sum(1)  # (B,)
        scores = rollout.scores
        group_std = grouped(scores, cfg.num_generations).std(1) if cfg.num_generations > 1 else None
        metrics = {
            "reward": float(scores.mean()),
            "reward_std": float(
                group_std.mean() if group_std is not None else global_std(scores, self.dp.sum)
            ),
            "completions/mean_length": float(lengths.mean()),
            "completions/min_length": float(lengths.min()),
            "completions/max_length": float(lengths.max()),
            "completions/clipped_ratio": float(1.0 - rollout.eos.mean()),
            "objective/kl": float(batch.kl.mean()),
            "objective/scores": float(scores.mean()),
            "objective/non_score_reward": float(-beta * batch.kl.mean()),
            "objective/rlhf_reward": float((scores - beta * batch.kl).mean()),
            "objective/entropy": float((-rollout.logprobs * mask).sum(1).mean()),
            "beta": beta,
        }
        if group_std is not None:
            metrics["frac_reward_zero_std"] = float((group_std < 1e-6).float().mean())
        metrics.update(text_metrics(rollout, self.gold, self.monitors))
        return self.dp.reduce_metrics(
            metrics, {"completions/min_length": "min", "completions/max_length": "max"}
        )

    def progress(self, metrics: dict[str, float]) -> dict[str, str]:
        return {"reward": f"{metrics['reward']:.3f}", "kl": f"{metrics['objective/kl']:.2f}"}

    # ------------------------------------------------------------------ saving
    def write_pretrained(self, directory: Path) -> None:
        """The trained policy in HF format (``from_pretrained`` loads it) and its tokenizer."""
        self.policy.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)

    def shared_state(self) -> dict[str, Any]:
        """Weights, optimizer, scheduler, counters and the algorithm's own state."""
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "iteration": self.iteration,
            "episodes": self.episodes,
            "env_seeded": self._env_seeded,
            "kl_controller": self.kl_controller.state_dict(),
            "extra": self.extra_state(),
        }

    def process_state(self) -> dict[str, Any]:
        """This process's prompt generator, sub-env generators and global RNGs."""
        return {
            "prompt_rng": self.prompt_rng.bit_generator.state,
            "env_rng": [rng.bit_generator.state for rng in self.env.get_attr("np_random")],
            "rng": rng_state(),
        }

    def restore(self, shared: dict[str, Any], process: dict[str, Any]) -> None:
        self.policy.load_state_dict(shared["policy"])
        self.optimizer.load_state_dict(shared["optimizer"])
        self.scheduler.load_state_dict(shared["scheduler"])
        self.iteration, self.episodes = shared["iteration"], shared["episodes"]
        self._env_seeded = shared["env_seeded"]
        self.kl_controller.load_state_dict(shared["kl_controller"])
        self.load_extra_state(shared["extra"])
        self.prompt_rng = generator_from_state(process["prompt_rng"])
        self.env.set_attr("np_random", [generator_from_state(rng) for rng in process["env_rng"]])
        set_rng_state(process["rng"])

    def _lr_factor(self, iteration: int) -> float:
        if not self.config.anneal_lr:
            return 1.0
        return 1.0 - iteration / self.config.total_steps


class GRPO(CriticFreeTrainer):
    """Group Relative Policy Optimization (Shao et al. 2024, DeepSeekMath): advantages are the
    rewards normalised within each prompt's group of ``num_generations`` completions; the loss
    is PPO's clipped surrogate per token plus ``beta`` times the k3 KL to the reference.

    ``loss_type="dapo"`` or ``"dr_grpo"`` removes GRPO's length bias; ``scale_rewards="none"``
    is Dr. GRPO's unscaled advantage. See :class:`CriticFreeTrainer` for the arguments."""

    name = "GRPO"
    config_class = GRPOConfig
    config: GRPOConfig

    def advantages(
        self, scores: torch.Tensor, penalised: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config  # the KL is in the loss, not the reward
        advantages = group_advantages(scores, cfg.num_generations, cfg.scale_rewards, self.dp.sum)
        return scores, advantages

    def loss(
        self,
        logprobs: torch.Tensor,
        batch: Batch,
        index: torch.Tensor,
        mask: torch.Tensor,
        token_count: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        length, cfg = mask.shape[1], self.config
        return grpo_loss(
            logprobs, batch.rollout.logprobs[index, :length], batch.ref_logprobs[index, :length],
            batch.advantages[index], mask, cfg.epsilon, self.kl_controller.value, cfg.loss_type,
            self.env.max_new_tokens, token_count,
        )  # fmt: skip


class _SequenceLevel(CriticFreeTrainer):
    """KL in the reward, REINFORCE loss on the sequence log-prob (clipped sequence ratio)."""

    def loss(
        self,
        logprobs: torch.Tensor,
        batch: Batch,
        index: torch.Tensor,
        mask: torch.Tensor,
        token_count: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        length = mask.shape[1]
        old = batch.rollout.logprobs[index, :length]
        return sequence_loss(logprobs, old, batch.advantages[index], mask, self.config.epsilon)


class RLOO(_SequenceLevel):
    """REINFORCE Leave-One-Out (Ahmadian et al. 2024): each completion's baseline is the mean
    KL-penalised reward of the other ``num_generations - 1`` completions of its prompt. See
    :class:`CriticFreeTrainer` for the arguments."""

    name = "RLOO"
    config_class = RLOOConfig

    def advantages(
        self, scores: torch.Tensor, penalised: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        baseline = leave_one_out_baseline(penalised, self.config.num_generations)
        return penalised, penalised - baseline


class Reinforce(_SequenceLevel):
    """REINFORCE (Williams 1992) with a moving-average baseline of the mean KL-penalised
    reward (``baseline_decay``); the first batch is its own baseline. See
    :class:`CriticFreeTrainer` for the arguments."""

    name = "REINFORCE"
    config_class = ReinforceConfig
    config: ReinforceConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.baseline: float | None = None

    def advantages(
        self, scores: torch.Tensor, penalised: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mean = float(self.dp.sum(penalised.sum())) / (penalised.numel() * self.dp.world_size)
        baseline = mean if self.baseline is None else self.baseline  # from earlier batches only
        self.baseline = moving_average(self.baseline, mean, self.config.baseline_decay)
        return penalised, penalised - baseline

    def _rollout_metrics(self, batch: Batch) -> dict[str, float]:
        return {**super()._rollout_metrics(batch), "baseline": float(self.baseline)}

    def extra_state(self) -> dict[str, Any]:
        return {"baseline": self.baseline}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.baseline = state["baseline"]
