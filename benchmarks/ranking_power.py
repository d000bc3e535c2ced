"""Ranking power of the learned metrics on the reference rows: which protocol's intervals separate real images
from the pixel floor (issue 18).

    RADIOBENCH_CACHE=/tmp/rb-cache python benchmarks/ranking_power.py --data-dir ../shared/data/first --n-large 2000

With the evaluators of one seed (--evaluator-seed; cached, else trained), scores the reference rows of
benchmarks/referee_spread.py (real = the validation split, replay, pixel_floor; the generated rows drawn with
conditions matched to the test split, at N = 200 and at --n-large, the test split's conditions repeated) under
several protocols:

- FID and KID on the BYOL features (radiobench.evaluators.frechet, half-sample intervals over both sets), against
  the 200 test images, with the generated side at N = 200 or --n-large, on the 512-d features or on their
  projection onto the first --pca principal components of the training images' features. The real row stays
  valid (200) vs test (200): no other held-out images exist. "vs train": against the training images instead,
  generated side at --n-large, the real row all held-out images (validation and test, N = 400); replay returns
  training images, so there it measures memorisation. "paired gap" is the interval of floor − real from
  half-samples that share the reference half (both rows are scored against the same reference images):
  radiobench.evaluators.frechet.paired_gap, which since the README's table was made also resamples two generated
  sets of one size with the same rows (N = 200: real and floor), so a re-run draws other half-samples there.
- RAMIS and classifier accuracy (the metric plugins) at N = 200 and --n-large; they do not compare with the test
  images, so the real row may grow to the validation and test splits pooled (N = 400).

Prints per metric and protocol each row's value and 95% half-width, the gaps real↔floor and real↔replay (positive:
real better) and whether the real row's interval lies clear of the floor's; then checks the half-sample interval
of FID and KID against their measured sampling spread at N = 200 (real: disjoint draws of training images; floor:
pixel_floor sets of other generator seeds against draws of training images).
"""
from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch
from referee_spread import LOWER_IS_BETTER, Bench, bench, draw, pinned_context, reference_rows, separates

from radiobench import RadioImages
from radiobench.evaluators import get_evaluator
from radiobench.evaluators.features import embed, memo_apply
from radiobench.evaluators.frechet import _fid_rows, fid_bootstrap, kid_bootstrap, kid_from_features, paired_gap
from radiobench.registry import registry
from radiobench.store import write_json

STATISTICS = {"fid_byol": (fid_bootstrap, _fid_rows), "kid_byol": (kid_bootstrap, kid_from_features)}
GAP_STATISTIC = {"fid_byol": "fid", "kid_byol": "kid"}  # radiobench.evaluators.frechet.paired_gap's names


def pca(train_features: np.ndarray, k: int):
    """Projection onto the first k principal components of the training features."""
    mu = train_features.mean(0)
    _, _, vt = np.linalg.svd(train_features - mu, full_matrices=False)
    return lambda f: (f - mu) @ vt[:k].T


def pooled(a: RadioImages, b: RadioImages) -> RadioImages:
    return RadioImages(images=np.concatenate([a.images, b.images]), survey=a.survey,
                       labels=np.concatenate([a.labels, b.labels]), class_names=a.class_names)


def cell(value: float, lo: float, hi: float, n: int) -> dict[str, Any]:
    return {"value": float(value), "ci": [float(lo), float(hi)], "half_width": float(hi - lo) / 2, "n": n}


def distances(b: Bench, ctx, protocols: dict[str, tuple[RadioImages, dict[str, RadioImages]]], dims: list[int | None],
              paired_draws: int) -> dict[str, dict[str, Any]]:
    """FID and KID of each protocol's rows against its reference set (label -> (reference, rows))."""
    ev = get_evaluator("byol", ctx)
    feats = lambda s: memo_apply(ctx, ev, s.images, embed, "byol_features")  # noqa: E731
    project = {None: lambda f: f, **{k: pca(feats(b.train), k) for k in dims if k}}
    out: dict[str, dict[str, Any]] = {}
    for name, (boot, _) in STATISTICS.items():
        for dim in dims:
            for protocol, (reference, rows) in protocols.items():
                t = project[dim](feats(reference))
                label = f"{name}, {protocol}, {f'PCA-{dim}' if dim else f'{feats(reference).shape[1]}-d'}"
                f = {row: project[dim](feats(images)) for row, images in rows.items()}
                iv = {row: boot(t, x, b.preset.n_bootstrap, ctx.rng(f"{label}/{row}")) for row, x in f.items()}
                res = {row: cell(v.value, v.low, v.high, len(f[row])) for row, v in iv.items()}
                gap = paired_gap(t, f["pixel_floor"], f["real"], paired_draws, ctx.rng(f"{label}/paired"),
                                 statistic=GAP_STATISTIC[name])
                res["paired_gap_ci"] = [gap.low, gap.high]
                out[label] = res
                print(f"  {label} done", flush=True)
    return out


def calibration(b: Bench, ctx, draws: int, floor_draws: int, rng: np.random.Generator) -> dict[str, dict[str, Any]]:
    """The sampling spread of FID and KID at the test split's N, measured rather than half-sampled. Each draw takes
    2N distinct training images (the only real pool large enough) as a stand-in test set A and a real set B; real
    is stat(A, B), pixel_floor is stat(A, a pixel_floor set of generator seed 1, 2, ...) for the first
    ``floor_draws`` draws, and the paired gap is their difference on the same A. Beside each, the mean half-width
    of the half-sample interval the metrics report for one such pair (first 10 draws)."""
    ev = get_evaluator("byol", ctx)
    f = memo_apply(ctx, ev, b.train.images, embed, "byol_features")
    floors = [embed(ev.module, draw(b, "pixel_floor", seed=s).images) for s in range(1, floor_draws + 1)]
    n = len(b.test)
    out = {}
    for name, (boot, stat) in STATISTICS.items():
        values: dict[str, list[float]] = {"real": [], "pixel_floor": [], "paired gap (floor - real)": []}
        half_widths: dict[str, list[float]] = {"real": [], "pixel_floor": []}
        for d in range(draws):
            idx = rng.permutation(len(f))[:2 * n]
            a, pairs = f[idx[:n]], {"real": f[idx[n:]]}
            if d < floor_draws:
                pairs["pixel_floor"] = floors[d]
            for row, c in pairs.items():
                values[row].append(stat(a, c))
                if len(half_widths[row]) < 10:
                    iv = boot(a, c, b.preset.n_bootstrap, rng)
                    half_widths[row].append((iv.high - iv.low) / 2)
            if d < floor_draws:
                values["paired gap (floor - real)"].append(values["pixel_floor"][-1] - values["real"][-1])
        for row, v in values.items():
            lo, hi = np.quantile(v, [0.025, 0.975])
            res = {"draws": len(v), "mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1)),
                   "ci": [float(lo), float(hi)], "sampling_half_width": float(hi - lo) / 2}
            if row in half_widths:
                res["half_sample_half_width"] = float(np.mean(half_widths[row]))
            else:
                res["fraction_positive"] = float(np.mean(np.array(v) > 0))
            out[f"{name} {row}"] = res
            extra = (f"the half-sample interval's half-width {res['half_sample_half_width']:.3g}" if row in half_widths
                     else f"floor worse than real in {res['fraction_positive']:.0%} of draws")
            print(f"{name} {row} ({len(v)} draws of {n} images): mean {res['mean']:.4g}, 95% of values in "
                  f"[{lo:.4g}, {hi:.4g}] (half-width {res['sampling_half_width']:.3g}); {extra}", flush=True)
    return out


def classifications(b: Bench, ctx, sets: dict[str, dict[str, RadioImages]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in ("ramis", "classifier_accuracy"):
        metric = registry.metric(name)()
        for n_label, rows in sets.items():
            res = {}
            for row, images in rows.items():
                r = metric.compute(b.test, images, ctx)
                res[row] = cell(r.value, r.ci_low, r.ci_high, len(images))
            out[f"{name}, N_gen = {n_label}"] = res
    return out


def table(results: dict[str, dict[str, Any]]) -> None:
    print(f"\n{'metric, protocol':44s} {'real':>22s} {'replay':>22s} {'pixel floor':>22s}"
          f" {'real↔floor':>11s} {'real↔replay':>11s} separated  paired gap (floor − real)")
    for label, res in results.items():
        sign = -1 if label.split(",")[0] in LOWER_IS_BETTER else 1
        fmt = lambda c: f"{c['value']:.4g} ±{c['half_width']:.3g} ({c['n']})"  # noqa: E731
        gap_floor = sign * (res["real"]["value"] - res["pixel_floor"]["value"])
        gap_replay = sign * (res["real"]["value"] - res["replay"]["value"])
        sep = separates(label.split(",")[0], tuple(res["real"]["ci"]), tuple(res["pixel_floor"]["ci"]))
        paired = res.get("paired_gap_ci")
        paired_txt = f"[{paired[0]:.3g}, {paired[1]:.3g}]" if paired else ""
        print(f"{label:44s} {fmt(res['real']):>22s} {fmt(res['replay']):>22s} {fmt(res['pixel_floor']):>22s}"
              f" {gap_floor:11.3g} {gap_replay:11.3g} {'yes' if sep else 'no':9s}  {paired_txt}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="first")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--evaluator-seed", type=int, default=0)
    ap.add_argument("--n-large", type=int, default=2000, help="the larger generated set (a multiple of the test size)")
    ap.add_argument("--pca", type=int, default=64, help="dimension of the projected features (0: none)")
    ap.add_argument("--n-bootstrap", type=int, default=None, help="default: the preset's")
    ap.add_argument("--paired-draws", type=int, default=200, help="half-samples behind the paired gap interval")
    ap.add_argument("--calibration-draws", type=int, default=200,
                    help="real-vs-real pairs behind the measured sampling spread (0: skip)")
    ap.add_argument("--calibration-floors", type=int, default=50, help="pixel_floor sets behind the floor's spread")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    b = bench(args.dataset, args.data_dir, args.preset, args.device, args.n_bootstrap)
    ctx = pinned_context(b, args.evaluator_seed)
    small, large = reference_rows(b), reference_rows(b, args.n_large)
    n_small, n_large = str(len(b.test)), str(len(large["pixel_floor"]))
    large["real"] = small["real"]
    held_out = pooled(b.real, b.test)
    protocols = {f"N_gen = {n_small}": (b.test, small), f"N_gen = {n_large}": (b.test, large),
                 # against the training images: every held-out image can be the real row; replay is degenerate here
                 f"vs train, N_gen = {n_large}": (b.train, {**large, "real": held_out})}
    results = distances(b, ctx, protocols, [None, args.pca] if args.pca else [None], args.paired_draws)
    # RAMIS and classifier accuracy never look at the test images: the real row may use all held-out images
    results.update(classifications(b, ctx, {n_small: small, n_large: {**large, "real": held_out}}))
    table(results)
    calibrated = {}
    if args.calibration_draws:
        calibrated = calibration(b, ctx, args.calibration_draws, args.calibration_floors, ctx.rng("calibration"))
    print(f"\nevaluator seed {args.evaluator_seed}, {b.preset.n_bootstrap} half-samples / bootstrap draws, "
          f"{time.perf_counter() - t0:.0f} s")
    if args.json:
        write_json(args.json, {"dataset": args.dataset, "preset": args.preset, "evaluator_seed": args.evaluator_seed,
                               "results": results, "calibration": calibrated})


if __name__ == "__main__":
    main()
