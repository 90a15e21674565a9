"""Generation across the turns of a conversation: the KV cache extended with the user's tokens,
the actions' source columns, per-turn rewards, and training on the agent's tokens only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents import GRPO, GRPOConfig, TokenPPO, TokenPPOConfig
from agents.token_ppo.rollout import Rollout, generate
from rlhf_gym.dialogue import reward_texts
from rlhf_gym.dialogue.guess_number import GuessNumberUser
from rlhf_gym.envs import DialogueVectorEnv

BATCH = 6


class TurnCounter:
    """A turn reward predictor: 0.1 times the number of assistant turns so far."""

    def score_conversations(self, conversations):
        return np.asarray([0.1 * (len(c) // 2) for c in conversations], dtype=np.float32)


def _env_kwargs(**extra) -> dict:
    # The tiny model is random: its turns end at EOS or the 8-token budget at different steps,
    # so rows read their user turns at different steps (padding between turns).
    return {"task": "guess_number", "missing_eos_penalty": 0.25, **extra}


def _rollout(trainer: TokenPPO | GRPO, seed: int = 0) -> Rollout:
    observation, _ = trainer.env.reset(seed=seed)
    return generate(trainer.actor if isinstance(trainer, TokenPPO) else trainer.policy,
                    trainer.env, observation, trainer.sampler)  # fmt: skip


@pytest.fixture
def dialogue_trainer(tiny_model, tiny_tokenizer) -> TokenPPO:
    config = TokenPPOConfig(total_episodes=2 * BATCH, batch_size=BATCH, progress_bar=False)
    env_kwargs = _env_kwargs(turn_reward_predictor=TurnCounter())
    trainer = TokenPPO(tiny_model, tiny_tokenizer, config, env_kwargs=env_kwargs)
    with torch.no_grad():  # a trained-looking value head, so values are not trivially 0
        trainer.actor.value_head.linear.weight.normal_()
    _end_turns_early(trainer.policy, trainer.env.eos_token_id)
    return trainer


def _end_turns_early(policy: torch.nn.Module, eos_id: int) -> None:
    """Give the policy's LM head a bias towards EOS (p ~ 0.13 a token), so that turns end at
    different lengths and rows read their user turns at different steps."""
    head = policy.get_output_embeddings()
    biased = torch.nn.Linear(head.in_features, head.out_features, bias=True)
    with torch.no_grad():
        biased.weight.copy_(head.weight)
        biased.bias.zero_()
        biased.bias[eos_id] = 5.0
    policy.set_output_embeddings(biased)


def test_a_dialogue_task_gets_the_dialogue_vector_env(dialogue_trainer):
    assert isinstance(dialogue_trainer.env, DialogueVectorEnv)


def test_cached_logprobs_and_values_across_turns_equal_one_full_forward(dialogue_trainer):
    rollout = _rollout(dialogue_trainer)
    turns = [len(c) // 2 for c in rollout.conversations]
    assert max(turns) > 1  # several turns: the cache was extended with user turns
    inner = rollout.attention_mask[:, rollout.prompt_length :]
    holes = (inner[:, :-1] == 0) & (inner[:, 1:] == 1)  # padding with real tokens after it
    assert holes.any()  # rows read user turns at different steps
    with torch.no_grad():
        raw, values = dialogue_trainer.actor(
            rollout.input_ids, rollout.attention_mask, rollout.sources
        )
    mask = rollout.response_mask
    recomputed = dialogue_trainer.sampler.logprobs(raw, rollout.responses) * mask
    torch.testing.assert_close(recomputed, rollout.logprobs, atol=1e-4, rtol=0)
    torch.testing.assert_close(values * mask, rollout.values, atol=1e-4, rtol=0)


def test_the_rollout_holds_the_env_s_conversations_token_for_token(dialogue_trainer):
    rollout = _rollout(dialogue_trainer, seed=3)
    tokenizer = dialogue_trainer.tokenizer
    for row, env in enumerate(dialogue_trainer.env.envs):
        window = env.episode.observation()
        real = window["input_ids"][window["attention_mask"] == 1]
        ours = rollout.input_ids[row][rollout.attention_mask[row] == 1].numpy()
        np.testing.assert_array_equal(ours, real)  # opening, turns, user replies, in order
        assert rollout.conversations[row] == env.episode.conversation
        assert rollout.completions[row] == reward_texts(rollout.conversations[row])[1]
        # The actions are the agent's tokens: each assistant message decodes from them.
        actions = rollout.responses[row][rollout.response_mask[row] == 1].tolist()
        said = tokenizer.decode(actions, skip_special_tokens=True)
        for message in rollout.conversations[row][1::2]:
            assert message["content"] in said


def test_turn_rewards_penalties_and_the_score_land_on_the_turns_last_tokens(dialogue_trainer):
    rollout = _rollout(dialogue_trainer, seed=1)
    eos = dialogue_trainer.env.eos_token_id
    for row in range(BATCH):
        length = int(rollout.response_mask[row].sum())
        tokens = rollout.responses[row, :length].tolist()
        ends, turn = [], 0
        for position, token in enumerate(tokens):  # turns end at EOS or after 8 tokens
            turn += 1
            if token == eos or turn == 8:
                ends.append((position, token == eos))
                turn = 0
        assert ends[-1][0] == length - 1
        expected = np.zeros(length, dtype=np.float32)
        for number, (position, ended_by_eos) in enumerate(ends, start=1):
            expected[position] = 0.1 * number - (0.0 if ended_by_eos else 0.25)
        expected[length - 1] += rollout.raw_scores[row]
        np.testing.assert_allclose(rollout.rewards[row, :length].numpy(), expected, atol=1e-6)
        assert torch.all(rollout.rewards[row, length:] == 0)
        assert rollout.eos[row] == all(by_eos for _, by_eos in ends)


def test_a_tokenppo_step_on_conversations_trains_only_through_the_agent_s_tokens(
    dialogue_trainer,
):
    dialogue_trainer.gold = dialogue_trainer.env.reward_predictor
    before = [p.detach().clone() for p in dialogue_trainer.policy.parameters()]
    metrics = dialogue_trainer.step()
    assert all(np.isfinite(v) for v in metrics.values())
    assert 0.0 <= metrics["objective/gold_scores"] <= 1.0
    changed = [
        not torch.equal(a, b)
        for a, b in zip(before, dialogue_trainer.policy.parameters(), strict=True)
    ]
    assert any(changed)


class RecordingStarter:
    """Guess-the-number's conversation starter that records the split of each game."""

    def __init__(self) -> None:
        self.splits: list[str] = []

    def start(self, rng, split):
        self.splits.append(split)
        return GuessNumberUser().start(rng, split)


def test_held_out_evaluation_plays_the_test_secrets(tiny_model, tiny_tokenizer):
    starter = RecordingStarter()
    config = TokenPPOConfig(total_episodes=8, batch_size=4, progress_bar=False)
    env_kwargs = _env_kwargs(user_simulator=starter)
    trainer = TokenPPO(tiny_model, tiny_tokenizer, config, env_kwargs=env_kwargs)
    trainer.rollout()
    assert set(starter.splits) == {"train"}
    starter.splits.clear()
    openings = trainer.env.get_attr("prompts")[0][:2]
    result = trainer.evaluate(openings * 3, "guess-number", split="test", batch_size=4)
    assert starter.splits == ["test"] * 6  # one game per opening, held-out secrets
    assert 0.0 <= result["score"] <= 1.0
    assert result["kl"] == pytest.approx(0.0, abs=1e-4)  # the policy is still the reference


def test_grpo_groups_conversations_of_one_opening(tiny_model, tiny_tokenizer):
    config = GRPOConfig(
        total_episodes=8, batch_size=2, num_generations=4, progress_bar=False, seed=0
    )
    trainer = GRPO(tiny_model, tiny_tokenizer, config, env_kwargs=_env_kwargs())
    rollout = trainer.rollout()
    openings = [c[0]["content"] for c in rollout.conversations]
    assert openings[:4] == openings[:1] * 4 and openings[4:] == openings[4:5] * 4
    batch = trainer.make_batch(rollout)
    torch.testing.assert_close(batch.kl, torch.zeros(8), atol=1e-4, rtol=0)  # policy = reference
    metrics = trainer.step()
    assert np.isfinite(metrics["loss"])
