"""ddpm_recon sampling sweep: DDIM steps (and draws per field) against time per field and reconstruction scores.

For a trained ``ddpm_recon`` checkpoint (a run's ``ddpm_recon/seed-S/checkpoint``), reconstruct the first ``--n``
fields of the dataset's test split at every DDIM step count of ``--steps`` with ``--n-samples`` draws per field
(aggregated by ``--aggregate``), and print seconds per field, network evaluations per field, the per-field
Pearson correlation with the true sky, and the ``recon_*`` metrics (95% bootstrap intervals over fields).

    python benchmarks/recon_steps.py --model runs/alma_sim-cpu/ddpm_recon/seed-0/checkpoint \\
        --data-dir ../shared/data/antenna-configs --n 24 --steps 10,25,50,100
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from radiobench.conditioning import match_conditions
from radiobench.interfaces import MetricContext
from radiobench.presets import get_preset
from radiobench.registry import registry
from radiobench_plugins.generators.ddpm_recon import DDPMReconstruction

METRICS = ("recon_f1", "recon_purity", "recon_completeness", "recon_ssim", "recon_psnr")


def correlation(true: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """Mean and standard error over fields of the per-field Pearson r between true and reconstructed sky."""
    t, p = true.reshape(len(true), -1), pred.reshape(len(pred), -1)
    ok = (t.std(1) > 0) & (p.std(1) > 0)  # empty fields have no correlation
    r = np.array([np.corrcoef(a, b)[0, 1] for a, b in zip(t[ok], p[ok])])
    return float(r.mean()), float(r.std(ddof=1) / np.sqrt(len(r)))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="ddpm_recon checkpoint directory")
    ap.add_argument("--dataset", default="alma_sim")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--n", type=int, default=24, help="test fields (the first n)")
    ap.add_argument("--steps", default="10,25,50,100", help="DDIM steps to sweep")
    ap.add_argument("--n-samples", type=int, default=1, help="draws per field")
    ap.add_argument("--aggregate", default="median", choices=("mean", "median", "detect"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    dataset = registry.dataset(args.dataset)(data_dir=args.data_dir)
    train = dataset.load(dataset.train_split)
    real = dataset.load(dataset.reference_split).subset(np.arange(args.n))
    gen = DDPMReconstruction("cpu", n_samples=args.n_samples, aggregate=args.aggregate)
    gen.load(args.model)
    cond = match_conditions(real, train, gen.supports, np.random.default_rng(args.seed))
    context = MetricContext(dataset=args.dataset, dataset_fingerprint="", train=train, preset=get_preset("cpu"),
                            seed=args.seed)
    metrics = [registry.metric(m)() for m in METRICS]
    print(f"model {args.model}: {gen.num_parameters() / 1e6:.2f}M parameters, {gen.cost().train_steps} steps, "
          f"prediction {gen.opt['prediction']}; {args.n} fields, {args.n_samples} draw(s) per field "
          f"({args.aggregate}); threads {args.threads}; load {os.getloadavg()[0]:.1f}")
    print(f"{'DDIM':>5} {'nfe':>5} {'s/field':>8} {'corr':>13}  metrics (95% CI)")
    for n in (int(s) for s in args.steps.split(",") if s):
        gen.configure_sampling(sampler="ddim", num_steps=n)
        t0 = time.perf_counter()
        images = gen.sample(cond, seed=args.seed, batch_size=args.n)
        secs = (time.perf_counter() - t0) / args.n
        r, se = correlation(real.images * real.extra["scale"][:, None, None, None],
                            images.images * real.extra["scale"][:, None, None, None])
        cells = []
        for m in metrics:
            res = m.compute(real, images, context)
            cells.append(f"{m.name.removeprefix('recon_')}={res.value:.3g} [{res.ci_low:.3g}, {res.ci_high:.3g}]")
        nfe = gen.cost().nfe_per_sample  # all draws of a field
        print(f"{n:>5} {nfe:>5} {secs:>8.3f} {r:>6.3f} ± {se:.3f}  " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
