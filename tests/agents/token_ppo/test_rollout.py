"""Generation against the env: positions under left padding, EOS truncation, penalties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents import TokenPPO, TokenPPOConfig
from agents.token_ppo.rollout import Sampler, _next_feed, generate

PROMPTS = ["Hi", "The food at this little place was", "Our hotel room", "A quiet film"]


def _trainer(model, tokenizer, env_kwargs, **overrides) -> TokenPPO:
    config = TokenPPOConfig(
        **{"total_episodes": 64, "batch_size": 4, "progress_bar": False, **overrides}
    )
    return TokenPPO(model, tokenizer, config, env_kwargs=env_kwargs)


def test_stored_logprobs_and_values_equal_recomputed_ones_under_left_padding(
    tiny_model, tiny_tokenizer
):
    env_kwargs = {"prompts": PROMPTS, "reward_predictor": "vader", "max_new_tokens": 12}
    trainer = _trainer(tiny_model, tiny_tokenizer, env_kwargs)
    with torch.no_grad():  # a trained-looking value head, so values are not trivially 0
        trainer.actor.value_head.linear.weight.normal_()
    observation, _ = trainer.env.reset(seed=0, options={"prompts": PROMPTS})
    rollout = generate(trainer.actor, trainer.env, observation, trainer.sampler)
    prompt_lengths = rollout.attention_mask[:, : rollout.prompt_length].sum(1)
    assert len(set(prompt_lengths.tolist())) == len(PROMPTS)  # really different paddings

    with torch.no_grad():
        raw, values = trainer.actor(rollout.input_ids, rollout.attention_mask, rollout.sources)
    recomputed = trainer.sampler.logprobs(raw, rollout.responses) * rollout.response_mask
    torch.testing.assert_close(recomputed, rollout.logprobs, atol=1e-5, rtol=0)
    torch.testing.assert_close(values * rollout.response_mask, rollout.values, atol=1e-5, rtol=0)
    # The reference is the same network before training: its log-probs agree too.
    ref = trainer.response_token_logprobs(trainer.ref_model, rollout) * rollout.response_mask
    torch.testing.assert_close(ref, rollout.logprobs, atol=1e-5, rtol=0)


def test_a_static_kv_cache_samples_what_the_growing_one_does(tiny_model, tiny_tokenizer):
    env_kwargs = {"prompts": PROMPTS, "reward_predictor": "vader", "max_new_tokens": 12}
    trainer = _trainer(tiny_model, tiny_tokenizer, env_kwargs)
    rollouts = []
    for static in (False, True):
        observation, _ = trainer.env.reset(seed=0, options={"prompts": PROMPTS})
        torch.manual_seed(0)
        rollouts.append(generate(trainer.actor, trainer.env, observation, trainer.sampler, static))
    growing, static = rollouts
    assert torch.equal(static.input_ids, growing.input_ids)
    assert static.completions == growing.completions
    torch.testing.assert_close(static.logprobs, growing.logprobs, atol=1e-5, rtol=0)
    torch.testing.assert_close(static.values, growing.values, atol=1e-5, rtol=0)


def test_responses_are_cut_after_the_first_eos(toy_model, toy_tokenizer, toy_env_kwargs):
    # A hot temperature makes EOS (1 of 6 tokens) common within a 6-token budget.
    env_kwargs = {**toy_env_kwargs, "max_new_tokens": 6}
    trainer = _trainer(toy_model, toy_tokenizer, env_kwargs, batch_size=32, temperature=3.0)
    rollout = trainer.rollout()
    responses, mask = rollout.responses, rollout.response_mask.bool()
    assert 0 < rollout.eos.sum() < 32
    for row in range(32):
        tokens = responses[row].tolist()
        length = int(mask[row].sum())
        expected = tokens.index(1) + 1 if 1 in tokens[:length] else 6
        assert length == expected
        assert rollout.eos[row] == (tokens[length - 1] == 1)
        assert all(t == 0 for t in tokens[length:])  # padding after the end
        text = toy_tokenizer.decode(tokens[:length], skip_special_tokens=True)
        assert rollout.completions[row] == text
        assert rollout.logprobs[row, length:].abs().sum() == 0


def test_missing_eos_penalty_is_applied_by_the_env(toy_model, toy_tokenizer, toy_env_kwargs):
    env_kwargs = {**toy_env_kwargs, "max_new_tokens": 3}
    trainer = _trainer(
        toy_model, toy_tokenizer, env_kwargs, batch_size=32, temperature=3.0,
        missing_eos_penalty=0.5,
    )  # fmt: skip
    rollout = trainer.rollout()
    expected = rollout.raw_scores - 0.5 * (~rollout.eos)
    np.testing.assert_allclose(rollout.scores.numpy(), expected, atol=1e-6)
    assert trainer.env.missing_eos_penalty == 0.5


def test_conflicting_penalty_in_env_kwargs_and_config_is_an_error(
    toy_model, toy_tokenizer, toy_env_kwargs
):
    with pytest.raises(ValueError, match="missing_eos_penalty"):
        _trainer(
            toy_model, toy_tokenizer, {**toy_env_kwargs, "missing_eos_penalty": 1.0},
            missing_eos_penalty=0.5,
        )  # fmt: skip


def test_ignore_eos_gives_full_length_responses(toy_model, toy_tokenizer, toy_env_kwargs):
    env_kwargs = {**toy_env_kwargs, "max_new_tokens": 6}
    trainer = _trainer(
        toy_model, toy_tokenizer, env_kwargs, batch_size=32, temperature=3.0, ignore_eos=True
    )
    rollout = trainer.rollout()
    assert rollout.response_mask.all()
    assert not (rollout.responses == 1).any()
    assert not rollout.eos.any()
    # EOS is banned in the log-probs too, so they normalise over the other tokens.
    with torch.no_grad():
        raw, _ = trainer.actor(rollout.input_ids, rollout.attention_mask, rollout.sources)
    probs = trainer.sampler.logits(raw).softmax(-1)
    assert torch.all(probs[..., 1] == 0)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_sampler_draws_from_the_tempered_distribution_and_never_the_banned_token(temperature):
    raw = torch.tensor([[2.0, 0.5, 3.0, -1.0, 1.0]]).expand(40_000, 5)  # (N, V)
    sampler = Sampler(temperature, banned_token=2)  # the likeliest token is banned
    torch.manual_seed(0)
    tokens, logprobs = sampler.sample(raw)
    probs = torch.log_softmax(sampler.logits(raw[:1]), -1).exp()[0]  # (V,)
    frequencies = torch.bincount(tokens, minlength=5) / len(tokens)
    assert frequencies[2] == 0
    standard_error = (probs * (1 - probs) / len(tokens)).sqrt()
    assert torch.all((frequencies - probs).abs() <= 5 * standard_error + 1e-9)
    torch.testing.assert_close(logprobs, probs.log()[tokens])


def test_a_threshold_rounded_onto_the_total_mass_draws_the_likeliest_allowed_token(monkeypatch):
    raw = torch.tensor([[2.0, 0.5, 3.0, -1.0], [0.0, 4.0, 1.0, 0.0]])  # (B, V)
    monkeypatch.setattr(torch, "rand_like", torch.ones_like)  # u = 1: past every CDF step
    tokens, logprobs = Sampler(1.0, banned_token=2).sample(raw)
    assert tokens.tolist() == [0, 1]  # row 0's likeliest, token 2, is banned
    expected = torch.log_softmax(Sampler(1.0, banned_token=2).logits(raw), -1)[[0, 1], [0, 1]]
    torch.testing.assert_close(logprobs, expected)


def test_next_feed_right_pads_each_live_rows_action_and_user_turn():
    tokens, live = np.array([5, 6, 7, 8]), np.array([True, False, True, True])
    ids, mask = _next_feed(tokens, live, [(), (9,), (10, 11), ()], pad_id=0)
    assert ids.tolist() == [[5, 0, 0], [0, 0, 0], [7, 10, 11], [8, 0, 0]]
    assert mask.tolist() == [[1, 0, 0], [0, 0, 0], [1, 1, 1], [1, 0, 0]]
    assert ids.dtype == mask.dtype == torch.long


def test_next_feed_is_empty_once_every_row_has_finished():
    ids, mask = _next_feed(np.array([5, 6]), np.array([False, False]), [(), ()], pad_id=0)
    assert ids.shape == mask.shape == (2, 0)
