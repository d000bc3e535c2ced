"""Running evaluator networks over image sets: features, class probabilities, masks.

Every network runs in eval mode (batch norm uses its running statistics, dropout is off), so each
image's output depends on that image alone, never on the batch it was computed in.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ..types import InputError, RadioImages
from .cache import Evaluator, get_evaluator

if TYPE_CHECKING:
    from ..interfaces import Metric, MetricContext

__all__ = ["apply", "embed", "predict_proba", "predict_masks", "memo_apply", "evaluate_pair", "bootstrap_mean"]

# Metric.requires_conditioning (Conditions.kinds) -> the RadioImages field a conditioned sample carries it in
CONDITIONING_FIELDS = {"class": "labels", "mask": "masks", "flux": "peak_flux"}


@torch.no_grad()
def apply(module: nn.Module, images: np.ndarray, batch_size: int = 256,
          device: str | torch.device = "cpu") -> np.ndarray:
    """module(x) over (N, 1, H, W) float32 images in batches, in float32, returned as float64 numpy."""
    was_training = module.training
    module.eval()
    dev = torch.device(device)
    module.to(dev)
    out = []
    try:
        for lo in range(0, len(images), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[lo:lo + batch_size], np.float32)).to(dev)
            out.append(module(x).float().cpu().numpy().astype(np.float64))
    finally:
        module.train(was_training)
    if not out:
        raise ValueError("no images to evaluate")
    return np.concatenate(out)


def embed(encoder: nn.Module, images: np.ndarray, batch_size: int = 256, device="cpu") -> np.ndarray:
    """(N, d) average-pooled encoder features (float64)."""
    return apply(encoder, images, batch_size, device)


def predict_proba(classifier: nn.Module, images: np.ndarray, batch_size: int = 256, device="cpu") -> np.ndarray:
    """(N, K) softmax probabilities p(y|x) (float64)."""
    logits = apply(classifier, images, batch_size, device)
    z = logits - logits.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


def predict_masks(segmenter: nn.Module, images: np.ndarray, batch_size: int = 64, device="cpu") -> np.ndarray:
    """(N, 1, H, W) boolean masks: sigmoid(logit) > 0.5, i.e. logit > 0."""
    return apply(segmenter, images, batch_size, device) > 0


def memo_apply(context, evaluator, images: np.ndarray, fn, tag: str) -> np.ndarray:
    """fn(evaluator.module, images, device=context.device), memoised in the context by (evaluator
    fingerprint, image content): the real side of a comparison is computed once per run."""
    from ..store import sha256_bytes

    key = f"evaluators/{tag}/{evaluator.fingerprint}/{sha256_bytes(images.tobytes())[:16]}"
    return context.remember(key, lambda: fn(evaluator.module, images, device=context.device))


def evaluate_pair(
    metric: Metric, kind: str, real: RadioImages, generated: RadioImages, context: MetricContext,
    fn: Callable[..., np.ndarray], tag: str,
) -> tuple[Evaluator, np.ndarray, np.ndarray]:
    """(evaluator ``kind``, fn on the generated images, fn on the real images), memoised by memo_apply, after
    checking that the generated images carry what ``metric`` needs them conditioned on."""
    for need in sorted(metric.requires_conditioning):
        field = CONDITIONING_FIELDS.get(need)
        if field is not None and getattr(generated, field) is None:
            raise InputError(f"{metric.name} needs generated images carrying the {field} they were conditioned on")
    ev = get_evaluator(kind, context)
    return ev, memo_apply(context, ev, generated.images, fn, tag), memo_apply(context, ev, real.images, fn, tag)


def bootstrap_mean(values: np.ndarray, n_boot: int, rng: np.random.Generator,
                   alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-image values."""
    v = np.asarray(values, np.float64)
    if n_boot == 0 or len(v) == 0:
        m = float(v.mean()) if len(v) else float("nan")
        return m, m
    draws = np.concatenate([v[rng.integers(0, len(v), (min(200, n_boot - b), len(v)))].mean(1)
                            for b in range(0, n_boot, 200)])
    lo, hi = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)
