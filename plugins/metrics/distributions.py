"""Distribution distances of paper 000 Sect. 5.1: pixel intensities, image means, image standard
deviations. Each is reported as Wasserstein-1 (in the quantity's own units, here scaled intensity)
and as the two-sample KS statistic, with 95% bootstrap CIs over images (radiobench.stats)."""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from radiobench import Metric, MetricContext, MetricResult, RadioImages
from radiobench.stats import ClusterDistance, poisson_histogram

QUANTITIES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], float | None, str]] = {
    # name: (per-image values (N, P), grid quantum, description)
    "pixel": (lambda x: x.reshape(len(x), -1), 2.0**-12, "pixel intensities"),
    "mean": (lambda x: x.reshape(len(x), -1).mean(1, keepdims=True), None, "image means"),
    "std": (lambda x: x.reshape(len(x), -1).std(1, keepdims=True), None, "image standard deviations"),
}


def _digest(images: np.ndarray) -> str:
    return hashlib.sha1(images.tobytes()).hexdigest()[:16]


class _DistributionDistance(Metric):
    quantity: ClassVar[str]
    statistic: ClassVar[str]  # "w1" or "ks"
    direction = "lower"

    def compute(self, real: RadioImages, generated: RadioImages, context: MetricContext) -> MetricResult:
        values, quantum, _ = QUANTITIES[self.quantity]
        key = f"distributions:{self.quantity}:{_digest(real.images)}:{_digest(generated.images)}"

        def both() -> dict:
            a, b = values(real.images), values(generated.images)
            out = ClusterDistance(a, b, quantum).compute(context.n_bootstrap, context.rng(key))
            lo, hi = (0.0, 1.0) if self.quantity == "pixel" else (0.0, float(max(a.max(), b.max(), 1e-6)))
            bins = np.linspace(lo, hi, 41)
            out["hist"] = {"real": poisson_histogram(a, bins), "generated": poisson_histogram(b, bins)}
            return out

        res = context.remember(f"{key}:seed-{context.seed}", both)  # the bootstrap depends on the seed
        iv = res[self.statistic]
        return MetricResult(
            metric=self.name,
            value=iv.value,
            ci_low=iv.low,
            ci_high=iv.high,
            direction="lower",
            n_real=len(real),
            n_generated=len(generated),
            unit=self.unit,
            details={"quantity": self.quantity, "histograms": res["hist"], "n_bootstrap": context.n_bootstrap},
        )


def _make(quantity: str, statistic: str) -> type[_DistributionDistance]:
    what = QUANTITIES[quantity][2]
    label = "Wasserstein-1 distance" if statistic == "w1" else "Kolmogorov-Smirnov statistic"
    return type(
        f"{quantity.title()}{statistic.upper()}",
        (_DistributionDistance,),
        {
            "name": f"{quantity}_{statistic}",
            "quantity": quantity,
            "statistic": statistic,
            "unit": "scaled intensity" if statistic == "w1" else "",
            "description": f"{label} between the {what} of real and generated images (paper 000 Sect. 5.1)",
            "__module__": __name__,
        },
    )


PixelW1 = _make("pixel", "w1")
PixelKS = _make("pixel", "ks")
MeanW1 = _make("mean", "w1")
MeanKS = _make("mean", "ks")
StdW1 = _make("std", "w1")
StdKS = _make("std", "ks")
