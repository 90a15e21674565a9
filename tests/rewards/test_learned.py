import time

import numpy as np
import pytest
import torch

from rlhf_gym.rewards import LearnedRewardModel, make_reward_predictor
from rlhf_gym.rewards.learned import encode_texts
from rlhf_gym.training import build_reward_model


@pytest.fixture(scope="module")
def reward_model():
    model, tokenizer = build_reward_model("tiny")
    return LearnedRewardModel(model, tokenizer, batch_size=3, max_length=64)


def test_scores_do_not_depend_on_batching_or_padding(reward_model):
    prompts = ["A", "The film", "My long day at the office was", "x"]
    completions = [" ok", " was good", "", " and then it rained for days and days"]
    batched = reward_model(prompts, completions)
    single = np.concatenate(
        [reward_model([p], [c]) for p, c in zip(prompts, completions, strict=True)]
    )
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert batched.dtype == np.float32 and batched.shape == (4,)


def test_score_is_read_at_the_last_real_token_even_if_it_equals_pad(reward_model):
    tokenizer = reward_model.tokenizer
    ids, mask = encode_texts(tokenizer, ["a", "a longer text here"], max_length=64)
    assert mask[0].sum() < mask[1].sum()
    assert (ids[0][mask[0] == 0] == tokenizer.pad_token_id).all()


def test_long_texts_keep_their_end(reward_model):
    ids, mask = encode_texts(reward_model.tokenizer, ["word " * 100 + "end"], max_length=8)
    assert ids.shape == (1, 8) and mask.all()
    assert reward_model.tokenizer.decode(ids[0]).endswith("end")


def test_scoring_runs_without_grad_with_dropout_off_and_restores_the_train_flag(reward_model):
    reward_model.model.train()
    seen = []
    hook = reward_model.model.base_model.register_forward_hook(
        lambda module, args, out: seen.append((module.training, torch.is_grad_enabled()))
    )
    try:
        reward_model(["p"], ["c"])
    finally:
        hook.remove()
    assert seen == [(False, False)]
    assert reward_model.model.training
    reward_model.model.eval()


def test_rank_sorts_by_score(reward_model):
    responses = [" a", " bb", " ccc", " dddd"]
    scores = reward_model(["p"] * 4, responses)
    assert reward_model.rank("p", responses) == list(np.argsort(-scores, kind="stable"))


def test_bad_inputs_raise(reward_model, tmp_path, tiny_model, tiny_tokenizer):
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        reward_model(["a", "b"], ["c"])
    with pytest.raises(FileNotFoundError, match="no reward model at"):
        LearnedRewardModel.from_pretrained(tmp_path / "missing")
    with pytest.raises(TypeError, match="no linear head"):
        LearnedRewardModel(tiny_model.model, tiny_tokenizer)
    with pytest.raises(ValueError, match="distinct scores"):
        reward_model.fit_normalization(["p"], ["c"])


def test_shipped_sentiment_model_loads_fast_and_prefers_positive_text():
    start = time.perf_counter()
    rm = make_reward_predictor("sentiment-rm")
    assert time.perf_counter() - start < 1.0
    scores = rm(
        ["The hotel room on the fourth floor"] * 2,
        [
            " was wonderful, clean and lovely. We loved it!",
            " was awful, dirty and terrible. We hated it.",
        ],
    )
    assert scores[0] > scores[1]


def test_a_saved_reward_model_directory_is_a_reward_predictor_spec(reward_model, tmp_path):
    reward_model.save_pretrained(tmp_path / "rm")
    loaded = make_reward_predictor(str(tmp_path / "rm"), batch_size=2)
    assert isinstance(loaded, LearnedRewardModel) and loaded.batch_size == 2
    prompts, completions = ["a", "b", "c"], [" good", " bad", ""]
    np.testing.assert_allclose(
        loaded(prompts, completions), reward_model(prompts, completions), rtol=1e-5
    )
