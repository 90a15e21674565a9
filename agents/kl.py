"""KL control shared by the agents: per-token KL estimates and the beta controllers."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def kl_k1(logp_policy: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    """Per-token KL estimate ``log pi(a) - log pi_ref(a)`` for ``a ~ pi`` (unbiased, can be < 0)."""
    return logp_policy - logp_ref


@dataclass
class FixedKLController:
    """A constant KL coefficient."""

    value: float

    def update(self, current_kl: float, num_episodes: int) -> None:
        """A fixed beta ignores feedback (the method exists so controllers are interchangeable)."""

    def state_dict(self) -> dict[str, float]:
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.value = float(state["value"])


@dataclass
class AdaptiveKLController:
    """Ziegler et al. (2019): move beta so the measured KL tracks ``target``.

    ``beta *= 1 + clip(KL / target - 1, -0.2, 0.2) * n / horizon`` after each batch of ``n``
    episodes.
    """

    value: float
    target: float = 6.0
    horizon: int = 10_000

    def __post_init__(self) -> None:
        if self.value <= 0 or self.target <= 0 or self.horizon <= 0:
            raise ValueError(
                f"beta ({self.value}), target ({self.target}) and horizon ({self.horizon}) "
                "must all be positive"
            )

    def update(self, current_kl: float, num_episodes: int) -> None:
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * num_episodes / self.horizon

    def state_dict(self) -> dict[str, float]:
        return {"value": self.value, "target": self.target, "horizon": self.horizon}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.value = float(state["value"])
        self.target = float(state["target"])
        self.horizon = int(state["horizon"])


KLController = FixedKLController | AdaptiveKLController


def make_kl_controller(
    kl_coef: float, adaptive_kl: bool, kl_target: float = 6.0, kl_horizon: int = 10_000
) -> KLController:
    """The controller of beta: adaptive (Ziegler et al.) or fixed at ``kl_coef``."""
    if kl_coef < 0:
        raise ValueError(f"kl_coef must be >= 0, got {kl_coef}")
    if adaptive_kl:
        return AdaptiveKLController(kl_coef, kl_target, kl_horizon)
    return FixedKLController(kl_coef)
