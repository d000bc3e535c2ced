"""Classifier accuracy on class-conditioned samples (paper 000 Sect. 5.3): the paper-000 ResNet18
classifier, trained on real train images, labels each generated image; accuracy against the class it
was generated for, with a bootstrap CI over images and the confusion matrix. The same classifier's
accuracy on the real reference set is reported beside it (paper 000: 81.5% on the FIRST test split,
83.4% on images generated at guidance 0.75)."""
from __future__ import annotations

import numpy as np

from radiobench import Metric, MetricContext, MetricResult, RadioImages
from radiobench.evaluators.features import bootstrap_mean, evaluate_pair, predict_proba
from radiobench.options import EVALUATOR_SEED, Options
from radiobench.types import InputError

__all__ = ["ClassifierAccuracy", "confusion_matrix"]


def confusion_matrix(true: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """C[i, j] = number of images of class i predicted as class j."""
    return np.bincount(np.asarray(true) * k + np.asarray(pred), minlength=k * k).reshape(k, k)


def _summary(true: np.ndarray, pred: np.ndarray, k: int, n_boot: int, rng) -> dict:
    hit = (true == pred).astype(np.float64)
    cm = confusion_matrix(true, pred, k)
    lo, hi = bootstrap_mean(hit, n_boot, rng)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(cm) / cm.sum(1)
    return {
        "accuracy": float(hit.mean()), "ci": [lo, hi], "confusion": cm.tolist(),
        "per_class_accuracy": [None if not np.isfinite(a) else float(a) for a in per_class], "n": int(len(true)),
    }


class ClassifierAccuracy(Metric):
    name = "classifier_accuracy"
    description = "paper-000 ResNet18 classifier's accuracy on class-conditioned samples (real test accuracy beside it)"
    direction = "higher"
    requires = frozenset({"labels"})
    requires_conditioning = frozenset({"class"})
    OPTIONS = Options(evaluator_seed=EVALUATOR_SEED)  # the referee trained with another seed

    def compute(self, real: RadioImages, generated: RadioImages, context: MetricContext) -> MetricResult:
        ev, proba_g, proba_r = evaluate_pair(self, "classifier", real, generated, context, predict_proba,
                                             "classifier_proba")
        names = ev.class_names
        for what, s in (("generated", generated), ("real", real)):
            if s.class_names is not None and tuple(s.class_names) != names:
                raise InputError(f"{what} images name classes {s.class_names}; the classifier was trained on {names}")
        k = len(names)
        pred_g, pred_r = proba_g.argmax(1), proba_r.argmax(1)
        gen = _summary(generated.labels, pred_g, k, context.n_bootstrap, context.rng(self.name))
        ref = _summary(real.labels, pred_r, k, context.n_bootstrap, context.rng(self.name + "/real"))
        return MetricResult(
            metric=self.name, value=gen["accuracy"], ci_low=gen["ci"][0], ci_high=gen["ci"][1],
            direction=self.direction, n_real=len(real), n_generated=len(generated),
            details={"class_names": list(names), "generated": gen, "real_reference": ref,
                     "paper_000": {"real_test": 0.815, "generated_omega_0.75": 0.834}},
            fingerprints={**ev.identity, "dataset": context.dataset_fingerprint},
        )
