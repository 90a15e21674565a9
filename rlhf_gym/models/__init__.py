"""Loading policies and tokenizers: presets, the bundled SmolLM2 GGUF, HF ids and local paths."""

from typing import TYPE_CHECKING

from rlhf_gym.lazy import lazy_exports

if TYPE_CHECKING:
    from rlhf_gym.models.freezing import freeze_lower_layers, trainable_parameter_count
    from rlhf_gym.models.loading import (
        layer_count,
        layer_stack,
        load_model,
        load_model_and_tokenizer,
        load_pretrained,
        load_tokenizer,
        model_names,
        pad_token_id,
        transformer_layers,
    )
    from rlhf_gym.models.presets import PRESETS, build_preset_model

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "freeze_lower_layers": "rlhf_gym.models.freezing",
        "trainable_parameter_count": "rlhf_gym.models.freezing",
        "layer_count": "rlhf_gym.models.loading",
        "layer_stack": "rlhf_gym.models.loading",
        "load_model": "rlhf_gym.models.loading",
        "load_model_and_tokenizer": "rlhf_gym.models.loading",
        "load_pretrained": "rlhf_gym.models.loading",
        "load_tokenizer": "rlhf_gym.models.loading",
        "model_names": "rlhf_gym.models.loading",
        "pad_token_id": "rlhf_gym.models.loading",
        "transformer_layers": "rlhf_gym.models.loading",
        "PRESETS": "rlhf_gym.models.presets",
        "build_preset_model": "rlhf_gym.models.presets",
    },
)

__all__ = [
    "PRESETS",
    "build_preset_model",
    "freeze_lower_layers",
    "layer_count",
    "layer_stack",
    "load_model",
    "load_model_and_tokenizer",
    "load_pretrained",
    "load_tokenizer",
    "model_names",
    "pad_token_id",
    "trainable_parameter_count",
    "transformer_layers",
]
