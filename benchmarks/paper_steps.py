"""Per-step cost of the generators at their ``paper`` preset (issue 16's reproduction plan): FLOPs per training
step counted by ``torch.utils.flop_counter`` (forward + backward, every aten op), CPU seconds per step measured
here, and the paper run's length, scaled to a stated GPU by the FLOP ratio.

The model is the paper's (the preset's architecture at 80×80 on FIRST); the minibatch is ``--batch`` (default
16) instead of the paper's, and FLOPs and seconds are scaled linearly to the paper's batch (convolutions are
linear in the batch). CPU seconds are process CPU time (robust to a shared machine's load, which the output
notes) of ``--steps`` steps beyond a first one (which carries the set-up), with OMP_NUM_THREADS=1.

    RADIOBENCH_FIRST_DIR=../shared/data/first OMP_NUM_THREADS=1 python benchmarks/paper_steps.py edm dcgan pggan cvae
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from torch.utils.flop_counter import FlopCounterMode

from radiobench.presets import get_preset
from radiobench.registry import registry

GPU = "NVIDIA A100 (bf16 dense peak 312 TFLOP/s)"
GPU_EFFECTIVE = 312e12 * 0.30  # assumed 30 % utilisation for these small convolutional networks


def fit_cost(cls, train, steps: int, batch: int, count: bool = False) -> tuple[float, float]:
    length = {"steps": steps, **({"epochs": None} if "epochs" in cls.OPTIONS else {})}  # epochs would win
    gen = cls(preset="paper", device="cpu", batch_size=batch, mixed_precision="no", progress=False, **length)
    flops = FlopCounterMode(display=False)
    t0 = time.process_time()
    if count:
        try:
            with flops:
                gen.fit(train, seed=0)
        except RuntimeError as err:  # FlopCounterMode cannot follow autograd.grad(create_graph) (PG-GAN's penalty)
            print(f"{cls.name}: FLOPs not counted ({str(err).splitlines()[0][:80]})", flush=True)
            return time.process_time() - t0, float("nan")
    else:
        gen.fit(train, seed=0)
    return time.process_time() - t0, float(flops.get_total_flops())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("generators", nargs="+")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=2)
    a = p.parse_args()
    preset = get_preset("paper")
    ds = registry.dataset("first")(resolution=preset.resolution)
    train = ds.load(ds.train_split)
    rows = []
    for name in a.generators:
        cls = registry.generator(name)
        paper = cls(preset="paper", device="cpu")
        paper.train_info.setdefault("image_size", preset.resolution)  # PG-GAN's phases depend on it
        try:
            total = paper.total_steps(len(train))
        except TypeError:  # set from the data at fit time (EDM: Table 4's FIRST or LoTSS column)
            total = {"edm": 40_000}.get(name, 0)
        paper_batch = int(paper.run_opt.get("batch_size") or 128)
        one, flops = fit_cost(cls, train, 1, a.batch, count=True)
        base, _ = fit_cost(cls, train, 1, a.batch)
        more, _ = fit_cost(cls, train, 1 + a.steps, a.batch)
        scale = paper_batch / a.batch
        cpu_step = max(more - base, 1e-9) / a.steps * scale
        step_flops = flops * scale
        gpu_hours = total * step_flops / GPU_EFFECTIVE / 3600
        rows.append({"generator": name, "paper_steps": total, "paper_batch": paper_batch,
                     "tflop_per_step": step_flops / 1e12, "cpu_seconds_per_step": cpu_step,
                     "cpu_gflops": step_flops / cpu_step / 1e9, "flop_ratio": GPU_EFFECTIVE / (step_flops / cpu_step),
                     "gpu_seconds_per_step": step_flops / GPU_EFFECTIVE, "gpu_hours": gpu_hours})
        print(json.dumps(rows[-1]), flush=True)
    print(f"GPU: {GPU}, effective {GPU_EFFECTIVE / 1e12:.0f} TFLOP/s; load average {os.getloadavg()}; "
          f"batch {a.batch} scaled to the paper's; n_train {len(train)}; {np.__name__} threads "
          f"{os.environ.get('OMP_NUM_THREADS')}")


if __name__ == "__main__":
    main()
