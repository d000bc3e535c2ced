"""Does morphology survive 2x binning? A small CNN trained on FIRST train at 40x40 and at 80x80 for the
same wall-clock budget; test accuracy of each (the checkpoint with the best valid accuracy, and the last).

    python benchmarks/binning_morphology.py --minutes 2 [--data-dir ../shared/data/first] [--threads 1]

Same network for both sizes (global average pooling before the head), flips and 90-degree rotations as
augmentation (paper 000 Sect. 5.3), class-weighted cross entropy (its balancing strategy), Adam 1e-3,
batch 32. Valid accuracy is checked after every epoch; the test split is touched once per resolution.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from radiobench_plugins.datasets.first import FirstDataset


def small_cnn(n_classes: int = 4) -> nn.Module:
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    return nn.Sequential(
        *block(1, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2), *block(32, 64), nn.MaxPool2d(2),
        *block(64, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(64, n_classes),
    )


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random flips and rotations by multiples of 90 degrees (the dihedral group), per batch."""
    k = int(torch.randint(4, (1,), generator=gen))
    x = torch.rot90(x, k, dims=(2, 3))
    if torch.rand(1, generator=gen) < 0.5:
        x = torch.flip(x, dims=(3,))
    return x


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, np.ndarray]:
    model.eval()
    pred = torch.cat([model(x[i : i + 256]).argmax(1) for i in range(0, len(x), 256)])
    model.train()
    conf = np.zeros((4, 4), dtype=int)
    np.add.at(conf, (y.numpy(), pred.numpy()), 1)
    return float((pred == y).float().mean()), conf


def run(resolution: int, seconds: float, data_dir: Path | None, seed: int = 0) -> dict:
    ds = FirstDataset(resolution=resolution, data_dir=data_dir)
    tr, va, te = (ds.load(s) for s in ("train", "valid", "test"))
    to_t = lambda d: (torch.from_numpy(d.images), torch.from_numpy(d.labels))  # noqa: E731
    (xtr, ytr), (xva, yva), (xte, yte) = to_t(tr), to_t(va), to_t(te)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = small_cnn()
    counts = torch.bincount(ytr, minlength=4).float()
    loss_fn = nn.CrossEntropyLoss(weight=counts.sum() / (4 * counts))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    best = (-1.0, None, 0)
    steps = epochs = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        perm = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(perm) - 31, 32):
            idx = perm[i : i + 32]
            loss = loss_fn(model(augment(xtr[idx], gen)), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
            if time.perf_counter() - t0 >= seconds:
                break
        epochs += 1
        acc_va, _ = accuracy(model, xva, yva)
        if acc_va > best[0]:
            best = (acc_va, {k: v.clone() for k, v in model.state_dict().items()}, epochs)
    train_s = time.perf_counter() - t0
    last_te, _ = accuracy(model, xte, yte)
    model.load_state_dict(best[1])
    best_te, conf = accuracy(model, xte, yte)
    return {"resolution": resolution, "train_s": train_s, "steps": steps, "epochs": epochs,
            "best_valid": best[0], "best_epoch": best[2], "test_best_valid": best_te, "test_last": last_te,
            "confusion": conf}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=2.0, help="training wall-clock budget per resolution")
    ap.add_argument("--data-dir", type=Path, default=None, help="folder with galaxy_data_h5.zip (default: env / cache)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data_dir = args.data_dir
    if data_dir is None and not os.environ.get("RADIOBENCH_FIRST_DIR"):
        shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "first"
        data_dir = shared if (shared / "galaxy_data_h5.zip").is_file() else None
    print(f"FIRST test-set accuracy of a small CNN after {args.minutes:g} min of training "
          f"({args.threads} thread(s), torch {torch.__version__}, seed {args.seed})")
    print(f"{'size':>6} {'steps':>6} {'epochs':>6} {'best valid':>10} {'test@best valid':>15} {'test@last':>9}")
    for res in (40, 80):
        r = run(res, 60 * args.minutes, data_dir, args.seed)
        print(f"{res:>3}x{res:<2} {r['steps']:>6} {r['epochs']:>6} {r['best_valid']:>10.3f} "
              f"{r['test_best_valid']:>15.3f} {r['test_last']:>9.3f}", flush=True)
        print("       confusion (rows true FRI/FRII/Compact/Bent, columns predicted):",
              " ".join("[" + " ".join(f"{v:2d}" for v in row) + "]" for row in r["confusion"]), flush=True)


if __name__ == "__main__":
    main()
