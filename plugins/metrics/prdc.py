"""Precision, recall, density and coverage (Naeem et al. 2020, "Reliable fidelity and diversity metrics for
generative models") on the BYOL-ResNet18 features behind fid_byol, with k-nearest-neighbour balls.

With real features X_1..X_N, generated Y_1..Y_M, B(x, r) the ball of radius r about x and NND_k(x) the
distance from x to its k-th nearest neighbour in its own set (itself excluded):

    precision = 1/M  sum_j 1[ Y_j in U_i B(X_i, NND_k(X_i)) ]             (Kynkaanniemi et al. 2019)
    recall    = 1/N  sum_i 1[ X_i in U_j B(Y_j, NND_k(Y_j)) ]
    density   = 1/(kM) sum_j sum_i 1[ Y_j in B(X_i, NND_k(X_i)) ]          (Naeem Eq. 1; ~1 for matching sets)
    coverage  = 1/N  sum_i 1[ exists j: Y_j in B(X_i, NND_k(X_i)) ]        (Naeem Eq. 2)

"in B" is a strict inequality, as in the authors' code. Options: ``k`` (default 5, the paper's choice), and
``n``, ``n_bootstrap``, ``against``, ``evaluator_seed`` as fid_byol's (both sets whole by default). The 95%
interval half-samples both sets without replacement (a resample with replacement puts duplicates at
distance 0, which shrinks every k-NN radius), recomputes the radii within each half-sample, and centres the
percentile interval on the full-N value, as fid_byol does (then clips it to [0, 1], density to [0, inf)).
"""
from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from scipy.spatial.distance import cdist

from radiobench import Metric, MetricContext, MetricResult, RadioImages
from radiobench.evaluators import get_evaluator
from radiobench.evaluators.features import embed, memo_apply
from radiobench.evaluators.frechet import centred_interval, half_samples
from radiobench.options import Option, Options
from radiobench.store import sha256_bytes
from radiobench.types import InputError

from .fid_byol import OPTIONS as BYOL_OPTIONS
from .fid_byol import matched_sets

__all__ = ["prdc", "prdc_from_distances", "Precision", "Recall", "Density", "Coverage", "STATISTICS"]

STATISTICS = ("precision", "recall", "density", "coverage")


def _kth_neighbour(d_self: np.ndarray, k: int) -> np.ndarray:
    """NND_k of each row of a within-set distance matrix (the diagonal, distance to itself, is the 0-th)."""
    return np.partition(d_self, k, axis=1)[:, k]


def prdc_from_distances(d_rr: np.ndarray, d_gg: np.ndarray, d_rg: np.ndarray, k: int) -> dict[str, float]:
    """The four statistics from the distance matrices real-real (N, N), generated-generated (M, M) and
    real-generated (N, M)."""
    n, m = d_rg.shape
    if k >= min(n, m):
        raise InputError(f"k = {k} nearest neighbours need more than k images in each set; got {n} and {m}")
    r_real, r_gen = _kth_neighbour(d_rr, k), _kth_neighbour(d_gg, k)
    inside_real = d_rg < r_real[:, None]  # [i, j]: Y_j inside X_i's ball
    return {
        "precision": float(inside_real.any(axis=0).mean()),
        "recall": float((d_rg < r_gen[None, :]).any(axis=1).mean()),
        "density": float(inside_real.sum(axis=0).mean() / k),
        "coverage": float((d_rg.min(axis=1) < r_real).mean()),
    }


def prdc(real: np.ndarray, generated: np.ndarray, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage of two (N, d), (M, d) feature sets (Euclidean distances)."""
    real, generated = np.asarray(real, np.float64), np.asarray(generated, np.float64)
    return prdc_from_distances(cdist(real, real), cdist(generated, generated), cdist(real, generated), k)


def prdc_intervals(real: np.ndarray, generated: np.ndarray, k: int, n_boot: int,
                   rng: np.random.Generator) -> dict[str, dict[str, Any]]:
    """Each statistic's full-N value and centred half-sample interval (distances computed once)."""
    d_rr, d_gg, d_rg = cdist(real, real), cdist(generated, generated), cdist(real, generated)
    full = prdc_from_distances(d_rr, d_gg, d_rg, k)
    draws = {s: [] for s in STATISTICS}
    if n_boot and min(len(real), len(generated)) // 2 > k:
        for i, j in half_samples(len(real), len(generated), n_boot, rng):
            half = prdc_from_distances(d_rr[np.ix_(i, i)], d_gg[np.ix_(j, j)], d_rg[np.ix_(i, j)], k)
            for s in STATISTICS:
                draws[s].append(half[s])
    out = {}
    for s in STATISTICS:
        d = np.asarray(draws[s], np.float64)
        lo, hi = centred_interval(full[s], d, 0.05) if len(d) else (full[s], full[s])
        top = math.inf if s == "density" else 1.0  # the centred interval is clipped to the statistic's range
        lo, hi = min(max(lo, 0.0), top), min(max(hi, 0.0), top)
        out[s] = {"value": full[s], "low": lo, "high": hi,
                  "half_sample_mean": float(d.mean()) if len(d) else full[s]}
    return out


class _PRDC(Metric):
    """One of the four statistics; the four share one computation per (features, k, N, seed)."""

    statistic: ClassVar[str]
    direction = "higher"
    OPTIONS = Options(BYOL_OPTIONS, k=Option(int, default=5, low=1))

    def compute(self, real: RadioImages, generated: RadioImages, context: MetricContext) -> MetricResult:
        k = int(self.options.get("k", 5))
        n_boot = self.options.get("n_bootstrap")
        n_boot = context.n_bootstrap if n_boot is None else int(n_boot)
        ev = get_evaluator("byol", context)
        # the same subsample for all four statistics (salted by the family, not the metric's name)
        r, g = matched_sets(real, generated, self.options.get("n"), context.rng("prdc/subsample"))
        fr = memo_apply(context, ev, r, embed, "byol_features")
        fg = memo_apply(context, ev, g, embed, "byol_features")
        key = f"prdc/{sha256_bytes(fr.tobytes(), fg.tobytes())[:16]}/k{k}/boot{n_boot}/seed-{context.seed}"
        res = context.remember(key, lambda: prdc_intervals(fr, fg, k, n_boot, context.rng("prdc")))
        iv = res[self.statistic]
        return MetricResult(
            metric=self.name, value=iv["value"], ci_low=iv["low"], ci_high=iv["high"], direction=self.direction,
            n_real=len(r), n_generated=len(g),
            details={"k": k, "n_real": len(r), "n_generated": len(g), "feature_dim": int(fr.shape[1]),
                     "n_bootstrap": n_boot,
                     "all": {s: res[s]["value"] for s in STATISTICS},
                     "half_sample_mean": iv["half_sample_mean"],
                     "ci_method": "half-samples (N/2, without replacement) of both sets, k-NN radii recomputed "
                                  "within each, percentile interval centred on the full-N value"},
            fingerprints={**ev.identity, "dataset": context.dataset_fingerprint},
        )


class Precision(_PRDC):
    name = "precision_byol"
    statistic = "precision"
    description = "precision (Naeem et al. 2020, k=5) on BYOL features: share of samples on the real manifold"


class Recall(_PRDC):
    name = "recall_byol"
    statistic = "recall"
    description = "recall (Naeem et al. 2020, k=5) on BYOL features: share of real images the samples reach"


class Density(_PRDC):
    name = "density_byol"
    statistic = "density"
    description = "density (Naeem et al. 2020, k=5) on BYOL features: ~1 when samples match real data; may exceed 1"


class Coverage(_PRDC):
    name = "coverage_byol"
    statistic = "coverage"
    description = "coverage (Naeem et al. 2020, k=5) on BYOL features: share of real images with a sample in their ball"
