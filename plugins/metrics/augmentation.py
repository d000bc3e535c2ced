"""Data-augmentation utility: does adding a generator's images to the real training set help a downstream
model? Paper 001 (Sect. 5.2, Tables 6 and 8) trains its segmenter on real + synthetic data and tests it on
real images against real-only training; here the downstream model is paper 000's ResNet18 morphology
classifier (radiobench.evaluators.classifier, the preset's configuration):

    gain = acc_real(f_{train + generated}) - acc_real(f_{train}),

both classifiers trained from the same seed and configuration, both tested on the real reference images.
The real-only classifier is the cached ``classifier`` evaluator behind classifier_accuracy; the augmented
one is trained afresh (a classifier training per scored set, so the metric is not in the default set: name
it in ``--metrics``). The interval is a paired bootstrap over test images of the per-image difference of
correct predictions: it covers the choice of test images, not the training noise (run seeds for that).
Where a configuration trains for a number of epochs (cpu, paper), the augmented training runs more steps.
"""
from __future__ import annotations

import tempfile
from typing import ClassVar

import numpy as np

from radiobench import Metric, MetricContext, MetricResult, RadioImages
from radiobench.custody import set_sha256
from radiobench.evaluators import get_evaluator
from radiobench.evaluators.cache import fingerprint_payload, train_digest, train_evaluator
from radiobench.evaluators.features import CONDITIONING_FIELDS, bootstrap_mean, predict_proba
from radiobench.options import EVALUATOR_SEED, Options
from radiobench.types import InputError

__all__ = ["AugmentationGain", "augmented"]


def augmented(train: RadioImages, generated: RadioImages) -> RadioImages:
    """The training split with the labelled generated images appended (images and labels only)."""
    if generated.labels is None or tuple(generated.class_names or ()) != tuple(train.class_names or ()):
        raise InputError(f"augmentation needs generated images labelled with the training classes "
                         f"{train.class_names}; got {generated.class_names}")
    return RadioImages(images=np.concatenate([train.images, generated.images]), survey=train.survey,
                       labels=np.concatenate([train.labels, generated.labels]), class_names=train.class_names)


class AugmentationGain(Metric):
    name = "augmentation_gain"
    description = ("accuracy gain on real test images of paper 000's classifier trained on real + generated "
                   "vs real-only training (paper 001 Sect. 5.2 style); opt-in: trains a classifier per set")
    direction = "higher"
    requires = frozenset({"labels"})
    requires_conditioning = frozenset({"class"})
    default: ClassVar[bool] = False  # not in the default metric set: name it in --metrics
    OPTIONS = Options(evaluator_seed=EVALUATOR_SEED)  # the seed both classifiers train from

    def compute(self, real: RadioImages, generated: RadioImages, context: MetricContext) -> MetricResult:
        for need in sorted(self.requires_conditioning):
            if getattr(generated, CONDITIONING_FIELDS[need]) is None:
                raise InputError(f"{self.name} needs generated images carrying the labels they were conditioned on")
        base = get_evaluator("classifier", context)
        names = base.class_names
        if tuple(real.class_names or ()) != tuple(names or ()):
            raise InputError(f"the reference names classes {real.class_names}; the classifier was trained on {names}")
        train = augmented(context.train, generated)
        payload = {**fingerprint_payload("classifier", context), "train_digest": train_digest(train),
                   "n_train": len(train), "augmented_with": set_sha256(generated)}
        with tempfile.TemporaryDirectory(prefix="radiobench-augmentation-") as tmp:  # one-off: not cached
            aug = train_evaluator(payload, train, tmp, device=context.device, preset=context.preset.name,
                                  progress=False)
        pred_base = predict_proba(base.module, real.images, device=context.device).argmax(1)
        pred_aug = predict_proba(aug.module, real.images, device=context.device).argmax(1)
        hit_base, hit_aug = (pred_base == real.labels).astype(float), (pred_aug == real.labels).astype(float)
        diff = hit_aug - hit_base
        lo, hi = bootstrap_mean(diff, context.n_bootstrap, context.rng(self.name))
        real_only, with_gen = bootstrap_mean(hit_base, context.n_bootstrap, context.rng(self.name + "/base")), \
            bootstrap_mean(hit_aug, context.n_bootstrap, context.rng(self.name + "/aug"))
        return MetricResult(
            metric=self.name, value=float(diff.mean()), ci_low=lo, ci_high=hi, direction=self.direction,
            n_real=len(real), n_generated=len(generated), unit="accuracy",
            details={
                "accuracy_real_only": float(hit_base.mean()), "accuracy_real_only_ci": list(real_only),
                "accuracy_augmented": float(hit_aug.mean()), "accuracy_augmented_ci": list(with_gen),
                "n_train_real": len(context.train), "n_train_generated": len(generated),
                "training_real_only": base.metadata.get("training", {}),
                "training_augmented": aug.metadata.get("training", {}),
                "classifier_config": payload["config"], "class_names": list(names or ()),
                "ci_method": "paired percentile bootstrap over test images of the per-image difference in correct "
                             "predictions (training noise not included: see the spread over seeds)",
            },
            fingerprints={**base.identity, "dataset": context.dataset_fingerprint},
        )
