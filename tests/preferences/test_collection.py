import pytest
import torch

from rlhf_gym.preferences import Comparison, pair_up, sample_completions
from rlhf_gym.preferences.collection import sample

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


def test_pair_up_forms_all_distinct_pairs_per_prompt():
    comparisons = pair_up(["p", "q"], [["a", "b", "c", "a", " "], ["x", "y", ""]])
    assert len(comparisons) == 3 + 1
    for c in comparisons:
        assert isinstance(c, Comparison) and c.a != c.b
    assert {frozenset((c.a, c.b)) for c in comparisons if c.prompt == "p"} == {
        frozenset(s) for s in [("a", "b"), ("a", "c"), ("b", "c")]
    }


def test_pair_up_subsamples_and_randomises_display_order():
    groups = [[f"r{i}" for i in range(6)]] * 50
    comparisons = pair_up(["p"] * 50, groups, pairs_per_prompt=4, seed=3)
    assert len(comparisons) == 200
    first_is_lower = sum(c.a < c.b for c in comparisons)
    assert 60 < first_is_lower < 140  # neither position is systematically the first sample
    assert comparisons == pair_up(["p"] * 50, groups, pairs_per_prompt=4, seed=3)


def test_pair_up_length_mismatch_raises():
    with pytest.raises(ValueError, match="2 prompts but 1 completion lists"):
        pair_up(["p", "q"], [["a", "b"]])


def test_samples_keep_the_exact_sampled_tokens(tiny_model, tiny_tokenizer):
    from rlhf_gym.preferences.collection import sample

    eos = tiny_tokenizer.eos_token_id
    groups = sample(tiny_model, tiny_tokenizer, PROMPTS, 4, max_new_tokens=12, seed=3)
    for prompt, group in zip(PROMPTS, groups, strict=True):
        for s in group:
            assert s.prompt == prompt
            assert list(s.prompt_ids) == tiny_tokenizer(prompt)["input_ids"]
            assert 1 <= len(s.completion_ids) <= 12
            assert eos not in s.completion_ids[:-1]  # cut right after the first EOS
            assert tiny_tokenizer.decode(s.completion_ids, skip_special_tokens=True) == s.completion
