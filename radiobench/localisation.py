"""Source localisation and its scores for the reconstruction track (paper 002 Sect. 3.4–3.5).

Sources are found with photutils' image segmentation as paper 002 does (footnote 2: 3×3 kernel,
sigma-clipped statistics with σ = 2, ``npixels`` = 10 for detection and deblending). A predicted source is
a true positive when a true source lies within the matching radius r (paper: 5×10⁻⁵ deg), a false positive
otherwise; a true source with no prediction within r is a false negative:

    purity = TP/(TP + FP)   (Eq. 14),   completeness = TP/(TP + FN)   (Eq. 15),
    F1 = 2·purity·completeness/(purity + completeness)   (Eq. 16),

and the flux "fraction" is the share of true sources whose matched flux lies within the noise amplitude
of the true flux (Sect. 3.5.3). Positions are (row, col) pixel coordinates.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from astropy.convolution import convolve
from astropy.stats import sigma_clipped_stats
from photutils.segmentation import SourceCatalog, deblend_sources, detect_sources, make_2dgaussian_kernel
from photutils.utils import NoDetectionsWarning
from scipy.optimize import linear_sum_assignment

from .types import InputError

__all__ = ["FOUND_DTYPE", "Finder", "Matches", "match", "field_counts", "pooled", "scores", "detect_aggregate",
           "catalogue_array", "catalogue_tables"]

FOUND_DTYPE = np.dtype([("row", "f8"), ("col", "f8"), ("flux", "f8")])


@dataclass(frozen=True)
class Finder:
    """photutils segmentation with paper 002's parameters. The detection threshold is
    median + ``nsigma``·σ of the sigma-clipped image statistics, and never below ``floor`` (in image units):
    a noiseless sky model has σ = 0, where every positive pixel would otherwise count. Fluxes are segment
    sums divided by ``beam_area`` (pixels per beam: 1 for sky models in Jy/pixel)."""

    kernel_size: int = 3
    kernel_fwhm: float = 1.5
    clip_sigma: float = 2.0
    nsigma: float = 3.0
    npixels: int = 10
    floor: float = 0.0
    beam_area: float = 1.0

    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image, np.float64)
        if image.ndim != 2 or not np.all(np.isfinite(image)):
            raise InputError("source finding needs a finite 2-D image")
        kernel = make_2dgaussian_kernel(self.kernel_fwhm, size=self.kernel_size)
        smoothed = convolve(image, kernel)
        _, median, std = sigma_clipped_stats(image, sigma=self.clip_sigma)
        threshold = max(median + self.nsigma * std, self.floor)
        with warnings.catch_warnings():  # an empty field finds nothing: the empty table says so
            warnings.simplefilter("ignore", NoDetectionsWarning)
            segments = detect_sources(smoothed, threshold, n_pixels=self.npixels)
        if segments is None:
            return np.zeros(0, FOUND_DTYPE)
        segments = deblend_sources(smoothed, segments, n_pixels=self.npixels, progress_bar=False)
        cat = SourceCatalog(image, segments, convolved_data=smoothed)
        out = np.zeros(len(cat), FOUND_DTYPE)
        out["row"], out["col"], out["flux"] = cat.y_centroid, cat.x_centroid, cat.segment_flux / self.beam_area
        return out[np.isfinite(out["row"]) & np.isfinite(out["col"])]


@dataclass
class Matches:
    """One image's matching: ``pairs`` (true index, found index) within the radius."""

    n_true: int
    n_found: int
    pairs: np.ndarray  # (k, 2) int

    @property
    def tp(self) -> int:
        return len(self.pairs)


def match(true: np.ndarray, found: np.ndarray, radius: float) -> Matches:
    """One-to-one matching of found to true positions within ``radius`` pixels, closest pairs first
    (an optimal assignment over the pairs within the radius)."""
    if len(true) == 0 or len(found) == 0:
        return Matches(len(true), len(found), np.zeros((0, 2), int))
    d = np.hypot(true["row"][:, None] - found["row"][None], true["col"][:, None] - found["col"][None])
    cost = np.where(d <= radius, d, 1e9)
    ti, fi = linear_sum_assignment(cost)
    keep = cost[ti, fi] <= radius
    return Matches(len(true), len(found), np.stack([ti[keep], fi[keep]], 1))


def field_counts(true: Sequence[np.ndarray], found: Sequence[np.ndarray], radius: float,
                 flux_tolerance: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per field: (TP, found, true, TPs whose flux lies within ``flux_tolerance``) as an (n, 4) array, and which
    true sources were found (one boolean array per field)."""
    if len(true) != len(found):
        raise InputError(f"{len(true)} true source tables against {len(found)} found ones")
    counts, hits = np.zeros((len(true), 4)), []
    for k, (t, f) in enumerate(zip(true, found)):
        m = match(t, f, radius)
        good = np.abs(f["flux"][m.pairs[:, 1]] - t["flux"][m.pairs[:, 0]]) <= flux_tolerance
        counts[k] = m.tp, m.n_found, m.n_true, np.sum(good)
        hit = np.zeros(len(t), bool)
        hit[m.pairs[:, 0]] = True
        hits.append(hit)
    return counts, hits


def pooled(counts: np.ndarray) -> dict[str, float]:
    """Purity, completeness, F1 (Eqs. 14–16) and flux fraction (Sect. 3.5.3) of summed ``field_counts``."""
    tp, n_found, n_true, good_flux = counts.sum(axis=0)
    purity = tp / n_found if n_found else float("nan")
    completeness = tp / n_true if n_true else float("nan")
    f1 = 2 * purity * completeness / (purity + completeness) if purity + completeness > 0 else 0.0
    return {"purity": float(purity), "completeness": float(completeness), "f1": float(f1),
            "flux_fraction": float(good_flux / n_true) if n_true else float("nan")}


def scores(true: Sequence[np.ndarray], found: Sequence[np.ndarray], radius: float,
           flux_tolerance: float) -> dict[str, float]:
    """Purity, completeness, F1 and flux fraction pooled over images, with the pooled counts."""
    counts, _ = field_counts(true, found, radius, flux_tolerance)
    tp, n_found, n_true, _ = counts.sum(axis=0).astype(int)
    return {**pooled(counts), "tp": int(tp), "n_found": int(n_found), "n_true": int(n_true)}


def detect_aggregate(tables: Sequence[np.ndarray], radius: float, reliability: float) -> np.ndarray:
    """Merge the sources found in several samples of one input (Sect. 3.4.1): sources within ``radius``
    of a running cluster centre are one source; keep those found in at least ``reliability`` of the
    samples, with their mean position and flux."""
    if not 0 <= reliability <= 1:
        raise InputError(f"reliability must lie in [0, 1], got {reliability}")
    clusters: list[list[np.void]] = []
    for table in tables:
        for s in table:
            centres = [(np.mean([m["row"] for m in c]), np.mean([m["col"] for m in c])) for c in clusters]
            d = [np.hypot(r - s["row"], c - s["col"]) for r, c in centres]
            k = int(np.argmin(d)) if d else -1
            if k >= 0 and d[k] <= radius:
                clusters[k].append(s)
            else:
                clusters.append([s])
    kept = [c for c in clusters if len(c) >= reliability * len(tables)]
    out = np.zeros(len(kept), FOUND_DTYPE)
    for i, c in enumerate(kept):
        out[i] = (np.mean([m["row"] for m in c]), np.mean([m["col"] for m in c]), np.mean([m["flux"] for m in c]))
    return out


def catalogue_array(tables: Sequence[np.ndarray], rows: int) -> np.ndarray:
    """Per-field source tables (``FOUND_DTYPE``) as one (n, ``rows``, 3) float array of (row, col, flux), NaN
    below each table: the ``catalogue`` a reconstruction method returns with its images. InputError for a
    table longer than ``rows``."""
    out = np.full((len(tables), rows, 3), np.nan)
    for i, t in enumerate(tables):
        if len(t) > rows:
            raise InputError(f"a catalogue of {len(t)} sources does not fit {rows} rows")
        out[i, :len(t)] = np.stack([t["row"], t["col"], t["flux"]], 1) if len(t) else np.zeros((0, 3))
    return out


def catalogue_tables(catalogue: np.ndarray) -> list[np.ndarray]:
    """The per-field tables (``FOUND_DTYPE``) of a ``catalogue_array``."""
    cat = np.asarray(catalogue, np.float64)
    if cat.ndim != 3 or cat.shape[2] != 3:
        raise InputError(f"a catalogue is an (n, rows, 3) array of (row, col, flux); got shape {cat.shape}")
    out = []
    for rows in cat:
        rows = rows[np.isfinite(rows[:, 0])]
        t = np.zeros(len(rows), FOUND_DTYPE)
        t["row"], t["col"], t["flux"] = rows[:, 0], rows[:, 1], rows[:, 2]
        out.append(t)
    return out
