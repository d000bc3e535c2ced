"""``radiobench report RUN``: what people would rather look at than read — sample grids per
generator beside real images, histograms (with Poisson intervals) behind the distribution
metrics, training loss curves — and an HTML page with the leaderboard on top. The table and the
histograms come from the leaderboard's table object (any metric whose result details carry a
``quantity`` and its ``histograms``)."""
from __future__ import annotations

import csv
import html
from collections import defaultdict
from pathlib import Path

import numpy as np

from .leaderboard import collect, html_tables
from .types import RadioImages

__all__ = ["write_report"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def sample_grid(images: np.ndarray, path: Path, title: str, labels=None, class_names=None, n: int = 32) -> None:
    plt = _plt()
    pick = np.unique(np.linspace(0, len(images) - 1, min(n, len(images))).round().astype(int))  # spread over classes
    images = images[pick]
    labels = None if labels is None else labels[pick]
    n = len(images)
    cols = 8
    rows = max(1, int(np.ceil(n / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.3 + 0.4), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i, 0], cmap="inferno", vmin=0, vmax=1)
            if labels is not None and class_names:
                ax.set_title(class_names[labels[i]], fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _histogram_plot(hists: dict[str, dict], path: Path, title: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for row, h in sorted(hists.items()):
        edges = np.asarray(h["edges"])
        centres = 0.5 * (edges[1:] + edges[:-1])
        dens = np.asarray(h["density"])
        ax.step(centres, dens, where="mid", label=row, lw=1)
        ax.fill_between(centres, h["low"], h["high"], step="mid", alpha=0.2)
    ax.set_yscale("log")
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("density (Poisson 1σ band)")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _loss_plot(curves: dict[str, Path], path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for name, f in sorted(curves.items()):
        with open(f, newline="") as fh:
            rows = list(csv.DictReader(fh))
        if not rows:
            continue
        key = next((k for k in rows[0] if k != "step"), None)
        steps = np.array([float(r["step"]) for r in rows])
        vals = np.array([float(r[key]) if r.get(key) not in (None, "") else np.nan for r in rows])
        k = max(1, len(vals) // 50)
        smooth = np.convolve(np.nan_to_num(vals), np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1:], smooth, label=f"{name} ({key})", lw=1)
    ax.set_xlabel("step")
    ax.set_title("training losses (running mean)", fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(run: str | Path, out: Path | None = None) -> Path:
    run = Path(run)
    tables = collect([run])  # refuses a run without a readable manifest before anything is written
    out = out or run / "report"
    out.mkdir(parents=True, exist_ok=True)
    figures: list[tuple[str, str]] = []
    hists: dict[str, dict[str, dict]] = defaultdict(dict)
    curves: dict[str, Path] = {}
    for row_dir in sorted(p for p in run.iterdir() if p.is_dir() and p.name != out.name):
        seed_dirs = sorted(row_dir.glob("seed-*"))
        if not seed_dirs:
            continue
        first = seed_dirs[0]
        samples = first / "samples.npz"
        if samples.exists():
            s = RadioImages.load(samples)
            png = out / f"samples_{row_dir.name}.png"
            sample_grid(s.images, png, f"{row_dir.name} ({first.name})", s.labels, s.class_names)
            figures.append((f"samples: {row_dir.name}", png.name))
        losses = first / "train" / "losses.csv"
        if losses.exists():
            curves[row_dir.name] = losses
    for row in (r for t in tables for r in t.rows):
        for cell in row.cells.values():  # the lowest seed's histograms of each quantity
            q, h = cell.details.get("quantity"), cell.details.get("histograms")
            if q and h:
                hists[q]["real (test)"] = h["real"]
                hists[q].setdefault(row.name, h["generated"])
    for q, h in sorted(hists.items()):
        png = out / f"hist_{q}.png"
        _histogram_plot(h, png, f"{q}: real test vs generated ({q} distribution)")
        figures.append((f"{q} distribution", png.name))
    if curves:
        _loss_plot(curves, out / "losses.png")
        figures.append(("training losses", "losses.png"))
    body = "\n" + html_tables(tables)
    page = ["<!doctype html><html><head><meta charset='utf-8'><title>radiobench report</title>",
            "<style>table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:3px 8px}</style></head><body>",
            f"<h2>radiobench report: {html.escape(str(run))}</h2>", body]
    for title, name in figures:
        page.append(f"<h4>{html.escape(title)}</h4><img src='{html.escape(name)}'>")
    page.append("</body></html>")
    index = out / "index.html"
    index.write_text("\n".join(page))
    return index
