"""KL control shared by the agents: per-token KL estimates, the beta controllers and the KL
budget that ends training early."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class KLBudget:
    """Ends training once the policy has drifted ``budget`` nats from the reference.

    The KL of a batch of 32 completions is noisy, so the stop reads the mean of the last
    ``window`` batches (fewer at the start). Only training batches feed it, never the held-out
    evaluation, so a budget chosen in advance selects nothing on the test prompts.
    """

    budget: float | None = None
    """Nats per episode; None never stops."""
    window: int = 3
    recent: list[float] = field(default_factory=list)
    """The last ``window`` batches' mean episode KL, oldest first."""

    def __post_init__(self) -> None:
        if self.budget is not None and self.budget <= 0:
            raise ValueError(f"kl_budget must be > 0 (nats) or None, got {self.budget}")
        if self.window < 1:
            raise ValueError(f"kl_budget_window must be >= 1, got {self.window}")

    def update(self, batch_kl: float) -> None:
        self.recent = [*self.recent, float(batch_kl)][-self.window :]

    @property
    def running_kl(self) -> float:
        """The mean KL of the last ``window`` batches (0 before the first)."""
        return sum(self.recent) / len(self.recent) if self.recent else 0.0

    @property
    def spent(self) -> bool:
        return self.budget is not None and self.running_kl >= self.budget  # budget > 0

    def state_dict(self) -> dict[str, list[float]]:
        return {"recent": list(self.recent)}

    def load_state_dict(self, state: dict[str, list[float]]) -> None:
        self.recent = [float(kl) for kl in state["recent"]]
