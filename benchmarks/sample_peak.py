"""How much of a generator's distance to the real test images is its peak brightness?

    python benchmarks/sample_peak.py runs/first-cpu-vae-gan/cvae/seed-0 runs/first-cpu-edm/edm/seed-0 ...

Every cutout of the built-in surveys is divided by its own peak (FIRST, MiraBest), so real images peak at
exactly 1; a generator's samples need not. For each run row (a directory holding ``samples.npz``) this prints
the samples' mean peak, then FID-BYOL and KID-BYOL against the dataset's reference split, with the samples
as stored and divided by their own peak (what ``peak_normalise`` does). Samples already divided by their peak
give the same value twice. Evaluators load from the cache (or train) at the preset's settings.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from radiobench import MetricContext, RadioImages, get_preset
from radiobench.postprocess import divided_by_peak
from radiobench.registry import registry


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rows", nargs="+", type=Path, help="run-row directories holding samples.npz")
    ap.add_argument("--dataset", default="first")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    preset = get_preset(args.preset)
    dataset = registry.dataset(args.dataset)(resolution=preset.resolution, data_dir=args.data_dir)
    train, real = dataset.load(dataset.train_split), dataset.load(dataset.reference_split)
    context = MetricContext(dataset=args.dataset, dataset_fingerprint=dataset.fingerprint(), train=train,
                            preset=preset, seed=0)
    metrics = [registry.metric(name)() for name in ("fid_byol", "kid_byol")]
    print(f"{args.dataset} {args.preset}: {len(real)} reference images (peak 1 each)")
    print(f"{'row':<48} {'mean peak':>9}  {'FID as stored':>13} {'FID peak 1':>10}  {'KID as stored':>13} "
          f"{'KID peak 1':>10}")
    for row in args.rows:
        stored = RadioImages.load(row / "samples.npz")
        scaled = dataclasses.replace(stored, images=divided_by_peak(stored.images))
        values = {m.name: [m.compute(real, s, context).value for s in (stored, scaled)] for m in metrics}
        mean_peak = float(stored.images.max(axis=(1, 2, 3)).mean())
        fid, kid = values["fid_byol"], values["kid_byol"]
        print(f"{str(row):<48} {mean_peak:>9.3f}  {fid[0]:>13.1f} {fid[1]:>10.1f}  {kid[0]:>13.3f} {kid[1]:>10.3f}",
              flush=True)


if __name__ == "__main__":
    main()
