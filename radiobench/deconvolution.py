"""Högbom CLEAN (Högbom 1974), the reconstruction track's classical baseline (paper 002 compares with it).

Repeat: find the peak |R| of the residual R (start: the dirty image D), add g·R_peak to the component model
at that pixel, subtract g·R_peak·PSF shifted to it; stop after ``niter`` or when |R_peak| < ``threshold``.
The PSF must be twice the image size (centred at its npix) so every shift covers the whole image.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .types import InputError

__all__ = ["Clean", "hogbom"]


@dataclass
class Clean:
    model: np.ndarray  # components, Jy/pixel
    residual: np.ndarray  # Jy/beam
    iterations: int


def hogbom(dirty: np.ndarray, psf2: np.ndarray, *, gain: float = 0.1, threshold: float = 0.0,
           niter: int = 1000, positive: bool = True) -> Clean:
    """CLEAN ``dirty`` (n × n) with ``psf2`` (2n × 2n, peak 1 at [n, n]). ``positive``: components only
    where the residual peak is positive (sky models are non-negative)."""
    n = dirty.shape[0]
    if dirty.ndim != 2 or dirty.shape != (n, n) or psf2.shape != (2 * n, 2 * n):
        raise InputError(f"CLEAN needs an n×n dirty image and a 2n×2n PSF, got {dirty.shape} and {psf2.shape}")
    if not 0 < gain <= 1:
        raise InputError(f"loop gain must lie in (0, 1], got {gain}")
    residual = np.array(dirty, np.float64)
    model = np.zeros_like(residual)
    psf2 = np.asarray(psf2, np.float64) / psf2[n, n]
    it = 0
    for it in range(1, niter + 1):  # noqa: B007 (the count is returned)
        idx = np.argmax(residual) if positive else np.argmax(np.abs(residual))
        r, c = divmod(int(idx), n)
        peak = residual[r, c]
        if abs(peak) < threshold or (positive and peak <= 0):
            it -= 1
            break
        model[r, c] += gain * peak
        residual -= gain * peak * psf2[n - r:2 * n - r, n - c:2 * n - c]
    return Clean(model, residual, it)
