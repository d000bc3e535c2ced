"""Segmentation score (paper 001 Eq. 10-14): a U-Net trained on real (image, mask) pairs predicts the
mask of each image generated from a conditioning mask;

    IoU_i = (1/K) sum_k |pred_k ∩ gt_k| / |pred_k ∪ gt_k|,    IoU = (1/N) sum_i IoU_i,

with K = 2 classes (background, source = mask > 0); a class absent from both masks of an image is left
out of that image's average. The same network on real images against their own masks is the ceiling.
"""
from __future__ import annotations

import numpy as np

from radiobench import Metric, MetricContext, MetricResult, RadioImages
from radiobench.evaluators.features import bootstrap_mean, evaluate_pair, predict_masks

__all__ = ["SegmentationIoU", "per_image_iou"]


def per_image_iou(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean over classes IoU_i, source-class IoU) per image, for boolean (N, 1, H, W) masks."""
    p, g = pred.reshape(len(pred), -1).astype(bool), gt.reshape(len(gt), -1).astype(bool)
    ious = []
    for pk, gk in ((~p, ~g), (p, g)):
        inter, union = (pk & gk).sum(1), (pk | gk).sum(1)
        ious.append(np.where(union > 0, inter / np.maximum(union, 1), np.nan))
    ious = np.stack(ious, 1)
    return np.nanmean(ious, 1), ious[:, 1]


class SegmentationIoU(Metric):
    name = "segmentation_iou"
    description = ("mean per-image IoU between a U-Net's mask of each generated image and its conditioning mask "
                   "(paper 001)")
    direction = "higher"
    requires = frozenset({"masks"})
    requires_conditioning = frozenset({"mask"})

    def compute(self, real: RadioImages, generated: RadioImages, context: MetricContext) -> MetricResult:
        ev, masks_g, masks_r = evaluate_pair(self, "segmenter", real, generated, context, predict_masks, "masks")
        iou_g, src_g = per_image_iou(masks_g, generated.masks > 0)
        iou_r, src_r = per_image_iou(masks_r, real.masks > 0)
        lo, hi = bootstrap_mean(iou_g, context.n_bootstrap, context.rng(self.name))
        rlo, rhi = bootstrap_mean(iou_r, context.n_bootstrap, context.rng(self.name + "/real"))
        nanmean = lambda v: float(np.nanmean(v)) if np.isfinite(v).any() else None  # noqa: E731
        return MetricResult(
            metric=self.name, value=float(iou_g.mean()), ci_low=lo, ci_high=hi, direction=self.direction,
            n_real=len(real), n_generated=len(generated),
            details={
                "classes": ["background", "source"],
                "source_iou": nanmean(src_g),
                "real_ceiling": {"iou": float(iou_r.mean()), "ci": [rlo, rhi], "source_iou": nanmean(src_r)},
                "per_image_iou_histogram": np.histogram(iou_g, bins=10, range=(0, 1))[0].tolist(),
            },
            fingerprints={**ev.identity, "dataset": context.dataset_fingerprint},
        )
