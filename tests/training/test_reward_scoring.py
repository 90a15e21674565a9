import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2ForSequenceClassification

from rlhf_gym.rewards import LearnedRewardModel
from rlhf_gym.training import RewardConfig, build_reward_model
from rlhf_gym.training.reward_scoring import (
    HeadOnlyScorer,
    TopLayersScorer,
    WholeModelScorer,
    make_scorer,
)

# Lengths differ (so chunks pad), one text repeats, one is empty, one is cut by max_length.
TEXTS = [
    "Review 1: it was great.",
    "Review 2: it was awful.",
    "",
    "Review 1: it was great.",
    "ok",
    "Review 3: a long long long long long long long text, cut to its end.",
    "Review 4: it was fine, I suppose, all things considered.",
]
UNSEEN = ["Review 5: never prepared.", "Review 1: it was great."]
CACHED = [
    pytest.param({"freeze_trunk": True}, id="head-only"),
    pytest.param({"trainable_layers": 1}, id="top-1-layer"),
    pytest.param({"trainable_layers": 2}, id="top-2-layers"),
]


def _args(**kwargs) -> RewardConfig:
    return RewardConfig(max_length=12, eval_batch_size=3, **kwargs)


@pytest.fixture
def reward_model():
    return build_reward_model("tiny", seed=1)


def test_the_whole_model_scores_as_the_reward_predictor(reward_model):
    model, tokenizer = reward_model
    scorer = WholeModelScorer(model, tokenizer, _args())
    with torch.no_grad():
        scores = scorer(TEXTS).numpy()
    predictor = LearnedRewardModel(model, tokenizer, batch_size=2, max_length=12)
    np.testing.assert_allclose(scores, predictor.raw_scores(TEXTS), atol=1e-5)


@pytest.mark.parametrize("setting", CACHED)
def test_cached_scorers_score_as_the_whole_model(reward_model, setting):
    model, tokenizer = reward_model
    with torch.no_grad():
        whole = WholeModelScorer(model, tokenizer, _args())(TEXTS + UNSEEN)
    scorer = make_scorer(model, tokenizer, _args(**setting))
    scorer.prepare(TEXTS)
    with torch.no_grad():
        cached = scorer(TEXTS + UNSEEN)  # the unseen text is prepared on the way
    torch.testing.assert_close(cached, whole, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("setting", CACHED)
def test_cached_scorers_give_the_whole_model_gradients_of_what_they_train(reward_model, setting):
    model, tokenizer = reward_model
    scorer = make_scorer(model, tokenizer, _args(**setting))
    trained = {name: p for name, p in model.named_parameters() if p.requires_grad}
    weights = torch.linspace(-1.0, 1.0, len(TEXTS))

    def gradients(score) -> dict[str, torch.Tensor]:
        model.zero_grad(set_to_none=True)
        (weights * score(TEXTS)).sum().backward()
        return {name: p.grad.clone() for name, p in trained.items()}

    cached = gradients(scorer)
    model.requires_grad_(True)
    whole = gradients(WholeModelScorer(model, tokenizer, _args()))
    for name in trained:
        torch.testing.assert_close(cached[name], whole[name], atol=1e-5, rtol=1e-4, msg=name)


def test_head_only_trains_the_head_alone(reward_model):
    model, tokenizer = reward_model
    HeadOnlyScorer(model, tokenizer, _args(freeze_trunk=True))
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["score.weight"]


def test_top_layers_train_the_top_layers_final_norm_and_head(reward_model):
    model, tokenizer = reward_model
    TopLayersScorer(model, tokenizer, _args(trainable_layers=1))
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    expected = {
        n for n, _ in model.named_parameters() if n.startswith(("model.layers.1.", "model.norm."))
    }
    assert trained == expected | {"score.weight"}


@pytest.mark.parametrize("setting", CACHED)
def test_cached_scorers_run_the_frozen_part_once_per_distinct_text(reward_model, setting):
    model, tokenizer = reward_model
    rows_seen = []  # rows through the embedding, the start of every frozen part
    model.get_input_embeddings().register_forward_hook(
        lambda _module, args, _output: rows_seen.append(args[0].shape[0])
    )
    scorer = make_scorer(model, tokenizer, _args(**setting))
    scorer.prepare(TEXTS)
    scorer.prepare(TEXTS)
    first_pass = sum(rows_seen)
    scorer(TEXTS)
    assert sum(rows_seen) == first_pass
    scorer(UNSEEN)
    assert sum(rows_seen) == first_pass + 1  # only the new text


def test_top_layers_refuse_a_trunk_that_cannot_run_from_cached_layers(tiny_tokenizer):
    # GPT-2 adds position embeddings to inputs_embeds, so the cached path would add them twice.
    config = GPT2Config(vocab_size=len(tiny_tokenizer), n_embd=32, n_layer=2, n_head=2)
    config.num_labels, config.pad_token_id = 1, tiny_tokenizer.pad_token_id
    scorer = TopLayersScorer(
        GPT2ForSequenceClassification(config), tiny_tokenizer, _args(trainable_layers=1)
    )
    with pytest.raises(ValueError, match="not supported for GPT2ForSequenceClassification"):
        scorer.prepare(TEXTS)


def test_make_scorer_follows_the_config(reward_model):
    model, tokenizer = reward_model
    assert type(make_scorer(model, tokenizer, _args())) is WholeModelScorer
    assert type(make_scorer(model, tokenizer, _args(freeze_trunk=True))) is HeadOnlyScorer
    assert type(make_scorer(model, tokenizer, _args(trainable_layers=1))) is TopLayersScorer
