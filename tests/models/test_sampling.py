"""Sampling completions: reproducible from the seed, bounded, exact tokens kept."""

import pytest
import torch

from rlhf_gym.models.sampling import sample, sample_completions

PROMPTS = ["The film was", "My dinner"]


def test_samples_k_per_prompt_reproducibly_and_leaves_global_rng_alone(tiny_model, tiny_tokenizer):
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    first = sample_completions(
        tiny_model, tiny_tokenizer, PROMPTS, 3, max_new_tokens=5, batch_size=4
    )
    assert torch.equal(torch.random.get_rng_state(), before)
    again = sample_completions(
        tiny_model, tiny_tokenizer, PROMPTS, 3, max_new_tokens=5, batch_size=4
    )
    other = sample_completions(tiny_model, tiny_tokenizer, PROMPTS, 3, max_new_tokens=5, seed=1)
    assert [len(group) for group in first] == [3, 3]
    assert all(isinstance(text, str) for group in first for text in group)
    assert first == again
    assert first != other


def test_completion_length_is_bounded(tiny_model, tiny_tokenizer):
    # the sampled tokens, not a re-tokenisation of the decoded text (which may differ)
    groups = sample(tiny_model, tiny_tokenizer, PROMPTS, 8, max_new_tokens=3)
    lengths = [len(s.completion_ids) for group in groups for s in group]
    assert max(lengths) <= 3 and 3 in lengths


@pytest.mark.parametrize(("k", "batch_size"), [(0, 4), (2, 0)])
def test_bad_sizes_raise(tiny_model, tiny_tokenizer, k, batch_size):
    with pytest.raises(ValueError, match=r"must be (a )?positive"):
        sample_completions(tiny_model, tiny_tokenizer, PROMPTS, k, batch_size=batch_size)


def test_samples_keep_the_exact_sampled_tokens(tiny_model, tiny_tokenizer):
    eos = tiny_tokenizer.eos_token_id
    groups = sample(tiny_model, tiny_tokenizer, PROMPTS, 4, max_new_tokens=12, seed=3)
    for prompt, group in zip(PROMPTS, groups, strict=True):
        for s in group:
            assert s.prompt == prompt
            assert list(s.prompt_ids) == tiny_tokenizer(prompt)["input_ids"]
            assert 1 <= len(s.completion_ids) <= 12
            assert eos not in s.completion_ids[:-1]  # cut right after the first EOS
            assert tiny_tokenizer.decode(s.completion_ids, skip_special_tokens=True) == s.completion
