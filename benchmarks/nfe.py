"""Sample quality against network function evaluations (NFE): DDPM's full chain and DDIM schedules beside
EDM's Heun solver (issue 12; paper 000's claim that EDM needs far fewer evaluations).

For each trained checkpoint (a directory written by the generator's ``save``, e.g. a run's
``ddpm/seed-0/checkpoint``), draw one set matched to the reference split (same size and class counts) per
sampler setting, with the same seed, and print NFE per image, seconds per image (wall clock, one process) and
the fraction of pixels exactly 0 and the median pixel (FIRST: ~97 % zeros; a background haze shows in both),
and the learned metrics with their 95% intervals; the first row scores training images (a real set of the same
size) against the reference split. Settings (``--ddpm``, ``--edm``; ';'-separated, each a comma list of
sampling options):

    ddpm default: sampler=ddpm (the full 1000-step ancestral chain); sampler=ddim,num_steps=250|100|50|25
    edm default:  num_steps=25; num_steps=50 (Heun: 2N − 1 evaluations)

    python benchmarks/nfe.py --model ddpm=RUN/ddpm/seed-0/checkpoint --model edm=RUN/edm/seed-0/checkpoint \\
        --dataset first --metrics fid_byol,kid_byol,ramis
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from radiobench.cli import key_value_options
from radiobench.conditioning import match_conditions
from radiobench.interfaces import MetricContext
from radiobench.presets import get_preset
from radiobench.registry import registry

SETTINGS = {
    "ddpm": "sampler=ddpm;sampler=ddim,num_steps=250;sampler=ddim,num_steps=100;sampler=ddim,num_steps=50;"
            "sampler=ddim,num_steps=25",
    "ldm": "sampler=ddim,num_steps=250;sampler=ddim,num_steps=50",
    "edm": "num_steps=25;num_steps=50",
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="GENERATOR=CHECKPOINT_DIR (repeatable)")
    for name, default in SETTINGS.items():
        ap.add_argument(f"--{name}", default=default, help=f"{name} settings (default: {default})")
    ap.add_argument("--dataset", default="first")
    ap.add_argument("--resolution", type=int, default=40)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--preset", default="cpu", help="preset of the evaluator networks")
    ap.add_argument("--n", type=int, default=0, help="images per setting (0: the whole reference split)")
    ap.add_argument("--split", default=None,
                    help="the real split to score against (default the reference split; 'valid' to choose settings "
                         "without looking at the test images)")
    ap.add_argument("--metrics", default="fid_byol,kid_byol,ramis")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=100)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = [spec.partition("=")[::2] for spec in args.model]
    for name, path in models:  # bad input stops here, before any data is read
        if name not in SETTINGS or not (Path(path) / "config.json").exists():
            raise SystemExit(f"--model {name}={path}: need one of {sorted(SETTINGS)}=a checkpoint directory")
    settings = {name: [key_value_options(t.split(",")) for t in getattr(args, name).split(";")]
                for name, _ in models}  # 'sampler=ddim,num_steps=50' -> {'sampler': 'ddim', 'num_steps': 50}

    dataset = registry.dataset(args.dataset)(resolution=args.resolution, data_dir=args.data_dir)
    train = dataset.load(dataset.train_split)
    split = args.split or dataset.reference_split
    if split not in dataset.splits:
        raise SystemExit(f"--split {split!r}: {args.dataset} has {list(dataset.splits)}")
    real = dataset.load(split)
    if args.n:
        real = real.subset(np.random.default_rng(args.seed).permutation(len(real))[: args.n])
    metrics = [registry.metric(m)() for m in args.metrics.split(",") if m]
    context = MetricContext(dataset=args.dataset, dataset_fingerprint=dataset.fingerprint(), train=train,
                            preset=get_preset(args.preset), seed=args.seed)

    def row(label: str, images, nfe: object, secs: float | None) -> None:
        cells = []
        for m in metrics:
            r = m.compute(real, images, context)
            cells.append(f"{r.value:.4g} [{r.ci_low:.4g}, {r.ci_high:.4g}]")
        t = "" if secs is None else f"{secs:.3f}"
        x = images.images
        haze = f"{(x == 0).mean():.2f} / {np.median(x):.4f}"
        print(f"| {label} | {nfe} | {t} | {haze} | " + " | ".join(cells) + " |", flush=True)

    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
    print(f"{args.dataset} {args.resolution}px, {len(real)} reference images ({split}), seed "
          f"{args.seed}, {args.threads} thread(s), evaluators {args.preset}, load average {load}")
    print("| model, sampler | NFE / image | s / image | zero pixels / median | " + " | ".join(m.name for m in metrics)
          + " |")
    print("|---|---|---|---|" + "---|" * len(metrics))
    row("real training images", train.subset(np.random.default_rng(args.seed).choice(len(train), len(real),
                                                                                      replace=False)), "", None)
    for name, path in models:
        gen = registry.generator(name)(args.preset)
        gen.load(Path(path))
        cond = match_conditions(real, train, gen.supports, np.random.default_rng(args.seed))
        cost = gen.cost()
        print(f"<!-- {name}: {path}, {gen.num_parameters() / 1e6:.2f}M parameters, {cost.train_steps} training "
              f"steps ({cost.train_seconds / 60:.1f} min) -->", flush=True)
        for setting in settings[name]:
            gen.configure_sampling(**setting)
            t0 = time.perf_counter()
            images = gen.sample(cond, seed=args.seed, batch_size=args.batch_size)
            secs = (time.perf_counter() - t0) / len(real)
            label = f"{name} " + ", ".join(f"{k} {v}" for k, v in setting.items())
            row(label, images, gen.cost().nfe_per_sample, secs)


if __name__ == "__main__":
    main()
