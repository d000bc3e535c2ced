"""Pixel-statistics floor: every pixel drawn independently from that pixel's marginal distribution
over the training images (of the requested class). It reproduces the per-pixel histograms by
construction but has no spatial structure: the score a generator must beat."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from radiobench import Conditions

from .replay import TrainingSetGenerator


class PixelFloor(TrainingSetGenerator):
    name = "pixel_floor"
    description = "reference: independent per-pixel draws from the training marginals (per class); no structure"
    floor = True

    def sample_batch(self, conditions: Conditions, seeds: Sequence[int]) -> np.ndarray:
        shape = self.images.shape[1:]
        flat = self.images.reshape(len(self.images), -1)
        cols = np.arange(flat.shape[1])
        out = np.empty((len(seeds), *shape), np.float32)
        for i, s in enumerate(seeds):
            donors = np.random.default_rng(s).choice(self.pool(conditions, i), size=flat.shape[1])
            out[i] = flat[donors, cols].reshape(shape)  # pixel j copied from training image donors[j]
        return out
