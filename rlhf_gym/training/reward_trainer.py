"""RewardModelTrainer: a Bradley–Terry reward model learned from preference pairs.

Three ways to train a backbone: full fine-tuning of any ``AutoModelForSequenceClassification``
model (a preset, SmolLM2, an HF id or path); ``trainable_layers=N``, which runs the frozen lower
layers once per text, caches their output and trains the top N layers, final norm and head on
it; or ``freeze_trunk=True``, which computes the trunk's pooled features once and trains only
the linear head on them. Either way the result is a plain HF checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm
from transformers import (
    AutoModelForSequenceClassification,
    LlamaForSequenceClassification,
    PreTrainedModel,
)
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from rlhf_gym.models import PRESETS, decoder_layers, load_tokenizer, pad_token_id
from rlhf_gym.models.loading import _pretrained_source
from rlhf_gym.models.presets import PRESET_SEED, preset_config
from rlhf_gym.preferences import PreferencePair, load_preferences
from rlhf_gym.rewards.learned import (
    LearnedRewardModel,
    encode_texts,
    head_scores,
    pooled_features,
    reward_head,
    sequence_scores,
)
from rlhf_gym.seeding import derived_seed, numpy_rng
from rlhf_gym.training.reward_config import RewardConfig


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


def build_reward_model(
    name: str, tokenizer: PreTrainedTokenizerBase | None = None, *, seed: int = 0
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A fresh reward model (``num_labels=1``) from a preset name, ``"smollm2-135m"``, an HF id
    or a path, with its tokenizer. The head is drawn with std ``1/sqrt(hidden + 1)``, bias 0."""
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(name)
    if name in PRESETS:
        config = preset_config(name, tokenizer)
        config.num_labels = 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(PRESET_SEED)
            model = LlamaForSequenceClassification(config)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(
            _pretrained_source(name), num_labels=1, dtype=torch.float32
        )
    model.config.pad_token_id = pad_token_id(
        tokenizer
    )  # HF's own forward finds the last token by it
    _init_head(reward_head(model), seed)
    return model.eval(), tokenizer


def _init_head(head: nn.Linear, seed: int) -> None:
    generator = torch.Generator().manual_seed(derived_seed(seed, "reward-head-init"))
    std = 1.0 / math.sqrt(head.in_features + 1)
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=generator) * std)
        if head.bias is not None:
            head.bias.zero_()


class _TextScorer:
    """Scores texts with the whole model (gradients flow into every trainable parameter)."""

    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, args: RewardConfig
    ):
        self.model, self.tokenizer, self.args = model, tokenizer, args

    def parameters(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        ids, mask = encode_texts(self.tokenizer, texts, self.args.max_length, self.args.device)
        return sequence_scores(self.model, ids, mask)  # (N,)


def _unique_chunks(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], args: RewardConfig
) -> tuple[dict[str, int], Iterator[tuple[list[str], torch.Tensor, torch.Tensor]]]:
    """Each distinct text once, shortest first (little padding): the row index of every text,
    and the encoded chunks ``(texts, input_ids, attention_mask)`` in that order."""
    unique = sorted(set(texts), key=len)
    size = args.eval_batch_size
    chunks = (unique[start : start + size] for start in range(0, len(unique), size))
    encoded = (
        (chunk, *encode_texts(tokenizer, chunk, args.max_length, args.device)) for chunk in chunks
    )
    return {text: i for i, text in enumerate(unique)}, encoded


class _FeatureScorer:
    """Scores texts with the head only, on pooled trunk features computed once (trunk frozen)."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        args: RewardConfig,
        texts: Sequence[str],
    ):
        model.base_model.requires_grad_(False)
        self.head = reward_head(model)
        self.head.requires_grad_(True)
        self.index, chunks = _unique_chunks(tokenizer, texts, args)
        with torch.no_grad():
            features = [pooled_features(model, ids, mask) for _, ids, mask in chunks]
        self.features = torch.cat(features).float()  # (U, H)

    def parameters(self) -> list[nn.Parameter]:
        return list(self.head.parameters())

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        rows = self.features[[self.index[text] for text in texts]]  # (N, H)
        return head_scores(self.head, rows)


class _TopLayersScorer:
    """Scores texts with the top ``trainable_layers`` decoder layers, the final norm and the
    head, run on the cached output of the frozen layers below (computed once per text)."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        args: RewardConfig,
        texts: Sequence[str],
    ):
        layers = decoder_layers(model)
        if args.trainable_layers > len(layers):
            raise ValueError(
                f"trainable_layers={args.trainable_layers} but the model has {len(layers)} "
                "decoder layers"
            )
        self.model, self.cut = model, len(layers) - args.trainable_layers
        self.layers_name = next(n for n, c in model.base_model.named_children() if c is layers)
        model.requires_grad_(False)
        model.base_model.requires_grad_(True)  # the top layers and the final norm
        model.get_input_embeddings().requires_grad_(False)
        layers[: self.cut].requires_grad_(False)
        reward_head(model).requires_grad_(True)
        self.index, chunks = _unique_chunks(tokenizer, texts, args)
        self.cached: list[torch.Tensor] = []  # per text: (T_i, H), the input of layer ``cut``
        with torch.no_grad():
            for number, (chunk, ids, mask) in enumerate(chunks):
                out = model.base_model(
                    input_ids=ids, attention_mask=mask, output_hidden_states=True
                )
                lower = out.hidden_states[self.cut]  # (B, T, H)
                lengths = mask.sum(-1).tolist()
                self.cached += [row[:n] for row, n in zip(lower, lengths, strict=True)]
                if number == 0:
                    self._check_against_full_model(chunk, ids, mask)

    def parameters(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        rows = [self.cached[self.index[text]] for text in texts]
        lengths = torch.tensor([len(row) for row in rows], device=rows[0].device)
        hidden = nn.utils.rnn.pad_sequence(rows, batch_first=True)  # (N, T, H), right-padded
        mask = (torch.arange(hidden.shape[1], device=hidden.device) < lengths[:, None]).long()
        trunk = self.model.base_model
        full_stack = getattr(trunk, self.layers_name)
        setattr(trunk, self.layers_name, full_stack[self.cut :])  # run only the top layers
        try:
            top = trunk(inputs_embeds=hidden, attention_mask=mask).last_hidden_state
        finally:
            setattr(trunk, self.layers_name, full_stack)
        last = top[torch.arange(len(rows), device=top.device), lengths - 1]  # (N, H)
        return head_scores(reward_head(self.model), last)

    def _check_against_full_model(
        self, texts: Sequence[str], ids: torch.Tensor, mask: torch.Tensor
    ) -> None:
        """Cached lower layers + top layers must score as the whole model does."""
        full = sequence_scores(self.model, ids, mask)
        split = self(texts)
        if not torch.allclose(full, split, atol=1e-4, rtol=1e-4):
            raise ValueError(
                f"trainable_layers is not supported for {type(self.model).__name__}: its trunk "
                "scores differently when run from cached layer outputs (inputs_embeds); use "
                "full fine-tuning (trainable_layers=None) or freeze_trunk=True"
            )


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
        self.model = model.to(self.args.device).eval()  # dropout stays off while training
        self.tokenizer = tokenizer
        self.train_pairs = _as_pairs(train_dataset, "train_dataset")
        self.eval_pairs = _as_pairs(eval_dataset, "eval_dataset")
        if not self.train_pairs:
            raise ValueError("train_dataset is empty: a reward model needs preference pairs")
        if self.args.early_stopping_patience and not self.eval_pairs:
            raise ValueError("early_stopping_patience needs an eval_dataset")
        self._scorer = self._make_scorer()
        self.history: list[dict[str, float]] = []

    def _make_scorer(self) -> _TextScorer | _FeatureScorer | _TopLayersScorer:
        if not self.args.freeze_trunk and self.args.trainable_layers is None:
            return _TextScorer(self.model, self.tokenizer, self.args)
        pairs = self.train_pairs + self.eval_pairs
        texts = [p.prompt + r for p in pairs for r in (p.chosen, p.rejected)]
        scorer = _FeatureScorer if self.args.freeze_trunk else _TopLayersScorer
        return scorer(self.model, self.tokenizer, self.args, texts)

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
        """Run training; return one record per epoch (train loss, held-out loss and accuracy)."""
        args, n = self.args, len(self.train_pairs)
        params = self._scorer.parameters()
        optimizer = torch.optim.AdamW(
            params, lr=args.learning_rate, eps=args.adam_epsilon, weight_decay=args.weight_decay
        )
        total = args.num_epochs * math.ceil(n / args.batch_size)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / total)
        rng = numpy_rng(args.seed, "reward-shuffling")
        # the best epoch maximises ``sign * metric``: lower loss or higher accuracy
        key, sign = (
            ("eval_loss", -1.0) if args.early_stopping_metric == "loss" else ("eval_accuracy", 1.0)
        )
        best, best_state, stale = -math.inf, None, 0
        epochs = tqdm(
            range(args.num_epochs), desc="reward model", unit="epoch", disable=not args.progress_bar
        )
        for epoch in epochs:
            order = rng.permutation(n)
            losses = [
                self._step(
                    [self.train_pairs[i] for i in order[s : s + args.batch_size]],
                    optimizer,
                    schedule,
                    params,
                )
                for s in range(0, n, args.batch_size)
            ]
            record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses))}
            if self.eval_pairs:
                record.update(self.evaluate())
            self.history.append(record)
            epochs.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k != "epoch"})
            if not args.early_stopping_patience:
                continue
            if sign * record[key] > best:
                best, best_state, stale = sign * record[key], self._snapshot(params), 0
            else:
                stale += 1
                if stale >= args.early_stopping_patience:
                    break
        if best_state is not None:
            self._restore(params, best_state)
        return self.history

    def _step(self, pairs, optimizer, schedule, params) -> float:
        loss, _, _ = self.compute_loss(pairs)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.args.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, self.args.max_grad_norm)
        optimizer.step()
        schedule.step()
        return float(loss.detach())

    @staticmethod
    def _snapshot(params: list[nn.Parameter]) -> list[torch.Tensor]:
        return [p.detach().clone() for p in params]

    @staticmethod
    def _restore(params: list[nn.Parameter], state: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for param, saved in zip(params, state, strict=True):
                param.copy_(saved)

    @torch.no_grad()
    def evaluate(self, pairs: Sequence[PreferencePair] | None = None) -> dict[str, float]:
        """Held-out Bradley–Terry loss and pairwise accuracy (default: the eval dataset)."""
        pairs = self.eval_pairs if pairs is None else list(pairs)
        if not pairs:
            raise ValueError("no pairs to evaluate")
        step = max(1, self.args.eval_batch_size // 2)
        chosen, rejected, losses = [], [], []
        for s in range(0, len(pairs), step):
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
        """Write model and tokenizer in HF format (``LearnedRewardModel.from_pretrained``)."""
        self.reward_model().save_pretrained(path)
