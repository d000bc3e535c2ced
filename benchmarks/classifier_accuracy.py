"""Paper-000 classifier (Sect. 5.3, Table 6) on FIRST: real test accuracy over seeds vs the paper's 81.5%.

    python benchmarks/classifier_accuracy.py --resolution 80 --seeds 0,1,2              # cpu config (30 epochs)
    python benchmarks/classifier_accuracy.py --resolution 80 --seeds 0,1,2 --config paper   # Table 6: 200 epochs (GPU)
    python benchmarks/classifier_accuracy.py --resolution 40 --seeds 0 --epochs 10        # shorter

Each seed trains one classifier through the evaluator cache (RADIOBENCH_CACHE; a rerun reuses it) on the
1758 training images and reports accuracy on the 200 test and 200 validation images (bootstrap 95% CI),
then the mean over seeds with a Student-t interval. The same classifier also labels a pixel-statistics floor
set (each pixel copied from a random training image of the test image's class, as the `pixel_floor`
generator draws): a referee that sees structure rates it far below the real images. Needs the FIRST data
(RADIOBENCH_FIRST_DIR or `radiobench data fetch first`). Threads: --threads (default 1: the CPU is shared).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from radiobench import Conditions, MetricContext, get_preset
from radiobench.evaluators import get_evaluator
from radiobench.evaluators.cache import KINDS
from radiobench.evaluators.features import bootstrap_mean, predict_proba
from radiobench.stats import seed_interval
from radiobench_plugins.datasets.first import FirstDataset
from radiobench_plugins.generators.pixel_floor import PixelFloor
from radiobench_plugins.metrics.classifier_accuracy import confusion_matrix

PAPER_TEST_ACCURACY = 0.815


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--resolution", type=int, default=80)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--config", default="cpu", choices=["smoke", "cpu", "paper"],
                    help="classifier config (preset) to start from")
    ap.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    ap.add_argument("--augment", default=None, choices=["paper", "geometric"], help="override the augmentations")
    ap.add_argument("--stem", default=None, choices=["imagenet", "small"], help="override the ResNet18 stem")
    ap.add_argument("--width", type=float, default=None, help="override the ResNet18 width multiplier")
    ap.add_argument("--lr-patience", type=int, default=None, help="override the plateau patience (epochs)")
    ap.add_argument("--lr-schedule", default=None, choices=["plateau", "cosine"], help="override the schedule")
    ap.add_argument("--label-smoothing", type=float, default=None, help="override the label smoothing")
    ap.add_argument("--weight-decay", type=float, default=None, help="override the weight decay (AdamW)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    ds = FirstDataset(resolution=args.resolution)
    train, valid, test = ds.load("train"), ds.load("valid"), ds.load("test")
    config = KINDS["classifier"].config(args.config)
    if args.epochs is not None:
        config["epochs"] = args.epochs
    for key in ("augment", "stem", "width", "lr_patience", "lr_schedule", "label_smoothing", "weight_decay"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    floor_gen = PixelFloor("cpu")
    floor_gen.fit(train, seed=0)
    floor = floor_gen.sample(Conditions(len(test), labels=test.labels, class_names=test.class_names), seed=0).images
    ctx = MetricContext("first", ds.fingerprint(), train, get_preset(args.config), device=args.device)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        t0 = time.perf_counter()
        ev = get_evaluator("classifier", ctx, seed=seed, config=config)
        row = {"seed": seed, "fingerprint": ev.fingerprint, "train_seconds": ev.metadata["training"]["train_seconds"]}
        for name, split in (("test", test), ("valid", valid)):
            pred = predict_proba(ev.module, split.images, device=args.device).argmax(1)
            hit = (pred == split.labels).astype(float)
            lo, hi = bootstrap_mean(hit, 1000, np.random.default_rng(seed))
            row[name] = {"accuracy": float(hit.mean()), "ci": [lo, hi],
                         "confusion": confusion_matrix(split.labels, pred, len(split.class_names)).tolist()}
        pred = predict_proba(ev.module, floor, device=args.device).argmax(1)
        row["pixel_floor"] = {"accuracy": float((pred == test.labels).mean()),
                              "confusion": confusion_matrix(test.labels, pred, len(test.class_names)).tolist()}
        tta, ev.module.tta = ev.module.tta, not ev.module.tta  # the other reading: with(out) the 8 dihedral views
        for name, x, y in (("test", test.images, test.labels), ("valid", valid.images, valid.labels),
                           ("pixel_floor", floor, test.labels)):
            row[name]["accuracy_other_tta"] = float((predict_proba(ev.module, x, device=args.device).argmax(1)
                                                     == y).mean())
        ev.module.tta = tta
        row["tta"] = tta
        rows.append(row)
        test_ci = row["test"]["ci"]
        print(f"seed {seed}: test {row['test']['accuracy']:.3f} [{test_ci[0]:.3f}, {test_ci[1]:.3f}]"
              f"  valid {row['valid']['accuracy']:.3f}  pixel floor {row['pixel_floor']['accuracy']:.3f}"
              f"  train {row['train_seconds']:.0f} s  {'without' if tta else 'with'} test-time augmentation: test "
              f"{row['test']['accuracy_other_tta']:.3f} valid {row['valid']['accuracy_other_tta']:.3f} pixel floor "
              f"{row['pixel_floor']['accuracy_other_tta']:.3f}"
              f" (wall {time.perf_counter() - t0:.0f} s)  confusion(test, rows=true {'/'.join(test.class_names)}) "
              f"{row['test']['confusion']}", flush=True)
    for name in ("test", "valid", "pixel_floor"):
        m, lo, hi = seed_interval(np.array([r[name]["accuracy"] for r in rows]))
        sd = float(np.std([r[name]["accuracy"] for r in rows], ddof=1)) if len(rows) > 1 else float("nan")
        print(f"{name}: mean {m:.3f} over {len(rows)} seeds, sd {sd:.3f}, 95% t-interval [{lo:.3f}, {hi:.3f}]")
        m, lo, hi = seed_interval(np.array([r[name]["accuracy_other_tta"] for r in rows]))
        print(f"  {'without' if rows[0]['tta'] else 'with'} test-time augmentation: mean {m:.3f} [{lo:.3f}, {hi:.3f}]")
    print(f"paper 000: {PAPER_TEST_ACCURACY:.3f} test accuracy (80x80, 200 epochs, one run)")
    print(f"config: resolution {args.resolution}, {json.dumps(config)}")
    if args.json:
        from radiobench.store import write_json

        write_json(args.json, {"resolution": args.resolution, "config": config, "runs": rows,
                               "paper_test_accuracy": PAPER_TEST_ACCURACY})


if __name__ == "__main__":
    main()
