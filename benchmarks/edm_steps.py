"""EDM sampling sweep: Heun steps N and guidance strength ω against time per image and sample quality.

For a trained EDM checkpoint (a directory written by ``EDM.save``), draw a set matched to the real
reference split (same size and class counts; peak fluxes drawn as paper 000 does) at every N of
``--steps`` (ω fixed at the model's default) and every ω of ``--omegas`` (N = 25), and print
seconds per image, function evaluations per image, and Wasserstein-1 distances of the pixel,
image-mean and image-std distributions with 95% bootstrap intervals (radiobench.stats). The first
row is the real-vs-real floor (training images against the reference split). ``--metrics`` adds any
registered metric by name (learned metrics train or load their cached evaluator networks).

    python benchmarks/edm_steps.py --model runs/edm_first --dataset first --resolution 40
    python benchmarks/edm_steps.py --model /tmp/m --fit-minutes 5     # train a cpu-preset model first
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from radiobench.conditioning import match_conditions
from radiobench.interfaces import MetricContext
from radiobench.presets import get_preset
from radiobench.registry import registry
from radiobench.stats import ClusterDistance
from radiobench.types import RadioImages
from radiobench_plugins.generators.edm import EDM


def w1_metrics(real: RadioImages, gen: RadioImages, n_boot: int, rng: np.random.Generator) -> dict[str, str]:
    """Pixel, image-mean and image-std W1 with bootstrap 95% intervals, formatted."""
    out = {}
    per_image = (
        ("pixel", lambda x: x.reshape(len(x), -1), 2.0**-12),
        ("mean", lambda x: x.mean((1, 2, 3))[:, None], None),
        ("std", lambda x: x.std((1, 2, 3))[:, None], None),
    )
    for name, f, q in per_image:
        iv = ClusterDistance(f(real.images), f(gen.images), quantum=q).compute(n_boot, rng)["w1"]
        out[f"{name}_w1"] = f"{iv.value:.4f} [{iv.low:.4f}, {iv.high:.4f}]"
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="EDM checkpoint directory (EDM.save)")
    ap.add_argument("--dataset", default="first")
    ap.add_argument("--resolution", type=int, default=40)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--split", default=None, help="reference split (default: the dataset's reference split)")
    ap.add_argument("--n", type=int, default=0, help="images per setting (0: the whole reference split)")
    ap.add_argument("--steps", default="5,10,25,50", help="Heun steps N to sweep (ω at the model default)")
    ap.add_argument("--omegas", default="0,0.75,2", help="guidance strengths to sweep at N = 25")
    ap.add_argument("--metrics", default="", help="comma-separated registered metric names to add")
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--sample-precision", choices=("fp32", "bf16"), default="fp32",
                    help="autocast of the network while sampling (the Heun solver runs in float64)")
    ap.add_argument("--zero-below", default=None,
                    help="survey threshold on samples: a level, or 'auto' (default: the model's own setting)")
    ap.add_argument("--fit-minutes", type=float, default=None,
                    help="if --model does not exist, train a cpu-preset EDM for this long and save it there")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    dataset = registry.dataset(args.dataset)(resolution=args.resolution, data_dir=args.data_dir)
    train = dataset.load(dataset.train_split)
    real = dataset.load(args.split or dataset.reference_split)
    if args.n:
        real = real.subset(np.random.default_rng(args.seed).permutation(len(real))[: args.n])

    gen = EDM("cpu")
    if not (args.model / "config.json").exists():
        if args.fit_minutes is None:
            raise SystemExit(f"{args.model} holds no EDM checkpoint; pass --fit-minutes to train one")
        gen = EDM("cpu", max_minutes=args.fit_minutes)
        gen.fit(train, seed=args.seed, workdir=args.model / "work")
        gen.save(args.model)
    gen.load(args.model)
    gen.configure_sampling(sample_precision=args.sample_precision)
    if args.zero_below is not None:
        gen.configure_sampling(zero_below=args.zero_below if args.zero_below == "auto" else float(args.zero_below))
    cond = match_conditions(real, train, gen.supports, np.random.default_rng(args.seed))
    print(f"model {args.model}: {gen.num_parameters() / 1e6:.2f}M parameters, trained {gen.cost().train_steps} steps "
          f"({gen.cost().train_seconds / 60:.1f} min); {args.dataset} {args.resolution}px, {len(real)} reference "
          f"images; default omega {gen.omega()}; threads {args.threads}; network {args.sample_precision}; "
          f"pixels below {gen.zero_level():g} set to 0")

    metrics = [registry.metric(m)() for m in args.metrics.split(",") if m]
    context = MetricContext(dataset=args.dataset, dataset_fingerprint=dataset.fingerprint() if metrics else "",
                            train=train, preset=get_preset("cpu"), seed=args.seed)

    def row(label: str, images: RadioImages, secs: float | None, nfe: int | None) -> None:
        vals = w1_metrics(real, images, args.n_boot, np.random.default_rng(args.seed))
        for m in metrics:
            r = m.compute(real, images, context)
            vals[m.name] = f"{r.value:.4g} [{r.ci_low:.4g}, {r.ci_high:.4g}]"
        t = "-" if secs is None else f"{secs:.3f}"
        print(f"{label:<18} {str(nfe or '-'):>4} {t:>8}  " + "  ".join(f"{k}={v}" for k, v in vals.items()), flush=True)

    print(f"{'setting':<18} {'nfe':>4} {'s/img':>8}  distances to the reference split (95% CI)")
    floor = train.subset(np.random.default_rng(args.seed).choice(len(train), len(real), replace=False))
    row("real train", floor, None, None)
    default_omega = gen.omega()
    settings = [(int(n), default_omega) for n in args.steps.split(",") if n]
    settings += [(25, float(w)) for w in args.omegas.split(",") if w and (25, float(w)) not in settings]
    for n, w in settings:
        gen.configure_sampling(num_steps=n, omega=w)
        t0 = time.perf_counter()
        images = gen.sample(cond, seed=args.seed, batch_size=args.batch_size)
        secs = (time.perf_counter() - t0) / len(real)
        row(f"N={n} omega={w:g}", images, secs, gen.cost().nfe_per_sample)


if __name__ == "__main__":
    main()
