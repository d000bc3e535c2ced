"""An example third-party radiobench plugin: one generator, one metric, registered by entry points."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from radiobench import Conditions, Generator, Metric, MetricContext, MetricResult, RadioImages
from radiobench.checkpoint import load_config, load_tensors, save_config, save_weights
from radiobench.stats import ClusterDistance


class ClassMean(Generator):
    name = "class_mean"
    description = "example plugin: the class-mean training image plus Gaussian noise"
    supports = frozenset({"class"})

    def fit(self, train: RadioImages, *, seed: int, workdir: Path | None = None) -> None:
        self.remember_training_set(train)
        labels = train.labels if train.labels is not None else np.zeros(len(train), np.int64)
        self.means = np.stack([train.images[labels == c].mean(0) for c in range(labels.max() + 1)])
        self.noise = float(train.images.std() * 0.1)

    def sample_batch(self, conditions: Conditions, seeds: Sequence[int]) -> np.ndarray:
        labels = conditions.labels if conditions.labels is not None else np.zeros(len(seeds), np.int64)
        out = [self.means[c] + self.noise * np.random.default_rng(s).standard_normal(self.means[c].shape)
               for c, s in zip(labels, seeds)]
        return np.clip(np.stack(out), 0, 1).astype(np.float32)

    def save(self, directory: Path) -> None:
        save_weights(directory, {"state": {"means": torch.from_numpy(self.means)}})
        save_config(directory, {"noise": self.noise, "train_info": self.train_info})

    def load(self, directory: Path) -> None:
        cfg = load_config(directory)
        self.noise, self.train_info = cfg["noise"], cfg["train_info"]
        self.means = load_tensors(directory, "state")["means"].numpy()


def centroid_offsets(images: np.ndarray) -> np.ndarray:
    """Distance (pixels) of each image's brightness centroid from the image centre."""
    n, _, h, w = images.shape
    yy, xx = np.mgrid[:h, :w]
    flux = images[:, 0].reshape(n, -1).sum(1) + 1e-12
    cy = (images[:, 0] * yy).reshape(n, -1).sum(1) / flux
    cx = (images[:, 0] * xx).reshape(n, -1).sum(1) / flux
    return np.hypot(cy - (h - 1) / 2, cx - (w - 1) / 2)


class CentroidW1(Metric):
    name = "centroid_w1"
    description = "example plugin: W1 between brightness-centroid offsets from the centre (pixels)"
    direction = "lower"
    unit = "pixel"

    def compute(self, real: RadioImages, generated: RadioImages, context: MetricContext) -> MetricResult:
        a, b = centroid_offsets(real.images), centroid_offsets(generated.images)
        iv = ClusterDistance(a[:, None], b[:, None]).compute(context.n_bootstrap, context.rng(self.name))["w1"]
        return MetricResult(self.name, iv.value, iv.low, iv.high, "lower", len(real), len(generated), self.unit)
