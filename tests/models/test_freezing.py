"""The one rule that decides what a policy trains."""

from __future__ import annotations

import copy

import pytest

from rlhf_gym.models import freeze_lower_layers, trainable_parameter_count


def _expected_frozen(model, num_layers: int, embeddings: bool) -> set[str]:
    return {
        name
        for name, _ in model.named_parameters()
        if any(name.startswith(f"model.layers.{i}.") for i in range(num_layers))
        or (embeddings and name == "model.embed_tokens.weight")
    }


@pytest.mark.parametrize(("num_layers", "embeddings"), [(0, True), (1, False), (2, True)])
def test_freeze_lower_layers_stops_exactly_the_asked_parameters(tiny_model, num_layers, embeddings):
    model = copy.deepcopy(tiny_model)  # the fixture is shared
    freeze_lower_layers(model, num_layers, embeddings)
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert frozen == _expected_frozen(model, num_layers, embeddings)


@pytest.mark.parametrize("num_layers", [0, 1, 2])
def test_by_default_embeddings_freeze_exactly_when_layers_do(tiny_model, num_layers):
    model = copy.deepcopy(tiny_model)
    trainable = freeze_lower_layers(model, num_layers)
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert frozen == _expected_frozen(model, num_layers, embeddings=num_layers > 0)
    unfrozen = sum(p.numel() for n, p in model.named_parameters() if n not in frozen)
    assert trainable == unfrozen == trainable_parameter_count(model)


def test_freezing_more_layers_than_the_model_has_is_refused(tiny_model):
    with pytest.raises(ValueError, match=r"outside 0\.\.2"):
        freeze_lower_layers(copy.deepcopy(tiny_model), 3)
