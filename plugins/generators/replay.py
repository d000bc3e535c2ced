"""Replay: returns real training images. Its row shows what a generator that memorised the
training set would score; distribution metrics cannot tell it from real data, memorisation can."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from radiobench import Conditions, Generator, RadioImages
from radiobench.checkpoint import load_config, load_tensors, save_config, save_weights
from radiobench.options import Options


class TrainingSetGenerator(Generator):
    """Base of the reference generators: 'training' keeps the training images themselves."""

    supports = frozenset({"class"})
    reference = True
    OPTIONS = Options()  # none

    def pool(self, conditions: Conditions, i: int) -> np.ndarray:
        """Indices of training images that may serve image i (same class when conditioned)."""
        if conditions.labels is not None and self.labels is not None:
            return np.flatnonzero(self.labels == conditions.labels[i])
        return np.arange(len(self.images))

    def fit(self, train: RadioImages, *, seed: int, workdir: Path | None = None) -> None:
        self.remember_training_set(train)
        self.images = train.images.copy()
        self.labels = train.labels.copy() if train.labels is not None else None

    def save(self, directory: Path) -> None:
        tensors = {"images": torch.from_numpy(self.images)}
        if self.labels is not None:
            tensors["labels"] = torch.from_numpy(self.labels)
        save_weights(directory, {"data": tensors})
        save_config(directory, {"config": self.config(), "train_info": self.train_info})

    def load(self, directory: Path) -> None:
        self.train_info = load_config(directory)["train_info"]
        data = load_tensors(directory, "data")
        self.images = data["images"].numpy()
        self.labels = data["labels"].numpy() if "labels" in data else None


class Replay(TrainingSetGenerator):
    name = "replay"
    description = "reference: draws real training images (of the requested class); what memorisation scores"

    def sample_batch(self, conditions: Conditions, seeds: Sequence[int]) -> np.ndarray:
        pick = [np.random.default_rng(s).choice(self.pool(conditions, i)) for i, s in enumerate(seeds)]
        return self.images[pick]
