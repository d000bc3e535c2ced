"""BYOL (Grill et al. 2020) self-supervised ResNet18 on a dataset's train split: the feature
extractor behind fid_byol / kid_byol (paper 001 Sect. 5.1).

Two augmented views v, v' of each image; online network q(g(f(v))) predicts the target network's
projection g_xi(f_xi(v')); loss L = 2 - 2 cos(q, z') symmetrised over the views; target weights
xi <- tau xi + (1 - tau) theta with tau = 1 - (1 - tau_base)(cos(pi k / K) + 1) / 2.
Radio augmentations: flips, 90-degree rotations, small crops/rescales, mild blur and noise.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..seeding import step_generator
from ..training import EMA, TrainingRun, batch_indices
from .augment import Augment
from .base import EvaluatorSpec, recalibrate_bn
from .resnet import ResNet18

__all__ = ["BYOL", "SPEC", "AUGMENT", "mlp"]

AUGMENT = Augment(
    flip_h=True, rot90=True, crop=(0.8, 1.0), blur_sigma=(0.1, 1.0), p_blur=0.5, noise_std=(0.0, 0.02), p_noise=0.5
)


def mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, d_out))


class BYOL(nn.Module):
    """Online encoder f + projector g + predictor q; the target (f, g) is an EMA copy kept outside."""

    def __init__(self, encoder: ResNet18, hidden: int, proj: int):
        super().__init__()
        self.encoder = encoder
        self.projector = mlp(encoder.feature_dim, hidden, proj)
        self.predictor = mlp(proj, hidden, proj)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.encoder(x))


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """2 - 2 cos(p, z), averaged over the batch."""
    return (2 - 2 * F.cosine_similarity(p, z.detach(), dim=-1)).mean()


def build(config: Mapping[str, Any], info: Mapping[str, Any]) -> nn.Module:
    return ResNet18(1, config["width"], config["stem"])


def fit(encoder: nn.Module, train, config: Mapping[str, Any], run: TrainingRun) -> dict[str, Any]:
    assert isinstance(encoder, ResNet18)  # what build returns
    x = torch.from_numpy(train.images).to(run.device)
    model = BYOL(encoder, config["hidden"], config["proj"])
    opt = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    model, opt = run.prepare(model, opt)
    net = run.unwrap(model)
    assert isinstance(net, BYOL)  # prepare moves or wraps the module, never replaces it
    target = EMA(nn.ModuleDict({"encoder": net.encoder, "projector": net.projector}), config["tau"])
    run.resume(model=model, opt=opt, target=target)  # in place
    tgt_enc, tgt_proj = target.module.get_submodule("encoder"), target.module.get_submodule("projector")
    model.train()
    tgt_enc.train(), tgt_proj.train()
    for step in run:
        idx = torch.from_numpy(batch_indices(len(x), config["batch_size"], run.seed, step)).to(run.device)
        g = step_generator(run.seed, step)
        v1, v2 = AUGMENT(x[idx], g), AUGMENT(x[idx], g)
        with run.autocast():
            p1, p2 = net.predictor(net.project(v1)), net.predictor(net.project(v2))
            with torch.no_grad():
                z1, z2 = tgt_proj(tgt_enc(v1)), tgt_proj(tgt_enc(v2))
            loss = byol_loss(p1.float(), z2.float()) + byol_loss(p2.float(), z1.float())
        opt.zero_grad(set_to_none=True)
        run.backward(loss)
        opt.step()
        target.decay = 1 - (1 - config["tau"]) * (math.cos(math.pi * step / run.total_steps) + 1) / 2
        target.update(nn.ModuleDict({"encoder": net.encoder, "projector": net.projector}))
        run.log(step, loss=float(loss.detach()), tau=target.decay)
        run.maybe_checkpoint(step, model=model, opt=opt, target=target)
    recalibrate_bn(net.encoder, x, config["batch_size"])  # precise BN on un-augmented images
    net.encoder.eval()
    hist = run.history()
    tail = [r["loss"] for r in hist[-20:]]
    return {
        "steps": getattr(run, "steps_done", run.total_steps),
        "final_loss": float(np.mean(tail)) if tail else None,
        "train_seconds": run.elapsed,
        "stopped_early": run.stopped_early,
    }


_BASE = dict(width=1.0, stem="imagenet", hidden=1024, proj=128, lr=1e-3, weight_decay=1e-6, tau=0.99,
             mixed_precision="no")
SPEC = EvaluatorSpec(
    kind="byol",
    version=2,  # 2: batch-norm statistics recomputed on un-augmented images after training
    description="BYOL-trained ResNet18 feature extractor (512-d) behind fid_byol / kid_byol (paper 001)",
    requires=frozenset(),
    configs={
        "smoke": _BASE | dict(width=0.125, hidden=64, proj=32, batch_size=32, steps=30, checkpoint_every=1000),
        "cpu": _BASE | dict(batch_size=64, steps=300, checkpoint_every=50),
        "paper": _BASE | dict(lr=3e-4, tau=0.996, batch_size=256, steps=20000, checkpoint_every=1000,
                              mixed_precision="bf16"),
    },
    build=build,
    fit=fit,
    notes="features are the online encoder's (as BYOL evaluates); AdamW instead of LARS",
)
