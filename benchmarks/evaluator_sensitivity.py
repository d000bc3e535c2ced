"""Sensitivity of RAMIS and FID-BYOL to degraded real images (paper 003 Fig. 1).

    python benchmarks/evaluator_sensitivity.py --dataset first --preset cpu [--plot sensitivity.png]

Trains (or loads from the evaluator cache) the preset's BYOL encoder and radio CNN on the dataset's
train split, then blurs (Gaussian, sigma in pixels, renormalised to peak 1), noises (additive Gaussian,
clipped to [0, 1]) and edge-blanks (strip width as a fraction of the side) the real test images, and
prints RAMIS and FID-BYOL (against the undegraded test set, same N) with bootstrap 95% CIs, beside the
reference rows FID(train vs test) and FID(pixel floor vs test); the pixel floor draws every pixel
independently from the training images' values at that position.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

from radiobench import MetricContext, RadioImages, get_preset
from radiobench.evaluators.augment import blank_edges, degrade_blur, degrade_noise
from radiobench.registry import registry
from radiobench_plugins.metrics.fid_byol import FidByol
from radiobench_plugins.metrics.ramis import RAMIS

LEVELS = {
    "blur sigma [px]": [0.0, 0.5, 1.0, 1.5, 2.0, 3.0],
    "noise std": [0.0, 0.01, 0.03, 0.1, 0.2, 0.3],
    "edge strip [side]": [0.0, 0.1, 0.2, 0.3, 0.4, 0.45],
}


def degrade(kind: str, images: np.ndarray, level: float) -> np.ndarray:
    if kind.startswith("blur"):
        return degrade_blur(images, level)
    if kind.startswith("noise"):
        return degrade_noise(images, level, np.random.default_rng(0))
    return blank_edges(images, int(round(level * images.shape[-1])))


def pixel_floor(train: RadioImages, n: int, seed: int = 0) -> RadioImages:
    rng = np.random.default_rng(seed)
    h, w = train.resolution
    idx = rng.integers(0, len(train), (n, 1, h, w))
    return RadioImages(images=train.images[idx, 0, np.arange(h)[:, None], np.arange(w)[None, :]], survey=train.survey)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="first")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--resolution", type=int, default=None, help="default: the preset's")
    ap.add_argument("--n-bootstrap", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--plot", default=None, help="write the curves as a PNG")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    preset = dataclasses.replace(get_preset(args.preset), n_bootstrap=args.n_bootstrap)
    ds = registry.dataset(args.dataset)(resolution=args.resolution or preset.resolution)
    train, test = ds.load(ds.train_split), ds.load(ds.reference_split)
    ctx = MetricContext(args.dataset, ds.fingerprint(), train, preset, device=args.device)
    ramis, fid = RAMIS(), FidByol()
    t0 = time.perf_counter()
    ref_fid = fid.compute(test, test, ctx)  # trains / loads BYOL
    ramis.compute(test, test, ctx)  # trains / loads the radio CNN
    print(f"evaluators ready in {time.perf_counter() - t0:.0f} s: byol {ref_fid.fingerprints['byol']}, "
          f"radio_cnn {ramis.compute(test, test, ctx).fingerprints['radio_cnn']}; N = {len(test)}, "
          f"{args.n_bootstrap} bootstrap resamples")

    rng = np.random.default_rng(0)
    sub = train.subset(np.sort(rng.choice(len(train), len(test), replace=False)))
    floor = pixel_floor(train, len(test))
    fmt = lambda r: f"{r.value:9.3f} [{r.ci_low:8.3f}, {r.ci_high:8.3f}]"  # noqa: E731
    print(f"\n{'reference':28s} {'RAMIS':>30s} {'FID-BYOL vs test':>32s}")
    for name, s in (("real test", test), ("real train (N matched)", sub), ("pixel floor", floor)):
        print(f"{name:28s} {fmt(ramis.compute(test, s, ctx)):>30s} {fmt(fid.compute(test, s, ctx)):>32s}")
    print(f"(RAMIS maximum = {len(test.class_names or ())} classes)")

    curves = {}
    for kind, levels in LEVELS.items():
        print(f"\n{kind:28s} {'RAMIS':>30s} {'FID-BYOL vs test':>32s}")
        rows = []
        for lv in levels:
            g = RadioImages(images=degrade(kind, test.images, lv), survey=test.survey, labels=test.labels,
                            class_names=test.class_names)
            r, f = ramis.compute(test, g, ctx), fid.compute(test, g, ctx)
            rows.append((lv, r.value, r.ci_low, r.ci_high, f.value, f.ci_low, f.ci_high))
            print(f"{lv:<28g} {fmt(r):>30s} {fmt(f):>32s}")
        a = np.array(rows)
        ramis_falls, fid_rises = bool(np.all(np.diff(a[:, 1]) < 0)), bool(np.all(np.diff(a[:, 4]) > 0))
        print(f"monotonic: RAMIS falls {ramis_falls}, FID rises {fid_rises}")
        curves[kind] = a
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 3, figsize=(11, 6), sharex="col")
        for j, (kind, a) in enumerate(curves.items()):
            for i, (col, label) in enumerate(((1, "RAMIS"), (4, "FID-BYOL"))):
                ax = axes[i, j]
                err = np.clip([a[:, col] - a[:, col + 1], a[:, col + 2] - a[:, col]], 0, None)  # FID CI is clipped at 0
                ax.errorbar(a[:, 0], a[:, col], yerr=err, marker="o", capsize=3)
                ax.set_ylabel(label)
                axes[1, j].set_xlabel(kind)
        fig.suptitle(f"{args.dataset} {args.preset}: metric response to degraded real test images"
                     " (cf. paper 003 Fig. 1)")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
