"""Post-processing of drawn images, applied by ``Generator.sample`` as one step after every batch:
pixels below a survey threshold set to 0 (option ``zero_below``), then each image divided by its peak
(option ``peak_normalise``). Both are sampling options: changing one re-samples a run without re-training.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .options import Option, Options
from .presets import get_preset
from .types import InputError

__all__ = ["SURVEY_THRESHOLD", "POSTPROCESSING", "survey_threshold", "peak_normalised", "divided_by_peak",
           "postprocess"]

# Level (in [0, 1] image units) below which ``zero_below="auto"`` sets sampled pixels to 0 on thresholded
# surveys: FIRST cutouts are exactly 0 below 3x the local rms (paper 000 Sect. 3.2), a cpu-trained
# generator leaves a faint haze there instead (benchmarks/README.md, "Background haze and the learned metrics").
SURVEY_THRESHOLD = 0.02

# the two options, for a generator's OPTIONS: ``zero_below`` defaults to the preset's survey threshold,
# ``peak_normalise`` to off (a plugin's own preset may change either)
POSTPROCESSING = Options(
    zero_below=Option(float, lambda preset: get_preset(preset).zero_below, sampling=True, nullable=True,
                      choices=("auto",), low=0.0, high=1.0, high_open=True),
    peak_normalise=Option(bool, False, sampling=True, nullable=True, choices=("auto",)),
)


def survey_threshold(zero_below: float | str | None, train_info: dict[str, Any]) -> float:
    """The level below which sampled pixels are set to 0: ``zero_below`` itself, or for ``"auto"``
    SURVEY_THRESHOLD when most training pixels are exactly 0 (a thresholded survey) and 0 otherwise."""
    if zero_below == "auto":
        return SURVEY_THRESHOLD if train_info.get("zero_fraction", 0.0) >= 0.5 else 0.0
    try:
        level = float(zero_below or 0.0)
    except (TypeError, ValueError):
        raise InputError(f"zero_below must be a number in [0, 1) or 'auto'; got {zero_below!r}") from None
    if not 0.0 <= level < 1.0:
        raise InputError(f"zero_below must be a number in [0, 1) or 'auto'; got {zero_below!r}")
    return level


def peak_normalised(peak_normalise: bool | str | None, train_info: dict[str, Any]) -> bool:
    """Whether drawn images are divided by their own peak, as every training image was (option
    ``peak_normalise``): the option itself, or for ``"auto"`` whether the training images all peak at 1
    (empty ones aside).
    Checkpoints written before 2026-12-02 do not record that; their survey units say it."""
    if peak_normalise == "auto":
        known = train_info.get("peak_one")
        if known is None:
            known = "per-image peak" in str((train_info.get("survey") or {}).get("units", ""))
        return bool(known)
    if peak_normalise in (None, False, True):
        return bool(peak_normalise)
    raise InputError(f"peak_normalise must be true, false or 'auto'; got {peak_normalise!r}")


def divided_by_peak(images: np.ndarray) -> np.ndarray:
    """x / max(x) per image of (N, 1, H, W), as the survey's cutouts were scaled; empty images stay 0."""
    peak = images.max(axis=(1, 2, 3), keepdims=True)
    return np.divide(images, peak, out=np.zeros_like(images), where=peak > 0)


def postprocess(images: np.ndarray, zero_level: float, to_peak_one: bool) -> np.ndarray:
    """Pixels below ``zero_level`` set to 0, then (``to_peak_one``) each image divided by its peak."""
    if zero_level:
        images = np.where(images < zero_level, np.float32(0), images)
    return divided_by_peak(images) if to_peak_one else images
