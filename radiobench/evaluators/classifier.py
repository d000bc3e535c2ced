"""Paper 000 (Sect. 5.3, Table 6) morphology classifier: ResNet18 encoder -> BN -> dropout ->
Linear(512, 256) -> dropout -> Linear(256, K), no non-linearity in the head. Adam 1e-3,
ReduceLROnPlateau (factor 0.135, patience 50, min 1e-5), 200 epochs, batch 128, cross-entropy
weighted by inverse class frequency; augmentations: 3x3 Gaussian blur (sigma ~ U(0.1, 1)), Gaussian
noise (std ~ U(1e-4, 0.1)), crop of 0.9-1 of the side resampled to full size, rotation by any angle,
vertical flip.

The `cpu` config trains 90 of the 200 epochs at 40×40 with the paper's geometric augmentations only (blur and
noise left it underfit and willing to label pixel speckle as a source), a cosine learning-rate schedule instead
of the plateau, label smoothing 0.1 and weight decay 0.05 (AdamW), and classifies the mean logits of the 8
flips and 90° rotations of an image (test-time augmentation); benchmarks/README.md, "The cpu referee".
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..training import TrainingRun
from ..types import InputError, RadioImages
from .augment import Augment
from .base import EvaluatorSpec, epoch_scheduler, fit_classifier
from .resnet import ResNet18

__all__ = ["ResNetClassifier", "SPEC", "PAPER_AUGMENT"]

PAPER_AUGMENT = Augment(
    flip_h=False, rot90=False, max_angle=180.0, crop=(0.9, 1.0), blur_sigma=(0.1, 1.0), noise_std=(1e-4, 0.1)
)


class ResNetClassifier(nn.Module):
    """logits = W2 · drop(W1 · drop(BN(f(x))) + b1) + b2, f = ResNet18 average-pooled features."""

    def __init__(self, n_classes: int, width: float = 1.0, stem: str = "imagenet", hidden: int = 256,
                 dropout: float = 0.5, tta: bool = False):
        super().__init__()
        self.tta = tta
        self.encoder = ResNet18(1, width, stem)
        d = self.encoder.feature_dim
        self.head = nn.Sequential(
            nn.BatchNorm1d(d), nn.Dropout(dropout), nn.Linear(d, hidden), nn.Dropout(dropout),
            nn.Linear(hidden, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or not self.tta:
            return self.head(self.encoder(x))
        return dihedral_mean(lambda v: self.head(self.encoder(v)), x)


def dihedral_mean(f, x: torch.Tensor) -> torch.Tensor:
    """Test-time augmentation: the mean of f over the 8 flips and 90° rotations of x (square images); a
    radio source's class does not depend on its orientation on the sky."""
    views = [torch.rot90(v, k, (-2, -1)) for v in (x, x.flip(-1)) for k in range(4)]
    return torch.stack([f(v) for v in views]).mean(0)


def build(config: Mapping[str, Any], info: Mapping[str, Any]) -> nn.Module:
    return ResNetClassifier(info["n_classes"], config["width"], config["stem"], config["hidden"], config["dropout"],
                            bool(config.get("tta", False)))


def augment_from(config: Mapping[str, Any]) -> Augment:
    a = config.get("augment", "paper")
    if a == "paper":
        return PAPER_AUGMENT
    if a == "geometric":  # ablation: the paper's geometry without blur and noise
        return Augment(flip_h=False, rot90=False, max_angle=180.0, crop=(0.9, 1.0))
    raise InputError(f"unknown classifier augmentation {a!r}")


def fit(model: nn.Module, train: RadioImages, config: Mapping[str, Any], run: TrainingRun) -> dict[str, Any]:
    aug = augment_from(config)
    wd = float(config.get("weight_decay", 0.0))
    opt = (torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=wd) if wd
           else torch.optim.Adam(model.parameters(), lr=config["lr"]))
    model, opt = run.prepare(model, opt)
    return fit_classifier(run, model, opt, train, aug, batch_size=config["batch_size"],
                          scheduler=epoch_scheduler(opt, config),
                          label_smoothing=float(config.get("label_smoothing", 0.0)))


_PAPER = dict(
    width=1.0, stem="imagenet", hidden=256, dropout=0.5, lr=1e-3, batch_size=128, epochs=200,
    lr_factor=0.135, lr_patience=50, lr_min=1e-5, augment="paper", mixed_precision="bf16",
)
SPEC = EvaluatorSpec(
    kind="classifier", version=2, requires=frozenset({"labels"}),  # 2: batch norm recalibrated after training
    description="paper 000 ResNet18 + linear head morphology classifier (classifier_accuracy)",
    configs={
        "smoke": _PAPER | dict(width=0.125, hidden=64, dropout=0.2, lr=3e-3, batch_size=32, steps=60, lr_patience=5,
                              mixed_precision="no"),
        "cpu": _PAPER | dict(epochs=90, lr_schedule="cosine", label_smoothing=0.1, weight_decay=0.05, tta=True,
                             mixed_precision="no", augment="geometric"),
        "paper": _PAPER,
    },
    build=build, fit=fit,
    notes="ReduceLROnPlateau steps on the epoch's mean training loss (the context holds the train split only)",
)
