"""A toy world small enough to solve exactly: a 6-token vocabulary and 1-2 token completions,
and its KL-regularised optimum in closed form (shared by TokenPPO's and the critic-free agents'
tests)."""

from __future__ import annotations

from dataclasses import dataclass

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


PROMPT_ID, EOS_ID = 5, 1


def completion_logprobs(model) -> dict[tuple[int, ...], float]:
    """log pi(y) of every possible completion of the prompt 'p': EOS first, or any two tokens."""
    vocab_size = len(TOY_VOCAB)
    with torch.no_grad():
        first = torch.log_softmax(model(torch.tensor([[PROMPT_ID]])).logits[0, -1], -1)
        pairs = torch.tensor([[PROMPT_ID, t] for t in range(vocab_size)])
        second = torch.log_softmax(model(pairs).logits[:, -1], -1)  # (V, V)
    out = {(EOS_ID,): float(first[EOS_ID])}
    for t1 in range(vocab_size):
        if t1 != EOS_ID:
            for t2 in range(vocab_size):
                out[(t1, t2)] = float(first[t1] + second[t1, t2])
    return out


@dataclass
class ToyBandit:
    """The toy world as a KL-regularised bandit over its completions, solved by enumeration.

    pi*(y) ∝ pi_ref(y) exp(r(y) / beta) maximises J(pi) = E_pi[r] - beta KL(pi || pi_ref), and
    J(pi*) = beta log E_ref[exp(r / beta)] (``best``).
    """

    beta: float
    ref: dict[tuple[int, ...], float]  # log pi_ref(y)
    rewards: dict[tuple[int, ...], float]

    @property
    def log_z(self) -> float:
        terms = torch.tensor([self.ref[y] + self.rewards[y] / self.beta for y in self.ref])
        return torch.logsumexp(terms, 0).item()

    @property
    def optimum(self) -> dict[tuple[int, ...], float]:
        return {y: self.ref[y] + self.rewards[y] / self.beta - self.log_z for y in self.ref}

    @property
    def best(self) -> float:
        return self.beta * self.log_z

    @staticmethod
    def logprobs(model) -> dict[tuple[int, ...], float]:
        """log pi(y) of every completion under ``model`` (:func:`completion_logprobs`)."""
        return completion_logprobs(model)

    @staticmethod
    def kl(logp: dict, other: dict) -> float:
        """KL(p || other) of two distributions over the completions, exactly."""
        return kl_divergence(logp, other)

    def objective(self, logp: dict) -> float:
        """J(pi) = E_pi[r] - beta KL(pi || pi_ref), exactly."""
        return sum(
            torch.tensor(lp).exp().item() * (self.rewards[y] - self.beta * (lp - self.ref[y]))
            for y, lp in logp.items()
        )


def kl_divergence(logp: dict, other: dict) -> float:
    """KL(p || other) of two distributions over the toy completions, exactly."""
    return sum(torch.tensor(lp).exp().item() * (lp - other[y]) for y, lp in logp.items())


@pytest.fixture
def toy_bandit(toy_model, toy_tokenizer):
    """A function of beta giving the :class:`ToyBandit` of the untrained toy model."""

    def make(beta: float) -> ToyBandit:
        ref = completion_logprobs(toy_model)
        rewards = {}
        for y in ref:
            text = toy_tokenizer.decode([t for t in y if t != EOS_ID], skip_special_tokens=True)
            rewards[y] = float(toy_reward(["p"], [text])[0])
        return ToyBandit(beta, ref, rewards)

    return make
