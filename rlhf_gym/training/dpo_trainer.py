"""Direct Preference Optimisation: learn from preference pairs without a reward model or RL."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from rlhf_gym.models import freeze_lower_layers
from rlhf_gym.seeding import derived_seed
from rlhf_gym.training.dpo_config import DPOConfig
from rlhf_gym.training.loop import (
    optimizer_step,
    progress,
    steps_per_epoch,
    trainable_parameters,
)
from rlhf_gym.training.parallel import TrainingForward, local_batches, start_data_parallel
from rlhf_gym.training.sequences import encode_pairs, sequence_logprobs


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sigmoid DPO loss per pair, and the implicit rewards of chosen and rejected: each (B,).

    The implicit reward is ``beta * (log pi(y|x) - log pi_ref(y|x))``; the loss is
    ``-log sigmoid(r_chosen - r_rejected)``, mixed with the flipped label by ``label_smoothing``.
    """
    chosen_rewards = beta * (policy_chosen - reference_chosen)
    rejected_rewards = beta * (policy_rejected - reference_rejected)
    margin = chosen_rewards - rejected_rewards
    loss = -(1 - label_smoothing) * F.logsigmoid(margin) - label_smoothing * F.logsigmoid(-margin)
    return loss, chosen_rewards.detach(), rejected_rewards.detach()


@dataclass(frozen=True)
class _Triple:
    prompt: str
    chosen: str
    rejected: str


def as_triples(dataset: Iterable[Any]) -> list[_Triple]:
    """Preference rows (mappings, or objects with prompt/chosen/rejected attributes) as triples."""
    triples = []
    for position, row in enumerate(dataset):
        get = row.get if isinstance(row, Mapping) else lambda key, row=row: getattr(row, key, None)
        values = [get(key) for key in ("prompt", "chosen", "rejected")]
        if any(not isinstance(v, str) for v in values):
            raise ValueError(f"preference row {position} needs string prompt, chosen and rejected")
        triples.append(_Triple(*values))
    if not triples:
        raise ValueError("the preference dataset is empty")
    return triples


class DPOTrainer:
    """Trains ``model`` in place on preference pairs against a frozen reference.

    ``args.freeze_layers`` lower layers of ``model`` are frozen first (:func:`freeze_lower_layers`).

    The reference log-probs of every pair are computed once, before training, so the reference
    model is not needed afterwards (pass the same weights as ``model`` before training, e.g. a
    copy of the SFT policy). Both models are moved to the device of this process; under
    ``accelerate launch`` or ``torchrun`` training is data-parallel
    (:mod:`rlhf_gym.training.parallel`) and every process computes the reference log-probs
    of all pairs.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        ref_model: PreTrainedModel,
        args: DPOConfig,
        train_dataset: Sequence[Any],
        tokenizer: PreTrainedTokenizerBase,
    ) -> None:
        self.args = args
        self.tokenizer = tokenizer
        self.triples = as_triples(train_dataset)
        self.dp = start_data_parallel(args.mixed_precision, args.batch_size, len(self.triples))
        ref_model.to(self.dp.device)
        self.reference_chosen, self.reference_rejected = self._reference_logprobs(ref_model)
        freeze_lower_layers(model, args.freeze_layers)
        self.model = model.to(self.dp.device)
        self.optimizer = torch.optim.AdamW(trainable_parameters(model), lr=args.learning_rate)
        self._step = self.dp.prepare(TrainingForward(model, partial(self._logprobs, model)))
        self.generator = torch.Generator().manual_seed(derived_seed(args.seed, "dpo-shuffling"))

    def train(self) -> list[dict[str, float]]:
        """Run all epochs; returns per-epoch means (over the pairs trained on) of loss, reward
        accuracy and reward margin."""
        self.model.train()
        history = []
        args, dp, size = self.args, self.dp, len(self.triples)
        bar = progress(
            steps_per_epoch(size, args.batch_size, dp.world_size),
            args.num_train_epochs,
            args.progress_bar and dp.is_main_process,
            "DPO",
        )
        for _ in range(args.num_train_epochs):
            sums = {"loss": 0.0, "rewards/accuracies": 0.0, "rewards/margins": 0.0, "pairs": 0}
            for indices in local_batches(size, args.batch_size, self.generator, dp):
                loss, chosen, rejected = self._losses(indices)
                optimizer_step(loss.mean(), self.model, self.optimizer, args.max_grad_norm)
                sums["loss"] += loss.detach().sum().item()
                sums["rewards/accuracies"] += float((chosen > rejected).float().sum())
                sums["rewards/margins"] += float((chosen - rejected).sum())
                sums["pairs"] += len(indices)
                bar.update(1)
            totals = dp.reduce_metrics(sums, dict.fromkeys(sums, "sum"))
            pairs = totals.pop("pairs")
            history.append({key: value / pairs for key, value in totals.items()})
        bar.close()
        self.model.eval()
        return history

    def _losses(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        chosen, rejected = self._step(indices)
        return dpo_loss(
            chosen,
            rejected,
            self.reference_chosen[indices],
            self.reference_rejected[indices],
            self.args.beta,
            self.args.label_smoothing,
        )

    def _logprobs(
        self, model: PreTrainedModel, indices: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed log-probs of the chosen and rejected responses in one forward: (B,), (B,)."""
        rows = [self.triples[i] for i in indices]
        prompts = [t.prompt for t in rows] * 2
        responses = [t.chosen for t in rows] + [t.rejected for t in rows]
        batch = encode_pairs(self.tokenizer, prompts, responses, self.args.max_length)
        logprobs = sequence_logprobs(model, batch.to(self.dp.device))  # (2B,)
        return logprobs[: len(rows)], logprobs[len(rows) :]

    @torch.no_grad()
    def _reference_logprobs(self, ref_model: PreTrainedModel) -> tuple[torch.Tensor, torch.Tensor]:
        """The reference's summed log-probs of every pair's chosen and rejected response,
        (N,) each, on this process's device."""
        ref_model.eval()
        chosen, rejected = [], []
        for start in range(0, len(self.triples), self.args.batch_size):
            indices = range(start, min(start + self.args.batch_size, len(self.triples)))
            with self.dp.autocast():
                c, r = self._logprobs(ref_model, indices)
            chosen.append(c)
            rejected.append(r)
        return torch.cat(chosen), torch.cat(rejected)
