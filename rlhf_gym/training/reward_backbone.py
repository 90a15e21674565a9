"""A fresh reward model: a trunk from a name (preset, SmolLM2, HF id or path) and a scalar head."""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import (
    AutoModelForSequenceClassification,
    LlamaForSequenceClassification,
    PreTrainedModel,
)
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from rlhf_gym.models import PRESETS, load_tokenizer, pad_token_id
from rlhf_gym.models.loading import load_pretrained
from rlhf_gym.models.presets import PRESET_SEED, preset_config
from rlhf_gym.rewards.learned import reward_head
from rlhf_gym.seeding import derived_seed


def build_reward_model(
    name: str, tokenizer: PreTrainedTokenizerBase | None = None, *, seed: int = 0
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A fresh reward model (``num_labels=1``) from a preset name, ``"smollm2-135m"``, an HF id
    or a path, with its tokenizer. The head is drawn with std ``1/sqrt(hidden + 1)``, bias 0."""
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(name)
    if name in PRESETS:
        model = _preset_reward_model(name, tokenizer)
    else:
        model = load_pretrained(name, AutoModelForSequenceClassification, num_labels=1)
    model.config.pad_token_id = pad_token_id(tokenizer)  # HF's forward finds the last token by it
    _init_head(reward_head(model), seed)
    return model.eval(), tokenizer


def _preset_reward_model(
    name: str, tokenizer: PreTrainedTokenizerBase
) -> LlamaForSequenceClassification:
    """The preset's trunk, the same for every seed; the global torch RNG is left untouched."""
    config = preset_config(name, tokenizer)
    config.num_labels = 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(PRESET_SEED)
        return LlamaForSequenceClassification(config)


def _init_head(head: nn.Linear, seed: int) -> None:
    generator = torch.Generator().manual_seed(derived_seed(seed, "reward-head-init"))
    std = 1.0 / math.sqrt(head.in_features + 1)
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=generator) * std)
        if head.bias is not None:
            head.bias.zero_()
