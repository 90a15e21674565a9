"""The benchmark's statistics, as rliable computes them (Agarwal et al., 2021, "Deep
reinforcement learning at the edge of the statistical precipice").

Each agent's scores form an array of shape (R, T): R runs (seeds) by T tasks, each a normalised
score (``normalised_score``: 0 is the reference agent, 1 the anchor). ``aggregate`` gives the
interquartile mean (IQM: the mean of the middle 50% of all R·T scores,
``scipy.stats.trim_mean(scores, 0.25)``, which trims ``floor(R·T / 4)`` scores from each end)
and the mean, each with a percentile confidence interval from the *stratified bootstrap*: a
resample draws R runs with replacement within each task, independently across tasks, so every
task keeps its weight. ``probability_of_improvement`` gives P(X > Y): per task, the chance that
a random run of X beats a random run of Y (ties count half), averaged over tasks, with an
interval from the same bootstrap applied to both agents' runs independently.

Why scipy and not rliable. rliable 1.2.0 (its latest release, checked 2026-11-30) ships only as
a setup.py sdist, pins ``arch>=5.3.1,<8`` and would add arch, statsmodels, seaborn, patsy,
formulaic and absl-py to the core dependencies. It resolves against numpy 2 / scipy 1.17, but
``import rliable`` fails with pandas 3 (in this project's environment, via ``datasets``): arch
7.2, the newest its pin allows, calls ``pandas.util._decorators.deprecate_kwarg`` with the
pandas-2 signature. scipy, already a core dependency, has every piece: ``scipy.stats.bootstrap``
given several samples with ``paired=False`` resamples each one independently, so passing each
task's column of runs as one sample is exactly the stratified bootstrap;
``scipy.stats.trim_mean`` is the IQM; ``scipy.stats.mannwhitneyu``'s U / (n·m) is P(X > Y) with
ties counted half (rliable's definition). The tests check the bootstrap against a direct numpy
resampling; the estimates were also compared with rliable 1.2.0 run beside pandas 2.3.

Conventions, as rliable's: percentile intervals, 95% by default; the IQM and the mean of one
agent are computed on the same resamples (same ``seed``). ``reps`` defaults to 2,000 resamples
where rliable uses 50,000: the Monte Carlo error of the bounds shrinks as 1/sqrt(reps), so raise
it for published numbers. With one run per task every resample equals the data: the interval is
then degenerate and returned as ``low == high == point`` — a point estimate with no measure of
its uncertainty, not a certainty.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import scipy.stats
from numpy.typing import ArrayLike

from rlhf_gym.validation import require

Statistic = Callable[..., np.ndarray]
"""Groups of scores, each (..., R, T), to one value per leading index (...)."""

_BOOTSTRAP_PARAMETERS = inspect.signature(scipy.stats.bootstrap).parameters
_RNG_KEYWORD = (
    "rng" if "rng" in _BOOTSTRAP_PARAMETERS else "random_state"
)  # scipy < 1.15 has no rng


def normalised_score(gold: ArrayLike, reference: ArrayLike, anchor: ArrayLike) -> np.ndarray:
    """``(gold - reference) / (anchor - reference)`` elementwise (numpy broadcasting): 0 is the
    reference's score (e.g. the SFT policy), 1 the anchor's (e.g. best-of-n or the gold optimum).

    Scalars give a 0-d array. Raises ``ValueError`` where ``anchor == reference`` rather than
    dividing by zero.
    """
    gold, reference, anchor = (np.asarray(a, dtype=float) for a in (gold, reference, anchor))
    span = anchor - reference
    if np.any(span == 0):
        equal = np.broadcast_to(reference, span.shape)[span == 0][0]
        raise ValueError(
            f"anchor must differ from reference to normalise a score, got both equal to {equal!r}"
        )
    return np.asarray((gold - reference) / span)


@dataclass(frozen=True)
class Interval:
    """A point estimate and its confidence interval ``[low, high]``."""

    point: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def iqm(scores: np.ndarray) -> np.ndarray:
    """Interquartile mean of all runs and tasks: (..., R, T) -> (...)."""
    flat = scores.reshape(*scores.shape[:-2], -1)  # (..., R·T)
    return np.asarray(scipy.stats.trim_mean(flat, 0.25, axis=-1))


def mean(scores: np.ndarray) -> np.ndarray:
    """Mean of all runs and tasks: (..., R, T) -> (...)."""
    return np.asarray(scores.mean(axis=(-2, -1)))


def improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) averaged over tasks: (..., Rx, T), (..., Ry, T) -> (...).

    Per task, the Mann–Whitney U of x against y over (Rx · Ry): the share of run pairs that x
    wins, ties counting half.
    """
    u = scipy.stats.mannwhitneyu(x, y, axis=-2, method="asymptotic").statistic  # (..., T)
    return np.asarray(u.mean(axis=-1) / (x.shape[-2] * y.shape[-2]))


METRICS: Mapping[str, Statistic] = MappingProxyType({"iqm": iqm, "mean": mean})
"""The aggregate metrics ``aggregate`` reports, by name."""


def aggregate(
    scores: Mapping[str, ArrayLike], *, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> dict[str, dict[str, Interval]]:
    """``{agent: {"iqm": Interval, "mean": Interval}}`` from each agent's (R, T) scores.

    Agents may have different numbers of runs but must share the tasks (same T, same order).
    The intervals are stratified-bootstrap percentile intervals (``reps`` resamples, seeded by
    ``seed``); with one run per task, ``low == high == point`` (see the module docstring).
    """
    _check_settings(reps, confidence)
    require("scores", scores, len(scores) > 0, "a non-empty mapping of agent -> scores")
    checked = {agent: _runs_by_tasks(agent, values) for agent, values in scores.items()}
    tasks = {agent: values.shape[1] for agent, values in checked.items()}
    require("the number of tasks", tasks, len(set(tasks.values())) == 1, "equal for every agent")
    return {
        agent: {
            name: _stratified_bootstrap([values], metric, reps, confidence, seed)
            for name, metric in METRICS.items()
        }
        for agent, values in checked.items()
    }


def probability_of_improvement(
    x: ArrayLike, y: ArrayLike, *, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """P(X > Y) for x of shape (Rx, T) and y of shape (Ry, T) on the same tasks, with a
    stratified-bootstrap percentile interval that resamples x's and y's runs independently."""
    _check_settings(reps, confidence)
    x, y = _runs_by_tasks("x", x), _runs_by_tasks("y", y)
    shapes = (x.shape, y.shape)
    require("x and y's shapes", shapes, x.shape[1] == y.shape[1], "the same number of tasks")
    return _stratified_bootstrap([x, y], improvement, reps, confidence, seed)


def _stratified_bootstrap(
    groups: Sequence[np.ndarray], statistic: Statistic, reps: int, confidence: float, seed: int
) -> Interval:
    """``statistic(*groups)`` with a percentile interval from resampling each group's runs
    within each task, independently for every (group, task) pair.

    A group with a single run resamples to itself, so it is held fixed (scipy wants two or
    more observations per sample); when every group has one run the interval is the point.
    """
    point = float(statistic(*groups))
    varying = [values.shape[0] > 1 for values in groups]
    if not any(varying):
        return Interval(point, point, point)
    columns = [
        values[:, t]
        for values, v in zip(groups, varying, strict=True)
        if v
        for t in range(values.shape[1])
    ]

    def on_columns(*resampled: np.ndarray, axis: int = -1) -> np.ndarray:
        runs = iter(np.moveaxis(column, axis, -1) for column in resampled)  # each (B, R)
        rebuilt = [
            np.stack([next(runs) for _ in range(values.shape[1])], axis=-1) if v else values
            for values, v in zip(groups, varying, strict=True)
        ]  # each (B, R, T), or (R, T) where held fixed
        return statistic(*rebuilt)

    result = scipy.stats.bootstrap(
        columns,
        on_columns,
        n_resamples=reps,
        vectorized=True,
        paired=False,
        confidence_level=confidence,
        method="percentile",
        **{_RNG_KEYWORD: np.random.default_rng(seed)},
    )
    low, high = result.confidence_interval
    return Interval(point, float(low), float(high))


def _runs_by_tasks(name: str, scores: ArrayLike) -> np.ndarray:
    """``scores`` as a float (R, T) array of finite values, or a ValueError naming ``name``."""
    values = np.asarray(scores, dtype=float)
    shaped = values.ndim == 2 and values.shape[0] >= 1 and values.shape[1] >= 1
    expected = "a 2-D array (runs, tasks) with at least one run and one task"
    require(f"{name}'s scores", f"shape {values.shape}", shaped, expected)
    if not np.all(np.isfinite(values)):
        run, task = np.argwhere(~np.isfinite(values))[0]
        require(
            f"{name}'s score at run {run}, task {task}", float(values[run, task]), False, "finite"
        )
    return values


def _check_settings(reps: int, confidence: float) -> None:
    positive_int = isinstance(reps, (int, np.integer)) and not isinstance(reps, bool) and reps > 0
    require("reps", reps, positive_int, "a positive integer")
    require("confidence", confidence, 0 < confidence < 1, "in (0, 1)")


def plot_intervals(estimates: Mapping[str, Mapping[str, Interval]], path: Path) -> Path:
    """Write a PNG at ``path`` (parents created) and return it: one panel per metric (the
    metrics of the first agent, e.g. IQM and mean), one horizontal interval per agent with its
    point marked, first agent on top — as rliable's ``plot_interval_estimates``.

    Needs matplotlib (``pip install 'rlhf-gym[report]'``); draws on an Agg canvas without
    touching pyplot's global state.
    """
    require("estimates", estimates, len(estimates) > 0, "a non-empty mapping of agent -> metrics")
    metrics = list(next(iter(estimates.values())))
    for agent, by_metric in estimates.items():
        require(f"{agent}'s metrics", sorted(by_metric), set(by_metric) == set(metrics),
                f"the same as the first agent's, {sorted(metrics)}")  # fmt: skip
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    agents = list(estimates)
    rows = np.arange(len(agents))[::-1]  # first agent on top
    figure = Figure(figsize=(4 * len(metrics), 0.6 * len(agents) + 1.5))
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
    for axis, metric in zip(axes, metrics, strict=True):
        intervals = [estimates[agent][metric] for agent in agents]
        lows = np.array([interval.low for interval in intervals])
        highs = np.array([interval.high for interval in intervals])
        axis.barh(rows, highs - lows, left=lows, height=0.6, alpha=0.5, color="C0")
        axis.vlines([interval.point for interval in intervals], rows - 0.3, rows + 0.3, "k")
        axis.set_title(_TITLES.get(metric, metric))
        axis.set_xlabel("normalised score")
        axis.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(rows, agents)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=110)
    return path


_TITLES = MappingProxyType({"iqm": "IQM", "mean": "Mean", "improvement": "P(X > Y)"})
"""Panel titles of the known metrics."""
