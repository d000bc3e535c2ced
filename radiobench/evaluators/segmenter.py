"""Small U-Net (Ronneberger et al. 2015) predicting source masks, behind the segmentation score
(paper 001 Eq. 10-14; the paper uses Tiramisu). Trained on real (image, mask) pairs with binary
cross-entropy + soft Dice; masks are binarised (source = mask > 0)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..training import TrainingRun
from ..types import InputError, RadioImages
from .augment import Augment
from .base import EvaluatorSpec, fit_supervised

__all__ = ["UNet", "SPEC", "dice_bce"]


def double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Encoder of double convolutions with 2x2 max pooling, decoder with bilinear upsampling and skip
    concatenation; output: one logit per pixel (source vs background)."""

    def __init__(self, channels: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        self.down = nn.ModuleList()
        c = 1
        for ch in channels:
            self.down.append(double_conv(c, ch))
            c = ch
        self.up = nn.ModuleList(double_conv(channels[i + 1] + channels[i], channels[i])
                                for i in reversed(range(len(channels) - 1)))
        self.out = nn.Conv2d(channels[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2, ceil_mode=True))
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return self.out(x)


def dice_bce(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """BCE(logits, m) + 1 - (2 sum(p m) + eps) / (sum p + sum m + eps), Dice per image, averaged."""
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    dice = (2 * (p * t).sum(1) + eps) / (p.sum(1) + t.sum(1) + eps)
    return F.binary_cross_entropy_with_logits(logits, target) + (1 - dice).mean()


def build(config: Mapping[str, Any], info: Mapping[str, Any]) -> nn.Module:
    return UNet(tuple(config["channels"]))


AUGMENT = Augment(flip_h=True, rot90=True, noise_std=(0.0, 0.02), p_noise=0.5, geometric_only_channels=1)


def fit(model: nn.Module, train: RadioImages, config: Mapping[str, Any], run: TrainingRun) -> dict[str, Any]:
    if train.masks is None:
        raise InputError("the segmenter needs a training split with masks")
    xm = torch.from_numpy(np.concatenate([train.images, (train.masks > 0).astype(np.float32)], 1)).to(run.device)
    model, opt = run.prepare(model, torch.optim.Adam(model.parameters(), lr=config["lr"]))

    def batch_loss(idx: np.ndarray, g: torch.Generator) -> torch.Tensor:
        b = AUGMENT(xm[torch.from_numpy(idx).to(run.device)], g)
        return dice_bce(model(b[:, :1]).float(), b[:, 1:])

    return fit_supervised(run, model, opt, len(xm), batch_loss, batch_size=config["batch_size"], seed=run.seed,
                          calibration=xm[:, :1])


SPEC = EvaluatorSpec(
    kind="segmenter", version=2, requires=frozenset({"masks"}),  # 2: batch norm recalibrated after training
    description="U-Net source segmenter behind segmentation_iou (paper 001 segmentation score)",
    configs={
        "smoke": dict(channels=[4, 8, 16], lr=3e-3, batch_size=16, steps=30, mixed_precision="no"),
        "cpu": dict(channels=[16, 32, 64], lr=1e-3, batch_size=32, epochs=8, mixed_precision="no"),
        "paper": dict(channels=[32, 64, 128, 256], lr=1e-3, batch_size=32, epochs=100, mixed_precision="bf16"),
    },
    build=build, fit=fit,
)
