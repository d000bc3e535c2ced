"""PyBDSF images per second: the plain ``bdsf.process_image`` call, the tuned serial call (collector frozen,
ncores=1; ``radiobench.sourcefind.process_one``) and the process pool (``find_sources``), measured in one run
on real MiraBest cutouts (central 80x80, Jy/beam), then the plain and tuned calls again once torch is imported.
Also the Delta+ - peak-flux relation (paper 000 Fig. 17) on the same images as the metric sees them
(negatives clipped, peak-normalised, the auto noise floor of 1e-2 x peak added).

    python benchmarks/pybdsf_speed.py [--n 48] [--n-plain 4] [--workers 2]

Wall-clock and CPU seconds (this process and its pool workers) are both shown: on a shared machine the CPU
time per image is what one core costs; the pool's CPU time includes starting its workers (imports).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RADIOBENCH_SHARED_DATA", ROOT.parent / "shared" / "data"))


def load(n: int, side: int = 80) -> np.ndarray:
    from astropy.io import fits

    names = sorted((SHARED / "mirabest-fits").glob("*.fits"))
    picked = [names[i] for i in np.linspace(0, len(names) - 1, n).astype(int)]
    out = []
    for p in picked:
        x = np.nan_to_num(fits.getdata(p).astype(np.float32))
        y0, x0 = (x.shape[0] - side) // 2, (x.shape[1] - side) // 2
        out.append(x[y0:y0 + side, x0:x0 + side])
    return np.stack(out)


def timed(fn, n: int) -> tuple[float, float]:
    """(wall seconds per image, CPU seconds per image of this process and its finished children)."""
    import resource

    def cpu() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    t0, c0 = time.perf_counter(), cpu()
    fn()
    return (time.perf_counter() - t0) / n, (cpu() - c0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--n-plain", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    if not (SHARED / "mirabest-fits").is_dir():
        sys.exit(f"MiraBest FITS not found under {SHARED} (set RADIOBENCH_SHARED_DATA)")
    from radiobench.sourcefind import find_sources, fits_header, process_one
    from radiobench.types import SurveyInfo
    from radiobench_plugins.metrics.pybdsf import AUTO_NOISE, flux_relation, per_image, with_noise_floor

    images = load(args.n)
    header = fits_header(SurveyInfo("FIRST", 1.8, (5.4, 5.4, 0.0), 1.4e9), images.shape[1:])
    process_one(images[0], header)  # warm-up: imports, first-call set-up
    rows: dict[str, tuple[float, float]] = {}
    plain = images[:args.n_plain]
    rows["plain"] = timed(lambda: [process_one(x, header, tuned=False) for x in plain], len(plain))
    rows["tuned serial"] = timed(lambda: [process_one(x, header) for x in images], len(images))
    fits_ = []
    rows[f"pool ({args.workers} workers)"] = timed(
        lambda: fits_.extend(find_sources(images, header, workers=args.workers)), len(images))
    import torch  # noqa: F401 - what a plain call costs in a process that holds torch

    rows["plain, torch imported"] = timed(lambda: [process_one(x, header, tuned=False) for x in plain], len(plain))
    rows["tuned serial, torch imported"] = timed(lambda: [process_one(x, header) for x in images], len(images))
    print(f"PyBDSF on {len(images)} MiraBest 80x80 cutouts (plain call on {len(plain)}); load: "
          + open("/proc/loadavg").read().split(" ")[0] + f" on {os.cpu_count()} cores")
    print("| call | wall ms/image | images/s (wall) | CPU ms/image (all processes) |\n|---|---|---|---|")
    for name, (wall, cpu) in rows.items():
        print(f"| {name} | {1e3 * wall:.0f} | {1 / wall:.2f} | {1e3 * cpu:.0f} |")
    serial, pool = rows["tuned serial"][0], rows[f"pool ({args.workers} workers)"][0]
    print(f"tuned / plain speed-up (wall): {rows['plain'][0] / serial:.1f}x; with torch imported: "
          f"{rows['plain, torch imported'][0] / rows['tuned serial, torch imported'][0]:.1f}x; "
          f"pool / tuned serial: {serial / pool:.2f}x")
    peak = images.max(axis=(1, 2))
    # as the metric sees mirabest: negatives clipped, divided by the peak, the auto noise floor added
    scaled = with_noise_floor(np.clip(images, 0, None) / peak[:, None, None], AUTO_NOISE, seed=0)
    vals = per_image(scaled, find_sources(scaled, header, workers=args.workers))
    rel = flux_relation(vals["dplus"], peak.astype(np.float64), n_bins=4)
    sp = rel.get("spearman", {})
    print(f"Delta+ vs peak flux on the {rel['n']} peak-normalised cutouts PyBDSF fitted ({rel['n_left_out']} failed): "
          f"Spearman rho {sp.get('rho', float('nan')):.2f} [{sp.get('ci_low', float('nan')):.2f}, "
          f"{sp.get('ci_high', float('nan')):.2f}], p = {sp.get('p', float('nan')):.1g}")
    for b in rel.get("bins", []):
        print(f"  log10 S_peak in [{b['lo']:.2f}, {b['hi']:.2f}] (n={b['n']}): median Delta+ {b['median']:.1f} "
              f"[{b['ci_low']:.1f}, {b['ci_high']:.1f}]")


if __name__ == "__main__":
    main()
