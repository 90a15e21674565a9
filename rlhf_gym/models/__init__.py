"""Loading policies and tokenizers: presets, the bundled SmolLM2 GGUF, HF ids and local paths."""

from rlhf_gym.models.freezing import freeze_lower_layers, trainable_parameter_count
from rlhf_gym.models.loading import (
    decoder_layers,
    layer_count,
    load_model,
    load_model_and_tokenizer,
    load_tokenizer,
    model_names,
    pad_token_id,
)
from rlhf_gym.models.presets import PRESETS, build_preset_model

__all__ = [
    "PRESETS",
    "build_preset_model",
    "decoder_layers",
    "freeze_lower_layers",
    "layer_count",
    "load_model",
    "load_model_and_tokenizer",
    "load_tokenizer",
    "model_names",
    "pad_token_id",
    "trainable_parameter_count",
]
