"""Scores of the reconstruction track (paper 002 Sect. 3.5), with bootstrap intervals over fields.

Image scores per field (scikit-image): MSE (Eq. 11), peak S/N = 20 log10 MAX − 10 log10 MSE (Eq. 12) and
SSIM (Eq. 13), MAX and SSIM's data range being the true sky's peak over the set; an exact field (MSE 0)
counts as PSNR_MAX dB. Localisation scores
(purity, completeness, F1, flux fraction: :mod:`radiobench.localisation`) pooled over fields; the interval
resamples fields. Completeness against the true sources' S/N (paper 002 Fig. 13) in bins.

``paper_finder`` and ``match_radius_px`` give every method and metric the same source finder and matching
radius: paper 002's (footnote 2; r = 5×10⁻⁵ deg). Its pixel size is not stated (51.2″ fields; 0.1″
assumed): photutils' ``npixels`` = 10 is scaled by pixel area to the dataset's pixels (3 at 0.2″), the
radius is kept in arcsec.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from .localisation import Finder, field_counts, pooled
from .stats import bootstrap_ci
from .types import InputError, SurveyInfo

__all__ = ["image_scores", "localisation_scores", "paper_finder", "match_radius_px", "SNR_BINS",
           "MATCH_RADIUS_DEG"]

MATCH_RADIUS_DEG = 5e-5
PAPER_PIXEL_ARCSEC = 0.1  # assumed (not stated in paper 002)
PAPER_NPIXELS = 10

PSNR_MAX = 100.0
SNR_BINS = (1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)


def paper_finder(survey: SurveyInfo, noise_rms: float) -> Finder:
    """Paper 002's photutils finder for sky models (Jy/pixel) of ``survey``: ``npixels`` scaled by pixel area,
    a detection floor of 0.05 × the noise rms per beam area (a noiseless sky model has no σ to clip)."""
    pix = survey.pixel_scale_arcsec or 1.0
    b_maj, b_min, _ = survey.beam_fwhm_arcsec or (pix, pix, 0.0)
    beam_area_px = np.pi * b_maj * b_min / (4 * np.log(2)) / pix**2
    return Finder(npixels=max(3, round(PAPER_NPIXELS * (PAPER_PIXEL_ARCSEC / pix) ** 2)),
                  floor=0.05 * noise_rms / beam_area_px)


def match_radius_px(survey: SurveyInfo) -> float:
    """Paper 002's matching radius r = 5×10⁻⁵ deg in ``survey``'s pixels."""
    return MATCH_RADIUS_DEG * 3600 / (survey.pixel_scale_arcsec or 1.0)


def _interval(per_field: np.ndarray, stat, n_boot: int, rng: np.random.Generator) -> dict[str, float]:
    value = stat(np.arange(len(per_field)))
    lo, hi, _ = bootstrap_ci(lambda idx, _: stat(idx), len(per_field), 1, n_boot, rng)
    return {"value": float(value), "low": lo, "high": hi}


def image_scores(true: np.ndarray, pred: np.ndarray, n_boot: int, rng: np.random.Generator) -> dict[str, dict]:
    """Mean MSE, peak S/N and SSIM over fields, each with a bootstrap interval."""
    true, pred = np.asarray(true, np.float64), np.asarray(pred, np.float64)
    if true.shape != pred.shape or true.ndim != 3:
        raise InputError(f"sky models {true.shape} and predictions {pred.shape} must be equal (n, h, w) stacks")
    peak = float(true.max()) or 1.0
    mse = np.array([mean_squared_error(t, p) for t, p in zip(true, pred)])
    psnr = np.array([peak_signal_noise_ratio(t, p, data_range=peak) if m > 0 else PSNR_MAX
                     for t, p, m in zip(true, pred, mse)])
    ssim = np.array([structural_similarity(t, p, data_range=peak) for t, p in zip(true, pred)])
    return {name: _interval(v, lambda i, v=v: float(np.mean(v[i])), n_boot, rng)
            for name, v in (("mse", mse), ("psnr", psnr), ("ssim", ssim))}


def localisation_scores(true: Sequence[np.ndarray], found: Sequence[np.ndarray], radius: float,
                        flux_tolerance: float, n_boot: int, rng: np.random.Generator) -> dict[str, object]:
    """Purity, completeness, F1 and flux fraction with intervals over fields, and completeness per S/N bin."""
    counts, detected = field_counts(true, found, radius, flux_tolerance)
    out: dict[str, object] = {name: _interval(counts, lambda idx, name=name: pooled(counts[idx])[name], n_boot, rng)
                              for name in ("purity", "completeness", "f1", "flux_fraction")}
    snr = [t["snr"] for t in true]
    hits, s = np.concatenate(detected) if detected else np.zeros(0), np.concatenate(snr) if snr else np.zeros(0)
    bins = []
    for lo, hi in zip(SNR_BINS[:-1], SNR_BINS[1:]):
        sel = (s >= lo) & (s < hi)
        n, k = int(sel.sum()), int(hits[sel].sum())
        bins.append({"snr_low": lo, "snr_high": hi, "n": n, "completeness": k / n if n else float("nan")})
    out["completeness_vs_snr"] = bins
    out["counts"] = {"tp": int(counts[:, 0].sum()), "n_found": int(counts[:, 1].sum()),
                     "n_true": int(counts[:, 2].sum())}
    return out
