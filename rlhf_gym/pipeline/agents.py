"""Agents of ``rlhf-gym run`` as plug-ins: a protocol, its result, and the registry.

An agent is anything with ``check(config)`` and ``train(outputs, workdir)``. Built-ins are
listed below as ``"module:factory"`` strings; a package adds its own under the ``rlhf_gym.agents``
entry-point group and appears in ``rlhf-gym run --agent NAME`` with no change here. The factory
is called with no arguments to build the agent.

Every agent starts from ``outputs.starting_policy()``, trains the parameters
:func:`rlhf_gym.models.freeze_lower_layers` leaves trainable under
``config.resolved_freeze_layers`` (so agents compared in one report train the same ones), and
returns the trained policy and a curve; the pipeline saves the policy, refuses one with
non-finite weights, and counts its trainable parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rlhf_gym.plugins import Registry

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from rlhf_gym.pipeline.config import RunConfig
    from rlhf_gym.pipeline.outputs import RunOutputs

ENTRY_POINT_GROUP = "rlhf_gym.agents"
AGENTS = Registry(
    "agent",
    ENTRY_POINT_GROUP,
    {
        "token-ppo": "rlhf_gym.pipeline.builtin_agents:TokenPPOAgent",
        "grpo": "rlhf_gym.pipeline.builtin_agents:grpo",
        "rloo": "rlhf_gym.pipeline.builtin_agents:rloo",
        "reinforce": "rlhf_gym.pipeline.builtin_agents:reinforce",
        "sb3-ppo": "rlhf_gym.pipeline.builtin_agents:sb3_ppo",
        "sb3-a2c": "rlhf_gym.pipeline.builtin_agents:sb3_a2c",
        "sb3-trpo": "rlhf_gym.pipeline.builtin_agents:sb3_trpo",
        "dpo": "rlhf_gym.pipeline.builtin_agents:DPOAgent",
    },
)
"""Built-in agents by name, plus the ``rlhf_gym.agents`` entry-point group."""


@dataclass
class AgentResult:
    """What an agent hands back to the pipeline."""

    policy: PreTrainedModel
    """The trained policy, with ``requires_grad`` as trained (its trainable count is reported)."""
    curve: list[dict[str, float]]
    """One point per iteration or epoch: ``iteration``, ``kl`` (to the reference, nats),
    ``proxy`` (learned-RM score) and ``gold`` (the task's gold score); the report plots it."""
    summary: dict[str, Any] = field(default_factory=dict)
    """Anything else JSON-able worth keeping (iterations, speed, final loss)."""
    heldout_curve: list[dict[str, float]] = field(default_factory=list)
    """The points of ``outputs.heldout_probe()`` (when ``eval_every`` is set): the same keys as
    ``curve``, measured on held-out prompts; agents without probes leave it empty."""


@runtime_checkable
class Agent(Protocol):
    """One way to train the policy in ``rlhf-gym run``.

    An agent may also set ``data_parallel = True``: its ``train`` then runs in every process
    of a data-parallel launch (its trainer shares the batch among them, as the native ones do);
    without it, ``train`` runs on rank 0 alone while the other processes wait.
    """

    def check(self, config: RunConfig) -> None:
        """Raise ``ValueError`` for settings this agent cannot run with; called before any
        stage runs, so a bad combination costs nothing."""

    def train(self, outputs: RunOutputs, workdir: Path) -> AgentResult:
        """Train from ``outputs.starting_policy()``; ``workdir`` is for the agent's own files
        (logs, checkpoints), kept with the stage."""


def available_agents() -> list[str]:
    """Names accepted by ``--agent``: built-ins and installed plug-ins."""
    return AGENTS.names()


def make_agent(name: str) -> Agent:
    """Build the agent registered as ``name``."""
    agent = AGENTS.get(name)()
    if not isinstance(agent, Agent):
        raise TypeError(f"agent {name!r} ({type(agent).__name__}) lacks check() or train()")
    return agent
