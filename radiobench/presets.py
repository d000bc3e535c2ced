"""Run presets. Every result records its preset; rows of different presets are never ranked together.

A preset fixes the evaluation protocol (image size, bootstrap resamples, the survey threshold on samples).
Each plugin maps the preset name to its own hyperparameters (network width, training steps, ...).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .types import InputError

__all__ = ["Preset", "PRESETS", "get_preset"]


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    resolution: int  # image side the datasets are loaded at (FIRST: 80x80 crop, 2x binned to 40)
    n_bootstrap: int  # bootstrap resamples behind every metric CI
    # default of every generator's ``zero_below`` sampling option (see postprocess.survey_threshold)
    zero_below: float | str = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, Preset] = {
    "smoke": Preset("smoke", "seconds per generator; tiny networks; for tests only", 40, 100),
    "cpu": Preset("cpu", "a generator trains in tens of minutes on 2 CPU cores; the published CPU tier", 40, 1000,
                  zero_below="auto"),
    "paper": Preset("paper", "the papers' hyperparameters at 80x80; meant for GPUs", 80, 1000),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
