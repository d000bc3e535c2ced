"""Radio-galaxy CNN classifier behind RAMIS (paper 003 Sect. 4), in the style of Tang et al. 2019 /
Aniyan & Thorat 2017: five convolutional layers (11x11, 5x5, 5x5, 3x3, 3x3), each followed by batch
normalisation, ReLU and 2x2 max pooling; three fully connected layers; softmax gives p(y|x).

Trained with rotations and flips only (paper 003 Sect. 3.4), never with blur or noise: RAMIS must
fall when images are blurred or noised (paper 003 Fig. 1), so the classifier must not be taught to
ignore them.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..training import TrainingRun
from ..types import RadioImages
from .augment import Augment
from .base import EvaluatorSpec, fit_classifier

__all__ = ["RadioCNN", "SPEC"]

KERNELS = (11, 5, 5, 3, 3)
CHANNELS = (16, 32, 64, 64, 32)


class RadioCNN(nn.Module):
    """[conv-BN-ReLU-maxpool] x 5 -> flatten -> FC-ReLU-dropout -> FC-ReLU-dropout -> FC (logits)."""

    def __init__(self, n_classes: int, resolution: tuple[int, int], width: float = 1.0, hidden: int = 256,
                 dropout: float = 0.5):
        super().__init__()
        layers, c, (h, w) = [], 1, resolution
        for k, c_out in zip(KERNELS, CHANNELS):
            c_out = max(2, int(round(c_out * width)))
            layers += [nn.Conv2d(c, c_out, k, padding=k // 2), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2, ceil_mode=True)]
            c, h, w = c_out, math.ceil(h / 2), math.ceil(w / 2)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c * h * w, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden // 4), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden // 4, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build(config: Mapping[str, Any], info: Mapping[str, Any]) -> nn.Module:
    return RadioCNN(info["n_classes"], tuple(info["resolution"]), config["width"], config["hidden"], config["dropout"])


AUGMENT = Augment(flip_h=True, rot90=True, max_angle=180.0)


def fit(model: nn.Module, train: RadioImages, config: Mapping[str, Any], run: TrainingRun) -> dict[str, Any]:
    optim = {"adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad}[config["optimizer"]]
    model, opt = run.prepare(model, optim(model.parameters(), lr=config["lr"]))
    return fit_classifier(run, model, opt, train, AUGMENT, batch_size=config["batch_size"])


_BASE = dict(width=1.0, hidden=256, dropout=0.5, optimizer="adam", lr=1e-3, batch_size=64, mixed_precision="no")
SPEC = EvaluatorSpec(
    kind="radio_cnn", version=2, requires=frozenset({"labels"}),  # 2: batch norm recalibrated after training
    description="Tang et al. 2019 style 5-conv/3-FC radio classifier behind RAMIS (paper 003)",
    configs={
        "smoke": _BASE | dict(width=0.25, hidden=64, dropout=0.2, lr=3e-3, batch_size=32, steps=60),
        "cpu": _BASE | dict(epochs=40),
        # paper 003: Adagrad, lr 1e-3, 30 epochs over FRDEEP rotated in 1-degree steps (360 copies);
        # random rotations are drawn online here, so the epochs count passes over the unrotated set
        "paper": _BASE | dict(optimizer="adagrad", epochs=300, mixed_precision="bf16"),
    },
    build=build, fit=fit,
)
