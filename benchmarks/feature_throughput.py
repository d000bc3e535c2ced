"""Throughput (images/s) of the evaluator networks at inference: BYOL-ResNet18 features, the paper-000
classifier, the radio CNN and the U-Net, at 40x40 and 80x80, for a few batch sizes.

    python benchmarks/feature_throughput.py [--threads 1] [--seconds 3] [--device cpu]

Untrained weights: the cost does not depend on their values. Also checks that features do not depend
on the batch size (max |difference| between batch 1..N and one batch).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from radiobench.evaluators.classifier import ResNetClassifier
from radiobench.evaluators.features import apply
from radiobench.evaluators.radio_cnn import RadioCNN
from radiobench.evaluators.resnet import ResNet18
from radiobench.evaluators.segmenter import UNet


def rate(module, images: np.ndarray, batch: int, seconds: float, device: str) -> tuple[float, float]:
    """(images per wall-clock second, images per CPU second of this process): on a shared machine the
    second is what the hardware gives one thread; the first is what you saw."""
    apply(module, images[:batch], batch, device)  # warm-up
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        apply(module, images, batch, device)
        n += len(images)
    return n / (time.perf_counter() - t0), n / max(1e-9, time.process_time() - c0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batches", default="32,256")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} thread(s), device {args.device}")
    print(f"{'network':26s} {'res':>5s} {'batch':>6s} {'images/s':>10s} {'images/CPU-s':>13s}")
    for res in (40, 80):
        images = np.random.default_rng(0).random((256, 1, res, res), dtype=np.float32)
        nets = {
            "byol ResNet18 (512-d)": ResNet18(),
            "classifier (paper 000)": ResNetClassifier(4),
            "radio CNN (RAMIS)": RadioCNN(4, (res, res)),
            "U-Net 16-32-64": UNet((16, 32, 64)),
        }
        for name, net in nets.items():
            for b in [int(x) for x in args.batches.split(",")]:
                wall, cpu = rate(net, images, b, args.seconds, args.device)
                print(f"{name:26s} {res:5d} {b:6d} {wall:10.1f} {cpu:13.1f}", flush=True)
        enc = nets["byol ResNet18 (512-d)"]
        diff = np.abs(apply(enc, images[:64], 64, args.device) - apply(enc, images[:64], 5, args.device)).max()
        print(f"{'':26s} {res:5d}  features batch 64 vs 5: max |diff| = {diff:.2e}")


if __name__ == "__main__":
    main()
