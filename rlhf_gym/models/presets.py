"""Small Llama-shaped models built from config with the project's own offline tokenizer.

They are for tests and fast benchmarks: the weights are randomly initialised from a fixed seed,
so the same preset is the same model on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the table below is read by configs that must not pay for transformers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast


@dataclass(frozen=True)
class Preset:
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_positions: int = 512


PRESETS: dict[str, Preset] = {
    "tiny": Preset(hidden_size=64, num_layers=2, num_heads=4, intermediate_size=256),
    "small": Preset(hidden_size=512, num_layers=6, num_heads=8, intermediate_size=1536),
}
PRESET_SEED = 1234


def tiny_tokenizer_path() -> str:
    """Directory of the byte-level BPE tokenizer shared by all presets (shipped as data)."""
    return str(files("rlhf_gym.models").joinpath("tiny_tokenizer"))


def load_preset_tokenizer() -> PreTrainedTokenizerFast:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(tiny_tokenizer_path())


def preset_config(name: str, tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
    from transformers import LlamaConfig

    preset = PRESETS[name]
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=preset.hidden_size,
        intermediate_size=preset.intermediate_size,
        num_hidden_layers=preset.num_layers,
        num_attention_heads=preset.num_heads,
        num_key_value_heads=preset.num_heads,
        max_position_embeddings=preset.max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        attention_dropout=0.0,
    )


def build_preset_model(name: str, tokenizer: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    """A freshly initialised preset model; the global torch RNG is left untouched."""
    import torch
    from transformers import LlamaForCausalLM

    config = preset_config(name, tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(PRESET_SEED)
        return LlamaForCausalLM(config)
