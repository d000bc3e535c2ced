"""Per-class FID of class-conditioned generators on the BYOL-ResNet18 features behind fid_byol:

    FID_c = ||mu_r,c - mu_g,c||^2 + Tr(S_r,c + S_g,c - 2 (S_r,c S_g,c)^{1/2}),   value = 1/C sum_c FID_c

over the C classes the reference holds, real images of class c against the images generated for class c
(an unconditioned generator has no such images: the metric is skipped). Each FID_c carries the
half-sample interval of fid_byol; the mean's interval takes the mean of the classes' half-sample draws
(classes are disjoint, so their draws are independent) and is centred on the full-N mean likewise.
Options: ``n_bootstrap``, ``against``, ``evaluator_seed`` as fid_byol's.
"""
from __future__ import annotations

import numpy as np

from radiobench import Metric, MetricContext, MetricResult, RadioImages
from radiobench.evaluators.features import embed, evaluate_pair
from radiobench.evaluators.frechet import centred_interval, fid_bootstrap
from radiobench.options import AGAINST, EVALUATOR_SEED, Option, Options
from radiobench.types import InputError

__all__ = ["ClassFidByol"]


class ClassFidByol(Metric):
    name = "fid_byol_class"
    description = "per-class FID on BYOL-ResNet18 features for class-conditioned generators (mean over classes)"
    direction = "lower"
    requires = frozenset({"labels"})
    requires_conditioning = frozenset({"class"})
    OPTIONS = Options(n_bootstrap=Option(int, low=0, nullable=True), against=AGAINST, evaluator_seed=EVALUATOR_SEED)

    def compute(self, real: RadioImages, generated: RadioImages, context: MetricContext) -> MetricResult:
        ev, fg, fr = evaluate_pair(self, "byol", real, generated, context, embed, "byol_features")
        names = real.class_names or ()
        if tuple(generated.class_names or ()) != tuple(names):
            raise InputError(f"generated images name classes {generated.class_names}; the reference has {names}")
        n_boot = self.options.get("n_bootstrap")
        n_boot = context.n_bootstrap if n_boot is None else int(n_boot)
        per_class, draws = {}, []
        for c in np.flatnonzero(np.bincount(real.labels, minlength=len(names))):
            r, g = fr[real.labels == c], fg[generated.labels == c]
            if len(g) < 2 or len(r) < 2:
                raise InputError(f"{self.name}: class {names[c]!r} needs at least 2 real and 2 generated images; "
                                 f"got {len(r)} and {len(g)}")
            iv = fid_bootstrap(r, g, n_boot, context.rng(f"{self.name}/{names[c]}"))
            per_class[names[c]] = {"value": iv.value, "ci_low": max(iv.low, 0.0), "ci_high": iv.high,
                                   "n_real": int(len(r)), "n_generated": int(len(g))}
            draws.append(iv.draws)
        value = float(np.mean([v["value"] for v in per_class.values()]))
        if n_boot:
            lo, hi = centred_interval(value, np.mean(np.stack(draws), axis=0), 0.05)
        else:
            lo = hi = value
        return MetricResult(
            metric=self.name, value=value, ci_low=max(lo, 0.0), ci_high=hi, direction=self.direction,
            n_real=len(real), n_generated=len(generated),
            details={"per_class": per_class, "classes": list(per_class), "feature_dim": int(fr.shape[1]),
                     "n_bootstrap": n_boot,
                     "ci_method": "per class: half-samples of both sets, percentile interval centred on the "
                                  "full-N value; mean: the mean of the classes' draws, centred likewise"},
            fingerprints={**ev.identity, "dataset": context.dataset_fingerprint},
        )
