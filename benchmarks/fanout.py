"""Serial ``radiobench run`` against ``--executor local --jobs 2`` (issue 16): wall time of the same first run
(two generators, fresh run directories, evaluators already cached), the ratio, and that the metric values agree.

Both are timed as the user runs them (``radiobench`` subprocesses, imports included), one after the other,
with the load average before and after each (the machine is shared: the ratio is only meaningful at a
steady load). The issue's case is the cpu preset with two generators (~1 h of both cores)::

    python benchmarks/fanout.py --preset cpu --generators dcgan,ddpm --dataset first --metrics mean_w1,pixel_w1

At smoke size a generator's training is seconds and the per-process start (importing torch, loading the
data) dominates; ``--steps N`` lengthens the fits (``G.steps=N``) so the fan-out has work to share.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(args: list[str], out: Path) -> tuple[float, tuple[float, float]]:
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "radiobench.cli", *args, "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, (load0, os.getloadavg()[0])


def values(out: Path) -> dict[str, float]:
    return {str(p.relative_to(out)): json.loads(p.read_text())["result"]["value"]
            for p in sorted(out.glob("*/seed-*/metrics/*.json"))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--generators", default="dcgan,cvae")
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--preset", default="smoke")
    p.add_argument("--metrics", default="mean_w1,pixel_w1,std_w1")
    p.add_argument("--seeds", default="0")
    p.add_argument("--steps", type=int, help="training steps of every generator (default: the preset's)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--keep", type=Path, help="write the run directories here (warm, serial, fanout) and keep them")
    a = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["RADIOBENCH_PROGRESS"] = "0"
    common = ["--dataset", a.dataset, "--preset", a.preset, "--metrics", a.metrics, "--seeds", a.seeds, "-q"]
    args = ["run", "--generators", a.generators, *common]
    if a.steps:
        args += [x for g in a.generators.split(",") for x in ("--generator-option", f"{g}.steps={a.steps}")]
    with tempfile.TemporaryDirectory() as tmp:
        root = a.keep or Path(tmp)
        warm, _ = timed(["run", "--generators", "pixel_floor", *common], root / "warm")  # data, evaluators
        serial, load_s = timed(args, root / "serial")
        fanned, load_f = timed(args + ["--executor", "local", "--jobs", str(a.jobs)], root / "fanout")
        same = values(root / "serial") == values(root / "fanout")
    print(f"{a.preset} preset, {a.generators}, seeds {a.seeds}, steps {a.steps or 'preset'}, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, {os.cpu_count()} CPUs (warm-up run {warm:.0f} s)")
    print(f"serial            {serial:7.1f} s   load {load_s[0]:.1f} -> {load_s[1]:.1f}")
    print(f"local --jobs {a.jobs}   {fanned:7.1f} s   load {load_f[0]:.1f} -> {load_f[1]:.1f}")
    print(f"speed-up {serial / fanned:.2f}x; metric values identical: {same}")


if __name__ == "__main__":
    main()
