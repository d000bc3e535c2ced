"""Source-finder metrics of paper 000 Sect. 5.1-5.2: PyBDSF (Table 5's settings, ``radiobench.sourcefind``)
on every real and generated image; from its Gaussian model image M of an image x, per image:

- integrated model flux  S = sum_i M_i / (beam area in pixels)           (image units x beam: "scaled Jy")
- A50%: the minimum area (pixels) holding half of sum_i M_i (the brightest model pixels first)
- positive residual      Delta+ = sum_i max(x_i - M_i, 0)                 (Eq. 26; scaled intensity)
- the number of sources PyBDSF finds.

One metric per quantity: the Wasserstein-1 distance between the real and generated distributions (in the
quantity's units) with a 95% bootstrap interval over images; the KS statistic and its interval, the
histograms (Poisson intervals), the images PyBDSF failed on or found nothing in (per set) and, where both
sets carry peak fluxes, the Delta+ - peak-flux relation (binned medians with CIs, Spearman's rank
correlation; paper 000 Fig. 17) are in the details.

Thresholded data (``first``: every pixel below 3 sigma set to 0) have no noise floor and PyBDSF stops on an
"unphysical rms"; so does ``mirabest`` (negative pixels clipped to 0). Option ``noise_floor`` (default
"auto": 1e-2, as paper 000's code, when more than 10% of the reference pixels are exactly 0, else 0) adds
Gaussian noise of noise_floor x (image peak) to every image of both sets, drawn from per-image seeds
(``radiobench.seeding.image_seeds``) of the metric's seed; the level used is recorded. The real side is
cached by content in ``<cache>/pybdsf/``.
"""
from __future__ import annotations

import hashlib
import zlib
from typing import Any, ClassVar

import numpy as np

from radiobench import Metric, MetricContext, MetricResult, RadioImages
from radiobench.options import Option, Options
from radiobench.seeding import image_seeds
from radiobench.sourcefind import TABLE5, SourceFit, find_sources, fits_header
from radiobench.stats import ClusterDistance, poisson_histogram
from radiobench.store import atomic_path, stable_hash
from radiobench.types import InputError

QUANTITIES: dict[str, tuple[str, str]] = {  # name: (description, unit)
    "flux": ("integrated PyBDSF model flux", "scaled Jy (model pixel sum / beam area)"),
    "a50": ("minimum area holding 50% of the model flux (A50%)", "pixels"),
    "dplus": ("positive residual Delta+ = sum max(x - model, 0) (Eq. 26)", "scaled intensity"),
    "nsrc": ("number of PyBDSF sources per image", "sources"),
}
AUTO_NOISE = 1e-2  # paper 000's code: Gaussian noise of 1e-2 x peak for thresholded images
AUTO_ZERO_FRACTION = 0.1  # real noise is never exactly 0: more zeros than this means clipped or thresholded
CACHE_VERSION = 1


def a50(model: np.ndarray) -> float:
    """A50%: the fewest pixels whose model values sum to at least half the total (NaN for an empty model)."""
    v = np.sort(np.ravel(model).astype(np.float64))[::-1]
    v = v[v > 0]
    if not len(v):
        return float("nan")
    return float(np.searchsorted(np.cumsum(v), 0.5 * v.sum()) + 1)


def per_image(images: np.ndarray, fits: list[SourceFit]) -> dict[str, np.ndarray]:
    """The four quantities of each image (NaN where PyBDSF failed; A50% NaN also where it found nothing),
    with its status (0 ok, 1 found nothing, 2 failed) and peak pixel."""
    n = len(fits)
    out = {k: np.full(n, np.nan) for k in QUANTITIES}
    out["status"] = np.array([2 if f.failed else 1 if f.empty else 0 for f in fits], np.int64)
    out["peak"] = images.reshape(n, -1).max(1).astype(np.float64) if n else np.zeros(0)
    for i, (x, f) in enumerate(zip(images, fits)):
        if f.model is None:
            continue
        out["flux"][i] = float(f.model.sum(dtype=np.float64)) / f.beam_area_pix
        out["a50"][i] = a50(f.model)
        out["dplus"][i] = float(np.maximum(x.astype(np.float64) - f.model, 0).sum())
        out["nsrc"][i] = f.n_sources
    return out


def with_noise_floor(images: np.ndarray, level: float, seed: int) -> np.ndarray:
    """(N, H, W) images plus Gaussian noise of ``level`` x (each image's peak); image i's noise from
    ``image_seeds(seed, i, i + 1)``; unchanged for level 0."""
    if level == 0:
        return images
    seeds = image_seeds(seed, 0, len(images))
    peaks = images.reshape(len(images), -1).max(1) if len(images) else np.zeros(0)
    noise = np.stack([np.random.default_rng(s).standard_normal(images.shape[1:]) for s in seeds]) \
        if len(images) else np.zeros_like(images)
    return (images + level * peaks[:, None, None] * noise).astype(np.float32)


def _digest(a: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


class _PyBDSFDistance(Metric):
    quantity: ClassVar[str]
    direction = "lower"
    # a PyBDSF run per set takes minutes at 200 images: not in smoke runs unless named
    default_presets: ClassVar[frozenset[str] | None] = frozenset({"cpu", "paper"})
    OPTIONS = Options(
        noise_floor=Option(float, "auto", choices=("auto",), low=0.0, high=1.0, high_open=True),
        workers=Option(int, None, nullable=True, low=1),  # None: one per 64 images, at most the cores
    )

    def noise_level(self, real: RadioImages) -> float:
        level = self.options["noise_floor"]
        if level == "auto":
            return AUTO_NOISE if float(np.mean(real.images == 0)) > AUTO_ZERO_FRACTION else 0.0
        return float(level)

    def _run(self, images: np.ndarray, header: Any, level: float, seed: int, context: MetricContext,
             cache: bool) -> dict[str, np.ndarray]:
        """Per-image quantities of (N, H, W) ``images`` (cached on disk by content when ``cache``)."""
        key = stable_hash({"v": CACHE_VERSION, "images": _digest(images), "header": header.tostring(),
                           "options": TABLE5, "noise": level, "seed": seed if level else None}, 32)
        path = context.cache_dir / "pybdsf" / f"{key}.npz"
        if cache and path.is_file():
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        x = with_noise_floor(images, level, seed)
        fits = find_sources(x, header, workers=self.options["workers"])
        out = per_image(x, fits)
        out["errors"] = np.array([f.error or "" for f in fits], dtype=str)
        if cache:
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, **out)
        return out

    def values(self, real: RadioImages, generated: RadioImages, context: MetricContext) -> dict[str, Any]:
        """Per-image quantities of both sets ({"real": {...}, "generated": {...}}: each quantity, ``status``
        0 ok / 1 no source / 2 failed, ``peak``, ``errors``), memoised in ``context`` for all four metrics."""
        header = fits_header(real.survey, real.images.shape[2:])  # InputError before any work
        level = self.noise_level(real)
        seed = zlib.crc32(f"pybdsf-noise:{context.seed}".encode())
        key = f"pybdsf:{_digest(real.images)}:{_digest(generated.images)}:{level}:seed-{context.seed}"

        def both() -> dict[str, Any]:
            r = context.remember(f"pybdsf:real:{_digest(real.images)}:{level}:{context.seed}",
                                 lambda: self._run(real.images[:, 0], header, level, seed, context, cache=True))
            g = self._run(generated.images[:, 0], header, level, seed, context, cache=False)
            return {"real": r, "generated": g, "header": header, "noise_floor": level, "noise_seed": seed,
                    "key": key}

        return context.remember(key, both)

    def compute(self, real: RadioImages, generated: RadioImages, context: MetricContext) -> MetricResult:
        if real.images.shape[1:] != generated.images.shape[1:]:
            raise InputError(f"{self.name}: real images {real.images.shape[1:]} and generated images "
                             f"{generated.images.shape[1:]} differ in shape")
        res = self.values(real, generated, context)
        header, level, seed, both_key = res["header"], res["noise_floor"], res["noise_seed"], res["key"]
        r, g = res["real"], res["generated"]
        a, b = r[self.quantity], g[self.quantity]
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        counts = {name: {"images": int(len(s["status"])), "failed": int(np.sum(s["status"] == 2)),
                         "no_source": int(np.sum(s["status"] == 1)),
                         "errors": sorted({str(e) for e in s["errors"] if e})[:5]}
                  for name, s in (("real", r), ("generated", g))}
        details: dict[str, Any] = {
            "quantity": self.quantity, "unit": self.unit, "pybdsf_options": TABLE5,
            "noise_floor": level, "noise_floor_rule": self.options["noise_floor"], "noise_seed": seed,
            "counts": counts, "n_used": {"real": int(len(a)), "generated": int(len(b))},
            "n_bootstrap": context.n_bootstrap, "header": dict(header),
        }
        if not len(a) or not len(b):
            nan = float("nan")
            details["reason"] = "PyBDSF gave no value for one of the sets"
            return MetricResult(self.name, nan, nan, nan, "lower", len(real), len(generated), self.unit, details)
        iv = ClusterDistance(a[:, None], b[:, None]).compute(context.n_bootstrap, context.rng(both_key + self.quantity))
        details["ks"] = {"value": iv["ks"].value, "ci_low": iv["ks"].low, "ci_high": iv["ks"].high}
        lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
        bins = np.arange(-0.5, hi + 1.5) if self.quantity == "nsrc" else np.linspace(lo, max(hi, lo + 1e-9), 31)
        details["histograms"] = {"real": poisson_histogram(a, bins), "generated": poisson_histogram(b, bins)}
        if self.quantity == "dplus":
            details["peak_flux_relation"] = {
                name: flux_relation(s["dplus"], flux, seed=context.seed) for name, s, flux in
                (("real", r, real.peak_flux), ("generated", g, generated.peak_flux)) if flux is not None}
        w1 = iv["w1"]
        return MetricResult(self.name, w1.value, w1.low, w1.high, "lower", len(real), len(generated), self.unit,
                            details)


def flux_relation(dplus: np.ndarray, peak_flux: np.ndarray, n_bins: int = 8, n_boot: int = 500,
                  seed: int = 0) -> dict[str, Any]:
    """Delta+ against peak flux (paper 000 Fig. 17): Spearman's rank correlation (with its p-value and a
    bootstrap 95% interval) and the median Delta+ in ``n_bins`` bins of equal count in log10 peak flux, each
    with a bootstrap 95% interval; images PyBDSF failed on are left out (counted in ``n``)."""
    from scipy import stats

    ok = np.isfinite(dplus) & np.isfinite(peak_flux) & (peak_flux > 0)
    d, f = np.asarray(dplus, np.float64)[ok], np.log10(np.asarray(peak_flux, np.float64)[ok])
    out: dict[str, Any] = {"n": int(ok.sum()), "n_left_out": int((~ok).sum()), "x": "log10 peak flux (Jy/beam)"}
    if len(d) < 3:
        return out
    rng = np.random.default_rng(seed)
    rho = stats.spearmanr(f, d)
    boots = [stats.spearmanr(f[i], d[i])[0] for i in (rng.integers(0, len(d), len(d)) for _ in range(n_boot))]
    lo, hi = np.nanquantile(boots, [0.025, 0.975])
    out["spearman"] = {"rho": float(rho[0]), "p": float(rho[1]), "ci_low": float(lo), "ci_high": float(hi)}
    edges = np.quantile(f, np.linspace(0, 1, min(n_bins, len(d) // 3) + 1))
    idx = np.clip(np.searchsorted(edges, f, side="right") - 1, 0, len(edges) - 2)
    bins = []
    for k in range(len(edges) - 1):
        v = d[idx == k]
        if not len(v):
            continue
        meds = np.median(v[rng.integers(0, len(v), (n_boot, len(v)))], axis=1)
        blo, bhi = np.quantile(meds, [0.025, 0.975])
        bins.append({"lo": float(edges[k]), "hi": float(edges[k + 1]), "n": int(len(v)),
                     "median": float(np.median(v)), "ci_low": float(blo), "ci_high": float(bhi)})
    out["bins"] = bins
    return out


def _make(quantity: str) -> type[_PyBDSFDistance]:
    what, unit = QUANTITIES[quantity]
    return type(f"PyBDSF{quantity.title()}W1", (_PyBDSFDistance,), {
        "name": f"pybdsf_{quantity}_w1",
        "quantity": quantity,
        "unit": unit,
        "description": f"Wasserstein-1 distance between the {what} of real and generated images "
                       "(PyBDSF, paper 000 Sect. 5.1-5.2; KS in details)",
        "__module__": __name__,
    })


PyBDSFFluxW1 = _make("flux")
PyBDSFA50W1 = _make("a50")
PyBDSFDplusW1 = _make("dplus")
PyBDSFNsrcW1 = _make("nsrc")
