"""TokenPPO: sequence-level PPO for a causal LM, trained against a TextGenerationVectorEnv (or,
for a dialogue task, a DialogueVectorEnv: the actions are the agent's tokens of every turn).

Each iteration: reset the vector env (autoreset disabled), generate one response per slot with
the policy's KV cache while stepping the env with every batch of tokens, then train on the whole
sequences for several epochs of reshuffled minibatches.
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

from agents.loop import IterativeTrainer
from agents.rng import generator_from_state, rng_state, seed_everything, set_rng_state
from agents.token_ppo.config import TokenPPOConfig
from agents.token_ppo.losses import (
    entropy_from_logprobs,
    gae,
    kl_rewards,
    masked_mean,
    masked_whiten,
    policy_loss,
    value_loss,
)
from agents.token_ppo.metrics_log import check_finite_losses, text_metrics
from agents.token_ppo.rollout import (
    Rollout,
    Sampler,
    episode_scores,
    generate,
    merge_env_kwargs,
    response_logprobs,
)
from agents.token_ppo.value import ActorCritic
from rlhf_gym.distributed import DataParallel
from rlhf_gym.envs import make_vector_env
from rlhf_gym.models import freeze_lower_layers
from rlhf_gym.rewards import RewardSpec, make_reward_predictor
from rlhf_gym.seeding import derived_seed

_MICRO_BATCH_STATS = (
    "policy/approxkl_avg", "policy/clipfrac_avg", "loss/policy_avg", "loss/value_avg",
    "val/clipfrac_avg", "policy/entropy_avg", "val/ratio",
)  # fmt: skip


@dataclass
class Batch:
    """A rollout with everything the update needs: (B, R) tensors over response tokens."""

    rollout: Rollout
    ref_logprobs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    non_score_rewards: torch.Tensor


class TokenPPO(IterativeTrainer):
    """PPO on whole sequences against the rlhf-gym environment.

    Args:
        model: the causal LM to start from. It is copied: the copy is trained, another frozen
            copy is the reference, and ``model`` itself is never modified.
        tokenizer: its tokenizer (never modified); the env uses it too.
        config: a :class:`TokenPPOConfig`.
        env_kwargs: keyword arguments of :class:`rlhf_gym.TextGenerationVectorEnv` (``task``,
            ``prompts``, ``reward_predictor``, ``max_prompt_tokens``...), or of
            :class:`rlhf_gym.DialogueVectorEnv` for a dialogue task (or with a
            ``user_simulator``): then an episode is a conversation, the advantages run over
            the agent's tokens of all its turns, and the user's tokens are read, not trained.
        gold_predictor: an optional second scorer (e.g. ``"vader"``) logged as
            ``objective/gold_scores`` so that curves show gold against proxy against KL.
        monitors: more functions of each rollout's ``(prompts, completions)`` returning one
            number per completion, logged as ``objective/<name>`` (their batch mean), e.g. a
            reward ensemble's disagreement.
        callbacks: functions called as ``callback(trainer, metrics)`` after each iteration
            (its metrics logged, before any checkpoint), e.g. a held-out probe of the policy;
            with several processes, on rank 0 only.

    Under ``accelerate launch`` or ``torchrun`` each process generates ``batch_size / N`` of
    the episodes and the update is data-parallel (:mod:`rlhf_gym.distributed`): whitening, the
    loss's token count and the logged metrics are the global batch's.
    """

    name = "TokenPPO"

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        config: TokenPPOConfig | None = None,
        env_kwargs: dict[str, Any] | None = None,
        gold_predictor: RewardSpec | None = None,
        monitors: Mapping[str, Callable[[list[str], list[str]], Any]] | None = None,
        callbacks: Sequence[Callable[[TokenPPO, dict[str, float]], None]] = (),
    ) -> None:
        self.config = config or TokenPPOConfig()
        self.tokenizer = tokenizer
        self.dp = DataParallel(self.config.mixed_precision)
        self.local = _local_sizes(self.config, self.dp)
        seed_everything(self.dp.process_seed(self.config.seed))
        self.env_kwargs = self._env_kwargs(env_kwargs or {})
        self.env = make_vector_env(
            self.local.batch_size, autoreset_mode=AutoresetMode.DISABLED, **self.env_kwargs
        )
        self.gold = make_reward_predictor(gold_predictor) if gold_predictor is not None else None
        self.monitors = dict(monitors or {})
        self.callbacks = list(callbacks)
        policy = copy.deepcopy(model).eval()  # eval(): dropout off, and it stays off
        self.ref_model = copy.deepcopy(model).eval().requires_grad_(False).to(self.dp.device)
        freeze_lower_layers(policy, self.config.freeze_layers)
        self.actor = ActorCritic(policy, self.config.value_model).to(self.dp.device)
        self.trained_actor = self.dp.prepare(self.actor)  # DDP in several processes
        self.sampler = Sampler(
            self.config.temperature,
            self.env.eos_token_id if self.config.ignore_eos else None,
        )
        trainable = [p for p in self.actor.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(
            trainable, lr=self.config.learning_rate, eps=self.config.adam_epsilon, fused=True
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.kl_controller = self.config.kl_controller()
        self.kl_budget = self.config.kl_budget_stop()
        self.iteration = 0
        self.episodes = 0
        self._env_seeded = False

    @property
    def policy(self) -> PreTrainedModel:
        return self.actor.policy

    # ------------------------------------------------------------------ training loop
    @property
    def total_iterations(self) -> int:
        return self.config.num_iterations

    def step(self) -> dict[str, float]:
        """One iteration: rollout, advantages, PPO update, KL-controller and LR update."""
        rollout = self.rollout()
        start = time.perf_counter()
        batch = self.make_batch(rollout)
        prepare_seconds = time.perf_counter() - start
        beta = self.kl_controller.value
        metrics = self._rollout_metrics(batch, beta)
        start = time.perf_counter()
        metrics.update(self.update(batch))
        check_finite_losses(metrics, self.iteration + 1, "TokenPPO")
        metrics["lr"] = self.scheduler.get_last_lr()[0]
        self.scheduler.step()
        self.kl_controller.update(metrics["objective/kl"], self.config.batch_size)
        self.kl_budget.update(metrics["objective/kl"])
        self.iteration += 1
        self.episodes += self.config.batch_size
        metrics.update({
            "episode": self.episodes,
            "time/rollout": rollout.seconds,
            "time/prepare": prepare_seconds,
            "time/update": time.perf_counter() - start,
        })  # fmt: skip
        return metrics

    def rollout(self) -> Rollout:
        """Reset the env (seeded on the first call) and generate one batch of episodes."""
        seed = None if self._env_seeded else self.dp.process_seed(self.config.seed, "prompt-order")
        observation, _ = self.env.reset(seed=seed)
        self._env_seeded = True
        with self.dp.autocast():
            return generate(self.actor, self.env, observation, self.sampler)

    @torch.no_grad()
    def make_batch(self, rollout: Rollout) -> Batch:
        """Reference log-probs, values, KL-penalised rewards, GAE advantages and returns."""
        mask = rollout.response_mask
        ids, attention = rollout.input_ids, rollout.attention_mask
        ref_logprobs = self.response_token_logprobs(self.ref_model, rollout) * mask
        values = rollout.values
        if values is None:
            values = self.actor.values(ids, attention, rollout.sources) * mask
        rewards, non_score = kl_rewards(
            rollout.logprobs, ref_logprobs, rollout.rewards, mask, self.kl_controller.value
        )
        advantages, returns = gae(rewards, values, mask, self.config.gamma, self.config.lam)
        if self.config.whiten_advantages:
            advantages = masked_whiten(advantages, mask, total=self.dp.sum)
        return Batch(rollout, ref_logprobs, values, advantages, returns, non_score)

    def response_token_logprobs(self, model: PreTrainedModel, rollout: Rollout) -> torch.Tensor:
        """Log-probs (B, R) of the rollout's response tokens under ``model``, one forward pass."""
        with self.dp.autocast():
            return response_logprobs(model, rollout, self.sampler)

    # ------------------------------------------------------------------ PPO update
    def update(self, batch: Batch) -> dict[str, float]:
        """``num_ppo_epochs`` passes of reshuffled minibatches with gradient accumulation.

        Each process takes minibatches of its own episodes; the loss divides by the global
        minibatch's token count over the number of processes, because DDP averages the
        processes' gradients."""
        stats: dict[str, list[float]] = defaultdict(list)
        cfg, local = self.config, self.local
        for _ in range(cfg.num_ppo_epochs):
            order = torch.randperm(local.batch_size)
            for minibatch in order.split(local.minibatch_size):
                tokens = self.dp.sum(batch.rollout.response_mask[minibatch].sum())
                denom = tokens.clamp(min=1) / self.dp.world_size
                micros = minibatch.split(local.micro_batch_size)
                for i, micro in enumerate(micros):
                    with self.dp.no_sync(self.trained_actor, sync=i == len(micros) - 1):
                        loss_stats = self._accumulate(batch, micro, denom)
                    for name, value in loss_stats.items():
                        stats[name].append(value)
                trainable = [p for g in self.optimizer.param_groups for p in g["params"]]
                torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
        return _summarise(stats, cfg.gradient_accumulation_steps, self.dp)

    def _accumulate(
        self, batch: Batch, index: torch.Tensor, denom: torch.Tensor
    ) -> dict[str, float]:
        """Backward one micro-batch's share of the minibatch loss; return its statistics, also
        shares of the minibatch's token means."""
        rollout = batch.rollout
        length = int(rollout.response_mask[index].sum(1).max())  # nothing to learn after it
        mask = rollout.response_mask[index, :length]
        with self.dp.autocast():
            raw, values = self.trained_actor(
                rollout.input_ids[index], rollout.attention_mask[index],
                rollout.sources[index, :length],
            )  # fmt: skip
        logp_all = torch.log_softmax(self.sampler.logits(raw), -1)  # (b, L, V)
        tokens = rollout.responses[index, :length, None]
        logprobs = logp_all.gather(-1, tokens).squeeze(-1)  # (b, L)
        pg_loss, pg_stats = policy_loss(
            logprobs, rollout.logprobs[index, :length], batch.advantages[index, :length],
            mask, self.config.cliprange, denom,
        )  # fmt: skip
        vf_loss, vf_stats = value_loss(
            values, batch.values[index, :length], batch.returns[index, :length],
            mask, self.config.cliprange_value, denom,
        )  # fmt: skip
        (pg_loss + self.config.vf_coef * vf_loss).backward()
        with torch.no_grad():
            entropy = masked_mean(entropy_from_logprobs(logp_all), mask, denom)
            stats = torch.stack([
                pg_stats["approxkl"], pg_stats["clipfrac"], pg_loss, vf_loss,
                vf_stats["clipfrac"], entropy, pg_stats["ratio"],
            ])  # fmt: skip
        return dict(zip(_MICRO_BATCH_STATS, stats.tolist(), strict=True))  # one copy out

    # ------------------------------------------------------------------ metrics
    def _rollout_metrics(self, batch: Batch, beta: float) -> dict[str, float]:
        rollout = batch.rollout
        mask = rollout.response_mask
        kl = ((rollout.logprobs - batch.ref_logprobs) * mask).sum(1)  # (B,)
        non_score = batch.non_score_rewards.sum(1)
        metrics = {
            "objective/kl": float(kl.mean()),
            "objective/entropy": float((-rollout.logprobs * mask).sum(1).mean()),
            "objective/non_score_reward": float(non_score.mean()),
            "objective/rlhf_reward": float((rollout.scores + non_score).mean()),
            "objective/scores": float(rollout.scores.mean()),
            "objective/kl_coef": beta,
            "val/num_eos_tokens": float(rollout.eos.sum()),
            "val/response_length": float(mask.sum(1).mean()),
        }
        metrics.update(text_metrics(rollout, self.gold, self.monitors))
        return self.dp.reduce_metrics(metrics, {"val/num_eos_tokens": "sum"})

    def progress(self, metrics: dict[str, float]) -> dict[str, str]:
        return {
            "score": f"{metrics['objective/scores']:.3f}",
            "kl": f"{metrics['objective/kl']:.2f}",
        }

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(
        self,
        prompts: Sequence[str],
        reward_predictor: RewardSpec,
        seed: int = 0,
        batch_size: int | None = None,
        other_predictors: Mapping[str, RewardSpec] | None = None,
        split: str | None = None,
    ) -> dict[str, float]:
        """Mean score of sampled completions on ``prompts`` and the policy's KL to the reference.

        ``other_predictors`` (name -> predictor) score the same completions too, reported as
        ``score/<name>``: gold and proxy of one sample, e.g. ``{"rm": "sentiment-rm"}``.
        ``split`` overrides the env's (a dialogue task's ``"test"`` draws held-out secrets).
        Sampling uses its own seed and the RNG states are restored, so evaluating never
        changes training.
        """
        size = batch_size or self.config.batch_size
        predictor = make_reward_predictor(reward_predictor)  # built once for all chunks
        others = {name: make_reward_predictor(p) for name, p in (other_predictors or {}).items()}
        kwargs = {**self.env_kwargs, "prompts": list(prompts), "reward_predictor": predictor}
        if split is not None:
            kwargs["split"] = split
        scores: dict[str, list[np.ndarray]] = defaultdict(list)
        kls = []
        saved = rng_state()
        torch.manual_seed(derived_seed(seed, "evaluation-sampling"))
        try:
            for first in range(0, len(prompts), size):
                chunk = list(prompts[first : first + size])
                env = make_vector_env(len(chunk), autoreset_mode=AutoresetMode.DISABLED, **kwargs)
                observation, _ = env.reset(seed=seed, options={"prompts": chunk})
                rollout = generate(self.actor, env, observation, self.sampler)
                ref = self.response_token_logprobs(self.ref_model, rollout) * rollout.response_mask
                kls.append(((rollout.logprobs - ref) * rollout.response_mask).sum(1))
                scores["score"].append(rollout.raw_scores)
                for name, other in others.items():
                    scores[f"score/{name}"].append(episode_scores(other, rollout))
        finally:
            set_rng_state(saved)
        means = {name: float(np.mean(np.concatenate(parts))) for name, parts in scores.items()}
        return {**means, "kl": float(torch.cat(kls).mean())}

    # ------------------------------------------------------------------ saving
    def write_pretrained(self, directory: Path) -> None:
        """The trained policy in HF format (``from_pretrained`` loads it), its tokenizer, and
        the value head as ``value_head.pt``."""
        self.policy.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        value_state = {k: v for k, v in self.actor.state_dict().items() if "policy." not in k}
        torch.save(value_state, directory / "value_head.pt")

    def shared_state(self) -> dict[str, Any]:
        """Weights, optimizer, scheduler, the KL controller and the counters."""
        return {
            "actor": self.actor.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "kl_controller": self.kl_controller.state_dict(),
            "iteration": self.iteration,
            "episodes": self.episodes,
            "env_seeded": self._env_seeded,
        }

    def process_state(self) -> dict[str, Any]:
        """This process's global RNGs and its sub-envs' generators."""
        return {
            "env_rng": [rng.bit_generator.state for rng in self.env.get_attr("np_random")],
            "rng": rng_state(),
        }

    def restore(self, shared: dict[str, Any], process: dict[str, Any]) -> None:
        self.actor.load_state_dict(shared["actor"])
        self.optimizer.load_state_dict(shared["optimizer"])
        self.scheduler.load_state_dict(shared["scheduler"])
        self.kl_controller.load_state_dict(shared["kl_controller"])
        self.iteration, self.episodes = shared["iteration"], shared["episodes"]
        self._env_seeded = shared["env_seeded"]
        self.env.set_attr("np_random", [generator_from_state(rng) for rng in process["env_rng"]])
        set_rng_state(process["rng"])

    # ------------------------------------------------------------------ helpers
    def _lr_factor(self, iteration: int) -> float:
        if not self.config.anneal_lr:
            return 1.0
        return 1.0 - iteration / self.config.num_iterations

    def _env_kwargs(self, given: dict[str, Any]) -> dict[str, Any]:
        return merge_env_kwargs(
            given, self.tokenizer, max_new_tokens=self.config.max_new_tokens,
            missing_eos_penalty=self.config.missing_eos_penalty,
        )  # fmt: skip


@dataclass(frozen=True)
class _LocalSizes:
    """One process's share of the config's global batch, minibatch and micro-batch."""

    batch_size: int
    minibatch_size: int
    micro_batch_size: int


def _local_sizes(config: TokenPPOConfig, dp: DataParallel) -> _LocalSizes:
    return _LocalSizes(
        dp.local_size(config.batch_size, "batch_size"),
        dp.local_size(config.minibatch_size, "batch_size / num_mini_batches"),
        dp.local_size(
            config.micro_batch_size,
            "batch_size / (num_mini_batches * gradient_accumulation_steps)",
        ),
    )


def _summarise(
    stats: dict[str, list[float]], accumulation: int, dp: DataParallel
) -> dict[str, float]:
    """Each statistic's mean over the minibatches of all epochs, where a minibatch's value is
    its token mean over every process (the sum of its micro-batches' shares, averaged over
    processes, whose shares divide by the global token count over N). ``val/ratio_var`` is the
    variance of the minibatches' mean ratios."""
    names = list(stats)
    shares = torch.tensor([stats[name] for name in names], dtype=torch.float64)  # (S, M * A)
    per_minibatch = shares.view(len(names), -1, accumulation).sum(-1)  # (S, M)
    per_minibatch = dp.sum(per_minibatch.to(dp.device)).cpu() / dp.world_size
    summary = dict(zip(names, per_minibatch.mean(1).tolist(), strict=True))
    ratios = per_minibatch[names.index("val/ratio")]
    summary["val/ratio_var"] = float(ratios.var()) if len(ratios) > 1 else 0.0
    return summary
