"""TextEpisode, PromptEncoder and score_texts on their own: the rules both envs share."""

from __future__ import annotations

import numpy as np
import pytest
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit
from transformers import PreTrainedTokenizerFast

from rlhf_gym.envs.episode import EpisodeConfig, PromptEncoder, TextEpisode, score_texts

NON_EOS = 300
PROMPT = "The film opened with"


@pytest.fixture
def config(tiny_tokenizer) -> EpisodeConfig:
    return EpisodeConfig(
        tiny_tokenizer, max_prompt_tokens=8, max_new_tokens=3, missing_eos_penalty=0.25
    )


@pytest.fixture
def episode(config, tiny_tokenizer) -> TextEpisode:
    episode = TextEpisode(config)
    episode.start(tiny_tokenizer(PROMPT)["input_ids"], PROMPT)
    return episode


def _step(episode: TextEpisode, token: int):
    planned = episode.plan(token)
    texts = episode.texts(planned)
    episode.commit(planned)
    return planned, texts


def test_a_step_appends_its_token_at_the_end_of_the_window(episode, tiny_tokenizer):
    prompt_ids = tiny_tokenizer(PROMPT)["input_ids"]
    planned, _ = _step(episode, NON_EOS)
    assert not planned.ends and not episode.done
    window = episode.observation()
    assert window["input_ids"][-len(prompt_ids) - 1 :].tolist() == [*prompt_ids, NON_EOS]
    assert window["attention_mask"].sum() == len(prompt_ids) + 1
    assert window["attention_mask"][: -len(prompt_ids) - 1].sum() == 0  # padding stays left
    assert episode.completion_ids == (NON_EOS,)
    assert episode.completion == tiny_tokenizer.decode([NON_EOS])


def test_eos_ends_the_episode_and_is_not_scored_text(episode, config, tiny_tokenizer):
    _step(episode, NON_EOS)
    planned, (prompt, completion) = _step(episode, config.eos_token_id)
    assert planned.ends and planned.eos and episode.done
    assert (prompt, completion) == (PROMPT, tiny_tokenizer.decode([NON_EOS]))
    reward, terminated, truncated, info = episode.outcome(0.5, prompt, completion)
    assert (reward, terminated, truncated) == (0.5, True, False)  # no penalty with EOS
    assert info == {
        "prompt": PROMPT,
        "completion": completion,
        "score": 0.5,
        "eos": True,
        "num_new_tokens": 2,
    }


def test_the_length_budget_ends_it_with_the_last_token_scored_and_penalised(
    episode, tiny_tokenizer
):
    for _ in range(2):
        assert not _step(episode, NON_EOS)[0].ends
    planned, (_, completion) = _step(episode, 17)
    assert planned.ends and not planned.eos and episode.done
    assert completion == tiny_tokenizer.decode([NON_EOS, NON_EOS, 17])
    reward, terminated, truncated, info = episode.outcome(1.0, PROMPT, completion)
    assert (reward, terminated, truncated) == (0.75, True, True)
    assert info["eos"] is False and info["num_new_tokens"] == 3


def test_plan_changes_nothing_and_refuses_bad_actions_and_states(config, tiny_tokenizer):
    episode = TextEpisode(config)
    with pytest.raises(RuntimeError, match="before reset"):
        episode.plan(NON_EOS)
    assert not episode.started
    episode.start(tiny_tokenizer(PROMPT)["input_ids"], PROMPT)
    before = episode.observation()
    episode.plan(config.eos_token_id)  # planned, never committed
    with pytest.raises(ValueError, match="action 1024 is outside the vocabulary of size 1024"):
        episode.plan(1024)
    np.testing.assert_array_equal(episode.observation()["input_ids"], before["input_ids"])
    assert episode.completion_ids == () and not episode.done
    _step(episode, config.eos_token_id)
    with pytest.raises(RuntimeError, match="after the episode ended"):
        episode.plan(NON_EOS)


def test_outcome_before_the_end_is_refused(episode):
    _step(episode, NON_EOS)
    with pytest.raises(RuntimeError, match="before the episode ended"):
        episode.outcome(0.0, PROMPT, "")


def test_start_begins_afresh_and_refuses_ids_outside_the_budget(episode, config):
    _step(episode, NON_EOS)
    episode.start([5, 6], "five six")
    window = episode.observation()
    assert window["input_ids"][-2:].tolist() == [5, 6] and window["attention_mask"].sum() == 2
    assert (episode.prompt, episode.completion_ids, episode.done) == ("five six", (), False)
    for ids in ([], list(range(9))):
        with pytest.raises(ValueError, match="expected 1 to max_prompt_tokens=8"):
            episode.start(ids, "x")
    assert episode.prompt == "five six"  # the refused starts changed nothing


def test_use_buffers_keeps_the_window_in_the_given_rows(episode, config):
    batch = np.zeros((2, config.sequence_length), dtype=np.int64)
    masks = np.zeros_like(batch)
    before = episode.observation()
    episode.use_buffers(batch[1], masks[1])
    np.testing.assert_array_equal(batch[1], before["input_ids"])  # the window moved in
    _step(episode, NON_EOS)
    assert batch[1, -1] == NON_EOS and masks[1, -1] == 1
    assert not batch[0].any()  # the other row is untouched
    with pytest.raises(ValueError, match=r"input_ids buffer has shape \(4,\)"):
        episode.use_buffers(np.zeros(4, np.int64), masks[0])


def test_a_tokenizer_without_eos_is_refused():
    backend = Tokenizer(WordLevel({"<pad>": 0, "a": 1}, unk_token="<pad>"))
    backend.pre_tokenizer = WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>")
    with pytest.raises(ValueError, match="no EOS token"):
        EpisodeConfig(tokenizer, max_prompt_tokens=4, max_new_tokens=2)


def test_prompt_encoder_tokenizes_a_listed_prompt_once(counting_tokenizer, tiny_tokenizer):
    counting = counting_tokenizer
    encoder = PromptEncoder(counting, max_prompt_tokens=8)
    first = encoder.encode_listed(PROMPT)
    assert encoder.encode_listed(PROMPT) == first == (tiny_tokenizer(PROMPT)["input_ids"], PROMPT)
    assert counting.encoded == [PROMPT]
    encoder.encode(PROMPT)  # a given (not listed) prompt is always tokenized
    assert counting.encoded == [PROMPT, PROMPT]


def test_prompt_encoder_cuts_long_prompts_from_the_left_with_a_warning_every_time(
    tiny_tokenizer,
):
    long_prompt = " ".join(["word"] * 30) + " the end"
    encoder = PromptEncoder(tiny_tokenizer, max_prompt_tokens=4)
    for _ in range(2):  # a cut prompt is not cached, so it warns at every use
        with pytest.warns(UserWarning, match="longer than max_prompt_tokens=4"):
            ids, text = encoder.encode_listed(long_prompt)
        assert ids == tiny_tokenizer(long_prompt)["input_ids"][-4:]
        assert long_prompt.endswith(text) and text.endswith("the end")


def test_score_texts_makes_one_call_for_a_batch_and_none_for_nothing():
    calls = []

    def predictor(prompts, completions):
        calls.append((prompts, completions))
        return [len(c) for c in completions]

    scores = score_texts(predictor, [("p", "ab"), ("q", "abc")])
    assert scores.dtype == np.float32 and scores.tolist() == [2.0, 3.0]
    assert calls == [(["p", "q"], ["ab", "abc"])]
    assert score_texts(predictor, []).shape == (0,) and len(calls) == 1
    with pytest.raises(ValueError, match=r"shape \(2,\) for 1 completions"):
        score_texts(lambda prompts, completions: [0.0, 1.0], [("p", "c")])
