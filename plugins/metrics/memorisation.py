"""Memorisation (paper 000 Appendix A): for each generated image, the SSIM of its most similar
training image, after aligning every image on its principal axis. Reported as the share of
generated images whose nearest training image has SSIM above a threshold; the same share for the
real held-out images (which cannot be copies) is the level a non-memorising generator shows.

Global SSIM is high between any two sparse radio images (benchmarks/README.md, "Memorisation
threshold"), so a fixed threshold means little; the default threshold is the 95th percentile of
the real reference images' nearest-train SSIM: the value is the share of generated images closer to
a training image than 95% of real held-out images are (≈ 0.05 for a generator that does not copy).

SSIM is the global form of Eq. A.2 (Wang et al. 2004):
    SSIM(x, y) = (2 μx μy + c1)(2 σxy + c2) / ((μx² + μy² + c1)(σx² + σy² + c2)),  c1 = 1e-4, c2 = 9e-4,
with means, variances and covariance over the whole image; it is a matrix product over image pairs.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from radiobench import Metric, MetricContext, MetricResult, RadioImages
from radiobench.stats import bootstrap_ci

C1, C2 = 1e-4, 9e-4


def align_principal_axis(images: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    """Rotate each image so the principal component of its bright pixels (> threshold × peak) lies
    horizontally (paper 000 App. A; its τ_PCA formula is lost from our text copy of the paper, so the
    threshold here is a fraction of the peak)."""
    out = np.empty_like(images)
    for i, img in enumerate(images[:, 0]):
        ys, xs = np.nonzero(img > threshold * max(img.max(), 1e-12))
        if len(xs) < 2:
            out[i, 0] = img
            continue
        w = img[ys, xs]
        cov = np.cov(np.stack([xs, ys]), aweights=w)
        evals, evecs = np.linalg.eigh(cov)
        vx, vy = evecs[:, -1]
        angle = np.degrees(np.arctan2(vy, vx))
        out[i, 0] = ndimage.rotate(img, angle, reshape=False, order=1, mode="constant")
    return np.clip(out, 0, 1)


def max_ssim(queries: np.ndarray, library: np.ndarray, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """For each query image, the largest global SSIM over library images (and over the four
    flips of the aligned library image, since a principal axis has no sign), and its index."""
    q = queries.reshape(len(queries), -1).astype(np.float64)
    mq, vq = q.mean(1), q.var(1)
    qc = q - mq[:, None]
    best = np.full(len(q), -np.inf)
    arg = np.zeros(len(q), np.int64)
    lib = library[:, 0]
    for flipped in (lib, lib[:, ::-1], lib[:, :, ::-1], lib[:, ::-1, ::-1]):
        flat = np.ascontiguousarray(flipped).reshape(len(lib), -1).astype(np.float64)
        ml, vl = flat.mean(1), flat.var(1)
        for lo in range(0, len(flat), chunk):
            blk = flat[lo:lo + chunk] - ml[lo:lo + chunk, None]
            cov = qc @ blk.T / q.shape[1]
            s = ((2 * mq[:, None] * ml[None, lo:lo + chunk] + C1) * (2 * cov + C2)) / (
                (mq[:, None] ** 2 + ml[None, lo:lo + chunk] ** 2 + C1) * (vq[:, None] + vl[None, lo:lo + chunk] + C2))
            j = s.argmax(1)
            v = s[np.arange(len(q)), j]
            better = v > best
            best[better], arg[better] = v[better], lo + j[better]
    return best, arg


class Memorisation(Metric):
    name = "memorisation"
    description = ("share of generated images whose nearest training image (aligned SSIM, paper 000 App. A) "
                   "exceeds a threshold")
    direction = "lower"

    def __init__(self, threshold: float | None = None, quantile: float = 0.95, **options):
        super().__init__(threshold=threshold, quantile=quantile, **options)
        self.threshold, self.quantile = threshold, quantile

    def compute(self, real: RadioImages, generated: RadioImages, context: MetricContext) -> MetricResult:
        train = context.remember("memorisation:train-aligned", lambda: align_principal_axis(context.train.images))
        s_gen, nn = max_ssim(align_principal_axis(generated.images), train)
        s_real, _ = context.remember(
            f"memorisation:real:{len(real)}", lambda: max_ssim(align_principal_axis(real.images), train))
        threshold = self.threshold if self.threshold is not None else float(np.quantile(s_real, self.quantile))
        above = s_gen > threshold
        lo, hi, _ = bootstrap_ci(lambda _, j: above[j].mean(), len(real), len(above), context.n_bootstrap,
                                 context.rng(self.name))
        bins = np.linspace(0, 1, 41)
        top = np.argsort(-s_gen)[:5]
        return MetricResult(
            metric=self.name,
            value=float(above.mean()),
            ci_low=lo,
            ci_high=hi,
            direction="lower",
            n_real=len(real),
            n_generated=len(generated),
            details={
                "threshold": threshold,
                "threshold_rule": "fixed" if self.threshold is not None else f"quantile {self.quantile} of real",
                "real_share": float((s_real > threshold).mean()),
                "median_max_ssim": float(np.median(s_gen)),
                "real_median_max_ssim": float(np.median(s_real)),
                "hist_generated": np.histogram(s_gen, bins)[0].tolist(),
                "hist_real": np.histogram(s_real, bins)[0].tolist(),
                "bin_edges": bins.tolist(),
                "most_similar": [{"generated": int(i), "train": int(nn[i]), "ssim": float(s_gen[i])} for i in top],
            },
        )
