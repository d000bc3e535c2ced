"""The referee's own randomness: the reference rows scored by evaluators re-trained with other seeds (issue 18).

    RADIOBENCH_CACHE=/tmp/rb-cache python benchmarks/referee_spread.py --data-dir ../shared/data/first --seeds 0,1,2

For each evaluator seed, trains (or loads from the evaluator cache) the preset's BYOL encoder, radio CNN and
classifier from the same configuration with that seed (`radiobench evaluators train --seed S` trains the same
entries), then scores the three reference rows as `radiobench run` does at generator seed 0, N = the test split's
200: real (the runner's reference set: the validation split against the test split), replay and pixel_floor (drawn
with conditions matched to the test split), with the metric plugins fid_byol, kid_byol, ramis and
classifier_accuracy. Prints per seed each value with its 95% interval and each network's weights sha256, then per
row and metric the spread over evaluator seeds (sd, range) beside the mean within-seed interval half-width.
Threads: --threads (default 1: the CPU is shared).
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from radiobench import MetricContext, RadioImages, get_preset
from radiobench.conditioning import match_conditions
from radiobench.evaluators.cache import _memo_key, current_fingerprint, get_evaluator
from radiobench.interfaces import Preset
from radiobench.registry import registry
from radiobench.runner import reference_set
from radiobench.store import write_json

# metric -> the evaluator kind behind it
METRICS = {"fid_byol": "byol", "kid_byol": "byol", "ramis": "radio_cnn", "classifier_accuracy": "classifier"}
ROWS = ("real", "replay", "pixel_floor")
LOWER_IS_BETTER = {"fid_byol", "kid_byol"}


@dataclass
class Bench:
    """A dataset at a preset: its train and test (reference) splits and the runner's real reference set."""

    name: str
    fingerprint: str
    preset: Preset
    train: RadioImages
    test: RadioImages
    real: RadioImages
    device: str


def bench(dataset: str, data_dir: str | None, preset: str, device: str, n_bootstrap: int | None = None) -> Bench:
    p = get_preset(preset)
    if n_bootstrap is not None:
        p = dataclasses.replace(p, n_bootstrap=n_bootstrap)
    ds = registry.dataset(dataset)(resolution=p.resolution, data_dir=data_dir)
    train, test = ds.load(ds.train_split), ds.load(ds.reference_split)
    real, _ = reference_set(ds, train, test)
    return Bench(dataset, ds.fingerprint(), p, train, test, real, device)


def pinned_context(b: Bench, evaluator_seed: int) -> MetricContext:
    """A metric context whose metrics use the evaluators trained with ``evaluator_seed`` (trained now if not
    cached). The library's metrics always ask for the default seed 0; the context's memo is filled so that this
    request returns the other seed's network."""
    ctx = MetricContext(b.name, b.fingerprint, b.train, b.preset, seed=0, device=b.device)
    for kind in dict.fromkeys(METRICS.values()):
        ctx.memo[_memo_key(kind, current_fingerprint(kind, ctx))] = get_evaluator(kind, ctx, seed=evaluator_seed)
    return ctx


def draw(b: Bench, generator: str, n: int | None = None, seed: int = 0) -> RadioImages:
    """A reference generator's set drawn as the runner draws it (conditions matched to the test split, generator
    seed ``seed``); ``n`` (a multiple of the test split's size) repeats the test split's conditions n / 200 times."""
    k = (n or len(b.test)) // len(b.test)
    reference = b.test.subset(np.tile(np.arange(len(b.test)), k))
    gen = registry.generator(generator)(preset=b.preset.name, device=b.device)
    gen.fit(b.train, seed=seed)
    conditions = match_conditions(reference, b.train, gen.supports, np.random.default_rng([seed, 1]))
    return gen.sample(conditions, seed=seed, progress=False)


def reference_rows(b: Bench, n: int | None = None) -> dict[str, RadioImages]:
    return {"real": b.real, "replay": draw(b, "replay", n), "pixel_floor": draw(b, "pixel_floor", n)}


def separates(metric: str, real: tuple[float, float], floor: tuple[float, float]) -> bool:
    """Whether the real row's 95% interval lies entirely on the better side of the floor's."""
    return real[1] < floor[0] if metric in LOWER_IS_BETTER else real[0] > floor[1]


def score_seed(b: Bench, seed: int, rows: dict[str, RadioImages]) -> dict[str, Any]:
    t0 = time.perf_counter()
    ctx = pinned_context(b, seed)
    evaluators = {kind: ctx.memo[_memo_key(kind, current_fingerprint(kind, ctx))] for kind in set(METRICS.values())}
    out: dict[str, Any] = {
        "seed": seed,
        "weights_sha256": {k: ev.weights_sha256 for k, ev in sorted(evaluators.items())},
        "fingerprint": {k: ev.fingerprint for k, ev in sorted(evaluators.items())},
        "train_seconds": {k: ev.metadata["training"].get("train_seconds") for k, ev in sorted(evaluators.items())},
        "rows": {},
    }
    for row, images in rows.items():
        out["rows"][row] = {}
        for name in METRICS:
            r = registry.metric(name)().compute(b.test, images, ctx)
            cell = {"value": r.value, "ci": [r.ci_low, r.ci_high]}
            if name == "classifier_accuracy":
                cell["real_test_accuracy"] = r.details["real_reference"]["accuracy"]
            out["rows"][row][name] = cell
    out["seconds"] = time.perf_counter() - t0
    return out


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per row and metric (and for the gaps real − floor and real − replay, signed so that positive means real
    better): mean, sd and range over evaluator seeds, mean within-seed interval half-width, and the
    half-width of a 95% interval that adds the evaluator's variance to the images' (sqrt(hw² + (1.96 sd)²))."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for row in ROWS:
        summary[row] = {}
        for name in METRICS:
            cells = [r["rows"][row][name] for r in runs]
            v = np.array([c["value"] for c in cells])
            hw = np.array([(c["ci"][1] - c["ci"][0]) / 2 for c in cells])
            summary[row][name] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else float("nan"),
                                  "range": float(v.max() - v.min()), "half_width": float(hw.mean())}
            summary[row][name]["combined_half_width"] = float(np.hypot(hw.mean(), 1.96 * summary[row][name]["sd"]))
    for other in ("pixel_floor", "replay"):
        summary[f"gap real-{other}"] = {}
        for name in METRICS:
            sign = -1 if name in LOWER_IS_BETTER else 1
            g = np.array([sign * (r["rows"]["real"][name]["value"] - r["rows"][other][name]["value"]) for r in runs])
            summary[f"gap real-{other}"][name] = {"mean": float(g.mean()), "range": float(g.max() - g.min()),
                                                  "sd": float(g.std(ddof=1)) if len(g) > 1 else float("nan")}
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="first")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--seeds", default="0,1,2", help="evaluator seeds")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    b = bench(args.dataset, args.data_dir, args.preset, args.device)
    rows = reference_rows(b)
    runs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        run = score_seed(b, seed, rows)
        runs.append(run)
        trained = ", ".join(f"{k} {sha[:16]} ({run['train_seconds'][k] or 0:.0f} s training)"
                            for k, sha in run["weights_sha256"].items())
        print(f"evaluator seed {seed} ({run['seconds']:.0f} s): {trained}")
        for row in ROWS:
            cells = run["rows"][row]
            print(f"  {row:12s} " + "  ".join(f"{m} {c['value']:.4g} [{c['ci'][0]:.4g}, {c['ci'][1]:.4g}]"
                                              for m, c in cells.items()))
        print(f"  classifier accuracy on the real test images: "
              f"{run['rows']['real']['classifier_accuracy']['real_test_accuracy']:.3f}", flush=True)
    summary = summarise(runs)
    print(f"\nover {len(runs)} evaluator seeds: mean, sd, range | mean within-seed 95% half-width, with the evaluator's"
          " variance")
    for row in ROWS:
        for name, s in summary[row].items():
            print(f"  {row:12s} {name:20s} {s['mean']:9.4g}  sd {s['sd']:8.3g}  range {s['range']:8.3g}"
                  f"  | half-width {s['half_width']:8.3g}, {s['combined_half_width']:8.3g}")
    for key in ("gap real-pixel_floor", "gap real-replay"):
        print(f"  {key} (positive: real better): " + "  ".join(
            f"{m} {g['mean']:.3g} sd {g['sd']:.3g}" for m, g in summary[key].items()))
    for name in METRICS:
        sep = [separates(name, tuple(r["rows"]["real"][name]["ci"]), tuple(r["rows"]["pixel_floor"][name]["ci"]))
               for r in runs]
        print(f"  {name}: real's interval separated from the floor's at {sum(sep)} of {len(sep)} seeds")
    if args.json:
        write_json(args.json, {"dataset": args.dataset, "preset": args.preset, "n": len(b.test), "runs": runs,
                               "summary": summary})


if __name__ == "__main__":
    main()
