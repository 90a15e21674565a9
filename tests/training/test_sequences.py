import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_gym.training.sequences import (
    completion_token_logprobs,
    encode_pairs,
    sequence_logprobs,
)


def test_masks_mark_prompt_completion_and_eos(tiny_tokenizer):
    batch = encode_pairs(tiny_tokenizer, ["The film", "A"], ["was great", "b c d e"], max_length=32)
    for row, (prompt, completion) in enumerate([("The film", "was great"), ("A", "b c d e")]):
        n_prompt = len(tiny_tokenizer(prompt)["input_ids"])
        n_completion = len(tiny_tokenizer(completion, add_special_tokens=False)["input_ids"]) + 1
        assert batch.attention_mask[row].sum() == n_prompt + n_completion
        assert batch.completion_mask[row, :n_prompt].sum() == 0
        assert batch.completion_mask[row].sum() == n_completion
        last = n_prompt + n_completion - 1
        assert batch.input_ids[row, last] == tiny_tokenizer.eos_token_id
    # Right padding: every row starts at position 0.
    assert bool(batch.attention_mask[:, 0].all())


@settings(max_examples=25, deadline=None)
@given(
    prompt_words=st.integers(1, 30),
    completion_words=st.integers(1, 30),
    max_length=st.integers(4, 40),
)
def test_truncation_respects_budget_and_keeps_prompt_end(
    tiny_tokenizer, prompt_words, completion_words, max_length
):
    prompt = " ".join(f"p{i}" for i in range(prompt_words))
    completion = " ".join(f"c{i}" for i in range(completion_words))
    batch = encode_pairs(tiny_tokenizer, [prompt], [completion], max_length=max_length)
    assert batch.attention_mask.sum() <= max_length
    assert batch.completion_mask.sum() >= 1
    full_prompt = tiny_tokenizer(prompt)["input_ids"]
    kept_prompt = batch.input_ids[0, : int((batch.attention_mask - batch.completion_mask)[0].sum())]
    assert kept_prompt.tolist() == full_prompt[len(full_prompt) - len(kept_prompt) :]


def test_sequence_logprobs_do_not_depend_on_padding(tiny_tokenizer, tiny_model):
    pairs = [("The movie", "was a delight"), ("I bought this lamp and it", "broke")]
    together = sequence_logprobs(
        tiny_model, encode_pairs(tiny_tokenizer, *zip(*pairs, strict=True), 32)
    )
    alone = [
        sequence_logprobs(tiny_model, encode_pairs(tiny_tokenizer, [p], [c], 32)) for p, c in pairs
    ]
    torch.testing.assert_close(together, torch.cat(alone), atol=1e-5, rtol=0)


def test_sequence_logprob_of_uniform_model_is_length_times_log_vocab(tiny_tokenizer):
    class Uniform(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            logits = torch.zeros(*input_ids.shape, len(tiny_tokenizer))
            return type("Out", (), {"logits": logits})()

    batch = encode_pairs(tiny_tokenizer, ["Hello there"], ["general kenobi"], 32)
    expected = -float(batch.completion_mask.sum()) * math.log(len(tiny_tokenizer))
    assert sequence_logprobs(Uniform(), batch).item() == pytest.approx(expected, rel=1e-5)


def test_bad_inputs(tiny_tokenizer):
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        encode_pairs(tiny_tokenizer, ["a", "b"], ["c"], 16)
    with pytest.raises(ValueError, match="max_length"):
        encode_pairs(tiny_tokenizer, ["a"], ["c"], 1)


def test_completion_logprobs_at_a_temperature_are_of_the_tempered_distribution(
    tiny_tokenizer, tiny_model
):
    batch = encode_pairs(tiny_tokenizer, ["The film"], [" was good"], max_length=16)
    tempered = completion_token_logprobs(tiny_model, batch, temperature=0.5)
    logits = tiny_model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    expected = torch.log_softmax(logits[:, :-1].float() / 0.5, dim=-1)
    expected = expected.gather(-1, batch.input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    mask = batch.completion_mask[:, 1:].bool()
    torch.testing.assert_close(tempered[mask], expected[mask])
    assert not torch.allclose(tempered[mask], completion_token_logprobs(tiny_model, batch)[mask])
