import pytest
import torch

from rlhf_gym.models import load_model
from rlhf_gym.training import build_reward_model


def _trunk(model) -> dict[str, torch.Tensor]:
    return {n: p for n, p in model.named_parameters() if not n.startswith("score.")}


def test_a_preset_trunk_is_the_same_for_every_seed_and_the_head_follows_the_seed():
    first, _ = build_reward_model("tiny", seed=0)
    again, _ = build_reward_model("tiny", seed=0)
    other, _ = build_reward_model("tiny", seed=1)
    for name, param in _trunk(first).items():
        assert torch.equal(param, _trunk(other)[name]), name
    assert torch.equal(first.score.weight, again.score.weight)
    assert not torch.equal(first.score.weight, other.score.weight)


def test_building_leaves_the_global_torch_rng_alone():
    state = torch.random.get_rng_state()
    build_reward_model("tiny", seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_a_saved_causal_lm_becomes_the_trunk_of_a_reward_model(tmp_path, tiny_tokenizer):
    policy = load_model("tiny", tiny_tokenizer)
    with torch.no_grad():
        policy.model.norm.weight.fill_(0.5)  # not the preset's value: the weights were read
    policy.save_pretrained(tmp_path / "policy")
    model, _ = build_reward_model(str(tmp_path / "policy"), tiny_tokenizer, seed=2)
    for name, param in policy.model.named_parameters():
        assert torch.equal(model.model.get_parameter(name), param), name
    fresh, _ = build_reward_model("tiny", seed=2)
    assert torch.equal(model.score.weight, fresh.score.weight)  # the head follows the seed
    assert model.config.pad_token_id == tiny_tokenizer.pad_token_id
    assert not model.training


def test_a_directory_without_a_model_names_the_directory(tmp_path, tiny_tokenizer):
    with pytest.raises(OSError, match=r"could not load model .* as a local directory"):
        build_reward_model(str(tmp_path), tiny_tokenizer)
