"""Helpers shared by the agents."""

from __future__ import annotations

import copy

import pytest

from agents.lm import freeze_lower_layers


@pytest.mark.parametrize(("num_layers", "embeddings"), [(0, True), (1, False), (2, True)])
def test_freeze_lower_layers_stops_exactly_the_asked_parameters(tiny_model, num_layers, embeddings):
    model = copy.deepcopy(tiny_model)  # the fixture is shared
    freeze_lower_layers(model, num_layers, embeddings)
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    expected = {
        name
        for name, _ in model.named_parameters()
        if any(name.startswith(f"model.layers.{i}.") for i in range(num_layers))
        or (embeddings and name == "model.embed_tokens.weight")
    }
    assert frozen == expected
