"""An encoder (BERT-style) sequence classifier as a reward model with its own tokenizer:
scored as its own forward scores, trained, saved, loaded by directory and served."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

from rlhf_gym.preferences import PreferencePair
from rlhf_gym.rewards import LearnedRewardModel, make_reward_predictor
from rlhf_gym.training import RewardConfig, RewardModelTrainer

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
WORDS = ["the", "film", "movie", "plot", "was", "is", "good", "great", "fine", "bad", "awful"]
WORDS += ["dull", "and", "very", "a", "i"]


def wordpiece_tokenizer() -> PreTrainedTokenizerFast:
    """A BERT-style tokenizer over a tiny vocabulary, built offline."""
    vocab = {token: i for i, token in enumerate([*SPECIAL, *WORDS])}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]",
    )  # fmt: skip


@pytest.fixture
def encoder_dir(tmp_path):
    """A tiny BERT classifier (num_labels=1) and its tokenizer, saved like a downloaded model."""
    tokenizer = wordpiece_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, num_labels=1,
    )  # fmt: skip
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(tmp_path / "bert")
    tokenizer.save_pretrained(tmp_path / "bert")
    return tmp_path / "bert"


def pairs(count: int, offset: int = 0) -> list[PreferencePair]:
    good, bad = ["good", "great", "fine"], ["bad", "awful", "dull"]
    return [
        PreferencePair(
            f"the {'film' if i % 2 else 'movie'} was ",
            f"very {good[i % 3]} and {good[(i + 1) % 3]}",
            f"very {bad[i % 3]} and {bad[(i + 2) % 3]}",
        )
        for i in range(offset, offset + count)
    ]


def test_scores_are_the_encoders_own_logits(encoder_dir):
    """Pooling is the architecture's (the [CLS] token through BERT's pooler), not a last token."""
    predictor = LearnedRewardModel.from_pretrained(encoder_dir)
    texts = ["the film was good", "a very dull and awful plot", "i"]
    encoded = predictor.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        own = predictor.model(**encoded).logits[:, 0].numpy()
    np.testing.assert_allclose(predictor.raw_scores(texts), own, rtol=1e-5, atol=1e-6)


def test_a_text_cut_to_max_length_keeps_the_token_the_encoder_pools(encoder_dir):
    predictor = LearnedRewardModel.from_pretrained(encoder_dir, max_length=4)
    long_text = "the film was very good and very fine"
    ids = predictor.tokenizer(long_text)["input_ids"]
    kept = [ids[0], *ids[-3:]]  # [CLS] and the last three tokens ([SEP] among them)
    with torch.no_grad():
        own = predictor.model(input_ids=torch.tensor([kept])).logits[0, 0].item()
    assert predictor.raw_scores([long_text])[0] == pytest.approx(own, rel=1e-5)


@pytest.mark.parametrize("freeze_trunk", [False, True])
def test_the_trainer_learns_held_out_preferences_and_the_saved_model_serves(
    encoder_dir, tmp_path, freeze_trunk
):
    from fastapi.testclient import TestClient

    from rlhf_gym.commands.serve_reward import build_app

    args = RewardConfig(
        num_train_epochs=30, learning_rate=3e-3 if not freeze_trunk else 3e-2, batch_size=8,
        freeze_trunk=freeze_trunk, early_stopping_patience=None, progress_bar=False,
    )  # fmt: skip
    trainer = RewardModelTrainer(str(encoder_dir), args, pairs(24), pairs(12, offset=24))
    trainer.train()
    assert trainer.evaluate()["eval_accuracy"] == 1.0
    trainer.save_pretrained(tmp_path / "rm")
    predictor = make_reward_predictor(str(tmp_path / "rm"))  # a directory: loaded as a model
    held_out = pairs(12, offset=24)
    chosen = predictor([p.prompt for p in held_out], [p.chosen for p in held_out])
    rejected = predictor([p.prompt for p in held_out], [p.rejected for p in held_out])
    assert (chosen > rejected).all()
    body = {"prompts": [held_out[0].prompt], "completions": [held_out[0].chosen]}
    served = TestClient(build_app(predictor)).post("/score", json=body).json()["rewards"]
    assert served == pytest.approx([float(chosen[0])], rel=1e-5)


def test_top_layers_of_an_encoder_train_on_cached_states_and_score_as_the_whole_model(
    encoder_dir, tmp_path
):
    """trainable_layers=1 on a 2-layer BERT: the embeddings and layer 0 stay as loaded, the top
    layer, pooler and head change; the cached path scores as the saved whole model does."""
    args = RewardConfig(
        num_train_epochs=30, learning_rate=3e-3, batch_size=8, trainable_layers=1,
        early_stopping_patience=None, progress_bar=False,
    )  # fmt: skip
    trainer = RewardModelTrainer(str(encoder_dir), args, pairs(24), pairs(12, offset=24))
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    trainer.train()
    assert trainer.evaluate()["eval_accuracy"] == 1.0
    changed = {
        name.split(".")[1] if name.startswith("bert.") else name.split(".")[0]
        for name, p in trainer.model.named_parameters()
        if not torch.equal(p, before[name])
    }
    assert {"encoder", "pooler", "classifier"} <= changed and "embeddings" not in changed
    frozen_layer = trainer.model.bert.encoder.layer[0]
    assert all(
        torch.equal(p, before[f"bert.encoder.layer.0.{n}"])
        for n, p in frozen_layer.named_parameters()
    )

    trainer.save_pretrained(tmp_path / "rm")
    saved = LearnedRewardModel.from_pretrained(tmp_path / "rm")
    texts = [f"{p.prompt}{p.chosen}" for p in pairs(6, offset=24)]
    trainer.model.eval()  # no dropout draw in either path
    with torch.no_grad():
        cached = trainer._scorer(texts).numpy()  # top layer on the cached layer-0 output
    np.testing.assert_allclose(saved.raw_scores(texts), cached, rtol=1e-4, atol=1e-5)
