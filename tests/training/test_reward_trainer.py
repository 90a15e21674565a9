import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_gym.preferences import PreferencePair
from rlhf_gym.rewards import LearnedRewardModel
from rlhf_gym.training import (
    RewardConfig,
    RewardModelTrainer,
    bradley_terry_loss,
    pairwise_accuracy,
)

POSITIVE = ["great", "wonderful", "lovely", "amazing", "good", "superb"]
NEGATIVE = ["awful", "bad", "terrible", "boring", "poor", "dreadful"]
PAIRS = [
    PreferencePair(f"Review {i}:", f" it was {p}.", f" it was {n}.")
    for i in range(8)
    for p, n in zip(POSITIVE, NEGATIVE, strict=True)
]


def test_loss_matches_hand_computed_values():
    chosen, rejected = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    expected = (math.log1p(math.exp(-1.0)) + math.log1p(math.exp(2.0))) / 2
    assert bradley_terry_loss(chosen, rejected).item() == pytest.approx(expected, rel=1e-6)
    margin = torch.tensor([0.5, 0.0])
    with_margin = (math.log1p(math.exp(-0.5)) + math.log1p(math.exp(2.0))) / 2
    assert bradley_terry_loss(chosen, rejected, margin).item() == pytest.approx(
        with_margin, rel=1e-6
    )
    centred = expected + 0.1 * ((1.0 + 0.0) ** 2 + (0.0 + 2.0) ** 2) / 2
    assert bradley_terry_loss(chosen, rejected, center_coefficient=0.1).item() == pytest.approx(
        centred, rel=1e-6
    )


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-20, 20), min_size=1, max_size=8), st.floats(-5, 5))
def test_loss_ignores_a_shared_offset_and_is_log2_at_ties(scores, offset):
    s = torch.tensor(scores, dtype=torch.float64)
    assert bradley_terry_loss(s + offset, s + offset).item() == pytest.approx(math.log(2))
    other = s.flip(0)
    assert bradley_terry_loss(s + offset, other + offset).item() == pytest.approx(
        bradley_terry_loss(s, other).item(), abs=1e-9
    )


def test_pairwise_accuracy_counts_ties_as_half():
    assert (
        pairwise_accuracy(np.array([1.0, 0.0, 2.0, 1.0]), np.array([0.0, 1.0, 2.0, 0.5])) == 0.625
    )


def _changed(before, model):
    return {name: not torch.equal(before[name], p) for name, p in model.named_parameters()}


def test_every_trainable_parameter_changes_after_a_step():
    trainer = RewardModelTrainer(
        "tiny", RewardConfig(num_train_epochs=1, batch_size=len(PAIRS)), PAIRS
    )
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    changed = _changed(before, trainer.model)
    assert all(changed.values()), [n for n, c in changed.items() if not c]


def test_frozen_trunk_trains_the_head_only():
    args = RewardConfig(
        num_train_epochs=1, batch_size=len(PAIRS), freeze_trunk=True, learning_rate=1e-2
    )
    trainer = RewardModelTrainer("tiny", args, PAIRS)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    changed = _changed(before, trainer.model)
    assert changed["score.weight"]
    assert not any(c for n, c in changed.items() if not n.startswith("score."))


def test_trainable_layers_train_the_top_layers_final_norm_and_head_only():
    args = RewardConfig(num_train_epochs=1, batch_size=len(PAIRS), trainable_layers=1)
    trainer = RewardModelTrainer("tiny", args, PAIRS)  # tiny has 2 decoder layers
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    changed = _changed(before, trainer.model)
    trained = [n for n, c in changed.items() if c]
    assert trained and all(
        n.startswith(("model.layers.1.", "model.norm.", "score.")) for n in trained
    )
    assert {
        n for n in changed if n.startswith(("model.layers.1.", "model.norm.", "score."))
    } == set(trained)


def test_trainable_layers_score_as_the_saved_whole_model(tmp_path):
    args = RewardConfig(num_train_epochs=2, batch_size=16, trainable_layers=1, learning_rate=3e-3)
    trainer = RewardModelTrainer("tiny", args, PAIRS[:36], PAIRS[36:])
    trainer.train()
    texts = [p.prompt + r for p in PAIRS[36:] for r in (p.chosen, p.rejected)]
    with torch.no_grad():
        cached = trainer._scorer(texts)  # top layers on cached lower-layer outputs
    trainer.save_pretrained(tmp_path / "rm")
    loaded = LearnedRewardModel.from_pretrained(tmp_path / "rm")
    whole = loaded(
        [p.prompt for p in PAIRS[36:] for _ in range(2)],
        [r for p in PAIRS[36:] for r in (p.chosen, p.rejected)],
    )
    np.testing.assert_allclose(cached.numpy(), whole, atol=1e-5)


def test_trainable_layers_beyond_the_model_raise():
    with pytest.raises(ValueError, match="trainable_layers=3 but the model has 2"):
        RewardModelTrainer("tiny", RewardConfig(trainable_layers=3), PAIRS)


@pytest.mark.parametrize(
    ("freeze_trunk", "trainable_layers", "epochs", "lr"),
    [(False, None, 4, 1e-3), (False, 1, 6, 3e-3), (True, None, 60, 3e-2)],
)
def test_learns_a_held_out_preference(freeze_trunk, trainable_layers, epochs, lr):
    args = RewardConfig(
        num_train_epochs=epochs,
        learning_rate=lr,
        batch_size=16,
        freeze_trunk=freeze_trunk,
        trainable_layers=trainable_layers,
    )
    trainer = RewardModelTrainer("tiny", args, PAIRS[:36], PAIRS[36:])
    start = trainer.evaluate()
    history = trainer.train()
    assert history[-1]["eval_loss"] < start["eval_loss"]
    assert history[-1]["eval_accuracy"] >= 0.9


def test_save_and_load_give_identical_scores(tmp_path):
    trainer = RewardModelTrainer("tiny", RewardConfig(num_train_epochs=1), PAIRS)
    trainer.train()
    trainer.normalize(["Review:"] * 4, [" good", " bad", " fine", " so-so"])
    trainer.save_pretrained(tmp_path / "rm")
    loaded = LearnedRewardModel.from_pretrained(tmp_path / "rm")
    prompts, texts = ["a", "b", "c"], [" it was great.", " it was awful.", ""]
    np.testing.assert_array_equal(trainer.reward_model()(prompts, texts), loaded(prompts, texts))
    assert loaded.normalization == trainer.reward_model().normalization != (0.0, 1.0)


def test_normalization_gives_mean_zero_std_one_on_the_reference_samples():
    trainer = RewardModelTrainer("tiny", RewardConfig(num_train_epochs=1), PAIRS)
    prompts = [p.prompt for p in PAIRS]
    completions = [p.chosen for p in PAIRS]
    trainer.normalize(prompts, completions)
    scores = trainer.reward_model()(prompts, completions)
    assert abs(scores.mean()) < 1e-4 and abs(scores.std() - 1) < 1e-4


def test_rank_orders_responses_best_first():
    trainer = RewardModelTrainer(
        "tiny", RewardConfig(num_train_epochs=4, learning_rate=1e-3), PAIRS
    )
    trainer.train()
    assert trainer.rank("Review 9:", [" it was awful.", " it was great.", " it was poor."])[0] == 1


def test_early_stopping_stops_and_restores_the_best_epoch():
    # Labels flipped on the held-out set: held-out loss rises as training goes on.
    flipped = [PreferencePair(p.prompt, p.rejected, p.chosen) for p in PAIRS[36:]]
    args = RewardConfig(num_train_epochs=10, learning_rate=1e-3, early_stopping_patience=1)
    trainer = RewardModelTrainer("tiny", args, PAIRS[:36], flipped)
    history = trainer.train()
    assert len(history) < 10
    best = min(record["eval_loss"] for record in history)
    assert trainer.evaluate()["eval_loss"] == pytest.approx(best, rel=1e-5)


def test_early_stopping_on_accuracy_restores_the_most_accurate_epoch():
    args = RewardConfig(
        num_train_epochs=6, learning_rate=1e-3, batch_size=8, early_stopping_patience=6,
        early_stopping_metric="accuracy",
    )  # fmt: skip
    trainer = RewardModelTrainer("tiny", args, PAIRS[:36], PAIRS[36:])
    history = trainer.train()
    best = max(record["eval_accuracy"] for record in history)
    assert trainer.evaluate()["eval_accuracy"] == pytest.approx(best)
    first_best = next(r for r in history if r["eval_accuracy"] == best)
    assert trainer.evaluate()["eval_loss"] == pytest.approx(first_best["eval_loss"], rel=1e-5)


def test_margin_is_used_when_asked():
    with_margin = [PreferencePair(p.prompt, p.chosen, p.rejected, margin=3.0) for p in PAIRS[:4]]
    plain = RewardModelTrainer("tiny", RewardConfig(), with_margin)
    margined = RewardModelTrainer("tiny", RewardConfig(use_margin=True), with_margin)
    assert margined.evaluate(with_margin)["eval_loss"] > plain.evaluate(with_margin)["eval_loss"]


def test_bad_inputs_raise(tiny_model):
    with pytest.raises(ValueError, match="train_dataset is empty"):
        RewardModelTrainer("tiny", RewardConfig(), [])
    with pytest.raises(ValueError, match="early_stopping_patience needs an eval_dataset"):
        RewardModelTrainer("tiny", RewardConfig(early_stopping_patience=2), PAIRS)
    with pytest.raises(TypeError, match=r"train_dataset\[0\] is a tuple"):
        RewardModelTrainer("tiny", RewardConfig(), [("p", "a", "b")])
    with pytest.raises(ValueError, match="pass the model's tokenizer"):
        RewardModelTrainer(tiny_model, RewardConfig(), PAIRS)


@pytest.mark.parametrize(
    "setting", [{}, {"freeze_trunk": True}, {"trainable_layers": 1}], ids=["whole", "head", "top"]
)
def test_evaluate_scores_unseen_pairs_as_the_trained_predictor(setting):
    args = RewardConfig(num_train_epochs=1, batch_size=16, learning_rate=3e-3, **setting)
    trainer = RewardModelTrainer("tiny", args, PAIRS[:36])
    trainer.train()
    unseen = [PreferencePair("Film:", " a joy.", " a bore."), PreferencePair("Meal:", " ok", " x")]
    predictor = trainer.reward_model()
    prompts = [p.prompt for p in unseen]
    chosen = torch.from_numpy(predictor(prompts, [p.chosen for p in unseen]))
    rejected = torch.from_numpy(predictor(prompts, [p.rejected for p in unseen]))
    expected = bradley_terry_loss(chosen, rejected).item()
    assert trainer.evaluate(unseen)["eval_loss"] == pytest.approx(expected, abs=1e-5)


def test_early_stopping_restores_the_best_head_of_a_frozen_trunk():
    flipped = [PreferencePair(p.prompt, p.rejected, p.chosen) for p in PAIRS[36:]]
    args = RewardConfig(
        num_train_epochs=20, learning_rate=3e-2, batch_size=8, freeze_trunk=True,
        early_stopping_patience=2,
    )  # fmt: skip
    trainer = RewardModelTrainer("tiny", args, PAIRS[:36], flipped)
    history = trainer.train()
    assert len(history) < 20
    best = min(record["eval_loss"] for record in history)
    assert trainer.evaluate()["eval_loss"] == pytest.approx(best, rel=1e-6)
