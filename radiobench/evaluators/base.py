"""What every evaluator kind declares (``EvaluatorSpec``) and the supervised training loop they share."""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..seeding import step_generator
from ..training import TrainingRun, batch_indices
from ..types import InputError, RadioImages

__all__ = [
    "EvaluatorSpec", "class_weights", "fit_supervised", "fit_classifier", "plateau_scheduler", "epoch_scheduler",
    "total_steps", "recalibrate_bn",
]


@dataclass(frozen=True)
class EvaluatorSpec:
    """One kind of evaluator network.

    build(config, info) -> untrained inference module; info = {"resolution": (H, W), "n_classes": k}.
    fit(module, train, config, run) trains it in place (resumably, through ``run``) and returns a summary.
    version: bump whenever architecture or training code changes what a given config produces.
    """

    kind: str
    version: int
    description: str
    requires: frozenset[str]
    configs: Mapping[str, Mapping[str, Any]]  # preset name -> config
    build: Callable[[Mapping[str, Any], Mapping[str, Any]], nn.Module]
    fit: Callable[[nn.Module, RadioImages, Mapping[str, Any], TrainingRun], dict[str, Any]]
    notes: str = ""

    def config(self, preset: str) -> dict[str, Any]:
        if preset not in self.configs:
            raise InputError(f"evaluator {self.kind!r} has no config for preset {preset!r}; "
                             f"one of {sorted(self.configs)}")
        return dict(self.configs[preset])


def total_steps(config: Mapping[str, Any], n_train: int) -> int:
    """config["steps"] when given, else epochs x ceil(n_train / batch_size)."""
    if "steps" in config:
        return int(config["steps"])
    return int(config["epochs"]) * max(1, math.ceil(n_train / int(config["batch_size"])))


def class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """w_c = 1 / (fraction of training images in class c): paper 000's loss weighting."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    if np.any(counts == 0):
        raise InputError(f"every class needs training images; counts per class {counts.astype(int).tolist()}")
    return torch.tensor(len(labels) / counts, dtype=torch.float32)


def plateau_scheduler(opt: torch.optim.Optimizer, config: Mapping[str, Any]):
    """ReduceLROnPlateau on the epoch loss (paper 000 Table 6: factor 0.135, patience 50, min 1e-5)."""
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="min", factor=config["lr_factor"], patience=config["lr_patience"], min_lr=config["lr_min"]
    )


def epoch_scheduler(opt: torch.optim.Optimizer, config: Mapping[str, Any]):
    """config["lr_schedule"]: "plateau" (default, paper 000) or "cosine": lr_t = lr_min + (lr - lr_min)
    (1 + cos(π t / epochs)) / 2 at epoch t (Loshchilov & Hutter 2017, no restarts)."""
    schedule = config.get("lr_schedule", "plateau")
    if schedule == "plateau":
        return plateau_scheduler(opt, config)
    if schedule == "cosine":
        if config.get("epochs") is None or config.get("steps") is not None:
            raise InputError("lr_schedule 'cosine' spans 'epochs' and needs them set (and no 'steps' limit)")
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(config["epochs"]), eta_min=config["lr_min"])
    raise InputError(f"unknown lr_schedule {schedule!r}; one of 'plateau', 'cosine'")


@torch.no_grad()
def recalibrate_bn(model: nn.Module, images: torch.Tensor, batch_size: int = 128) -> None:
    """Precise BN (Wu & Johnson 2021): recompute every BatchNorm layer's population statistics as the
    plain average over the un-augmented training images. Evaluators see un-augmented images, while the
    running averages kept during training describe augmented ones (bilinear rotation smooths, noise
    adds variance), and with those an evaluator can fall to chance in eval mode (benchmarks/README.md)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    momenta = [b.momentum for b in bns]
    for b in bns:
        b.reset_running_stats()
        b.momentum = None  # cumulative average
    was_training = model.training
    model.train()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    for lo in range(0, len(images), batch_size):
        model(images[lo:lo + batch_size])
    for b, mom in zip(bns, momenta):
        b.momentum = mom
    model.train(was_training)
    if not was_training:
        model.eval()


def fit_supervised(
    run: TrainingRun,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    n_train: int,
    batch_loss: Callable[[np.ndarray, torch.Generator], torch.Tensor],
    *,
    batch_size: int,
    seed: int,
    scheduler=None,
    checkpoint_seconds: float = 60.0,
    calibration: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Minibatch training: step k uses batch_indices(n, batch, seed, k) and augmentation generator
    step_generator(seed, k); ``scheduler`` steps once per epoch of ceil(n / batch) steps (ReduceLROnPlateau on
    the epoch's mean loss). Checkpoints at epoch ends (at most one a minute) and at the end. Finally
    the batch-norm statistics are recomputed on ``calibration`` (the un-augmented inputs)."""
    steps_per_epoch = max(1, math.ceil(n_train / batch_size))
    state = {"model": model, "opt": opt} | ({"sched": scheduler} if scheduler is not None else {})
    run.resume(**state)
    model.train()
    epoch_losses: list[float] = []
    last_save = time.monotonic()
    for step in run:
        with run.autocast():
            loss = batch_loss(batch_indices(n_train, batch_size, seed, step), step_generator(seed, step))
        opt.zero_grad(set_to_none=True)
        run.backward(loss)
        opt.step()
        epoch_losses.append(float(loss.detach()))
        end_of_epoch = (step + 1) % steps_per_epoch == 0
        if end_of_epoch:
            mean = float(np.mean(epoch_losses))
            epoch_losses.clear()
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(mean)
            elif scheduler is not None:
                scheduler.step()
            run.log(step, loss=mean, lr=float(opt.param_groups[0]["lr"]))
        last = step + 1 >= run.total_steps or run.out_of_time()
        if last and epoch_losses:
            run.log(step, loss=float(np.mean(epoch_losses)), lr=float(opt.param_groups[0]["lr"]))
        if last or (end_of_epoch and time.monotonic() - last_save > checkpoint_seconds):
            run.checkpoint(step + 1, **state)
            last_save = time.monotonic()
    if calibration is not None:
        recalibrate_bn(model, calibration, batch_size)
    model.eval()
    hist = run.history()
    return {
        "steps": getattr(run, "steps_done", run.total_steps),
        "epochs": getattr(run, "steps_done", run.total_steps) / steps_per_epoch,
        "final_loss": hist[-1]["loss"] if hist else None,
        "final_lr": float(opt.param_groups[0]["lr"]),
        "train_seconds": run.elapsed,
        "stopped_early": run.stopped_early,
    }


def fit_classifier(
    run: TrainingRun,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    train: RadioImages,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    *,
    batch_size: int,
    scheduler=None,
    label_smoothing: float = 0.0,
) -> dict[str, Any]:
    """fit_supervised for a classifier of the labelled ``train`` split (``model`` and ``opt`` as prepared by
    ``run``): cross-entropy weighted by class_weights (targets smoothed by ``label_smoothing``, Szegedy et al.
    2016), each batch augmented by ``augment``."""
    if train.labels is None or not train.class_names:
        raise InputError("a classifier evaluator needs a labelled training split (labels and class names)")
    x = torch.from_numpy(train.images).to(run.device)
    y = torch.from_numpy(train.labels).to(run.device)
    loss_fn = nn.CrossEntropyLoss(weight=class_weights(train.labels, len(train.class_names)).to(run.device),
                                  label_smoothing=label_smoothing)

    def batch_loss(idx: np.ndarray, g: torch.Generator) -> torch.Tensor:
        i = torch.from_numpy(idx).to(run.device)
        return loss_fn(model(augment(x[i], g)), y[i])

    return fit_supervised(run, model, opt, len(x), batch_loss, batch_size=batch_size, seed=run.seed,
                          scheduler=scheduler, calibration=x)
