"""Torch intra-op threads against EDM smoke sampling time (issue 19): seconds per image at each thread
count, interleaved (1, 2, 1, 2, ...) so that a changing machine load hits every count alike, with the
1-minute load average (``os.getloadavg``, as ``uptime`` prints it) around each measurement.

The model is the smoke preset's EDM trained as ``radiobench run --preset smoke`` trains it (on the
synthetic dataset's training split); sampling draws ``--n`` class-conditioned images in batches of 64
(the runner's default) with the preset's sampler (``num_steps``, guidance ω by the model).

    OMP_NUM_THREADS=1 python benchmarks/threads.py --threads 1,2 --n 32 --repeats 3
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from radiobench.conditioning import match_conditions
from radiobench.registry import registry
from radiobench_plugins.generators.edm import EDM


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2", help="intra-op thread counts to compare")
    ap.add_argument("--n", type=int, default=32, help="images drawn per measurement")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--preset", default="smoke")
    ap.add_argument("--options", default="", help="EDM options k=v,k=v (JSON values), e.g. num_steps=10")
    args = ap.parse_args(argv)
    import json

    options = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.options.split(",") if kv)}
    dataset = registry.dataset("synthetic")()
    train, reference = dataset.load(dataset.train_split), dataset.load(dataset.reference_split)
    torch.set_num_threads(1)
    gen = EDM(args.preset, device="cpu", **options)
    t0 = time.perf_counter()
    gen.fit(train, seed=0)
    print(f"# fit: {time.perf_counter() - t0:.1f} s at 1 thread; {gen.num_parameters()} parameters; "
          f"num_steps {gen.opt['num_steps']}, ω {gen.omega()}; {train.images.shape[-1]} px")
    idx = np.arange(args.n) % len(reference)
    conditions = match_conditions(reference.subset(idx), train, gen.supports, np.random.default_rng([0, 1]))
    counts = [int(t) for t in args.threads.split(",")]
    times: dict[int, list[float]] = {t: [] for t in counts}
    loads: dict[int, list[float]] = {t: [] for t in counts}
    for r in range(args.repeats):
        for t in counts:
            torch.set_num_threads(t)
            load0 = os.getloadavg()[0]
            t0 = time.perf_counter()
            gen.sample(conditions, seed=r, batch_size=64)
            times[t].append((time.perf_counter() - t0) / args.n)
            loads[t].append(0.5 * (load0 + os.getloadavg()[0]))
            print(f"repeat {r} threads {t}: {times[t][-1]:.3f} s/img (load {loads[t][-1]:.2f})", flush=True)
    print("\n| threads | s/img (median) | min–max | 1-min load |\n|---|---|---|---|")
    for t in counts:
        print(f"| {t} | {statistics.median(times[t]):.3f} | {min(times[t]):.3f}–{max(times[t]):.3f} | "
              f"{min(loads[t]):.1f}–{max(loads[t]):.1f} |")


if __name__ == "__main__":
    main()
