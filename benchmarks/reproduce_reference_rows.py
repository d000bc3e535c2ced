"""Do this machine's evaluator networks reproduce a published table? Re-run its reference rows (real, replay,
pixel floor: no generator to train) with the evaluators in the cache, trained afresh if missing, and compare
every metric value with the published record.

Bit-identical values mean the cached evaluators are the ones the published learned-metric cells were computed
with (same training fingerprint, deterministic training): new rows can then join that table. The weights
sha256 of each evaluator are printed for the record::

    RADIOBENCH_FIRST_DIR=../shared/data/first python benchmarks/reproduce_reference_rows.py \\
        leaderboard/runs/first-cpu --dataset first --preset cpu --seeds 0,1,2 --out runs/first-cpu-repro
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path


def records(run: Path, rows: list[str]) -> dict[str, dict]:
    return {str(p.relative_to(run)): json.loads(p.read_text())
            for row in rows for p in sorted(run.glob(f"{row}/seed-*/metrics/*.json"))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("published", type=Path, help="a published run directory holding the reference rows")
    p.add_argument("--dataset", default="first")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    rows = ["reference", "replay", "pixel_floor"]
    published = {k: r for k, r in records(a.published, rows).items() if r.get("status") == "ok"}
    metrics = sorted({k.rsplit("/", 1)[1].removesuffix(".json") for k in published})
    subprocess.run([sys.executable, "-m", "radiobench.cli", "run", "--generators", "replay,pixel_floor",
                    "--dataset", a.dataset, "--preset", a.preset, "--seeds", a.seeds, "--metrics", ",".join(metrics),
                    "--out", str(a.out), "-q"], check=True, env={**os.environ, "RADIOBENCH_PROGRESS": "0"})
    again = records(a.out, rows)
    same = differ = 0
    weights: dict[str, str] = {}
    for key, rec in published.items():
        new = again.get(key)
        if new is None:
            continue
        weights.update({k: v for k, v in new["result"]["fingerprints"].items() if k.endswith("_weights")})
        v0, v1 = rec["result"]["value"], new["result"]["value"]
        ok = v0 == v1
        same, differ = same + ok, differ + (not ok)
        if not ok:
            print(f"DIFFERS {key}: published {v0!r}, now {v1!r}")
    print(f"{same} of {same + differ} published values reproduced bit-identically "
          f"({len(published) - same - differ} not re-run)")
    for k, v in sorted(weights.items()):
        print(f"  {k}: {v}")


if __name__ == "__main__":
    main()
