"""Training step time of torch generators in float32 against bf16 autocast at one preset, on this CPU.

On CPUs without bf16 instructions torch emulates it (radiobench warns: ``training.warn_if_emulated_bf16``)::

    RADIOBENCH_FIRST_DIR=../shared/data/first python benchmarks/precision_speed.py --generators cvae,edm
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from radiobench.registry import registry
from radiobench.training import cpu_has_bf16


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--generators", default="cvae,edm")
    p.add_argument("--dataset", default="first")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--steps", default="20,3", help="steps timed in float32 and in bf16 (setup included)")
    a = p.parse_args()
    os.environ.setdefault("RADIOBENCH_PROGRESS", "0")
    torch.set_num_threads(1)
    ds = registry.dataset(a.dataset)(resolution=40)
    train = ds.load(ds.train_split)
    steps = dict(zip(("no", "bf16"), map(int, a.steps.split(","))))
    print(f"cpu_has_bf16: {cpu_has_bf16()}; load {os.getloadavg()[0]:.1f}; one thread")
    for name in a.generators.split(","):
        per_step = {}
        for mp, n in steps.items():
            gen = registry.generator(name)(preset=a.preset, device="cpu", steps=n, mixed_precision=mp, progress=False)
            t0 = time.perf_counter()
            gen.fit(train, seed=0)
            per_step[mp] = (time.perf_counter() - t0) / n
        print(f"{name}: float32 {per_step['no']:.2f} s/step, bf16 {per_step['bf16']:.2f} s/step, "
              f"ratio {per_step['bf16'] / per_step['no']:.1f}x")


if __name__ == "__main__":
    main()
