"""Supervised fine-tuning (stage 1 of RLHF): maximise the likelihood of demonstrations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from rlhf_gym.seeding import derived_seed
from rlhf_gym.training.loop import (
    optimizer_step,
    progress,
    shuffled_batches,
    trainable_parameters,
)
from rlhf_gym.training.sequences import PairBatch, completion_token_logprobs, encode_pairs
from rlhf_gym.training.sft_config import SFTConfig

Demonstration = Mapping[str, str] | tuple[str, str]


def sft_loss(token_logprobs: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood over the masked tokens: (B, T), (B, T) -> ()."""
    count = loss_mask.sum()
    if count == 0:
        raise ValueError("no token to train on: every loss-mask entry is 0")
    return -(token_logprobs * loss_mask).sum() / count


def as_pairs(dataset: Iterable[Demonstration]) -> tuple[list[str], list[str]]:
    """Prompts and completions of ``{"prompt", "completion"}`` rows or ``(prompt, completion)``."""
    prompts, completions = [], []
    for position, row in enumerate(dataset):
        if isinstance(row, Mapping):
            missing = {"prompt", "completion"} - set(row)
            if missing:
                raise ValueError(f"demonstration {position} lacks {sorted(missing)}")
            prompt, completion = row["prompt"], row["completion"]
        else:
            prompt, completion = row
        if not str(completion).strip():
            raise ValueError(f"demonstration {position} has an empty completion")
        prompts.append(str(prompt))
        completions.append(str(completion))
    if not prompts:
        raise ValueError("the demonstration dataset is empty")
    return prompts, completions


class SFTTrainer:
    """Fine-tunes a causal LM in place on (prompt, completion) demonstrations."""

    def __init__(
        self,
        model: PreTrainedModel,
        args: SFTConfig,
        train_dataset: Sequence[Demonstration],
        tokenizer: PreTrainedTokenizerBase,
    ) -> None:
        self.model = model
        self.args = args
        self.tokenizer = tokenizer
        self.prompts, self.completions = as_pairs(train_dataset)
        self.optimizer = torch.optim.AdamW(
            trainable_parameters(model), lr=args.learning_rate, weight_decay=args.weight_decay
        )
        self.generator = torch.Generator().manual_seed(derived_seed(args.seed, "sft-shuffling"))

    def train(self) -> list[float]:
        """Run all epochs; returns the mean training loss of each epoch."""
        self.model.train()
        history = []
        args = self.args
        bar = progress(
            len(self.prompts), args.batch_size, args.num_train_epochs, args.progress_bar, "SFT"
        )
        for _ in range(args.num_train_epochs):
            losses = []
            for indices in shuffled_batches(len(self.prompts), args.batch_size, self.generator):
                loss = self._loss(self._batch(indices))
                optimizer_step(loss, self.model, self.optimizer, args.max_grad_norm)
                losses.append(loss.item())
                bar.update(1)
            history.append(sum(losses) / len(losses))
            bar.set_postfix(loss=f"{history[-1]:.3f}")
        bar.close()
        self.model.eval()
        return history

    @torch.no_grad()
    def evaluate(self, dataset: Sequence[Demonstration]) -> float:
        """Mean per-token negative log-likelihood of ``dataset``'s completions."""
        prompts, completions = as_pairs(dataset)
        batch = encode_pairs(self.tokenizer, prompts, completions, self.args.max_length)
        was_training = self.model.training
        self.model.eval()
        loss = self._loss(batch).item()
        self.model.train(was_training)
        return loss

    def _batch(self, indices: list[int]) -> PairBatch:
        prompts = [self.prompts[i] for i in indices]
        completions = [self.completions[i] for i in indices]
        return encode_pairs(self.tokenizer, prompts, completions, self.args.max_length)

    def _loss(self, batch: PairBatch) -> torch.Tensor:
        batch = batch.to(self.model.device)
        if not self.args.completion_only_loss:
            batch = PairBatch(batch.input_ids, batch.attention_mask, batch.attention_mask)
        token_logprobs = completion_token_logprobs(self.model, batch)  # (B, T-1)
        return sft_loss(token_logprobs, batch.completion_mask[:, 1:])
