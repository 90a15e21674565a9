"""LearnedRewardModel: a sequence-classification model with its own tokenizer, as a predictor.

Any Hugging Face ``AutoModelForSequenceClassification`` architecture with one label works. A
decoder (Llama / GPT style, a ``score`` head) scores ``prompt + completion`` by its head on the
final hidden state of the last real token (right padding, read from the attention mask, so a pad
id that also appears in the text never moves it). An encoder (BERT / MiniLM / DeBERTa style, a
``classifier`` head) pools as its own forward does (e.g. the ``[CLS]`` token through its pooler),
and a text cut to ``max_length`` keeps its first token, the one it pools. Optional normalisation
constants live in the model's config (``reward_mean``, ``reward_std``) so they travel with
``save_pretrained``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from rlhf_gym.models import pad_token_id

HEAD_NAMES = ("score", "classifier")
DEFAULT_SENTIMENT_MODEL = "sentiment_rm"
"""Directory under ``rlhf_gym/rewards/data`` of the shipped sentiment reward model."""


def reward_head(model: PreTrainedModel) -> nn.Linear:
    """The linear head that maps a hidden state to the score (``score`` or ``classifier``)."""
    for name in HEAD_NAMES:
        head = getattr(model, name, None)
        if isinstance(head, nn.Linear):
            if head.out_features != 1:
                raise ValueError(f"a reward model needs num_labels=1, got {head.out_features}")
            return head
    raise TypeError(
        f"{type(model).__name__} has no linear head named one of {HEAD_NAMES}; "
        "expected a model loaded with AutoModelForSequenceClassification(num_labels=1)"
    )


def pools_last_token(model: PreTrainedModel) -> bool:
    """Whether ``model`` scores from its last real token: a decoder classifier (``score`` head).
    An encoder classifier (``classifier`` head) pools as its own forward does."""
    return isinstance(getattr(model, "score", None), nn.Linear)


def encode_texts(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int,
    device: torch.device | str = "cpu",
    keep_first: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask``, both (B, T).

    A text longer than ``max_length`` tokens keeps its end (the completion), and with
    ``keep_first`` also its first token (an encoder's ``[CLS]``); a text with no tokens becomes
    one pad token, so every row has a last real position.
    """
    rows = [
        _truncated(ids, max_length, keep_first) or [pad_token_id(tokenizer)]
        for ids in tokenizer(list(texts))["input_ids"]
    ]
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_token_id(tokenizer), dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row)
        attention_mask[i, : len(row)] = 1
    return input_ids.to(device), attention_mask.to(device)


def _truncated(ids: list[int], max_length: int, keep_first: bool) -> list[int]:
    if len(ids) <= max_length:
        return ids
    if keep_first and max_length > 1:
        return ids[:1] + ids[len(ids) - (max_length - 1) :]
    return ids[-max_length:]


def pooled_features(
    model: PreTrainedModel,
    input_ids: torch.Tensor | None,
    attention_mask: torch.Tensor,
    *,
    inputs_embeds: torch.Tensor | None = None,
) -> torch.Tensor:
    """What the head scores, (B, T) -> (B, H): a decoder's final hidden state of each row's last
    real token, or the input an encoder's own forward gives its head. The model reads
    ``input_ids`` (B, T) or, in their place, ``inputs_embeds`` (B, T, H)."""
    inputs = {
        "input_ids": input_ids,
        "inputs_embeds": inputs_embeds,
        "attention_mask": attention_mask,
    }
    if not pools_last_token(model):
        return _head_input(model, inputs)
    hidden = model.base_model(**inputs).last_hidden_state  # (B, T, H)
    last = attention_mask.sum(-1) - 1  # (B,)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def _head_input(model: PreTrainedModel, inputs: dict[str, torch.Tensor | None]) -> torch.Tensor:
    """The tensor the model's forward passes to its head (its pooling, whatever it is)."""
    captured: list[torch.Tensor] = []
    hook = reward_head(model).register_forward_pre_hook(lambda _, args: captured.append(args[0]))
    try:
        model(**inputs)
    finally:
        hook.remove()
    return captured[0]


def sequence_scores(
    model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """Raw reward-model score of each row, (B, T) -> (B,), float32."""
    return head_scores(reward_head(model), pooled_features(model, input_ids, attention_mask))


def head_scores(head: nn.Linear, features: torch.Tensor) -> torch.Tensor:
    """The scalar head on pooled features: (B, H) -> (B,), float32."""
    return head(features.to(head.weight.dtype)).squeeze(-1).float()


@contextmanager
def eval_mode(model: nn.Module):
    """Dropout off for the duration, then the caller's train/eval flag restored."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@contextmanager
def _quiet_progress():
    """Transformers' progress bars off for the duration, then as they were."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


class LearnedRewardModel:
    """A reward predictor backed by a sequence-classification model and its own tokenizer.

    Scoring is batched (texts sorted by length to limit padding), runs without gradients and
    with dropout off, on the model's device. Scores are ``(raw - reward_mean) / reward_std``
    with the constants from the model's config (0 and 1 unless normalised).

    Args:
        model: an ``AutoModelForSequenceClassification`` model with ``num_labels=1``.
        tokenizer: its tokenizer (never modified).
        batch_size: texts per forward pass.
        max_length: tokens kept from the end of ``prompt + completion``.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        batch_size: int = 64,
        max_length: int = 256,
    ) -> None:
        if batch_size < 1 or max_length < 1:
            raise ValueError(
                f"batch_size and max_length must be positive, got {batch_size}, {max_length}"
            )
        reward_head(model)  # fail early on a model without a scalar head
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        **kwargs: int,
    ) -> LearnedRewardModel:
        """Load a reward model and its tokenizer saved with ``save_pretrained`` (HF format)."""
        if not Path(path).exists():
            raise FileNotFoundError(f"no reward model at {path}")
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        with _quiet_progress():  # envs build their reward model often: no bar each time
            model = AutoModelForSequenceClassification.from_pretrained(str(path), dtype=dtype)
        return cls(model.to(device).eval(), tokenizer, **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def raw_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Un-normalised scores of full texts, float32 (N,)."""
        order = np.argsort([len(t) for t in texts], kind="stable")
        scores = np.empty(len(texts), dtype=np.float32)
        with torch.no_grad(), eval_mode(self.model):
            for start in range(0, len(texts), self.batch_size):
                idx = order[start : start + self.batch_size]
                ids, mask = encode_texts(
                    self.tokenizer, [texts[i] for i in idx], self.max_length, self.device,
                    keep_first=not pools_last_token(self.model),
                )  # fmt: skip
                scores[idx] = sequence_scores(self.model, ids, mask).cpu().numpy()
        return scores

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        raw = self.raw_scores([p + c for p, c in zip(prompts, completions, strict=True)])
        mean, std = self.normalization
        return ((raw - mean) / std).astype(np.float32)

    @property
    def normalization(self) -> tuple[float, float]:
        """``(reward_mean, reward_std)`` from the model's config."""
        config = self.model.config
        return float(getattr(config, "reward_mean", 0.0)), float(getattr(config, "reward_std", 1.0))

    def fit_normalization(
        self, prompts: Sequence[str], completions: Sequence[str]
    ) -> tuple[float, float]:
        """Set the constants so these (reference-policy) samples score mean 0, std 1."""
        raw = self.raw_scores([p + c for p, c in zip(prompts, completions, strict=True)])
        if len(raw) < 2 or float(raw.std()) == 0.0:
            raise ValueError(f"need at least 2 samples with distinct scores, got {len(raw)}")
        self.model.config.reward_mean = float(raw.mean())
        self.model.config.reward_std = float(raw.std())
        return self.normalization

    def rank(self, prompt: str, responses: Sequence[str]) -> list[int]:
        """Indices of ``responses``, best first (ties keep their input order)."""
        scores = self([prompt] * len(responses), list(responses))
        return [int(i) for i in np.argsort(-scores, kind="stable")]

    def save_pretrained(self, path: str | Path) -> None:
        self.model.save_pretrained(str(path))
        self.tokenizer.save_pretrained(str(path))

    def __repr__(self) -> str:
        name = getattr(self.model.config, "_name_or_path", "") or type(self.model).__name__
        return f"LearnedRewardModel({name!r})"


def default_sentiment_model_path() -> Path:
    return Path(str(files("rlhf_gym.rewards").joinpath("data", DEFAULT_SENTIMENT_MODEL)))


def sentiment_reward_model(**kwargs: int) -> LearnedRewardModel:
    """The shipped sentiment reward model (see ``docs/reward_models.md``)."""
    path = default_sentiment_model_path()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"the shipped sentiment reward model is missing from {path}; "
            "build it with: python scripts/build_default_reward_model.py"
        )
    return LearnedRewardModel.from_pretrained(path, **kwargs)
