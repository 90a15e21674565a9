"""RewardModelTrainer: a Bradley–Terry reward model learned from preference pairs.

Three ways to train a backbone: full fine-tuning of any ``AutoModelForSequenceClassification``
model (a preset, SmolLM2, an HF id or a path); ``trainable_layers=N``, which runs the frozen lower
layers once per text, caches their output and trains the top N layers, final norm and head on
it; or ``freeze_trunk=True``, which computes the trunk's pooled features once and trains only
the linear head on them (:mod:`rlhf_gym.training.reward_scoring`). Either way the result is a
plain HF checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from rlhf_gym.preferences import PreferencePair, load_preferences
from rlhf_gym.rewards.learned import LearnedRewardModel, reward_head
from rlhf_gym.seeding import numpy_rng
from rlhf_gym.training.loop import (
    EarlyStopping,
    optimizer_step,
    progress,
    steps_per_epoch,
    trainable_parameters,
)
from rlhf_gym.training.parallel import TrainingForward, local_batches, start_data_parallel
from rlhf_gym.training.reward_backbone import build_reward_model
from rlhf_gym.training.reward_config import RewardConfig
from rlhf_gym.training.reward_scoring import make_scorer


def bradley_terry_loss(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    margin: torch.Tensor | None = None,
    center_coefficient: float | None = None,
) -> torch.Tensor:
    """Mean of ``-log sigmoid(r_chosen - r_rejected - margin)``: (N,), (N,) -> scalar.

    With ``center_coefficient`` c, adds ``c * mean((r_chosen + r_rejected)^2)``, which pins the
    otherwise free offset of the scores near 0.
    """
    gap = chosen - rejected
    if margin is not None:
        gap = gap - margin
    loss = -F.logsigmoid(gap).mean()
    if center_coefficient:
        loss = loss + center_coefficient * (chosen + rejected).pow(2).mean()
    return loss


def pairwise_accuracy(
    chosen: torch.Tensor | np.ndarray, rejected: torch.Tensor | np.ndarray
) -> float:
    """Share of pairs scored in the labeled order; a tie counts as half."""
    chosen, rejected = np.asarray(chosen, dtype=np.float64), np.asarray(rejected, dtype=np.float64)
    return float(np.mean((chosen > rejected) + 0.5 * (chosen == rejected)))


def _as_pairs(data: Any, what: str) -> list[PreferencePair]:
    if data is None:
        return []
    pairs = list(data) if isinstance(data, list) else load_preferences(data)
    for i, pair in enumerate(pairs):
        if not isinstance(pair, PreferencePair):
            raise TypeError(f"{what}[{i}] is a {type(pair).__name__}, expected PreferencePair")
    return pairs


class RewardModelTrainer:
    """Trains a reward model on preference pairs with the Bradley–Terry loss.

    Args:
        model: a name for :func:`build_reward_model` (``"tiny"``, ``"smollm2-135m"``, an HF id
            or path) or an ``AutoModelForSequenceClassification`` model with ``num_labels=1``
            (trained in place).
        args: a :class:`RewardConfig`.
        train_dataset, eval_dataset: lists of :class:`PreferencePair`, a ``datasets.Dataset``
            with TRL's columns, or a path (JSONL or a saved dataset).
        tokenizer: required when ``model`` is a model; never modified.

    The model is moved to the device of this process; under ``accelerate launch`` or
    ``torchrun`` training is data-parallel (:mod:`rlhf_gym.training.parallel`): the train loss is
    the global batch's, every process caches the frozen part of every text and evaluates the
    whole held-out set (so early stopping decides alike everywhere), and only the main process
    writes files.
    """

    def __init__(
        self,
        model: str | PreTrainedModel = "tiny",
        args: RewardConfig | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
    ) -> None:
        self.args = args if args is not None else RewardConfig()
        if isinstance(model, str):
            model, tokenizer = build_reward_model(model, tokenizer, seed=self.args.seed)
        elif tokenizer is None:
            raise ValueError("pass the model's tokenizer along with a model instance")
        reward_head(model)
        self.train_pairs = _as_pairs(train_dataset, "train_dataset")
        self.eval_pairs = _as_pairs(eval_dataset, "eval_dataset")
        if not self.train_pairs:
            raise ValueError("train_dataset is empty: a reward model needs preference pairs")
        if self.args.early_stopping_patience and not self.eval_pairs:
            raise ValueError("early_stopping_patience needs an eval_dataset")
        self.dp = start_data_parallel(
            self.args.mixed_precision, self.args.batch_size, len(self.train_pairs)
        )
        self.model = model.to(self.dp.device).eval()  # dropout stays off while training
        self.tokenizer = tokenizer
        self._scorer = make_scorer(self.model, self.tokenizer, self.args)
        pairs = self.train_pairs + self.eval_pairs
        self._scorer.prepare([p.prompt + r for p in pairs for r in (p.chosen, p.rejected)])
        # after make_scorer: DDP all-reduces the parameters that require grad when it wraps them
        self._step = self.dp.prepare(TrainingForward(self.model, self.compute_loss))
        self.history: list[dict[str, float]] = []

    def compute_loss(
        self, pairs: Sequence[PreferencePair]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Loss and the chosen / rejected scores (N,) of a batch of pairs."""
        texts = [p.prompt + p.chosen for p in pairs] + [p.prompt + p.rejected for p in pairs]
        scores = self._scorer(texts)  # (2N,)
        chosen, rejected = scores[: len(pairs)], scores[len(pairs) :]
        margin = None
        if self.args.use_margin:
            margin = torch.tensor([p.margin or 0.0 for p in pairs], device=scores.device)
        loss = bradley_terry_loss(chosen, rejected, margin, self.args.center_rewards_coefficient)
        return loss, chosen, rejected

    def train(self) -> list[dict[str, float]]:
        """Run training; return one record per epoch (train loss, held-out loss and accuracy).

        The learning rate decays linearly to 0 over all epochs; with early stopping, training
        ends after ``early_stopping_patience`` epochs without a better held-out metric and the
        best epoch's weights are restored.
        """
        args, dp, n = self.args, self.dp, len(self.train_pairs)
        params = trainable_parameters(self.model)
        optimizer = torch.optim.AdamW(
            params, lr=args.learning_rate, eps=args.adam_epsilon, weight_decay=args.weight_decay
        )
        epoch_steps = steps_per_epoch(n, args.batch_size, dp.world_size)
        total = args.num_train_epochs * epoch_steps
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / total)
        rng = numpy_rng(args.seed, "reward-shuffling")
        stopping = self._early_stopping(params)
        enabled = args.progress_bar and dp.is_main_process
        bar = progress(epoch_steps, args.num_train_epochs, enabled, "reward model")
        for epoch in range(args.num_train_epochs):
            losses = []
            for indices in local_batches(n, args.batch_size, rng, dp):
                loss, _, _ = self._step([self.train_pairs[i] for i in indices])
                optimizer_step(loss, self.model, optimizer, args.max_grad_norm)
                schedule.step()
                losses.append(loss.item())
                bar.update(1)
            # each process's loss is the mean over an equal share: their mean is the global one
            train_loss = dp.reduce_metrics({"train_loss": float(np.mean(losses))})
            record = {"epoch": epoch + 1, **train_loss}
            if self.eval_pairs:
                record.update(self.evaluate())
            self.history.append(record)
            bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k != "epoch"})
            metric = f"eval_{args.early_stopping_metric}"
            if stopping is not None and stopping.should_stop(record[metric]):
                break
        bar.close()
        if stopping is not None:
            stopping.restore_best()
        return self.history

    def _early_stopping(self, params: list[torch.nn.Parameter]) -> EarlyStopping | None:
        """Early stopping on the held-out loss (lower is better) or accuracy (higher), if on."""
        if not self.args.early_stopping_patience:
            return None
        higher_is_better = self.args.early_stopping_metric == "accuracy"
        return EarlyStopping(params, self.args.early_stopping_patience, higher_is_better)

    @torch.no_grad()
    def evaluate(self, pairs: Sequence[PreferencePair] | None = None) -> dict[str, float]:
        """Held-out Bradley–Terry loss and pairwise accuracy (default: the eval dataset; every
        process evaluates all of it)."""
        pairs = self.eval_pairs if pairs is None else list(pairs)
        if not pairs:
            raise ValueError("no pairs to evaluate")
        step = max(1, self.args.eval_batch_size // 2)
        chosen, rejected, losses = [], [], []
        for s in range(0, len(pairs), step):
            with self.dp.autocast():
                loss, c, r = self.compute_loss(pairs[s : s + step])
            losses.append(float(loss) * len(c))
            chosen.append(c.cpu())
            rejected.append(r.cpu())
        chosen_t, rejected_t = torch.cat(chosen), torch.cat(rejected)
        return {
            "eval_loss": sum(losses) / len(pairs),
            "eval_accuracy": pairwise_accuracy(chosen_t.numpy(), rejected_t.numpy()),
        }

    def reward_model(self) -> LearnedRewardModel:
        """The trained model as a reward predictor (sharing this trainer's model)."""
        return LearnedRewardModel(
            self.model,
            self.tokenizer,
            batch_size=self.args.eval_batch_size,
            max_length=self.args.max_length,
        )

    def normalize(self, prompts: Sequence[str], completions: Sequence[str]) -> tuple[float, float]:
        """Make scores mean 0 / std 1 on these reference-policy samples (stored in the config)."""
        return self.reward_model().fit_normalization(prompts, completions)

    def rank(self, prompt: str, responses: Sequence[str]) -> list[int]:
        """Indices of ``responses``, best first."""
        return self.reward_model().rank(prompt, responses)

    def save_pretrained(self, path: str | Path) -> None:
        """Write model and tokenizer in HF format (``LearnedRewardModel.from_pretrained``).

        Call it on every process: the main one writes, and none returns before it is written.
        """
        if self.dp.is_main_process:
            self.reward_model().save_pretrained(path)
        self.dp.wait()
