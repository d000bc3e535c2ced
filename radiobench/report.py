"""``radiobench report RUN``: what people would rather look at than read, under the leaderboard table.

- real images (the reference split, loaded through the dataset the manifest names and checked against
  its fingerprint) beside each generator's samples, whether or not ``replay`` ran; a visible note when
  the data are not on this machine (a published run);
- per quantity, the histograms behind the distribution metrics (any metric whose result details carry a
  ``quantity`` and its ``histograms``): step curves with Poisson 1σ bands drawn only over bins that hold
  counts (a log axis has nothing to draw for an empty bin);
- training loss curves, one panel per generator (each its own scale);
- what other metric details hold: classifier confusion matrices, memorisation (SSIM histograms with the
  threshold, and the most similar generated/training pairs), segmentation IoU histograms, and any
  ``relation`` (e.g. a flux relation: ``{"x": label, "y": label, "real": {"x": [..], "y": [..]},
  "generated": {...}}``).
Every plot has labelled axes; each figure is a PNG beside ``index.html``.
"""
from __future__ import annotations

import csv
import html
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .leaderboard import Table, collect, html_tables
from .registry import REFERENCE_ROW
from .store import read_json
from .types import RadioImages

__all__ = ["write_report"]

log = logging.getLogger("radiobench")
CMAP, GRID = "inferno", 32  # images per grid


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, tight: bool = True) -> None:
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=100)
    _plt().close(fig)


def _picks(n: int, k: int = GRID) -> np.ndarray:
    """``k`` indices spread over ``n`` (sets are ordered by class: every class shows)."""
    return np.unique(np.linspace(0, n - 1, min(k, n)).round().astype(int)) if n else np.zeros(0, int)


def sample_grid(images: np.ndarray, path: Path, title: str, labels=None, class_names=None, n: int = GRID) -> None:
    """A grid of images spread over the set, titled by class, with a labelled intensity scale."""
    plt = _plt()
    pick = _picks(len(images), n)
    images = images[pick]
    labels = None if labels is None else np.asarray(labels)[pick]
    cols = 8
    rows = max(1, int(np.ceil(len(images) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2 + 0.8, rows * 1.3 + 0.5), squeeze=False)
    shown = None
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < len(images):
            shown = ax.imshow(images[i, 0], cmap=CMAP, vmin=0, vmax=1)
            if labels is not None and class_names:
                ax.set_title(class_names[labels[i]], fontsize=6)
    if shown is not None:
        fig.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.8, label="intensity (scaled to [0, 1])")
    fig.suptitle(title, fontsize=9)
    _save(fig, path, tight=False)


def _histogram_plot(hists: dict[str, dict], path: Path, quantity: str) -> None:
    """Step curves of densities; the Poisson band only over bins with counts (empty bins: nothing to draw
    on a log axis, and a band there would paint a rectangle down to the axis)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for i, (row, h) in enumerate(hists.items()):
        edges, dens = np.asarray(h["edges"], float), np.asarray(h["density"], float)
        filled = np.asarray(h.get("counts", dens), float) > 0
        colour = f"C{i}"
        ax.stairs(np.where(filled, dens, np.nan), edges, color=colour, lw=1.2 if i == 0 else 1, label=row,
                  baseline=None)
        for x, low, high in poisson_bands(h):
            ax.fill_between(x, low, high, color=colour, alpha=0.2, lw=0)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(_plt().MaxNLocator(6))
    ax.set_xlabel(quantity)
    ax.set_ylabel("density (Poisson 1σ band)")
    ax.set_title(f"{quantity}: real reference vs generated", fontsize=9)
    ax.legend(fontsize=6)
    _save(fig, path)


def poisson_bands(h: dict[str, Any]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(x, low, high) step outlines of the Poisson band of histogram ``h`` over each run of bins with counts
    (bins with a lower bound of 0 too: a log axis cannot draw down to 0)."""
    edges = np.asarray(h["edges"], float)
    low, high = np.asarray(h["low"], float), np.asarray(h["high"], float)
    filled = (np.asarray(h.get("counts", h["density"]), float) > 0) & (low > 0)
    d = np.diff(np.concatenate([[0], filled.astype(int), [0]]))
    return [(np.repeat(edges[a:b + 1], 2)[1:-1], np.repeat(low[a:b], 2), np.repeat(high[a:b], 2))
            for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1))]


def _read_losses(f: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    with open(f, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = {}
    for key in (k for k in (rows[0] if rows else {}) if k != "step"):
        pairs = [(float(r["step"]), float(r[key])) for r in rows if r.get(key) not in (None, "")]
        if pairs:
            steps, vals = np.array(pairs).T
            out[key] = (steps, vals)
    return out


def _loss_plot(curves: dict[str, Path], path: Path) -> bool:
    """One panel per generator (its own y scale: losses of 50 and 1 do not share an axis), every loss it
    logs (raw, faint; running mean over ~2% of the steps, solid); log y when they span a decade."""
    data = {name: c for name, f in sorted(curves.items()) if (c := _read_losses(f))}
    if not data:
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, len(data), figsize=(3.6 * len(data), 3.0), squeeze=False)
    for ax, (name, losses) in zip(axes[0], data.items()):
        for i, (key, (steps, vals)) in enumerate(losses.items()):
            k = max(1, len(vals) // 50)
            ax.plot(steps, vals, color=f"C{i}", lw=0.5, alpha=0.3)
            smooth = np.convolve(vals, np.ones(k) / k, mode="valid")
            ax.plot(steps[k - 1:], smooth, color=f"C{i}", lw=1.2, label=key)
        values = np.concatenate([v for _, v in losses.values()])
        if np.all(values > 0) and values.max() > 10 * values.min():  # spans a decade: log
            ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel("loss")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=6)
    _save(fig, path)
    return True


def _confusion_plot(matrices: dict[str, tuple[np.ndarray, str]], names: list[str], path: Path) -> None:
    """Row-normalised confusion matrices with their counts: rows the class asked for, columns the
    classifier's prediction."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.4 * len(matrices) + 0.8, 3.4), squeeze=False,
                             layout="constrained")
    im = None
    for ax, (title, (cm, accuracy)) in zip(axes[0], matrices.items()):
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = cm / cm.sum(1, keepdims=True)
        im = ax.imshow(np.nan_to_num(frac), vmin=0, vmax=1, cmap="Blues")
        for (i, j), c in np.ndenumerate(cm):
            ax.text(j, i, str(int(c)), ha="center", va="center", fontsize=7,
                    color="white" if np.nan_to_num(frac[i, j]) > 0.5 else "black")
        ax.set_xticks(range(len(names)), names, rotation=45, fontsize=6, ha="right")
        ax.set_yticks(range(len(names)), names, fontsize=6)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("class asked for" if title != "real reference" else "true class")
        ax.set_title(f"{title} ({accuracy})", fontsize=8)
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="fraction of the row")
    _save(fig, path, tight=False)


def _memorisation_plot(rows: dict[str, dict], path: Path) -> None:
    """Step curves of each image's highest SSIM to a training image, generated and real, with the threshold."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    real_drawn = False
    for i, (row, d) in enumerate(rows.items()):
        edges = np.asarray(d["bin_edges"], float)
        ax.stairs(d["hist_generated"], edges, color=f"C{i + 1}", label=f"{row} (generated)")
        if not real_drawn:
            ax.stairs(d["hist_real"], edges, color="C0", lw=1.5, label="real reference")
            ax.axvline(d["threshold"], color="k", ls="--", lw=0.8, label=f"threshold ({d['threshold_rule']})")
            real_drawn = True
    ax.set_xlabel("highest SSIM to a training image")
    ax.set_ylabel("number of images")
    ax.set_title("memorisation: nearest training image", fontsize=9)
    ax.legend(fontsize=6)
    _save(fig, path)


def _pairs_plot(pairs: dict[str, list[tuple[np.ndarray, np.ndarray, float]]], path: Path) -> None:
    """Each generator's most similar generated images (top) above their nearest training image (below)."""
    plt = _plt()
    cols = max(len(p) for p in pairs.values())
    fig, axes = plt.subplots(2 * len(pairs), cols, figsize=(1.4 * cols, 2.9 * len(pairs)), squeeze=False)
    for r, (row, items) in enumerate(pairs.items()):
        for c in range(cols):
            for k, ax in enumerate((axes[2 * r, c], axes[2 * r + 1, c])):
                ax.set_xticks([])
                ax.set_yticks([])
                if c >= len(items):
                    ax.axis("off")
                    continue
                image = items[c][0] if k == 0 else items[c][1]
                ax.imshow(image[0], cmap=CMAP, vmin=0, vmax=1)
                if k == 0:
                    ax.set_title(f"SSIM {items[c][2]:.2f}", fontsize=7)
                if c == 0:
                    ax.set_ylabel(f"{row}\ngenerated" if k == 0 else "nearest train", fontsize=7)
    _save(fig, path)


def _relation_plot(relations: dict[str, dict], path: Path, title: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    first = next(iter(relations.values()))
    if "real" in first:
        ax.scatter(first["real"]["x"], first["real"]["y"], s=6, color="C0", alpha=0.6, label="real reference")
    for i, (row, rel) in enumerate(relations.items()):
        ax.scatter(rel["generated"]["x"], rel["generated"]["y"], s=6, color=f"C{i + 1}", alpha=0.6, label=row)
    ax.set_xscale(first.get("xscale", "linear"))
    ax.set_yscale(first.get("yscale", "linear"))
    ax.set_xlabel(first["x"])
    ax.set_ylabel(first["y"])
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6)
    _save(fig, path)


def _steps_plot(curves: dict[str, list[float]], path: Path, xlabel: str, title: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for i, (row, counts) in enumerate(curves.items()):
        ax.stairs(counts, np.linspace(0, 1, len(counts) + 1), color=f"C{i}", label=row)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("number of images")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6)
    _save(fig, path)


def _augmentation_plot(cells: dict[str, Any], path: Path, metric: str) -> None:
    """Each row's gain from adding its images to the real training set: the seeds' values (dots), their mean and
    95% interval (bar), against real-only training (the zero line, its score in the legend)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(cells) + 1.5), 3.4))
    base = next((c.details.get("real_only") for c in cells.values() if "real_only" in c.details), None)
    ax.axhline(0, color="k", lw=0.8,
               label="real-only training" + (f" ({base:.3f} on real test images)" if base is not None else ""))
    for i, c in enumerate(cells.values()):
        ax.scatter(np.full(len(c.values), i) + np.linspace(-0.12, 0.12, len(c.values)), c.values, s=12,
                   color=f"C{i}", alpha=0.7)
        if np.isfinite(c.low) and np.isfinite(c.high):
            ax.errorbar([i + 0.25], [c.value], yerr=[[c.value - c.low], [c.high - c.value]], fmt="o", color=f"C{i}",
                        capsize=3)
    ax.set_xticks(range(len(cells)), list(cells), fontsize=7)
    ax.set_xlim(-0.6, len(cells) - 0.4)
    unit = "IoU" if metric.endswith("_iou") else "accuracy"
    ax.set_xlabel("images added to the real training set")
    ax.set_ylabel(f"gain in {unit} on real test images")
    ax.set_title(f"{metric} (dots: seeds; bar: mean, 95% CI)", fontsize=8)
    ax.legend(fontsize=6)
    _save(fig, path)


def _completeness_plot(curves: dict[str, list[dict[str, float]]], path: Path) -> None:
    """Completeness against the true sources' S/N per row (paper 002 Fig. 13), with 95 % Wilson intervals."""
    from scipy.stats import binomtest

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for i, (row, bins) in enumerate(curves.items()):
        kept = [b for b in bins if b["n"]]
        x = np.array([np.sqrt(b["snr_low"] * b["snr_high"]) for b in kept])
        k = [round(b["completeness"] * b["n"]) for b in kept]
        ci = [binomtest(int(kk), int(b["n"])).proportion_ci(method="wilson") for kk, b in zip(k, kept)]
        y = np.array([b["completeness"] for b in kept])
        err = np.array([[yy - c.low for yy, c in zip(y, ci)], [c.high - yy for yy, c in zip(y, ci)]])
        ax.errorbar(x * (1 + 0.03 * i), y, yerr=err, marker="o", ms=3, capsize=2, color=f"C{i}", label=row)
    ax.set_xscale("log")
    edges = sorted({e for bins in curves.values() for b in bins for e in (b["snr_low"], b["snr_high"])})
    ax.set_xticks(edges, [f"{e:g}" for e in edges])
    ax.set_xticks([], minor=True)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("S/N of the true source (peak / noise rms)")
    ax.set_ylabel("completeness")
    ax.set_title("completeness against S/N (paper 002 Fig. 13)", fontsize=9)
    ax.legend(fontsize=6)
    _save(fig, path)


@dataclass
class _Page:
    out: Path
    sections: list[str] = field(default_factory=list)

    def figure(self, title: str, name: str, caption: str = "") -> None:
        cap = f"<p class='caption'>{html.escape(caption)}</p>" if caption else ""
        self.sections.append(f"<h4>{html.escape(title)}</h4><img src='{html.escape(name)}' "
                             f"alt='{html.escape(title)}'>{cap}")

    def note(self, text: str) -> None:
        self.sections.append(f"<p class='note'>{html.escape(text)}</p>")


def _real_data(run: Path, manifest: dict[str, Any], splits: tuple[str, ...]) -> tuple[dict[str, RadioImages], str]:
    """The run's dataset splits ``splits``, loaded as the manifest describes them and checked against its
    fingerprint; ({}, why not) when that fails (the data are not on this machine: a published run)."""
    from .registry import registry

    ds = manifest.get("dataset") or {}
    name = str(ds.get("name"))
    if not isinstance(ds.get("config"), dict):
        return {}, "the run's manifest does not record how its dataset was configured"
    try:
        cfg = dict(ds["config"])
        cfg.pop("name", None)
        resolution = cfg.pop("resolution", None)
        data_dir = (manifest.get("config") or {}).get("data_dir")
        dataset = registry.dataset(name)(resolution=resolution, data_dir=data_dir, **cfg)
        if dataset.fingerprint() != ds.get("fingerprint"):
            return {}, (f"the dataset {name!r} on this machine is not the one this run used (its fingerprint "
                        f"differs from {ds.get('fingerprint')!r})")
        return {s: dataset.load(s) for s in splits}, ""
    except Exception as err:  # missing data, an uninstalled plugin, a manifest without a dataset: a note, no figure
        log.debug("report: real images not loaded", exc_info=True)
        return {}, f"the dataset {name!r} could not be loaded here ({type(err).__name__}: {err})"


def write_report(run: str | Path, out: Path | None = None) -> Path:
    run = Path(run)
    tables = collect([run])  # refuses a run without a readable manifest before anything is written
    manifest = read_json(run / "manifest.json")
    out = out or run / "report"
    out.mkdir(parents=True, exist_ok=True)
    page = _Page(out)
    rows = _row_dirs(run, out)
    ds = manifest.get("dataset") or {}
    ref_split, train_split = ds.get("reference_split", "test"), ds.get("train_split", "train")
    real, why = _real_data(run, manifest, (ref_split, train_split))

    page.sections.append("<h3>Real and generated images</h3>")
    if ref_split in real:
        r = real[ref_split]
        sample_grid(r.images, out / "samples_real.png", f"real: {ds.get('name')} {ref_split} split (the reference)",
                    r.labels, r.class_names)
        page.figure(f"real images ({ref_split} split)", "samples_real.png")
    else:
        page.note(f"Real images are not shown: {why}. Run the report where the data are (radiobench data fetch).")
    for name, first in rows.items():
        samples = first / "samples.npz"
        if samples.exists():
            s = RadioImages.load(samples)
            png = out / f"samples_{name}.png"
            sample_grid(s.images, png, f"{name} ({first.name})", s.labels, s.class_names)
            page.figure(f"samples: {name}", png.name)
        elif name != REFERENCE_ROW:
            page.note(f"{name}: no samples.npz in {first} (failed, or a published run without images).")

    _distribution_figures(tables, page)
    curves = {n: f / "train" / "losses.csv" for n, f in rows.items() if (f / "train" / "losses.csv").exists()}
    if curves and _loss_plot(curves, out / "losses.png"):
        page.sections.append("<h3>Training</h3>")
        page.figure("training losses (one panel per generator; faint: per step, solid: running mean)", "losses.png")
    _detail_figures(tables, rows, real.get(train_split), why, page)
    _augmentation_figures(tables, page)

    style = ("table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:3px 8px}"
             "img{max-width:100%}.note{color:#a00}.caption{color:#555;font-size:90%}")
    html_page = ["<!doctype html><html><head><meta charset='utf-8'><title>radiobench report</title>",
                 f"<style>{style}</style></head><body>",
                 f"<h2>radiobench report: {html.escape(str(run))}</h2>", html_tables(tables), *page.sections,
                 "</body></html>"]
    index = out / "index.html"
    index.write_text("\n".join(html_page))
    return index


def _row_dirs(run: Path, out: Path) -> dict[str, Path]:
    """Each row's folder's lowest seed folder (the one whose details the tables keep)."""
    rows = {}
    for row_dir in sorted(p for p in run.iterdir() if p.is_dir() and p.resolve() != out.resolve()):
        seeds = sorted(row_dir.glob("seed-*"), key=lambda p: int(p.name[5:]) if p.name[5:].isdigit() else 1 << 30)
        if seeds:
            rows[row_dir.name] = seeds[0]
    return rows


def _details(tables: list[Table]):
    """(row name, metric, details) of every cell that has them."""
    for t in tables:
        for row in t.rows:
            for metric, cell in row.cells.items():
                if cell.details:
                    yield row, metric, cell.details


def _distribution_figures(tables: list[Table], page: _Page) -> None:
    hists: dict[str, dict[str, dict]] = defaultdict(dict)
    for row, _, d in _details(tables):  # the lowest seed's histograms of each quantity
        q, h = d.get("quantity"), d.get("histograms")
        if q and h:
            hists[q].setdefault("real (reference split)", h["real"])
            hists[q].setdefault(row.name, h["generated"])
    if hists:
        page.sections.append("<h3>Distributions</h3>")
    for q, h in sorted(hists.items()):
        png = f"hist_{q}.png"
        _histogram_plot(h, page.out / png, q)
        page.figure(f"{q} distribution", png)


def _detail_figures(tables: list[Table], rows: dict[str, Path], train: RadioImages | None, why: str,
                    page: _Page) -> None:
    confusion: dict[str, tuple[np.ndarray, str]] = {}
    names: list[str] = []
    memo: dict[str, dict] = {}
    iou: dict[str, list[float]] = {}
    relations: dict[str, dict[str, dict]] = defaultdict(dict)
    completeness: dict[str, list[dict[str, float]]] = {}
    for row, metric, d in _details(tables):
        if metric == "classifier_accuracy" and "generated" in d:
            names = d["class_names"]
            if "real reference" not in confusion and "real_reference" in d:
                confusion["real reference"] = (np.asarray(d["real_reference"]["confusion"]),
                                               f"accuracy {d['real_reference']['accuracy']:.2f}")
            if row.source != REFERENCE_ROW:
                confusion[row.name] = (np.asarray(d["generated"]["confusion"]),
                                       f"accuracy {d['generated']['accuracy']:.2f}")
        if "hist_generated" in d and "bin_edges" in d and row.source != REFERENCE_ROW:
            memo[row.name] = d
        if "per_image_iou_histogram" in d:
            iou[row.name] = d["per_image_iou_histogram"]
        if isinstance(d.get("relation"), dict):
            relations[metric][row.name] = d["relation"]
        if isinstance(d.get("completeness_vs_snr"), list):
            completeness[row.name] = d["completeness_vs_snr"]
    if confusion or memo or iou or relations or completeness:
        page.sections.append("<h3>What the metrics saw</h3>")
    if confusion:
        _confusion_plot(confusion, names, page.out / "confusion.png")
        page.figure("classifier: confusion matrices (counts; colour: fraction of the row)", "confusion.png")
    if memo:
        _memorisation_plot(memo, page.out / "memorisation.png")
        page.figure("memorisation: highest SSIM of each image to a training image", "memorisation.png")
        pairs = _memorised_pairs(memo, rows, train)
        if pairs:
            _pairs_plot(pairs, page.out / "memorisation_pairs.png")
            page.figure("memorisation: most similar generated images and their nearest training image",
                        "memorisation_pairs.png")
        else:
            page.note(f"Memorisation pairs are not shown: {why or 'no samples.npz to draw them from'}.")
    if iou:
        _steps_plot(iou, page.out / "segmentation_iou.png", "per-image IoU with the conditioning mask",
                    "segmentation IoU per image")
        page.figure("segmentation: per-image IoU", "segmentation_iou.png")
    if completeness:
        _completeness_plot(completeness, page.out / "completeness_snr.png")
        page.figure("reconstruction: completeness against S/N", "completeness_snr.png",
                    "Share of the true sources found, per S/N bin of the true source (the lowest seed of each "
                    "row); bars: 95 % Wilson intervals. Paper 002 reports completeness above 0.9 at S/N 2.")
    for metric, rels in sorted(relations.items()):
        png = f"relation_{metric}.png"
        _relation_plot(rels, page.out / png, metric)
        page.figure(f"{metric}: relation", png)


def _augmentation_figures(tables: list[Table], page: _Page) -> None:
    """The data-augmentation utility (``augmentation_gain``, ``augmentation_gain_iou``) of every row scored on it."""
    for metric in ("augmentation_gain", "augmentation_gain_iou"):
        cells = {row.name: c for t in tables for row in t.rows
                 if (c := row.cells.get(metric)) is not None and c.status == "ok" and c.values}
        if cells:
            png = f"{metric}.png"
            _augmentation_plot(cells, page.out / png, metric)
            page.figure(f"{metric}: data-augmentation utility", png,
                        "Gain on the real test images from training the downstream network on real + generated "
                        "images instead of real images alone (paper 001 Sect. 5.2); the interval over test images "
                        "of one seed covers the test set, the spread of the dots the training noise.")


def _memorised_pairs(memo: dict[str, dict], rows: dict[str, Path], train: RadioImages | None):
    """(generated image, nearest training image, SSIM) of each row's most similar images, when both sets are here."""
    if train is None:
        return {}
    pairs = {}
    for name, d in memo.items():
        samples = rows.get(name, Path("-")) / "samples.npz"
        if not samples.exists() or not d.get("most_similar"):
            continue
        g = RadioImages.load(samples).images
        pairs[name] = [(g[p["generated"]], train.images[p["train"]], float(p["ssim"])) for p in d["most_similar"]
                       if p["generated"] < len(g) and p["train"] < len(train)]
    return {k: v for k, v in pairs.items() if v}
