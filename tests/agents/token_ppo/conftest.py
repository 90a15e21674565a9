"""A toy world small enough to solve exactly: a 6-token vocabulary and 1-2 token completions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

TOY_VOCAB = {"<pad>": 0, "<eos>": 1, "a": 2, "b": 3, "c": 4, "p": 5}
TOY_WORD_REWARD = {"a": 1.0, "b": 0.25}


@pytest.fixture(scope="session")
def toy_tokenizer() -> PreTrainedTokenizerFast:
    backend = Tokenizer(WordLevel(TOY_VOCAB, unk_token="<pad>"))
    backend.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>")


def make_toy_model(seed: int = 0) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=len(TOY_VOCAB),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=16,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=None,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(config).eval()


def toy_reward(prompts, completions) -> np.ndarray:
    """Mean per-word reward of the completion: 'a' is worth 1, 'b' 0.25, the rest 0."""
    return np.asarray(
        [sum(TOY_WORD_REWARD.get(w, 0.0) for w in text.split()) / 2 for text in completions],
        dtype=np.float32,
    )


@pytest.fixture
def toy_model() -> LlamaForCausalLM:
    return make_toy_model()


@pytest.fixture
def toy_env_kwargs(toy_tokenizer) -> dict:
    """Env arguments of the toy world: one prompt, completions of at most 2 tokens."""
    return {
        "tokenizer": toy_tokenizer,
        "prompts": ["p"],
        "reward_predictor": toy_reward,
        "max_new_tokens": 2,
        "max_prompt_tokens": 2,
    }
