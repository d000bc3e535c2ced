"""FID and KID on BYOL-ResNet18 features (paper 001 Sect. 5.1), in float64, at a fixed reported N.

FID = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^{1/2}); KID = unbiased MMD^2, cubic polynomial kernel.
The CI half-samples both feature sets without replacement (features are computed once; a bootstrap with
replacement duplicates images, which distorts both statistics) and centres the percentile interval on the
full-N estimate.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from radiobench import Metric, MetricContext, MetricResult, RadioImages
from radiobench.evaluators import get_evaluator
from radiobench.evaluators.features import embed, memo_apply
from radiobench.evaluators.frechet import fid_bootstrap, kid_bootstrap
from radiobench.types import InputError

__all__ = ["FidByol", "KidByol"]


def matched_sets(real: RadioImages, generated: RadioImages, n: int | None, rng: np.random.Generator):
    """Both sets at the same N (default: the smaller set's size), subsampled without replacement."""
    n = int(n or min(len(real), len(generated)))
    if n < 2 or len(real) < n or len(generated) < n:
        raise InputError(f"need at least N = {n} >= 2 real and generated images; got {len(real)} and {len(generated)}")
    pick = lambda s: s.images if len(s) == n else s.images[np.sort(rng.choice(len(s), n, replace=False))]  # noqa: E731
    return pick(real), pick(generated), n


class _ByolDistance(Metric):
    requires = frozenset()
    _statistic = staticmethod(fid_bootstrap)

    def compute(self, real: RadioImages, generated: RadioImages, context: MetricContext) -> MetricResult:
        ev = get_evaluator("byol", context)
        r, g, n = matched_sets(real, generated, self.options.get("n"), context.rng(f"{self.name}/subsample"))
        fr = memo_apply(context, ev, r, embed, "byol_features")
        fg = memo_apply(context, ev, g, embed, "byol_features")
        iv = self._statistic(fr, fg, context.n_bootstrap, context.rng(self.name))
        lo_raw, hi_raw = (np.quantile(iv.draws, [0.025, 0.975]) if len(iv.draws) else (iv.value, iv.value))
        details: dict[str, Any] = {
            "n": n,
            "feature_dim": int(fr.shape[1]),
            "n_bootstrap": context.n_bootstrap,
            "ci_method": "half-samples (N/2, without replacement) of both sets, percentile interval centred on the "
                         "full-N value",
            "half_sample_percentile_ci": [float(lo_raw), float(hi_raw)],
            "half_sample_mean": float(np.mean(iv.draws)) if len(iv.draws) else iv.value,
        }
        low = max(iv.low, 0.0) if self.name == "fid_byol" else iv.low  # FID >= 0; unbiased KID may dip below
        return MetricResult(
            metric=self.name, value=iv.value, ci_low=low, ci_high=iv.high, direction=self.direction,
            n_real=n, n_generated=n, unit=self.unit, details=details,
            fingerprints={**ev.identity, "dataset": context.dataset_fingerprint},
        )


class FidByol(_ByolDistance):
    """Fréchet distance between Gaussian fits of BYOL-ResNet18 features of real and generated images."""

    name = "fid_byol"
    description = "FID on BYOL-ResNet18 features trained on the dataset (paper 001), fixed N, bootstrap CI"
    direction = "lower"
    _statistic = staticmethod(fid_bootstrap)


class KidByol(_ByolDistance):
    """Kernel inception distance (unbiased MMD^2, k(x, y) = (x.y/d + 1)^3) on the same features."""

    name = "kid_byol"
    description = "KID (unbiased MMD^2, cubic kernel) on BYOL-ResNet18 features, fixed N, bootstrap CI"
    direction = "lower"
    _statistic = staticmethod(kid_bootstrap)
