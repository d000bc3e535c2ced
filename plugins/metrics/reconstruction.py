"""Reconstruction-track metrics (paper 002 Sect. 3.5): each prediction is scored against the true sky
model of the same field. Localisation (photutils, paper 002 footnote 2; matching radius r = 5×10⁻⁵ deg):
purity (Eq. 14), completeness (Eq. 15), F1 (Eq. 16), flux fraction (Sect. 3.5.3: |S_found − S_true| ≤ the
noise rms); image scores (scikit-image): MSE (Eq. 11), peak S/N (Eq. 12), SSIM (Eq. 13). Intervals
resample fields; completeness against S/N (Fig. 13) is in the F1 record's details. Sources are found in
each prediction with paper 002's finder (:func:`radiobench.reconstruction.paper_finder`), unless the method
returned its own ``catalogue`` (detect-aggregate, PyBDSF): then that is scored.
"""
from __future__ import annotations

import hashlib
import warnings
from typing import Any, ClassVar

import numpy as np

from radiobench import Metric, MetricContext, MetricResult, RadioImages
from radiobench.interferometry import SOURCE_DTYPE, SOURCE_FIELDS
from radiobench.localisation import catalogue_tables
from radiobench.reconstruction import image_scores, localisation_scores, match_radius_px, paper_finder
from radiobench.types import InputError


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
    catalogue = generated.extra.get("catalogue")
    key = hashlib.sha256(generated.images.tobytes() + (b"" if catalogue is None else
                                                       np.ascontiguousarray(catalogue).tobytes())).hexdigest()

    def compute() -> dict[str, Any]:
        scale = real.extra["scale"][:, None, None]
        noise = float(real.extra["noise_rms"][0])
        finder = paper_finder(real.survey, noise)
        sky, pred = real.images[:, 0] * scale, generated.images[:, 0] * scale
        if catalogue is not None:
            found = catalogue_tables(catalogue)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # photutils' "no sources found" on empty fields
                found = [finder(p) for p in pred]
        radius = match_radius_px(real.survey)
        rng = context.rng("reconstruction")
        return {"localisation": localisation_scores(true_sources(real), found, radius, noise, context.n_bootstrap,
                                                    rng),
                "image": image_scores(sky, pred, context.n_bootstrap, rng),
                "settings": {"sources": "the method's catalogue" if catalogue is not None else "photutils",
                             "npixels": finder.npixels, "floor_jy_per_pixel": finder.floor, "radius_px": radius,
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
