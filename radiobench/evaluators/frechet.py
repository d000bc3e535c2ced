"""Fréchet and kernel distances between feature sets, in float64.

FID = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^{1/2})   (Heusel et al. 2017; the squared form —
paper 001 Eq. 9 prints the norm unsquared).
KID = unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3   (Binkowski et al. 2018).
Paired gap: D(R, A) − D(R, B) for two generated sets A, B scored against the same real set R, with a
half-sample interval that resamples R, A and B jointly (``paired_gap``).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import linalg

__all__ = [
    "half_samples",
    "centred_interval",
    "gaussian_stats",
    "frechet_distance",
    "trace_sqrt_product",
    "fid_from_features",
    "fid_bootstrap",
    "kid_from_features",
    "kid_bootstrap",
    "paired_gap",
    "Interval",
]


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float
    draws: np.ndarray | None = None


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (float64) of (N, d) features."""
    f = np.asarray(features, np.float64)
    if len(f) < 2:
        raise ValueError("need at least two feature vectors for a covariance")
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """FID from Gaussian statistics with a guarded matrix square root: scipy.linalg.sqrtm; if it is not
    finite, retry on (S_1 + eps I)(S_2 + eps I); keep the real part (rounding leaves tiny imaginary parts)."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            off = eps * np.eye(len(s1))
            covmean = linalg.sqrtm((s1 + off) @ (s2 + off))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def trace_sqrt_product(a: np.ndarray, b: np.ndarray) -> float:
    """Tr (S_a S_b)^{1/2} for S = centred(X)^T centred(X) / (n - 1), exactly, from the feature rows.

    With A = centred(a)^T / sqrt(n_a - 1), S_a S_b = A A^T B B^T has the non-zero eigenvalues of
    (A^T B)(A^T B)^T, so Tr (S_a S_b)^{1/2} = sum of the singular values of A^T B (the nuclear norm):
    an (n_a x n_b) SVD instead of a (d x d) matrix square root, and no rounding-induced imaginary parts.
    When n exceeds d the d x d route is cheaper: sqrt(S_a) by eigh, then the eigenvalues of sqrt(S_a) S_b sqrt(S_a).
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    ac = (a - a.mean(0)) / np.sqrt(len(a) - 1)
    bc = (b - b.mean(0)) / np.sqrt(len(b) - 1)
    if min(len(a), len(b)) <= a.shape[1]:
        return float(np.linalg.svd(ac @ bc.T, compute_uv=False).sum())
    w, v = np.linalg.eigh(ac.T @ ac)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    lam = np.linalg.eigvalsh(root @ (bc.T @ bc) @ root)
    return float(np.sqrt(np.clip(lam, 0, None)).sum())


def _fid_rows(a: np.ndarray, b: np.ndarray) -> float:
    """FID of two feature sets via trace_sqrt_product (used inside the bootstrap)."""
    diff = a.mean(0) - b.mean(0)
    tr = np.einsum("ij,ij->", a - a.mean(0), a - a.mean(0)) / (len(a) - 1)
    tr += np.einsum("ij,ij->", b - b.mean(0), b - b.mean(0)) / (len(b) - 1)
    return float(diff @ diff + tr - 2 * trace_sqrt_product(a, b))


def fid_from_features(real: np.ndarray, generated: np.ndarray) -> float:
    """FID of two (N, d) feature sets: Gaussian fits in float64, guarded sqrtm."""
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(generated))


def half_samples(n_real: int, n_gen: int, n_draws: int, rng: np.random.Generator):
    """Index pairs of half-samples drawn without replacement from each set.

    Resampling with replacement duplicates images, and a duplicated pair looks like two identical
    images: it inflates KID's off-diagonal kernel sums and shrinks FID's covariances, so the interval
    drifts far from the statistic (benchmarks/README.md, "FID/KID intervals"). A half-sample without
    replacement has no duplicates, and for a mean-like statistic its variance, σ²/m · (1 − m/N) with
    m = N/2, equals the full sample's σ²/N (half-sampling)."""
    for _ in range(n_draws):
        yield (np.sort(rng.choice(n_real, n_real // 2, replace=False)),
               np.sort(rng.choice(n_gen, n_gen // 2, replace=False)))


def centred_interval(value: float, draws: np.ndarray, alpha: float) -> tuple[float, float]:
    """Percentile interval of the half-sample draws moved so that their mean sits on the full-N value
    (FID is biased upwards at smaller N; the spread, not the location, is what the draws measure)."""
    d = draws[np.isfinite(draws)]
    if len(d) == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(d, [alpha / 2, 1 - alpha / 2])
    shift = float(d.mean()) - value
    return float(lo - shift), float(hi - shift)


def fid_bootstrap(real: np.ndarray, generated: np.ndarray, n_boot: int, rng: np.random.Generator,
                  alpha: float = 0.05) -> Interval:
    """FID with a half-sampling CI over both sets (the features are computed once)."""
    real, generated = np.asarray(real, np.float64), np.asarray(generated, np.float64)
    value = fid_from_features(real, generated)
    pairs = half_samples(len(real), len(generated), n_boot, rng)
    draws = np.array([_fid_rows(real[i], generated[j]) for i, j in pairs])
    lo, hi = centred_interval(value, draws, alpha) if n_boot else (value, value)
    return Interval(value, lo, hi, draws)


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _mmd2_unbiased(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray) -> float:
    """MMD_u^2 = sum_{i!=j} k(x_i,x_j)/(m(m-1)) + sum_{i!=j} k(y_i,y_j)/(n(n-1)) - 2 sum_{i,j} k(x_i,y_j)/(mn)."""
    m, n = len(kxx), len(kyy)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean()
    )


def kid_from_features(real: np.ndarray, generated: np.ndarray) -> float:
    """KID over the whole sets (no subsets: the sets are at the reported N)."""
    x, y = np.asarray(real, np.float64), np.asarray(generated, np.float64)
    return _mmd2_unbiased(_polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y))


def kid_bootstrap(real: np.ndarray, generated: np.ndarray, n_boot: int, rng: np.random.Generator,
                  alpha: float = 0.05) -> Interval:
    """KID with a half-sampling CI: the kernel matrices are computed once and indexed by each half-sample."""
    x, y = np.asarray(real, np.float64), np.asarray(generated, np.float64)
    kxx, kyy, kxy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
    value = _mmd2_unbiased(kxx, kyy, kxy)
    draws = np.array([_mmd2_unbiased(kxx[np.ix_(i, i)], kyy[np.ix_(j, j)], kxy[np.ix_(i, j)])
                      for i, j in half_samples(len(x), len(y), n_boot, rng)])
    lo, hi = centred_interval(value, draws, alpha) if n_boot else (value, value)
    return Interval(value, lo, hi, draws)


def paired_gap(real: np.ndarray, a: np.ndarray, b: np.ndarray, n_boot: int, rng: np.random.Generator,
               alpha: float = 0.05, statistic: str = "fid") -> Interval:
    """D(real, a) − D(real, b) (D: FID, or KID with ``statistic="kid"``) with a half-sampling interval that
    resamples the three feature sets jointly: each draw takes one half of ``real``, shared by both distances (so
    the real set's own sampling error, common to both, cancels in the difference), and one half of ``a`` and
    ``b``, the same rows of each when they are of one size (generated sets of one run are drawn for the same
    conditions, image by image). Percentile interval centred on the full-N gap, as ``fid_bootstrap``'s.
    Negative: ``a`` is closer to the real images than ``b``."""
    if statistic not in ("fid", "kid"):
        raise ValueError(f"statistic must be 'fid' or 'kid', not {statistic!r}")
    r, x, y = (np.asarray(f, np.float64) for f in (real, a, b))
    if statistic == "fid":
        def gap(i: np.ndarray, j: np.ndarray, k: np.ndarray) -> float:
            return _fid_rows(r[i], x[j]) - _fid_rows(r[i], y[k])
    else:
        krr, kxx, kyy = _polynomial_kernel(r, r), _polynomial_kernel(x, x), _polynomial_kernel(y, y)
        krx, kry = _polynomial_kernel(r, x), _polynomial_kernel(r, y)

        def gap(i: np.ndarray, j: np.ndarray, k: np.ndarray) -> float:  # the real-real term cancels
            return (_mmd2_unbiased(krr[np.ix_(i, i)], kxx[np.ix_(j, j)], krx[np.ix_(i, j)])
                    - _mmd2_unbiased(krr[np.ix_(i, i)], kyy[np.ix_(k, k)], kry[np.ix_(i, k)]))
    whole = np.arange(len(r)), np.arange(len(x)), np.arange(len(y))
    value = gap(*whole)
    draws = []
    for i, j in half_samples(len(r), len(x), n_boot, rng):
        k = j if len(x) == len(y) else np.sort(rng.choice(len(y), len(y) // 2, replace=False))
        draws.append(gap(i, j, k))
    lo, hi = centred_interval(value, np.array(draws), alpha) if n_boot else (value, value)
    return Interval(value, lo, hi, np.array(draws))
