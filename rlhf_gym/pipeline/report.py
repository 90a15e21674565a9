"""The run's report: plots (PNG), ``metrics.json`` and ``report.md``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rlhf_gym.pipeline.stages import agent_stage

if TYPE_CHECKING:
    from rlhf_gym.pipeline.outputs import RunOutputs

PLOTS = {"Over-optimisation": "overoptimisation.png", "Calibration": "calibration.png"}
"""The report's plots by title, written next to it."""


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def rank_correlation(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation, or None where it is undefined (a constant input, e.g.
    a gold score that ties on every sample)."""
    from scipy.stats import spearmanr

    if len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return float(spearmanr(x, y).statistic)


def moving_average(values: Sequence[float], window: int) -> np.ndarray:
    """Mean of each point and up to ``window - 1`` before it (same length as ``values``)."""
    sums = np.cumsum(np.insert(np.asarray(values, dtype=float), 0, 0.0))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def plot_overoptimisation(
    curves: Mapping[str, Sequence[Mapping[str, float]]],
    path: Path,
    window: int = 5,
    proxy_title: str = "learned reward model score",
) -> None:
    """Gold and proxy score against sqrt(KL) over training, per agent (Gao et al. 2022).

    Each iteration is a faint dot; the line is a moving average over ``window`` iterations,
    because one batch's scores and KL are noisy. ``proxy_title`` names what the agents were
    rewarded by.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for name, curve in curves.items():
        kl = [max(point["kl"], 0.0) for point in curve]
        for axis, key in zip(axes, ("gold", "proxy"), strict=True):
            values = [point[key] for point in curve]
            dots = axis.plot(np.sqrt(kl), values, "o", alpha=0.25, markersize=4)
            smooth_kl = np.sqrt(moving_average(kl, window))
            axis.plot(
                smooth_kl,
                moving_average(values, window),
                "-",
                color=dots[0].get_color(),
                label=name,
            )
    for axis, title in zip(axes, ("gold score", proxy_title), strict=True):
        axis.set_xlabel("sqrt(KL to reference)  [sqrt(nats)]")
        axis.set_ylabel(title)
        axis.set_title(f"{title} during training")
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_calibration(proxy: np.ndarray, gold: np.ndarray, path: Path, bins: int = 8) -> None:
    """Learned-RM score against gold score on held-out completions, with binned means."""
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(5, 4))
    axis.scatter(gold, proxy, s=10, alpha=0.4, color="tab:gray", label="completions")
    edges = np.quantile(gold, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, gold, side="right") - 1, 0, bins - 1)
    centres = [gold[which == b].mean() for b in range(bins) if np.any(which == b)]
    means = [proxy[which == b].mean() for b in range(bins) if np.any(which == b)]
    axis.plot(centres, means, "o-", color="tab:red", label="binned mean")
    axis.set_xlabel("gold score")
    axis.set_ylabel("learned reward model score")
    axis.set_title("Reward-model calibration against gold")
    axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    def cell(value: Any) -> str:
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


PERPLEXITY_WARNING_RATIO = 3.0
"""A policy whose samples are this many times less likely under the reference than the
reference's own (perplexity ratio) has lost the language it started from."""
BOUND_WARNING_SE = 3.0
"""Held-out accuracy this many standard errors above the Bayes bound cannot be noise: a bug."""


PROXY_MEANINGS = {
    "learned": "proxy = the learned reward model",
    "gold": "proxy = the agents' reward, the task's gold scorer itself (reward_source gold)",
}
"""What a report's proxy column is, by ``RunConfig.reward_source``."""


def _reward_model_lines(reward_model: Mapping[str, Any]) -> list[str]:
    """The learned reward model's held-out accuracy, its bound and, when the agents were
    rewarded by it, its rank agreement with gold on the evaluated samples (in gold mode those
    samples' proxy is the gold scorer, so there is no such figure)."""
    accuracy, se = reward_model["accuracy"], reward_model["accuracy_standard_error"]
    text = (
        f"Reward model: pairwise accuracy {accuracy:.3f} ± {se:.3f} on "
        f"{reward_model['heldout_pairs']} pairs of {reward_model['heldout_prompts']} held-out "
        "prompts (no prompt shared with training)"
    )
    bound = reward_model.get("bayes_bound")
    if bound:
        text += (
            f"; Bayes-optimal for the simulated labels of the same pairs: "
            f"{bound['accuracy']:.3f} ± {bound['standard_error']:.3f}, "
            f"{bound['gold_tie_share']:.0%} of them gold ties"
        )
    ensemble = reward_model.get("ensemble")
    if ensemble:
        members = ", ".join(f"{a:.3f}" for a in ensemble["member_accuracies"])
        text += (
            f"; an ensemble of {len(ensemble['member_accuracies'])} ({ensemble['objective']}), "
            f"members alone: {members}"
        )
    if "spearman_heldout" in reward_model:
        spearman = reward_model["spearman_heldout"]
        text += "; Spearman correlation with gold on the held-out samples above: " + (
            "undefined (a constant score)" if spearman is None else f"{spearman:.3f}"
        )
    else:
        text += "; not what the agents were rewarded by (reward_source gold)"
    lines = [text + "."]
    if bound and accuracy > bound["accuracy"] + BOUND_WARNING_SE * se:
        lines.append(
            f"**Warning:** the accuracy is more than {BOUND_WARNING_SE:g} standard errors above "
            "the Bayes-optimal one, which no predictor can beat: the labels leak something "
            "other than the gold score (a bug to find before trusting any figure here)."
        )
    return lines


def _perplexity_warnings(policies: Mapping[str, Mapping[str, float]]) -> list[str]:
    reference = policies["before (reference)"]["perplexity"]
    return [
        f"**Warning:** {name} has perplexity {values['perplexity']:.1f} under the reference, "
        f"over {PERPLEXITY_WARNING_RATIO:g}x the reference's own {reference:.1f}: its text "
        "has drifted far from the language it started from."
        for name, values in policies.items()
        if values.get("perplexity", 0.0) > PERPLEXITY_WARNING_RATIO * reference
    ]


def _disagreement_lines(curves: Mapping[str, Sequence[Mapping[str, float]]]) -> list[str]:
    """How a reward ensemble's disagreement moved along each agent's training (where logged)."""
    lines = []
    for name, curve in curves.items():
        values = [point["disagreement"] for point in curve if "disagreement" in point]
        if values:
            lines.append(
                f"Reward-ensemble disagreement (members' std) on {name}'s training batches: "
                f"{values[0]:.3f} at the first iteration, {values[-1]:.3f} at the last "
                f"(max {max(values):.3f})."
            )
    return lines


def _kl_budget_lines(agents: Mapping[str, Mapping[str, Any]], budget: float | None) -> list[str]:
    """Which agents the KL budget stopped before their last iteration, and where."""
    return [
        f"{name} stopped after iteration {summary['kl_budget_stop']}: its KL to the reference "
        f"(mean of the last training batches) reached the budget of {budget:g} nats."
        for name, summary in agents.items()
        if "kl_budget_stop" in summary
    ]


def _trainable_line(agents: Mapping[str, Mapping[str, Any]]) -> str:
    counts = ", ".join(
        f"{name} {summary['trainable_parameters']:,}" for name, summary in agents.items()
    )
    return f"Trainable policy parameters (value heads excluded): {counts}."


def write_report(
    output_dir: Path,
    settings: Mapping[str, Any],
    metrics: Mapping[str, Any],
    samples: Sequence[Mapping[str, str]],
    plots: Mapping[str, str],
) -> Path:
    """Write ``metrics.json`` and ``report.md`` into ``output_dir``; returns the report's path."""
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    policies = metrics["policies"]
    columns = ["gold", "proxy", "kl", "length", "distinct_1", "distinct_2", "perplexity"]
    for optional in ("success_rate", "mean_turns", "disagreement"):  # dialogue; an ensemble
        columns += [optional] if any(optional in p for p in policies.values()) else []
    rows = [[name, *(policies[name].get(c, "") for c in columns)] for name in policies]
    parts = [
        f"# rlhf-gym run: {settings['task']} with {settings['model']} ({settings['agent']})",
        f"Held-out prompts; gold = the task's gold labeler, "
        f"{PROXY_MEANINGS[settings.get('reward_source', 'learned')]}, "
        "KL = KL to the reference policy in nats (best-of-n: analytic).",
        _table(rows, ["policy", *columns]),
        *_perplexity_warnings(policies),
        _trainable_line(metrics["agents"]),
        *_kl_budget_lines(metrics["agents"], settings.get("kl_budget")),
        *_disagreement_lines(metrics["curves"]),
        *_reward_model_lines(metrics["reward_model"]),
        *(f"![{title}]({file})" for title, file in plots.items()),
        "## Sample completions, before and after",
        _table([list(s.values()) for s in samples], list(samples[0]) if samples else []),
        "## Settings",
        "```json\n" + json.dumps(settings, indent=2) + "\n```",
    ]
    path = output_dir / "report.md"
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path


def _ensemble(reward: Mapping[str, Any], settings: Any) -> dict[str, Any]:
    """For an ensemble: its objective and each member's own held-out accuracy."""
    if "members" not in reward:
        return {}
    return {
        "ensemble": {
            "objective": settings.reward_ensemble_objective,
            "uncertainty_coef": settings.reward_uncertainty_coef,
            "member_accuracies": [m["accuracy"] for m in reward["members"]],
        }
    }


def run_metrics(outputs: RunOutputs, calibration: Mapping[str, list[float]]) -> dict[str, Any]:
    """The run's ``metrics.json``: every policy's evaluation, the reward model's held-out
    accuracy with its bound (and, when the agents were rewarded by it, rank agreement with gold
    on the ``calibration`` samples), each agent's summary and curve."""
    reward = outputs.summary("reward")
    agents = outputs.config.agents
    rank_agreement = {}
    if outputs.config.reward_source == "learned":  # else the samples' proxy is gold itself
        rank_agreement["spearman_heldout"] = rank_correlation(
            calibration["proxy"], calibration["gold"]
        )
    return {
        "policies": outputs.summary("evaluate")["policies"],
        "reward_model": {
            "accuracy": reward["accuracy"],
            "accuracy_standard_error": reward["accuracy_standard_error"],
            "heldout_pairs": reward["heldout_pairs"],
            "heldout_prompts": reward["heldout_prompts"],
            "bayes_bound": reward["bayes_bound"],  # of the same held-out pairs
            **_ensemble(reward, outputs.config),
            **rank_agreement,  # with gold, on every evaluated held-out sample
        },
        "agents": {name: outputs.summary(agent_stage(name)) for name in agents},
        "curves": {name: outputs.curve(name) for name in agents},
    }


def write_run_report(outputs: RunOutputs, directory: Path) -> Path:
    """Plots, ``metrics.json`` and ``report.md`` of a run into ``directory``; the report's path."""
    details = outputs.load("evaluate", lambda p: json.loads((p / "details.json").read_text()))
    calibration = details["calibration"]
    metrics = run_metrics(outputs, calibration)
    learned = outputs.config.reward_source == "learned"
    proxy_title = "learned reward model score" if learned else "proxy: the gold scorer"
    plot_overoptimisation(
        metrics["curves"], directory / PLOTS["Over-optimisation"], proxy_title=proxy_title
    )
    plots = dict(PLOTS)
    if learned:
        plot_calibration(
            np.asarray(calibration["proxy"]),
            np.asarray(calibration["gold"]),
            directory / PLOTS["Calibration"],
        )
    else:  # the agents' reward is gold: nothing to calibrate
        del plots["Calibration"]
    settings = outputs.config.to_dict()
    return write_report(directory, settings, metrics, details["samples"], plots)
