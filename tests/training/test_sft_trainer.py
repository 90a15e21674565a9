import copy

import pytest
import torch

from rlhf_gym.training.sft_config import SFTConfig
from rlhf_gym.training.sft_trainer import SFTTrainer, as_pairs, sft_loss

DEMOS = [
    {"prompt": "The pasta at this place", "completion": "was wonderful and fresh."},
    {"prompt": "My new headphones", "completion": "sound great and feel light."},
    {"prompt": "The hotel room", "completion": "was clean and quiet."},
    {"prompt": "This board game", "completion": "is fun for the whole family."},
]


def test_sft_loss_is_mean_masked_nll():
    logprobs = torch.tensor([[-1.0, -2.0, -3.0], [-4.0, -5.0, -6.0]])
    mask = torch.tensor([[0, 1, 1], [1, 0, 0]])
    assert sft_loss(logprobs, mask).item() == pytest.approx((2 + 3 + 4) / 3)
    with pytest.raises(ValueError, match="no token"):
        sft_loss(logprobs, torch.zeros_like(mask))


def test_sft_loss_divides_by_a_given_token_count():
    # this process's 3 tokens of a global batch of 9 over 2 processes: 4.5 a process
    logprobs = torch.tensor([[-1.0, -2.0, -3.0], [-4.0, -5.0, -6.0]])
    mask = torch.tensor([[0, 1, 1], [1, 0, 0]])
    assert sft_loss(logprobs, mask, num_tokens=torch.tensor(4.5)).item() == pytest.approx(2.0)


def test_training_lowers_loss_and_changes_every_parameter(tiny_model, tiny_tokenizer):
    model = copy.deepcopy(tiny_model)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer = SFTTrainer(
        model,
        SFTConfig(num_train_epochs=8, batch_size=4, learning_rate=3e-3),
        DEMOS,
        tiny_tokenizer,
    )
    nll_before = trainer.evaluate(DEMOS)
    history = trainer.train()
    assert trainer.evaluate(DEMOS) < nll_before - 0.5
    assert history[-1] < history[0]
    for name, param in model.named_parameters():
        assert not torch.equal(before[name], param), f"{name} did not change"
    assert not model.training  # left in eval mode: dropout off for what comes next


def test_completion_only_loss_ignores_the_prompt(tiny_model, tiny_tokenizer):
    config = SFTConfig(completion_only_loss=True)
    same_completion = [
        {"prompt": "alpha beta gamma", "completion": "the end"},
        {"prompt": "delta epsilon", "completion": "the end"},
    ]
    trainer = SFTTrainer(copy.deepcopy(tiny_model), config, same_completion, tiny_tokenizer)
    full = SFTTrainer(
        copy.deepcopy(tiny_model),
        SFTConfig(completion_only_loss=False),
        same_completion,
        tiny_tokenizer,
    )
    # With prompt tokens counted the loss covers more tokens, so the two differ.
    assert trainer.evaluate(same_completion) != pytest.approx(full.evaluate(same_completion))


def test_bad_inputs():
    with pytest.raises(ValueError, match="learning_rate"):
        SFTConfig(learning_rate=0)
    with pytest.raises(ValueError, match="max_length"):
        SFTConfig(max_length=1)
    with pytest.raises(ValueError, match="empty"):
        as_pairs([])
    with pytest.raises(ValueError, match="lacks"):
        as_pairs([{"prompt": "x"}])
    with pytest.raises(ValueError, match="empty completion"):
        as_pairs([("x", "  ")])
