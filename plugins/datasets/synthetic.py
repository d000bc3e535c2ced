"""Procedural FIRST-like radio galaxies of the four classes of the ``first`` dataset, generated offline.

Every source is a sum of elliptical Gaussian components on a 144" field (the ``first`` 80x80 crop):
  Compact  one unresolved or slightly resolved component (intrinsic sigma 0-2.5");
  FRI      bright core, two nearly opposite straight jets of knots fading outward and flaring (core-brightened);
  FRII     faint or absent core, two lobes whose brightness rises outward to a compact hotspot at the outer
           edge (edge-brightened), lobe distances 8-50" (log-uniform);
  Bent     core and two tails that leave it at a wide angle and bend towards a common direction (wide-angle
           and head-tail sources): the angle between the tail ends differs clearly from 180 deg.
Components are convolved with the FIRST beam (5.4" FWHM) analytically (Gaussian x Gaussian: covariances add).
The model is scaled to a peak flux drawn log-normally (median 10 mJy/beam, sigma_ln 1, within [2, 1000]
mJy/beam); Gaussian noise of 0.15 mJy/beam rms (FIRST), correlated on the beam scale, is added. As for
FIRST (Griese et al. 2023) pixels below 3 sigma are set to 0; each image is then divided by its maximum
(``peak_flux``, Jy/beam), so ``images * peak_flux`` restores the thresholded image exactly. Masks are the
true support: noise-free model >= 3 sigma. Image i of a split depends only on (seed, split, i), so a split's
first n images do not change with its size. Classes are balanced (label i mod 4).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from radiobench.options import Option, Options
from radiobench.types import InputError, RadioImages, SurveyInfo

from ._common import FIRST_BEAM_ARCSEC, FIRST_FREQ_HZ, MemoisedSplits

CLASSES = ("FRI", "FRII", "Compact", "Bent")
SPLITS = ("train", "valid", "test")
FIELD_ARCSEC = 144.0
NOISE_RMS = 1.5e-4  # Jy/beam, FIRST
THRESHOLD_SIGMA = 3.0
BEAM_SIGMA = FIRST_BEAM_ARCSEC / (2 * np.sqrt(2 * np.log(2)))  # arcsec


def _knots(start: np.ndarray, angles: np.ndarray, step: float, b: np.ndarray, width: np.ndarray) -> list[tuple]:
    """Components along a path that starts at ``start`` and heads along ``angles`` (one per step)."""
    comps, pos = [], start.astype(float).copy()
    for ang, bk, w in zip(angles, b, width):
        pos = pos + step * np.array([np.cos(ang), np.sin(ang)])
        comps.append((pos[0], pos[1], bk, 0.7 * step + 0.3 * w, w, ang))
    return comps


def _source(cls: int, rng: np.random.Generator) -> list[tuple]:
    """Components (x", y", convolved peak brightness, sigma_major", sigma_minor", angle) of one source."""
    phi = rng.uniform(0, 2 * np.pi)
    c = rng.normal(0, 1.5, 2)
    name = CLASSES[cls]
    if name == "Compact":
        sa = rng.uniform(0, 2.5)
        return [(c[0], c[1], 1.0, sa, sa * rng.uniform(0.5, 1), rng.uniform(0, np.pi))]
    if name == "FRI":
        comps = [(c[0], c[1], 1.0, rng.uniform(0.3, 1.5), rng.uniform(0.3, 1.0), phi)]
        b0 = rng.uniform(0.3, 0.6)
        for side, direction in enumerate((phi, phi + np.pi + rng.normal(0, 0.15))):
            length = np.exp(rng.uniform(np.log(12), np.log(45))) * (1 if side == 0 else rng.uniform(0.6, 1))
            n = max(4, int(length / 3))
            s = np.arange(1, n + 1) * length / n
            angles = direction + np.cumsum(rng.normal(0, 0.04, n))
            comps += _knots(c, angles, length / n, b0 * np.exp(-s / (length * rng.uniform(0.3, 0.5))), 1.0 + 0.15 * s)
        return comps
    if name == "FRII":
        comps = [(c[0], c[1], rng.uniform(0, 0.15), 0.5, 0.5, 0.0)]
        for side, direction in enumerate((phi, phi + np.pi + rng.normal(0, 0.1))):
            dist = np.exp(rng.uniform(np.log(8), np.log(50)))
            hot = 1.0 if side == 0 else rng.uniform(0.5, 1.0)
            u = np.array([np.cos(direction), np.sin(direction)])
            tip = c + dist * u
            comps.append((tip[0], tip[1], hot, rng.uniform(0.5, 1.5), rng.uniform(0.5, 1.2), direction))
            lobe_len = dist * rng.uniform(0.4, 0.8)
            width = rng.uniform(2, 6)
            for f in np.linspace(0.15, 0.9, 4):  # backflow: brighter towards the hotspot
                p = tip - (1 - f) * lobe_len * u
                comps.append((p[0], p[1], hot * (0.12 + 0.25 * f), lobe_len / 5, width * (1.2 - 0.3 * f), direction))
        return comps
    # Bent: tails leave the core at +-Delta from the trailing direction phi and bend towards it
    comps = [(c[0], c[1], 1.0, rng.uniform(0.3, 1.5), rng.uniform(0.3, 1.0), phi)]
    b0 = rng.uniform(0.3, 0.6)
    delta0 = rng.uniform(0.45, 1.0) * np.pi / 2
    kappa = rng.uniform(6, 15)
    for sign in (1, -1):
        length = rng.uniform(15, 45)
        n = max(5, int(length / 3))
        s = np.arange(1, n + 1) * length / n
        angles = phi + sign * delta0 * np.exp(-s / kappa)
        comps += _knots(c, angles, length / n, b0 * np.exp(-s / (length * rng.uniform(0.5, 0.8))), 1.0 + 0.12 * s)
    return comps


def _render(comps: list[tuple], pix: float, res: int) -> np.ndarray:
    """Sum of beam-convolved Gaussians sampled at pixel centres (arcsec grid centred on the field)."""
    a = np.asarray(comps, dtype=np.float32)
    x0, y0, b, sa, sb, th = (a[:, k, None, None] for k in range(6))
    grid = ((np.arange(res) - (res - 1) / 2) * pix).astype(np.float32)
    dx, dy = grid[None, None, :] - x0, grid[None, :, None] - y0
    ct, st = np.cos(th), np.sin(th)
    u, v = dx * ct + dy * st, -dx * st + dy * ct
    va, vb = sa**2 + BEAM_SIGMA**2, sb**2 + BEAM_SIGMA**2  # intrinsic (x) beam: variances add
    return (b * np.exp(-0.5 * (u**2 / va + v**2 / vb))).sum(axis=0, dtype=np.float64)


class SyntheticDataset(MemoisedSplits):
    """Seeded procedural FRI/FRII/Compact/Bent sources, FIRST-like (beam, noise, 3-sigma threshold, peak scaling).

    Options: seed (0), n_train (800), n_valid (100), n_test (200). Default resolution 40 (3.6" pixels)."""

    name = "synthetic"
    description = "procedural FIRST-like FRI/FRII/Compact/Bent sources with masks and peak flux; offline, seeded"
    provides = frozenset({"labels", "masks", "flux"})
    splits = SPLITS
    OPTIONS = Options(seed=Option(int, low=0), n_train=Option(int, low=0), n_valid=Option(int, low=0),
                      n_test=Option(int, low=0))

    def __init__(self, resolution: int | None = None, data_dir: str | Path | None = None, *, seed: int = 0,
                 n_train: int = 800, n_valid: int = 100, n_test: int = 200, **options: Any):
        resolution = self.check_options(
            resolution, {"seed": seed, "n_train": n_train, "n_valid": n_valid, "n_test": n_test, **options})
        res = 40 if resolution is None else int(resolution)
        if not 8 <= res <= 512:
            raise InputError(f"synthetic: resolution must lie in [8, 512]; got {resolution}")
        sizes = {"train": int(n_train), "valid": int(n_valid), "test": int(n_test)}
        super().__init__(
            res, data_dir, seed=int(seed), n_train=sizes["train"], n_valid=sizes["valid"], n_test=sizes["test"]
        )
        self.sizes = sizes

    def build_split(self, split: str) -> RadioImages:
        return self._generate(split)

    def _generate(self, split: str) -> RadioImages:
        from scipy.ndimage import gaussian_filter

        res, n = int(self.resolution), self.sizes[split]
        pix = FIELD_ARCSEC / res
        beam_px = BEAM_SIGMA / pix
        delta = np.zeros((res, res))
        delta[res // 2, res // 2] = 1
        noise_gain = np.sqrt((gaussian_filter(delta, beam_px, mode="wrap") ** 2).sum())
        images = np.zeros((n, res, res), np.float32)
        masks = np.zeros((n, res, res), np.uint8)
        peaks = np.zeros(n)
        labels = np.arange(n, dtype=np.int64) % len(CLASSES)
        thr = THRESHOLD_SIGMA * NOISE_RMS
        for i in range(n):
            rng = np.random.default_rng([self.options["seed"], SPLITS.index(split), i])
            model = _render(_source(int(labels[i]), rng), pix, res)
            flux = float(np.clip(np.exp(rng.normal(np.log(1e-2), 1.0)), 2e-3, 1.0))
            model *= flux / model.max()
            noise = gaussian_filter(rng.standard_normal((res, res)), beam_px, mode="wrap") * (NOISE_RMS / noise_gain)
            obs = np.where(model + noise >= thr, model + noise, 0.0)
            peaks[i] = obs.max()
            images[i] = obs / peaks[i]
            masks[i] = model >= thr
        return RadioImages(
            images=images[:, None],
            survey=self.survey(),
            labels=labels,
            class_names=CLASSES,
            peak_flux=peaks,
            masks=masks[:, None],
            ids=tuple(f"synthetic-{self.options['seed']}-{split}-{i}" for i in range(n)),
            extra={"noise_rms": np.full(n, NOISE_RMS)},
        )

    def survey(self) -> SurveyInfo:
        return SurveyInfo(
            name="synthetic FIRST-like",
            pixel_scale_arcsec=FIELD_ARCSEC / int(self.resolution),
            beam_fwhm_arcsec=(FIRST_BEAM_ARCSEC, FIRST_BEAM_ARCSEC, 0.0),
            frequency_hz=FIRST_FREQ_HZ,
            units="scaled [0, 1] (per-image peak normalised, thresholded at 3 sigma); x peak_flux = Jy/beam",
            noise_rms=NOISE_RMS,
            notes="procedural Gaussian-component sources on a 144\" field, beam-convolved, correlated noise, "
                  "pixels < 3 sigma set to 0, divided by the image maximum; masks = noise-free model >= 3 sigma",
        )
