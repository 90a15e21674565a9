"""sb3-contrib's TRPO with the LM policy: eager attention gives the double backward it needs."""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from sb3_contrib import TRPO

from agents.sb3.policy import CausalLMPolicy

# A tiny budget: one TRPO update with few conjugate-gradient steps (each one a Hessian-vector
# product through the whole LM) and one critic epoch.
SMALL_TRPO = {
    "n_steps": 8,
    "batch_size": 16,
    "cg_max_steps": 3,
    "n_critic_updates": 1,
    "seed": 0,
}


def _policy(model, **kwargs) -> CausalLMPolicy:
    box = spaces.Box(0, 1023, (8,), np.int64)
    obs = spaces.Dict({"input_ids": box, "attention_mask": spaces.Box(0, 1, (8,), np.int64)})
    return CausalLMPolicy(obs, spaces.Discrete(1024), lambda _: 1e-3, model=model, **kwargs)


def test_attn_implementation_switches_the_policys_copy_only(tiny_model):
    policy = _policy(tiny_model, attn_implementation="eager")
    assert policy.lm.config._attn_implementation == "eager"
    assert tiny_model.config._attn_implementation == "sdpa"  # the caller's model is untouched
    assert _policy(tiny_model).lm.config._attn_implementation == "sdpa"  # default: the model's
    # Saving rebuilds the policy from its constructor parameters: the option must survive.
    rebuilt = CausalLMPolicy(**policy._get_constructor_parameters())
    assert rebuilt.lm.config._attn_implementation == "eager"


def _flat_grad(output: torch.Tensor, params: list[torch.Tensor], create_graph: bool):
    grads = torch.autograd.grad(output, params, create_graph=create_graph)
    return torch.cat([g.reshape(-1) for g in grads])


def test_hessian_vector_product_of_the_log_prob_matches_finite_differences(tiny_model):
    policy = _policy(tiny_model, attn_implementation="eager")
    policy.set_training_mode(True)
    generator = torch.Generator().manual_seed(0)
    obs = {
        "input_ids": torch.randint(0, 1024, (4, 8), generator=generator).float(),
        "attention_mask": torch.ones(4, 8),
    }
    obs["attention_mask"][:2, :3] = 0  # left padding, as the env produces
    actions = torch.randint(0, 1024, (4,), generator=generator)
    params = [p for p in policy.lm.parameters() if p.requires_grad]

    def grad_of_log_prob(create_graph: bool) -> torch.Tensor:
        _, log_prob, _ = policy.evaluate_actions(obs, actions)
        return _flat_grad(log_prob.sum(), params, create_graph)

    grad = grad_of_log_prob(create_graph=True)
    vector = torch.randn(grad.shape, generator=generator)
    hvp = _flat_grad((grad * vector).sum(), params, create_graph=False)  # the double backward

    # Central differences of the gradient along the vector (float32: about 2e-4 off in norm).
    eps, theta = 1e-4, torch.nn.utils.parameters_to_vector(params).detach()
    gradients = []
    for step in (eps, -eps):
        torch.nn.utils.vector_to_parameters(theta + step * vector, params)
        gradients.append(grad_of_log_prob(create_graph=False))
    finite_difference = (gradients[0] - gradients[1]) / (2 * eps)
    assert hvp.norm() > 0
    assert (hvp - finite_difference).norm() < 1e-2 * finite_difference.norm()


def test_unmodified_trpo_trains_the_lm_with_eager_attention(make_vec_env):
    kwargs = {"model": "tiny", "attn_implementation": "eager"}
    agent = TRPO(CausalLMPolicy, make_vec_env(n=2), policy_kwargs=kwargs, **SMALL_TRPO)
    before = {name: p.detach().clone() for name, p in agent.policy.named_parameters()}
    agent.learn(16)  # one rollout of 2 envs x 8 steps, one update
    assert agent.num_timesteps >= 16
    after = dict(agent.policy.named_parameters())
    assert all(torch.isfinite(p).all() for p in after.values())
    # The line search succeeded: every LM tensor moved along the natural gradient step.
    unchanged = [name for name in before if torch.equal(before[name], after[name])]
    assert not unchanged, unchanged


def test_trpo_trains_only_the_unfrozen_layers(make_vec_env):
    kwargs = {"model": "tiny", "attn_implementation": "eager", "freeze_layers": 1}
    agent = TRPO(CausalLMPolicy, make_vec_env(n=2), policy_kwargs=kwargs, **SMALL_TRPO)
    before = {name: p.detach().clone() for name, p in agent.policy.lm.named_parameters()}
    agent.learn(16)
    changed = {n for n, p in agent.policy.lm.named_parameters() if not torch.equal(before[n], p)}
    frozen = {"model.embed_tokens.weight"} | {n for n in before if n.startswith("model.layers.0.")}
    assert changed == set(before) - frozen
    assert set(agent.policy.state_dict()) >= {f"lm.{name}" for name in frozen}  # still saved
