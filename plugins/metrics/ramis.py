"""RAMIS, the radio morphology inception score (paper 003 Sect. 4):

    RAMIS = exp( E_x KL( p(y|x) || p(y) ) ),   p(y) = E_x p(y|x),

with p(y|x) from a Tang et al. 2019 style CNN trained on the dataset's labels. It lies in [1, K]
(K classes): K when every image is classified confidently and the classes are used evenly.
Bootstrap CI over images (p(y) is re-estimated in each resample).
"""
from __future__ import annotations

import numpy as np

from radiobench import Metric, MetricContext, MetricResult, RadioImages
from radiobench.evaluators.features import evaluate_pair, predict_proba
from radiobench.options import EVALUATOR_SEED, Options

__all__ = ["RAMIS", "ramis_score"]


def ramis_score(p: np.ndarray, weights: np.ndarray | None = None) -> float:
    """exp(mean_i KL(p_i || p_bar)) for (N, K) probabilities; ``weights`` are bootstrap multiplicities."""
    w = np.ones(len(p)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    logp = np.log(np.clip(p, 1e-12, None))
    p_bar = w @ p
    kl = np.sum(p * (logp - np.log(np.clip(p_bar, 1e-12, None))), axis=1)
    return float(np.exp(w @ kl))


class RAMIS(Metric):
    name = "ramis"
    description = "radio morphology inception score exp(E KL(p(y|x)||p(y))), radio CNN of paper 003; max = #classes"
    direction = "higher"
    requires = frozenset({"labels"})
    OPTIONS = Options(evaluator_seed=EVALUATOR_SEED)  # the referee trained with another seed

    def compute(self, real: RadioImages, generated: RadioImages, context: MetricContext) -> MetricResult:
        ev, pg, pr = evaluate_pair(self, "radio_cnn", real, generated, context, predict_proba, "radio_cnn_proba")
        value = ramis_score(pg)
        rng = context.rng(self.name)
        draws = np.array([
            ramis_score(pg, np.bincount(rng.integers(0, len(pg), len(pg)), minlength=len(pg)))
            for _ in range(context.n_bootstrap)
        ])
        lo, hi = np.quantile(draws, [0.025, 0.975]) if len(draws) else (value, value)
        names = list(ev.class_names or ())
        return MetricResult(
            metric=self.name, value=value, ci_low=lo, ci_high=hi, direction=self.direction,
            n_real=len(real), n_generated=len(generated),
            details={
                "max": len(names),
                "class_names": names,
                "p_y_generated": pg.mean(0).tolist(),
                "p_y_real": pr.mean(0).tolist(),
                "real_ramis": ramis_score(pr),
                "mean_max_probability": float(pg.max(1).mean()),
            },
            fingerprints={**ev.identity, "dataset": context.dataset_fingerprint},
        )
