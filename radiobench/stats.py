"""Statistics every metric shares: two-sample distances, bootstrap confidence intervals,
intervals over seeds, a Welch test between two rows' means, and histograms with Poisson errors for plots.

Distances between distributions of per-image quantities are exact empirical ones (they equal
scipy.stats.wasserstein_distance and ks_2samp's statistic). Bootstraps resample whole images
(a cluster bootstrap: pixels of one image are not independent).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "wasserstein1",
    "ks_statistic",
    "ClusterDistance",
    "bootstrap_ci",
    "seed_interval",
    "MeanError",
    "welch_p",
    "poisson_histogram",
]


def _cdf_difference(a: np.ndarray, b: np.ndarray, wa: np.ndarray | None = None, wb: np.ndarray | None = None):
    grid = np.unique(np.concatenate([a, b]))
    fa = np.cumsum(np.bincount(np.searchsorted(grid, a), weights=wa, minlength=len(grid)))
    fb = np.cumsum(np.bincount(np.searchsorted(grid, b), weights=wb, minlength=len(grid)))
    return grid, fa / fa[-1] - fb / fb[-1]


def wasserstein1(a: np.ndarray, b: np.ndarray) -> float:
    """W1(a, b) = integral |F_a(x) - F_b(x)| dx between empirical CDFs (units of the data)."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    grid, d = _cdf_difference(a, b)
    return float(np.sum(np.abs(d[:-1]) * np.diff(grid)))


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic sup_x |F_a(x) - F_b(x)|."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    _, d = _cdf_difference(a, b)
    return float(np.max(np.abs(d)))


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float


class ClusterDistance:
    """W1 and KS between two sets of per-image values, with a bootstrap over images.

    real: (N, P) values (P per image: pixels, or 1 for image mean/std); gen: (M, P).
    Each image becomes a histogram on the common sorted grid of all values, so a bootstrap draw is
    one weighted sum of histograms: exact for the resampled sets. ``quantum`` (e.g. 2**-12 for pixel
    intensities in [0, 1]) rounds values onto a grid first, which bounds the grid size and changes
    W1 by at most quantum/2.
    """

    def __init__(self, real: np.ndarray, gen: np.ndarray, quantum: float | None = None):
        real = np.asarray(real, np.float64).reshape(len(real), -1)
        gen = np.asarray(gen, np.float64).reshape(len(gen), -1)
        if quantum:
            real, gen = np.round(real / quantum) * quantum, np.round(gen / quantum) * quantum
        self.n, self.m = len(real), len(gen)
        self.grid = np.unique(np.concatenate([real.ravel(), gen.ravel()]))
        self.dx = np.diff(self.grid)
        self.ha = self._histograms(real)
        self.hb = self._histograms(gen)

    def _histograms(self, values: np.ndarray) -> np.ndarray:
        k = len(self.grid)
        idx = np.searchsorted(self.grid, values) + k * np.arange(len(values))[:, None]
        return np.bincount(idx.ravel(), minlength=k * len(values)).reshape(len(values), k).astype(np.float64)

    def _distances(self, wa: np.ndarray, wb: np.ndarray) -> tuple[float, float]:
        fa, fb = np.cumsum(wa @ self.ha), np.cumsum(wb @ self.hb)
        d = fa / fa[-1] - fb / fb[-1]
        return float(np.sum(np.abs(d[:-1]) * self.dx)), float(np.max(np.abs(d)))

    def compute(self, n_boot: int, rng: np.random.Generator, alpha: float = 0.05) -> dict[str, Interval]:
        w1, ks = self._distances(np.ones(self.n), np.ones(self.m))
        if n_boot == 0:
            return {"w1": Interval(w1, w1, w1), "ks": Interval(ks, ks, ks)}
        # one matrix product for all draws: W (B, N) multinomial counts
        wa = np.stack([np.bincount(rng.integers(0, self.n, self.n), minlength=self.n) for _ in range(n_boot)])
        wb = np.stack([np.bincount(rng.integers(0, self.m, self.m), minlength=self.m) for _ in range(n_boot)])
        boots = np.empty((n_boot, 2))
        for lo in range(0, n_boot, 50):
            fa = np.cumsum(wa[lo:lo + 50] @ self.ha, axis=1)
            fb = np.cumsum(wb[lo:lo + 50] @ self.hb, axis=1)
            d = np.abs(fa / fa[:, -1:] - fb / fb[:, -1:])
            boots[lo:lo + 50, 0] = d[:, :-1] @ self.dx
            boots[lo:lo + 50, 1] = d.max(axis=1)
        lo_q, hi_q = np.quantile(boots, [alpha / 2, 1 - alpha / 2], axis=0)
        return {
            "w1": Interval(w1, float(lo_q[0]), float(hi_q[0])),
            "ks": Interval(ks, float(lo_q[1]), float(hi_q[1])),
        }


def bootstrap_ci(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    n_real: int,
    n_gen: int,
    n_boot: int,
    rng: np.random.Generator,
    alpha: float = 0.05,
) -> tuple[float, float, np.ndarray]:
    """Percentile bootstrap interval of ``statistic(real_idx, gen_idx)`` resampling both sets.

    Returns (low, high, draws)."""
    draws = np.array(
        [statistic(rng.integers(0, n_real, n_real), rng.integers(0, n_gen, n_gen)) for _ in range(n_boot)]
    )
    finite = draws[np.isfinite(draws)]
    if len(finite) == 0:
        return float("nan"), float("nan"), draws
    lo, hi = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi), draws


def seed_interval(values: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float]:
    """Mean over seeds with a Student-t 95% interval: mean ± t_{n-1} s / sqrt(n). NaN width for one seed."""
    from scipy import stats

    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], np.float64)
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    if len(v) < 2:
        return m, float("nan"), float("nan")
    half = float(stats.t.ppf(1 - alpha / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return m, m - half, m + half


@dataclass(frozen=True)
class MeanError:
    """A row's mean with the variance of that mean (its squared standard error) and the variance's
    degrees of freedom (``math.inf`` for one taken as normal)."""

    mean: float
    var: float
    df: float

    @classmethod
    def of(cls, values: Sequence[float], low: float = math.nan, high: float = math.nan,
           alpha: float = 0.05) -> MeanError:
        """Over seeds when there are ≥ 2 values: s²/n with n − 1 degrees of freedom. One value: its stored
        (1 − alpha) interval [low, high] read as a normal one, se = (high − low) / (2 z_{1−alpha/2}), df = inf.
        NaN variance when neither is available."""
        from scipy import stats

        v = np.asarray(values, np.float64)
        if len(v) >= 2:
            return cls(float(v.mean()), float(v.var(ddof=1) / len(v)), len(v) - 1.0)
        se = (high - low) / (2 * stats.norm.ppf(1 - alpha / 2))
        return cls(float(v[0]) if len(v) else math.nan, se**2, math.inf)


def welch_p(a: MeanError, b: MeanError) -> float:
    """Two-sided p-value of Welch's test of equal means: t = (m_a − m_b) / sqrt(v_a + v_b) on
    df = (v_a + v_b)² / (v_a²/df_a + v_b²/df_b) (Welch–Satterthwaite; normal when both df are infinite).

    A test over seeds, and over images through the bootstrap interval of a single-seed row (``MeanError.of``);
    two rows of seeds give scipy.stats.ttest_ind(equal_var=False). Not paired: the leaderboard's records hold
    no per-image values. NaN when either input is not finite; with zero variance on both sides, 1 for equal
    means and 0 otherwise."""
    from scipy import stats

    if not all(map(math.isfinite, (a.mean, b.mean, a.var, b.var))):
        return math.nan
    var, diff = a.var + b.var, abs(a.mean - b.mean)
    if var == 0:
        return 1.0 if diff == 0 else 0.0
    denom = sum(v**2 / d for v, d in ((a.var, a.df), (b.var, b.df)) if v > 0)
    df = var**2 / denom if denom > 0 else math.inf
    return float(min(1.0, 2 * stats.t.sf(diff / math.sqrt(var), df)))


def poisson_histogram(values: np.ndarray, bins: np.ndarray, density: bool = True) -> dict[str, list[float]]:
    """Histogram with frequentist-confidence Poisson 1-sigma intervals (astropy) for plots."""
    from astropy.stats import poisson_conf_interval

    counts, edges = np.histogram(np.ravel(values), bins=bins)
    lo, hi = poisson_conf_interval(counts, interval="frequentist-confidence")
    scale = 1.0 / (counts.sum() * np.diff(edges)) if density and counts.sum() else np.ones(len(counts))
    return {
        "edges": edges.tolist(),
        "counts": counts.tolist(),
        "density": (counts * scale).tolist(),
        "low": (lo * scale).tolist(),
        "high": (hi * scale).tolist(),
    }
