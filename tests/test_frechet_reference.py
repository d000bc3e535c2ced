"""radiobench's FID and KID (radiobench.evaluators.frechet) against torchmetrics' implementations.

torchmetrics is a test dependency only: its FrechetInceptionDistance takes any feature module, so an
identity module feeds it the feature rows directly (no Inception network, no download), and its KID
kernel MMD (``poly_mmd``) is a plain function of two feature sets.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import poly_mmd

from radiobench.evaluators.frechet import (
    fid_bootstrap,
    fid_from_features,
    kid_bootstrap,
    kid_from_features,
    trace_sqrt_product,
)


class _Rows(torch.nn.Module):
    """Identity feature extractor: the rows passed to ``update`` are the features."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.num_features = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _torchmetrics_fid(real: np.ndarray, generated: np.ndarray) -> float:
    fid = FrechetInceptionDistance(feature=_Rows(real.shape[1]))
    fid.update(torch.from_numpy(real), real=True)
    fid.update(torch.from_numpy(generated), real=False)
    return float(fid.compute())


def _features(n_real: int, n_gen: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative, correlated float64 rows (like pooled ReLU features); the generated set is shifted and
    rescaled so that both the mean and the covariance terms of FID matter."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    real = np.abs(rng.normal(size=(n_real, d)) @ mix)
    generated = np.abs(rng.normal(0.2, 1.3, size=(n_gen, d)) @ mix)
    return real, generated


# (n_real, n_gen, d, rel): full-rank covariances, and N < d as at the benchmark's N = 200 with d = 512
# (singular covariances: torchmetrics' eigenvalue route loses a few digits there)
CASES = [(300, 240, 16, 1e-9), (60, 50, 96, 1e-6)]


@pytest.mark.parametrize("n_real,n_gen,d,rel", CASES)
def test_fid_matches_torchmetrics(n_real, n_gen, d, rel):
    real, generated = _features(n_real, n_gen, d)
    expected = _torchmetrics_fid(real, generated)
    assert expected > 1.0  # a distance the check can see, not two near-identical sets
    assert fid_from_features(real, generated) == pytest.approx(expected, rel=rel)
    assert fid_bootstrap(real, generated, 0, np.random.default_rng(0)).value == pytest.approx(expected, rel=rel)
    # the half-sample draws go through trace_sqrt_product (SVD route for n <= d, eigh route for n > d)
    diff = real.mean(0) - generated.mean(0)
    traces = np.trace(np.cov(real, rowvar=False)) + np.trace(np.cov(generated, rowvar=False))
    from_rows = diff @ diff + traces - 2 * trace_sqrt_product(real, generated)
    assert from_rows == pytest.approx(expected, rel=rel)


@pytest.mark.parametrize("n,d", [(120, 16), (40, 96)])
def test_kid_matches_torchmetrics(n, d):
    # torchmetrics' unbiased MMD^2 assumes equally many real and generated rows
    real, generated = _features(n, n, d, seed=1)
    expected = float(poly_mmd(torch.from_numpy(real), torch.from_numpy(generated)))  # (x.y/d + 1)^3
    assert expected > 0.1
    assert kid_from_features(real, generated) == pytest.approx(expected, rel=1e-12)
    assert kid_bootstrap(real, generated, 0, np.random.default_rng(0)).value == pytest.approx(expected, rel=1e-12)
