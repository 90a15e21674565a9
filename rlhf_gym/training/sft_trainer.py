"""Supervised fine-tuning (stage 1 of RLHF): maximise the likelihood of demonstrations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from rlhf_gym.rewards.learned import eval_mode
from rlhf_gym.seeding import derived_seed
from rlhf_gym.training.loop import (
    optimizer_step,
    progress,
    steps_per_epoch,
    trainable_parameters,
)
from rlhf_gym.training.parallel import TrainingForward, local_batches, start_data_parallel
from rlhf_gym.training.sequences import PairBatch, completion_token_logprobs, encode_pairs
from rlhf_gym.training.sft_config import SFTConfig

Demonstration = Mapping[str, str] | tuple[str, str]


def sft_loss(
    token_logprobs: torch.Tensor,
    loss_mask: torch.Tensor,
    num_tokens: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """Negative log-likelihood of the masked tokens, summed and divided by ``num_tokens``
    (default: their count, which makes it the mean): (B, T), (B, T) -> ()."""
    count = loss_mask.sum() if num_tokens is None else num_tokens
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
    """Fine-tunes a causal LM in place on (prompt, completion) demonstrations.

    The model is moved to the device of this process; under ``accelerate launch`` or
    ``torchrun`` training is data-parallel (:mod:`rlhf_gym.training.parallel`) and the loss is
    the mean over the global batch's tokens.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        args: SFTConfig,
        train_dataset: Sequence[Demonstration],
        tokenizer: PreTrainedTokenizerBase,
    ) -> None:
        self.args = args
        self.tokenizer = tokenizer
        self.prompts, self.completions = as_pairs(train_dataset)
        self.dp = start_data_parallel(args.mixed_precision, args.batch_size, len(self.prompts))
        self.model = model.to(self.dp.device)
        self.optimizer = torch.optim.AdamW(
            trainable_parameters(model), lr=args.learning_rate, weight_decay=args.weight_decay
        )
        self._step = self.dp.prepare(TrainingForward(model, self._token_logprobs))
        self.generator = torch.Generator().manual_seed(derived_seed(args.seed, "sft-shuffling"))

    def train(self) -> list[float]:
        """Run all epochs; returns the mean training loss of each epoch (over its steps)."""
        self.model.train()
        history = []
        args, dp, size = self.args, self.dp, len(self.prompts)
        bar = progress(
            steps_per_epoch(size, args.batch_size, dp.world_size),
            args.num_train_epochs,
            args.progress_bar and dp.is_main_process,
            "SFT",
        )
        for _ in range(args.num_train_epochs):
            losses = []
            for indices in local_batches(size, args.batch_size, self.generator, dp):
                loss = self._train_loss(self._batch(indices))
                optimizer_step(loss, self.model, self.optimizer, args.max_grad_norm)
                losses.append(loss.item())
                bar.update(1)
            # each process's loss is its token sum over the mean count per process: the mean
            # of the processes' losses is the global batch's
            history.append(dp.reduce_metrics({"loss": sum(losses) / len(losses)})["loss"])
            bar.set_postfix(loss=f"{history[-1]:.3f}")
        bar.close()
        self.model.eval()
        return history

    @torch.no_grad()
    def evaluate(self, dataset: Sequence[Demonstration]) -> float:
        """Mean per-token negative log-likelihood of ``dataset``'s completions (every process
        evaluates all of it)."""
        prompts, completions = as_pairs(dataset)
        batch = encode_pairs(self.tokenizer, prompts, completions, self.args.max_length)
        with eval_mode(self.model), self.dp.autocast():
            return sft_loss(*self._token_logprobs(batch.to(self.dp.device))).item()

    def _batch(self, indices: Sequence[int]) -> PairBatch:
        prompts = [self.prompts[i] for i in indices]
        completions = [self.completions[i] for i in indices]
        batch = encode_pairs(self.tokenizer, prompts, completions, self.args.max_length)
        return batch.to(self.dp.device)

    def _train_loss(self, batch: PairBatch) -> torch.Tensor:
        """This process's part of the global batch's mean token loss: DDP averages the
        processes' gradients, so each divides its token sum by the mean count per process."""
        token_logprobs, loss_mask = self._step(batch)
        mean_count = self.dp.sum(loss_mask.sum()) / self.dp.world_size
        return sft_loss(token_logprobs, loss_mask, mean_count)

    def _token_logprobs(self, batch: PairBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probs of the tokens the loss covers and their mask (1 on them): (B, T-1) each."""
        if not self.args.completion_only_loss:
            batch = PairBatch(batch.input_ids, batch.attention_mask, batch.attention_mask)
        return completion_token_logprobs(self.model, batch), batch.completion_mask[:, 1:]
