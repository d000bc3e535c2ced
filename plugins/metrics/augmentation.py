"""Data-augmentation utility: does adding a generator's images to the real training set help a downstream
model? Paper 001 (Sect. 5.2, Tables 6 and 8) trains its segmenter on real + synthetic data and tests it on
real images against real-only training. Two downstream models, each at the preset's configuration:

    augmentation_gain      paper 000's ResNet18 morphology classifier (class-conditioned sets):
                           gain = acc_real(f_{train + generated}) - acc_real(f_{train})
    augmentation_gain_iou  the U-Net behind segmentation_iou (mask-conditioned sets), mean per-image IoU
                           (paper 001 Eq. 10-14) instead of accuracy

both networks trained from the same seed and configuration, both tested on the real reference images.
The real-only network is the cached evaluator (``classifier``, ``segmenter``) behind classifier_accuracy and
segmentation_iou; the augmented one is trained afresh (a training per scored set, so these metrics are not
in the default set: name them in ``--metrics``). The interval is a paired bootstrap over test images of the
per-image difference of scores (correct prediction, IoU): it covers the choice of test images, not the
training noise (run seeds for that). Where a configuration trains for a number of epochs (cpu, paper),
the augmented training runs more steps.
"""
from __future__ import annotations

import tempfile
from typing import ClassVar

import numpy as np

from radiobench import Metric, MetricContext, MetricResult, RadioImages
from radiobench.custody import set_sha256
from radiobench.evaluators import get_evaluator
from radiobench.evaluators.cache import fingerprint_payload, train_digest, train_evaluator
from radiobench.evaluators.features import CONDITIONING_FIELDS, bootstrap_mean, predict_masks, predict_proba
from radiobench.options import EVALUATOR_SEED, Options
from radiobench.types import InputError

from .segmentation_iou import per_image_iou

__all__ = ["AugmentationGain", "AugmentationGainIoU", "augmented"]


def augmented(train: RadioImages, generated: RadioImages) -> RadioImages:
    """The training split with the generated images appended: images, and the labels and masks both carry."""
    labels = masks = None
    if train.labels is not None and generated.labels is not None:
        if tuple(generated.class_names or ()) != tuple(train.class_names or ()):
            raise InputError(f"generated images name classes {generated.class_names}; the training split has "
                             f"{train.class_names}")
        labels = np.concatenate([train.labels, generated.labels])
    if train.masks is not None and generated.masks is not None:
        masks = np.concatenate([train.masks > 0, generated.masks > 0]).astype(np.uint8)
    return RadioImages(images=np.concatenate([train.images, generated.images]), survey=train.survey,
                       labels=labels, class_names=train.class_names if labels is not None else None, masks=masks)


class _AugmentationGain(Metric):
    """Gain in a per-image score on real test images from training ``kind`` on real + generated images."""

    kind: ClassVar[str]
    direction = "higher"
    default_presets: ClassVar[frozenset[str] | None] = frozenset()  # opt-in: name it in --metrics
    OPTIONS = Options(evaluator_seed=EVALUATOR_SEED)  # the seed both networks train from

    def scores(self, module, real: RadioImages, context: MetricContext) -> np.ndarray:
        """Per-image score of a trained network on the real images."""
        raise NotImplementedError

    def compute(self, real: RadioImages, generated: RadioImages, context: MetricContext) -> MetricResult:
        for need in sorted(self.requires_conditioning):
            if getattr(generated, CONDITIONING_FIELDS[need]) is None:
                raise InputError(f"{self.name} needs generated images carrying the {CONDITIONING_FIELDS[need]} "
                                 "they were conditioned on")
        base = get_evaluator(self.kind, context)
        train = augmented(context.train, generated)
        payload = {**fingerprint_payload(self.kind, context), "train_digest": train_digest(train),
                   "n_train": len(train), "augmented_with": set_sha256(generated)}
        with tempfile.TemporaryDirectory(prefix="radiobench-augmentation-") as tmp:  # one-off: not cached
            aug = train_evaluator(payload, train, tmp, device=context.device, preset=context.preset.name,
                                  progress=False)
        s_base, s_aug = self.scores(base.module, real, context), self.scores(aug.module, real, context)
        diff = s_aug - s_base
        lo, hi = bootstrap_mean(diff, context.n_bootstrap, context.rng(self.name))
        return MetricResult(
            metric=self.name, value=float(diff.mean()), ci_low=lo, ci_high=hi, direction=self.direction,
            n_real=len(real), n_generated=len(generated), unit=self.unit,
            details={
                "real_only": float(s_base.mean()),
                "real_only_ci": list(bootstrap_mean(s_base, context.n_bootstrap, context.rng(self.name + "/base"))),
                "augmented": float(s_aug.mean()),
                "augmented_ci": list(bootstrap_mean(s_aug, context.n_bootstrap, context.rng(self.name + "/aug"))),
                "n_train_real": len(context.train), "n_train_generated": len(generated),
                "training_real_only": base.metadata.get("training", {}),
                "training_augmented": aug.metadata.get("training", {}),
                "network": self.kind, "network_config": payload["config"],
                "ci_method": "paired percentile bootstrap over test images of the per-image difference in scores "
                             "(training noise not included: see the spread over seeds)",
            },
            fingerprints={**base.identity, "dataset": context.dataset_fingerprint},
        )


class AugmentationGain(_AugmentationGain):
    name = "augmentation_gain"
    description = ("accuracy gain on real test images of paper 000's classifier trained on real + generated "
                   "vs real-only images (paper 001 Sect. 5.2 style); opt-in: trains a classifier per set")
    unit = "accuracy"
    kind = "classifier"
    requires = frozenset({"labels"})
    requires_conditioning = frozenset({"class"})

    def scores(self, module, real: RadioImages, context: MetricContext) -> np.ndarray:
        names = get_evaluator(self.kind, context).class_names
        if tuple(real.class_names or ()) != tuple(names or ()):
            raise InputError(f"the reference names classes {real.class_names}; the classifier was trained on {names}")
        return (predict_proba(module, real.images, device=context.device).argmax(1) == real.labels).astype(float)


class AugmentationGainIoU(_AugmentationGain):
    name = "augmentation_gain_iou"
    description = ("mean-IoU gain on real test images of the U-Net segmenter trained on real + generated vs "
                   "real-only (image, mask) pairs (paper 001 Sect. 5.2); opt-in: trains a segmenter per set")
    unit = "IoU"
    kind = "segmenter"
    requires = frozenset({"masks"})
    requires_conditioning = frozenset({"mask"})

    def scores(self, module, real: RadioImages, context: MetricContext) -> np.ndarray:
        return per_image_iou(predict_masks(module, real.images, device=context.device), real.masks > 0)[0]
