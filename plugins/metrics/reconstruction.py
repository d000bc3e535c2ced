"""Reconstruction-track metrics (paper 002 Sect. 3.5): each prediction is scored against the true sky
model of the same field. Localisation (photutils, paper 002 footnote 2; matching radius r = 5×10⁻⁵ deg):
purity (Eq. 14), completeness (Eq. 15), F1 (Eq. 16), flux fraction (Sect. 3.5.3: |S_found − S_true| ≤ the
noise rms); image scores (scikit-image): MSE (Eq. 11), peak S/N (Eq. 12), SSIM (Eq. 13). Intervals
resample fields; completeness against S/N (Fig. 13) is in the F1 record's details.

Paper 002's pixel size is not stated (51.2″ fields; 0.1″ assumed): photutils' ``npixels`` = 10 is scaled
by pixel area to this dataset's pixels (3 at 0.2″), the radius is kept in arcsec.
"""
from __future__ import annotations

import hashlib
import warnings
from typing import Any, ClassVar

import numpy as np

from radiobench import Metric, MetricContext, MetricResult, RadioImages
from radiobench.interferometry import SOURCE_DTYPE, SOURCE_FIELDS
from radiobench.localisation import Finder
from radiobench.reconstruction import image_scores, localisation_scores
from radiobench.types import InputError

MATCH_RADIUS_DEG = 5e-5
PAPER_PIXEL_ARCSEC = 0.1  # assumed (not stated in paper 002)
PAPER_NPIXELS = 10


def true_sources(real: RadioImages) -> list[np.ndarray]:
    table = real.extra["sources"]
    out = []
    for rows in table:
        rows = rows[np.isfinite(rows[:, 0])]
        t = np.zeros(len(rows), SOURCE_DTYPE)
        for k, name in enumerate(SOURCE_FIELDS):
            t[name] = rows[:, k]
        out.append(t)
    return out


def scored(real: RadioImages, generated: RadioImages, context: MetricContext) -> dict[str, Any]:
    """Every reconstruction score of ``generated`` against ``real`` (memoised per generated set)."""
    if len(generated) != len(real):
        raise InputError(f"{len(generated)} predictions for {len(real)} fields: a reconstruction scores one "
                         "prediction per reference field")
    key = hashlib.sha256(generated.images.tobytes()).hexdigest()

    def compute() -> dict[str, Any]:
        scale = real.extra["scale"][:, None, None]
        pix = real.survey.pixel_scale_arcsec or 1.0
        noise = float(real.extra["noise_rms"][0])
        b_maj, b_min, _ = real.survey.beam_fwhm_arcsec or (pix, pix, 0.0)
        beam_area_px = np.pi * b_maj * b_min / (4 * np.log(2)) / pix**2
        finder = Finder(npixels=max(3, round(PAPER_NPIXELS * (PAPER_PIXEL_ARCSEC / pix) ** 2)),
                        floor=0.05 * noise / beam_area_px)
        sky, pred = real.images[:, 0] * scale, generated.images[:, 0] * scale
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # photutils' "no sources found" on empty fields
            found = [finder(p) for p in pred]
        radius = MATCH_RADIUS_DEG * 3600 / pix
        rng = context.rng("reconstruction")
        return {"localisation": localisation_scores(true_sources(real), found, radius, noise, context.n_bootstrap,
                                                    rng),
                "image": image_scores(sky, pred, context.n_bootstrap, rng),
                "settings": {"npixels": finder.npixels, "floor_jy_per_pixel": finder.floor, "radius_px": radius,
                             "flux_tolerance_jy": noise}}

    return context.remember(f"reconstruction:{key}", compute)


class _Reconstruction(Metric):
    task = "reconstruction"
    part: ClassVar[str] = "localisation"
    score: ClassVar[str] = ""

    def applicable(self, real: RadioImages, generator_supports: frozenset[str] | None) -> str | None:
        if "sources" not in real.extra or "scale" not in real.extra:
            return "the reference data carries no true source tables"
        if generator_supports is None:
            return "scores a method's predictions of the reference fields (the ceiling row is the `truth` method)"
        if not generator_supports & {"dirty", "sky"}:
            return "the method is not conditioned on the fields it should reconstruct"
        return None

    def compute(self, real: RadioImages, generated: RadioImages, context: MetricContext) -> MetricResult:
        s = scored(real, generated, context)
        v = s[self.part][self.score]
        details: dict[str, Any] = {"settings": s["settings"]}
        if self.score == "f1":
            details.update(completeness_vs_snr=s["localisation"]["completeness_vs_snr"],
                           counts=s["localisation"]["counts"])
        return MetricResult(self.name, v["value"], v["low"], v["high"], self.direction, len(real), len(generated),
                            unit=self.unit, details=details)


class F1(_Reconstruction):
    name, score, direction = "recon_f1", "f1", "higher"
    description = "F1 of photutils-localised sources against the true ones (paper 002 Eq. 16)"


class Purity(_Reconstruction):
    name, score, direction = "recon_purity", "purity", "higher"
    description = "purity: share of found sources within 5e-5 deg of a true one (paper 002 Eq. 14)"


class Completeness(_Reconstruction):
    name, score, direction = "recon_completeness", "completeness", "higher"
    description = "completeness: share of true sources found (paper 002 Eq. 15)"


class FluxFraction(_Reconstruction):
    name, score, direction = "recon_flux_fraction", "flux_fraction", "higher"
    description = "share of true sources whose found flux lies within the noise rms (paper 002 Sect. 3.5.3)"


class SSIM(_Reconstruction):
    name, part, score, direction = "recon_ssim", "image", "ssim", "higher"
    description = "SSIM of predicted and true sky models (scikit-image; paper 002 Eq. 13)"


class PSNR(_Reconstruction):
    name, part, score, direction, unit = "recon_psnr", "image", "psnr", "higher", "dB"
    description = "peak S/N of predicted against true sky models (paper 002 Eq. 12)"


class MSE(_Reconstruction):
    name, part, score, direction = "recon_mse", "image", "mse", "lower"
    description = "mean squared error of predicted against true sky models, Jy²/pixel² (paper 002 Eq. 11)"
