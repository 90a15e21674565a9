"""The supervised trainers data-parallel: two processes, each with half of every batch, train
as one process with the whole batch (the same parameters and logged metrics, to float
tolerance)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from rlhf_gym.models import load_model, load_tokenizer
from rlhf_gym.preferences import PreferencePair
from rlhf_gym.training import (
    DPOConfig,
    DPOTrainer,
    RewardConfig,
    RewardModelTrainer,
    SFTConfig,
    SFTTrainer,
)
from rlhf_gym.training.loop import shuffled_batches

# (prompt, chosen / demonstrated, rejected) of unequal lengths: each process pads its own share
TEXTS = [
    ("The pasta at this place", "was wonderful and fresh.", "was cold."),
    ("My new headphones", "sound great.", "broke on the second day, sadly."),
    ("The hotel room", "was clean and quiet all week.", "smelled."),
    ("This board game", "is fun for the whole family.", "is dull."),
    ("The concert", "was a joy.", "was loud, long and boring."),
    ("Our train", "left on time and was calm.", "was late."),
]


def _sft(indices: Sequence[int], batch_size: int, mixed_precision: str) -> SFTTrainer:
    tokenizer = load_tokenizer("tiny")
    args = SFTConfig(
        num_train_epochs=1, batch_size=batch_size, learning_rate=1e-5,
        mixed_precision=mixed_precision, progress_bar=False,
    )  # fmt: skip
    demonstrations = [{"prompt": TEXTS[i][0], "completion": TEXTS[i][1]} for i in indices]
    return SFTTrainer(load_model("tiny", tokenizer), args, demonstrations, tokenizer)


def _dpo(indices: Sequence[int], batch_size: int, mixed_precision: str) -> DPOTrainer:
    tokenizer = load_tokenizer("tiny")
    args = DPOConfig(
        num_train_epochs=1, batch_size=batch_size, learning_rate=1e-5, beta=0.5,
        mixed_precision=mixed_precision, progress_bar=False,
    )  # fmt: skip
    pairs = [dict(zip(("prompt", "chosen", "rejected"), TEXTS[i], strict=True)) for i in indices]
    policy, reference = load_model("tiny", tokenizer), load_model("tiny", tokenizer)
    return DPOTrainer(policy, reference, args, pairs, tokenizer)


def _reward(
    indices: Sequence[int],
    batch_size: int,
    mixed_precision: str,
    flip_held_out: bool = False,
    **settings: Any,
) -> RewardModelTrainer:
    defaults = {"num_train_epochs": 1, "learning_rate": 1e-5, "center_rewards_coefficient": 0.1}
    args = RewardConfig(
        batch_size=batch_size, mixed_precision=mixed_precision, progress_bar=False,
        **{**defaults, **settings},
    )  # fmt: skip
    pairs = [PreferencePair(p, " " + c, " " + r) for p, c, r in TEXTS]
    held_out = pairs[:3]
    if flip_held_out:
        held_out = [PreferencePair(p.prompt, p.rejected, p.chosen) for p in held_out]
    return RewardModelTrainer("tiny", args, [pairs[i] for i in indices], held_out)


TRAINERS: dict[str, Callable[[Sequence[int], int, str], Any]] = {
    "sft": _sft,
    "dpo": _dpo,
    "reward": _reward,
    # the cached scorers: DDP's forward runs the head, or the top layers, on cached features
    "reward-head": partial(_reward, freeze_trunk=True),
    "reward-top": partial(_reward, trainable_layers=1),
    "reward-stopping": partial(
        _reward,
        flip_held_out=True,
        num_train_epochs=6,
        early_stopping_patience=1,
        early_stopping_metric="accuracy",
    ),
}


def _train(
    out: Path, trainer: str, indices: Sequence[int], batch_size: int, precision: str = "no"
) -> None:
    """Train on ``TEXTS[indices]`` (one epoch unless ``trainer`` says more); write to
    ``out/rank<r>.pt`` what this process saw: gradients, parameters, logged history, and the
    first batch of the shuffled order."""
    built = TRAINERS[trainer](indices, batch_size, precision)
    first_batch = _first_batch(built, len(indices), batch_size)
    with _gradients_per_step(built.model) as grads:
        history = built.train()
    params = {name: p.detach().cpu() for name, p in built.model.named_parameters()}
    result = {
        "params": params, "grads": grads, "history": _records(history),
        "first_batch": first_batch, "forward_patched": "forward" in vars(built.model),
    }  # fmt: skip
    torch.save(result, out / f"rank{built.dp.rank}.pt")


def _first_batch(trainer: Any, size: int, batch_size: int) -> list[int] | None:
    """The global batch a trainer shuffling with a torch generator (SFT, DPO) will take first."""
    generator = getattr(trainer, "generator", None)
    if generator is None:
        return None
    copy = torch.Generator().set_state(generator.get_state())
    return next(shuffled_batches(size, batch_size, copy, trainer.dp.world_size))


@contextmanager
def _gradients_per_step(model: torch.nn.Module) -> Iterator[list[dict[str, torch.Tensor]]]:
    """The gradients each optimiser step applies to ``model``, by parameter name."""
    names = {id(param): name for name, param in model.named_parameters()}
    grads: list[dict[str, torch.Tensor]] = []

    def record(optimizer: torch.optim.Optimizer, *_: Any) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        grads.append({names[id(p)]: p.grad.cpu().clone() for p in params})

    hook = register_optimizer_step_pre_hook(record)
    try:
        yield grads
    finally:
        hook.remove()


def _records(history: list[Any]) -> list[dict[str, float]]:
    """Every trainer's history as one dict of metrics per epoch (SFT logs the loss alone)."""
    return [record if isinstance(record, dict) else {"loss": record} for record in history]


def _launch(launch: Callable[..., None], out: Path, *args: Any) -> list[dict[str, Any]]:
    """What each of two processes running ``_train(out, *args)`` wrote."""
    out.mkdir()
    launch(_train, out, *args)
    return [torch.load(out / f"rank{rank}.pt") for rank in range(2)]


def _alone(out: Path, *args: Any) -> dict[str, Any]:
    """What this process alone running ``_train(out, *args)`` wrote."""
    out.mkdir()
    _train(out, *args)
    return torch.load(out / "rank0.pt")


def _assert_same_training(result: dict[str, Any], expected: dict[str, Any]) -> None:
    """The same gradients at every step, parameters and logged metrics, to float tolerance.

    The learning rate is small (1e-5) because AdamW's first steps are about ``lr * sign(g)``:
    float noise in a near-zero gradient can move a parameter by a few percent of ``lr``.
    """
    assert len(result["grads"]) == len(expected["grads"])
    for step, expected_grads in zip(result["grads"], expected["grads"], strict=True):
        torch.testing.assert_close(step, expected_grads, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(result["params"], expected["params"], atol=1e-6, rtol=1e-5)
    assert len(result["history"]) == len(expected["history"])
    for record, expected_record in zip(result["history"], expected["history"], strict=True):
        got, want = dict(record), dict(expected_record)
        # DPO's accuracy counts implicit-reward margins > 0, and after steps of 1e-5 from the
        # reference those margins are float noise around 0: one of the 6 pairs may flip
        if "rewards/accuracies" in want:
            flipped = abs(got.pop("rewards/accuracies") - want.pop("rewards/accuracies"))
            assert flipped <= 1 / 6 + 1e-9
        assert got == pytest.approx(want, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("trainer", ["sft", "dpo", "reward", "reward-head", "reward-top"])
def test_two_processes_train_as_one_with_the_whole_batch(tmp_path, launch_data_parallel, trainer):
    # 6 examples, batch 4: a step on shares of 2 + 2, then on the short last batch, 1 + 1
    expected = _alone(tmp_path / "one", trainer, range(6), 4)
    for result in _launch(launch_data_parallel, tmp_path / "two", trainer, range(6), 4):
        _assert_same_training(result, expected)


def test_an_odd_example_sits_the_epoch_out(tmp_path, launch_data_parallel):
    # 5 examples, batch 4, 2 processes: the last batch of 1 cannot be shared equally and is
    # left out, so the epoch is the one step one process takes on the 4 examples kept
    ranks = _launch(launch_data_parallel, tmp_path / "two", "sft", range(5), 4)
    kept = ranks[0]["first_batch"]
    assert len(kept) == 4 and ranks[1]["first_batch"] == kept
    expected = _alone(tmp_path / "one", "sft", kept, 4)
    for result in ranks:
        _assert_same_training(result, expected)


def test_every_process_stops_early_at_the_same_epoch(tmp_path, launch_data_parallel):
    first, second = _launch(launch_data_parallel, tmp_path / "two", "reward-stopping", range(6), 4)
    # the held-out labels are flipped: accuracy 0 after the first epoch, never better after
    assert [record["eval_accuracy"] for record in first["history"]] == [0.0, 0.0]
    assert second["history"] == first["history"]
    torch.testing.assert_close(second["params"], first["params"], atol=0, rtol=0)


def _refuse_unequal_shares(out: Path) -> None:
    with pytest.raises(ValueError, match=r"batch_size=3 must be divisible by the number of"):
        _sft(range(4), 3, "no")
    with pytest.raises(ValueError, match="has 1 examples, fewer than the 2 processes"):
        _reward(range(1), 2, "no")
    (out / f"rank{torch.distributed.get_rank()}.done").touch()


def test_unequal_shares_are_refused(tmp_path, launch_data_parallel):
    launch_data_parallel(_refuse_unequal_shares, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rank0.done", "rank1.done"]


@pytest.mark.parametrize("trainer", ["sft", "dpo", "reward"])
def test_bf16_autocasts_the_forward_passes(tmp_path, launch_data_parallel, trainer):
    expected = _alone(tmp_path / "one", trainer, range(4), 4)
    first, second = _launch(launch_data_parallel, tmp_path / "two", trainer, range(4), 4, "bf16")
    float32, bf16 = (
        torch.cat([g.flatten() for g in r["grads"][0].values()]) for r in (expected, first)
    )
    assert 0 < float((bf16 - float32).norm() / float32.norm()) < 0.05  # rounded, yet close
    torch.testing.assert_close(second["params"], first["params"], atol=0, rtol=0)  # one model
    assert not first["forward_patched"]  # accelerate's autocast wraps TrainingForward's only


@pytest.mark.parametrize("config", [SFTConfig, DPOConfig, RewardConfig])
def test_an_unknown_mixed_precision_is_refused(config):
    with pytest.raises(ValueError, match=r"mixed_precision must be one of .* got 'fp8'"):
        config(mixed_precision="fp8")
