import pytest

from rlhf_gym.training import RewardConfig


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("learning_rate", 0.0, "learning_rate must be positive, got 0.0"),
        ("num_train_epochs", 0, "num_train_epochs must be positive"),
        ("batch_size", -1, "batch_size must be positive, got -1"),
        ("max_length", 0, "max_length must be positive"),
        ("weight_decay", -0.1, "weight_decay must be >= 0"),
        ("max_grad_norm", -1.0, "max_grad_norm must be >= 0"),
        ("center_rewards_coefficient", -0.01, "center_rewards_coefficient must be >= 0"),
        ("early_stopping_patience", 0, "early_stopping_patience must be positive, got 0"),
        ("trainable_layers", 0, "trainable_layers must be positive, got 0"),
        ("early_stopping_metric", "f1", "early_stopping_metric must be one of"),
    ],
)
def test_bad_values_raise_naming_field_and_value(field, value, message):
    with pytest.raises(ValueError, match=message):
        RewardConfig(**{field: value})


def test_freezing_the_trunk_and_training_its_top_layers_conflict():
    with pytest.raises(ValueError, match="cannot be combined with trainable_layers"):
        RewardConfig(freeze_trunk=True, trainable_layers=2)


def test_every_field_has_help_text():
    from dataclasses import fields

    assert all(f.metadata.get("help") for f in fields(RewardConfig))
