import copy
import math

import pytest
import torch

from rlhf_gym.training.dpo_config import DPOConfig
from rlhf_gym.training.dpo_trainer import DPOTrainer, as_triples, dpo_loss

PAIRS = [
    {
        "prompt": "The cafe on the corner",
        "chosen": "is lovely and warm.",
        "rejected": "is dirty and rude.",
    },
    {"prompt": "This phone", "chosen": "works great every day.", "rejected": "broke after a week."},
    {
        "prompt": "The concert",
        "chosen": "was a joy from start to end.",
        "rejected": "was loud and boring.",
    },
    {"prompt": "My new shoes", "chosen": "feel wonderful.", "rejected": "hurt my feet."},
]


def test_dpo_loss_against_hand_computed_values():
    loss, chosen, rejected = dpo_loss(
        torch.tensor([-1.0]),
        torch.tensor([-2.0]),
        torch.tensor([-1.5]),
        torch.tensor([-1.5]),
        beta=0.1,
    )
    assert chosen.item() == pytest.approx(0.05)
    assert rejected.item() == pytest.approx(-0.05)
    assert loss.item() == pytest.approx(math.log1p(math.exp(-0.1)), rel=1e-6)
    smoothed, _, _ = dpo_loss(
        torch.tensor([-1.0]),
        torch.tensor([-2.0]),
        torch.tensor([-1.5]),
        torch.tensor([-1.5]),
        0.1,
        0.2,
    )
    expected = 0.8 * math.log1p(math.exp(-0.1)) + 0.2 * math.log1p(math.exp(0.1))
    assert smoothed.item() == pytest.approx(expected, rel=1e-6)


def test_policy_equal_to_reference_gives_log_two(tiny_model, tiny_tokenizer):
    trainer = DPOTrainer(copy.deepcopy(tiny_model), tiny_model, DPOConfig(), PAIRS, tiny_tokenizer)
    loss, chosen, _ = trainer._losses(list(range(len(PAIRS))))
    torch.testing.assert_close(loss, torch.full_like(loss, math.log(2)), atol=1e-5, rtol=0)
    torch.testing.assert_close(chosen, torch.zeros_like(chosen), atol=1e-6, rtol=0)


def test_training_separates_chosen_from_rejected(tiny_model, tiny_tokenizer):
    policy = copy.deepcopy(tiny_model)
    reference_state = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    before = {name: p.detach().clone() for name, p in policy.named_parameters()}
    config = DPOConfig(num_train_epochs=10, batch_size=4, learning_rate=1e-3, beta=0.5)
    history = DPOTrainer(policy, tiny_model, config, PAIRS, tiny_tokenizer).train()
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["rewards/accuracies"] == 1.0
    assert history[-1]["rewards/margins"] > 0
    for name, param in policy.named_parameters():
        assert not torch.equal(before[name], param), f"{name} did not change"
    for key, value in tiny_model.state_dict().items():
        assert torch.equal(reference_state[key], value), f"reference {key} changed"


def test_freeze_layers_trains_only_the_top_layers(tiny_model, tiny_tokenizer):
    policy = copy.deepcopy(tiny_model)
    before = {name: p.detach().clone() for name, p in policy.named_parameters()}
    config = DPOConfig(num_train_epochs=2, batch_size=4, learning_rate=1e-3, freeze_layers=1)
    DPOTrainer(policy, tiny_model, config, PAIRS, tiny_tokenizer).train()
    changed = {n for n, p in policy.named_parameters() if not torch.equal(before[n], p)}
    frozen = {"model.embed_tokens.weight"} | {n for n in before if n.startswith("model.layers.0.")}
    assert changed == set(before) - frozen


def test_accepts_objects_with_attributes():
    class Pair:
        prompt, chosen, rejected = "p", "c", "r"

    assert as_triples([Pair()])[0].chosen == "c"


def test_bad_inputs():
    with pytest.raises(ValueError, match="beta"):
        DPOConfig(beta=0)
    with pytest.raises(ValueError, match="label_smoothing"):
        DPOConfig(label_smoothing=0.5)
    with pytest.raises(ValueError, match="empty"):
        as_triples([])
    with pytest.raises(ValueError, match="row 0"):
        as_triples([{"prompt": "p", "chosen": "c"}])
