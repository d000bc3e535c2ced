"""FID and KID on BYOL-ResNet18 features (paper 001 Sect. 5.1), in float64.

FID = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^{1/2}); KID = unbiased MMD^2, cubic polynomial kernel.
The CI half-samples both feature sets without replacement (features are computed once; a bootstrap with
replacement duplicates images, which distorts both statistics) and centres the percentile interval on the
full-N estimate.

Options: ``n`` (both sets subsampled to n; default each set whole, the sizes recorded), ``n_bootstrap`` (the
half-samples behind the interval; default the preset's), ``against`` (the real set the runner scores against:
the reference split, or the training split, benchmarks/README.md "Ranking power") and ``evaluator_seed`` (the
BYOL encoder trained with that seed).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from radiobench import Metric, MetricContext, MetricResult, RadioImages
from radiobench.evaluators import get_evaluator
from radiobench.evaluators.features import embed, memo_apply
from radiobench.evaluators.frechet import fid_bootstrap, kid_bootstrap
from radiobench.options import AGAINST, EVALUATOR_SEED, Option, Options
from radiobench.types import InputError

__all__ = ["FidByol", "KidByol", "OPTIONS"]

OPTIONS = Options(
    n=Option(int, low=2, nullable=True),  # None: each set whole
    n_bootstrap=Option(int, low=0, nullable=True),  # None: the preset's
    against=AGAINST,
    evaluator_seed=EVALUATOR_SEED,
)


def matched_sets(real: RadioImages, generated: RadioImages, n: int | None, rng: np.random.Generator):
    """The images of both sets, each subsampled without replacement to ``n`` when given (default: each whole)."""
    n_r, n_g = (len(real), len(generated)) if n is None else (n, n)
    if min(n_r, n_g) < 2 or len(real) < n_r or len(generated) < n_g:
        raise InputError(f"need at least N = {max(min(n_r, n_g), 2)} >= 2 real and generated images; "
                         f"got {len(real)} and {len(generated)}")
    pick = lambda s, k: s.images if len(s) == k else s.images[np.sort(rng.choice(len(s), k, replace=False))]  # noqa: E731
    return pick(real, n_r), pick(generated, n_g)


class _ByolDistance(Metric):
    requires = frozenset()
    OPTIONS = OPTIONS
    _statistic = staticmethod(fid_bootstrap)

    def compute(self, real: RadioImages, generated: RadioImages, context: MetricContext) -> MetricResult:
        ev = get_evaluator("byol", context)
        r, g = matched_sets(real, generated, self.options.get("n"), context.rng(f"{self.name}/subsample"))
        fr = memo_apply(context, ev, r, embed, "byol_features")
        fg = memo_apply(context, ev, g, embed, "byol_features")
        n_boot = self.options.get("n_bootstrap")
        n_boot = context.n_bootstrap if n_boot is None else n_boot
        iv = self._statistic(fr, fg, n_boot, context.rng(self.name))
        lo_raw, hi_raw = (np.quantile(iv.draws, [0.025, 0.975]) if len(iv.draws) else (iv.value, iv.value))
        details: dict[str, Any] = {
            "n": len(g),
            **({"n_real": len(r)} if len(r) != len(g) else {}),
            "feature_dim": int(fr.shape[1]),
            "n_bootstrap": n_boot,
            "ci_method": "half-samples (N/2, without replacement) of both sets, percentile interval centred on the "
                         "full-N value",
            "half_sample_percentile_ci": [float(lo_raw), float(hi_raw)],
            "half_sample_mean": float(np.mean(iv.draws)) if len(iv.draws) else iv.value,
        }
        low = max(iv.low, 0.0) if self.name == "fid_byol" else iv.low  # FID >= 0; unbiased KID may dip below
        return MetricResult(
            metric=self.name, value=iv.value, ci_low=low, ci_high=iv.high, direction=self.direction,
            n_real=len(r), n_generated=len(g), unit=self.unit, details=details,
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
