"""``radiobench evaluate``: score a sample set made elsewhere against a dataset's reference, with the same
metrics, evaluator networks and run directory layout as ``radiobench run``, so the set becomes a leaderboard
row beside the trained generators.

SAMPLES is a folder of FITS / PNG / NPY images (read by the ``folder`` dataset's reader; an optional
``labels.csv`` with columns ``file,label``), a ``.npy`` stack (N, H, W) or (N, 1, H, W), or an ``.npz`` with
``images`` and optional ``labels`` (indices into the reference's classes, or class names), ``class_names``,
``peak_flux`` and ``masks``; the runner's own ``samples.npz`` is read as it is.

Before anything is written the set is checked against the reference split: at least two images, finite
pixels, the reference's resolution (``resize=True`` mean-bins by an integer factor, as the datasets bin, and
says so), the run directory's generated-set size (``--n-generated``, default the reference split's: a
larger set is subsampled, seeded and recorded, a smaller one refused, as the leaderboard never ranks
cells of different sizes together), pixels in [0, 1] (``scale="peak"`` divides each image by its
maximum, the datasets' scaling; 8- and 16-bit PNGs are divided by 255 / 65535), and, when labelled, the
reference's class names (class counts that differ from the reference's are recorded beside the result,
and warned about). Anything else is an InputError.

Run directory (``out``, shared with ``radiobench run``)::

    NAME/seed-S/samples.npz       the checked set, as the metrics scored it
    NAME/seed-S/samples.json      external: true, the source's file name (not its path) and sha256, checks, transforms
    NAME/seed-S/metrics/M.json    as the runner's, provenance.external = true
    statistics/*.npz              evaluator outputs on the real sets (content-addressed), so that a
                                  second ``evaluate`` into ``out`` computes only the generated side
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import custody
from .interfaces import Dataset, MetricContext, default_cache_dir, default_device
from .presets import get_preset
from .registry import REFERENCE_ROW, registry
from .runner import (
    REFERENCE_SEED,
    RunConfig,
    RunSummary,
    build_metrics,
    check_out,
    default_metrics,
    evaluate_row,
    held_out_set,
    open_manifest,
    reference_set,
)
from .store import atomic_path, sha256_bytes, sha256_file, write_json
from .types import InputError, RadioImages, SurveyInfo

__all__ = ["ExternalConfig", "evaluate", "read_samples", "check_samples", "default_metrics", "DiskMemo"]

log = logging.getLogger("radiobench")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
SCALES = ("none", "peak")
STATISTICS_DIR = "statistics"


@dataclass
class ExternalConfig:
    samples: Path
    dataset: str
    out: Path
    name: str | None = None  # the row's name (default: the samples' file or folder name)
    seed: int = 0
    preset: str = "smoke"
    metrics: list[str] | None = None  # None: every default metric that applies (``default_metrics``)
    metric_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_dir: str | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    scale: str = "none"  # "none": pixels must lie in [0, 1]; "peak": each image divided by its maximum
    resize: bool = False  # mean-bin images larger than the reference by an integer factor
    n_generated: int | None = None  # images scored (None: the run directory's generated-set size, else the
    # reference split's); a larger set is subsampled (seeded, recorded), a smaller one refused
    reference: bool = True  # evaluate the run directory's real-vs-real row too (once per directory)


# -- reading -----------------------------------------------------------------------------------------
def read_samples(path: Path, class_names: tuple[str, ...] | None) -> tuple[dict[str, Any], str]:
    """The arrays of a sample set as stored (``images`` (N, H, W) or (N, 1, H, W) float64, ``labels`` as
    given, ``class_names``, ``peak_flux``, ``masks``, ``png_scale``) and the sha256 of its source."""
    path = Path(path)
    if path.is_dir():
        return _read_folder(path, class_names)
    if not path.is_file():
        raise InputError(f"{path}: no such file or folder of samples")
    digest = sha256_file(path)
    name = path.name.lower()
    try:
        if name.endswith(".npy"):
            return {"images": np.load(path, allow_pickle=False)}, digest
        if name.endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                if "meta_json" in z.files:  # written by RadioImages.save (the runner's samples.npz)
                    s = RadioImages.load(path)
                    return {"images": s.images, "labels": s.labels, "class_names": s.class_names,
                            "peak_flux": s.peak_flux, "masks": s.masks, "survey": s.survey}, digest
                if "images" not in z.files:
                    raise InputError(f"{path} holds {z.files}; an .npz of samples needs an 'images' array "
                                     "(and optionally labels, class_names, peak_flux, masks)")
                return {k: z[k] for k in ("images", "labels", "class_names", "peak_flux", "masks")
                        if k in z.files}, digest
    except InputError:
        raise
    except Exception as err:  # a pickle, a damaged file: the file's fault, named
        raise InputError(f"{path}: cannot read samples: {type(err).__name__}: {err}") from None
    raise InputError(f"{path}: samples must be a folder of FITS/PNG/NPY images, an .npz or an .npy")


def _read_folder(folder: Path, class_names: tuple[str, ...] | None) -> tuple[dict[str, Any], str]:
    """Every image of ``folder`` in file-name order, with labels from its labels.csv (the folder dataset's
    reader and its checks: every image listed, every listed file present, labels among the classes)."""
    from radiobench_plugins.datasets.folder import FolderDataset, file_kind, read_image

    paths = sorted(p for p in folder.iterdir() if p.is_file() and file_kind(p))
    if not paths:
        raise InputError(f"{folder} holds no images (*.fits, *.fit, *.fits.gz, *.png, *.npy)")
    shapes: dict[tuple[int, ...], list[str]] = {}
    images, png_scale = [], []
    for p in paths:
        data, _ = read_image(p)
        shapes.setdefault(data.shape, []).append(p.name)
        images.append(data)
        png_scale.append(_png_full_scale(p) if file_kind(p) == "png" else 1.0)
    if len(shapes) > 1:
        raise InputError(f"{folder}: images of different shapes: "
                         + "; ".join(f"{s[0]}x{s[1]}: {len(v)} ({', '.join(v[:3])})" for s, v in shapes.items()))
    reader = FolderDataset(data_dir=folder, classes=list(class_names) if class_names else None)
    labels, _ = reader.labels_csv(folder, [p.name for p in paths])
    parts = [b for p in paths for b in (p.name.encode(), bytes.fromhex(sha256_file(p)))]
    if (folder / "labels.csv").is_file():
        parts.append((folder / "labels.csv").read_bytes())
    out: dict[str, Any] = {"images": np.stack(images), "png_scale": np.asarray(png_scale)}
    if labels is not None:
        out["labels"] = np.array([labels[p.name] for p in paths])
    return out, sha256_bytes(*parts)


def _png_full_scale(path: Path) -> float:
    """The largest value a PNG's pixel format holds (8-bit: 255, 16-bit: 65535; float and 1-bit: 1)."""
    from PIL import Image

    with Image.open(path) as im:
        return {"L": 255.0, "P": 255.0, "RGB": 255.0, "RGBA": 255.0, "LA": 255.0, "I;16": 65535.0,
                "I": 65535.0}.get(im.mode, 1.0)


# -- checking ----------------------------------------------------------------------------------------
def check_samples(arrays: dict[str, Any], reference: RadioImages, *, scale: str = "none", resize: bool = False,
                  source: str = "samples", n_scored: int | None = None,
                  rng: np.random.Generator | None = None) -> tuple[RadioImages, dict[str, Any]]:
    """The sample set as a RadioImages comparable with ``reference``, and what was checked and changed
    (``transforms``); InputError naming the first mismatch. ``n_scored``: the number of images to score (a larger
    set is subsampled without replacement by ``rng``, a smaller one refused)."""
    if scale not in SCALES:
        raise InputError(f"scale must be one of {SCALES}; got {scale!r}")
    images = np.asarray(arrays["images"])
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1] != 1:
        raise InputError(f"{source}: images must be (N, H, W) or (N, 1, H, W) single-channel; got {images.shape}")
    if not np.issubdtype(images.dtype, np.number) or np.issubdtype(images.dtype, np.complexfloating):
        raise InputError(f"{source}: images must be real numbers; got dtype {images.dtype}")
    images = images.astype(np.float64)
    n = len(images)
    if n < 2:
        raise InputError(f"{source}: {n} image(s); metrics need at least 2")
    bad = ~np.isfinite(images).reshape(n, -1).all(1)
    if bad.any():
        raise InputError(f"{source}: {int(bad.sum())} of {n} images hold NaN or infinite pixels (first: index "
                         f"{int(np.flatnonzero(bad)[0])}); clean them before scoring")
    transforms: list[str] = []
    if "png_scale" in arrays and np.any(arrays["png_scale"] != 1.0):
        images = images / np.asarray(arrays["png_scale"], np.float64)[:, None, None, None]
        transforms.append("PNG pixels divided by their format's full scale (255 for 8-bit, 65535 for 16-bit)")
    rh, rw = reference.resolution
    h, w = images.shape[2:]
    masks = arrays.get("masks")
    if masks is not None and np.ndim(masks) == 3:  # (N, H, W): one channel
        masks = np.asarray(masks)[:, None]
    if (h, w) != (rh, rw):
        factor = h // rh
        if not resize or h % rh or w % rw or w // rw != factor:
            hint = (" (--resize mean-bins by an integer factor)" if not resize
                    else " (not an integer multiple: crop or resample them yourself)")
            raise InputError(f"{source}: images are {h}x{w}, the reference {rh}x{rw}{hint}")
        from radiobench_plugins.datasets._common import bin_mean

        images = bin_mean(images, factor)
        if masks is not None:
            masks = (bin_mean(np.asarray(masks, np.float64), factor) >= 0.5).astype(np.uint8)
        transforms.append(f"mean-binned {factor}x{factor}: {h}x{w} -> {rh}x{rw} (masks by majority)")
    if scale == "peak":
        peak = images.reshape(n, -1).max(1)
        if np.any(peak <= 0):
            raise InputError(f"{source}: {int(np.sum(peak <= 0))} image(s) have no positive pixel; cannot scale "
                             "them to their peak")
        images = np.clip(images, 0, None) / peak[:, None, None, None]
        transforms.append("negatives set to 0, each image divided by its maximum (scale=peak)")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise InputError(f"{source}: pixels lie in [{lo:.4g}, {hi:.4g}]; the reference is scaled to [0, 1] "
                         "(each image divided by its peak: --scale peak does that)")
    images = np.clip(images, 0.0, 1.0).astype(np.float32)
    total = len(images)
    for k in ("labels", "peak_flux"):
        if arrays.get(k) is not None and np.shape(arrays[k]) != (total,):
            raise InputError(f"{source}: {k} must have shape ({total},); got {np.shape(arrays[k])}")
    if masks is not None and np.shape(masks) != images.shape:
        raise InputError(f"{source}: masks must have the images' shape {images.shape}; got {np.shape(masks)}")
    if n_scored is not None and total != n_scored:
        n = n_scored
        if total < n:
            raise InputError(f"{source}: {total} images; the run directory's rows score {n} generated images "
                             f"(give --n-generated {total} with another --out, or draw more images)")
        keep = np.sort((rng or np.random.default_rng(0)).choice(total, n, replace=False))
        images = images[keep]
        masks = None if masks is None else np.asarray(masks)[keep]
        arrays = {**arrays, **{k: np.asarray(arrays[k])[keep] for k in ("labels", "peak_flux")
                               if arrays.get(k) is not None}}
        transforms.append(f"subsampled {total} -> {n} images without replacement (seeded by the row's seed)")
    else:
        n = total
    labels, class_names, check = _labels(arrays, reference, n, source, transforms)
    survey = arrays.get("survey") or SurveyInfo(f"external ({reference.survey.name} reference)",
                                                reference.survey.pixel_scale_arcsec, reference.survey.beam_fwhm_arcsec,
                                                reference.survey.frequency_hz)
    samples = RadioImages(images=images, survey=survey, labels=labels, class_names=class_names,
                          peak_flux=arrays.get("peak_flux"), masks=masks)
    if samples.peak_flux is not None and (not np.all(np.isfinite(samples.peak_flux)) or np.any(samples.peak_flux <= 0)):
        raise InputError(f"{source}: peak_flux must be finite and positive (Jy/beam)")
    return samples, {"n": n, "n_given": total, "resolution": [rh, rw], "pixel_range": [lo, hi],
                     "transforms": transforms, **check}


def _labels(arrays: dict[str, Any], reference: RadioImages, n: int, source: str,
            transforms: list[str]) -> tuple[np.ndarray | None, tuple[str, ...] | None, dict[str, Any]]:
    """Labels as indices into the reference's class names, and the class-count comparison."""
    given = arrays.get("labels")
    if given is None:
        return None, None, {"labelled": False}
    names = reference.class_names
    if names is None or reference.labels is None:
        raise InputError(f"{source}: the samples are labelled but the dataset's reference split has no classes")
    given = np.asarray(given)
    if given.shape != (n,):
        raise InputError(f"{source}: labels must have shape ({n},); got {given.shape}")
    own = arrays.get("class_names")
    if given.dtype.kind in "US":  # class names per image
        unknown = sorted(set(given.astype(str).tolist()) - set(names))
        if unknown:
            raise InputError(f"{source}: labels {unknown} are not among the reference's classes {list(names)}")
        labels = np.array([names.index(c) for c in given.astype(str)], np.int64)
    elif given.dtype.kind in "iu":
        if own is not None:
            own = tuple(str(c) for c in np.asarray(own).tolist())
            if sorted(own) != sorted(names):
                raise InputError(f"{source}: classes {list(own)}; the reference has {list(names)}")
            if len(given) and (given.min() < 0 or given.max() >= len(own)):
                raise InputError(f"{source}: labels must lie in [0, {len(own) - 1}]")
            if own != tuple(names):
                transforms.append(f"labels re-indexed from the order {list(own)} to the reference's {list(names)}")
            labels = np.array([names.index(own[i]) for i in given], np.int64)
        else:
            if len(given) and (given.min() < 0 or given.max() >= len(names)):
                raise InputError(f"{source}: labels must lie in [0, {len(names) - 1}] (the reference's classes "
                                 f"{list(names)}, in that order)")
            labels = given.astype(np.int64)
    else:
        raise InputError(f"{source}: labels must be integers or class names; got dtype {given.dtype}")
    counts = dict(zip(names, np.bincount(labels, minlength=len(names)).tolist()))
    ref_counts = reference.class_counts() or {}
    share = lambda c: np.array([c[k] / max(1, sum(c.values())) for k in names])  # noqa: E731
    matches = bool(np.allclose(share(counts), share(ref_counts), atol=0.5 / max(1, n)))
    if not matches:
        log.warning("%s: class counts %s differ from the reference's %s (recorded with the results)",
                    source, counts, ref_counts)
    return labels, tuple(names), {"labelled": True, "class_counts": counts, "reference_class_counts": ref_counts,
                                  "class_shares_match_reference": matches}


# -- the disk-backed memo ------------------------------------------------------------------------------
class DiskMemo(dict):
    """A MetricContext memo that also keeps, in ``folder``, the evaluator outputs (``memo_apply`` entries:
    ``evaluators/<tag>/<fingerprint>/<image hash>``) of the image sets whose content hashes are ``keep``
    (the real sets), so that another process scoring against the same run directory reuses them. A stored
    output is named by its key and the sha256 of the weights that computed it (those of the evaluator of that
    fingerprint the memo holds: ``get_evaluator`` puts it there before ``memo_apply`` runs), so outputs of
    retrained or replaced weights are never reused. A file that does not read back, or holds another key, is
    ignored (and recomputed)."""

    def __init__(self, folder: Path, keep: set[str]):
        super().__init__()
        self.folder, self.keep = Path(folder), set(keep)
        self.loaded: list[str] = []  # keys read from disk (for tests and logs)

    def _file(self, key: str) -> tuple[Path, str] | None:
        """The file of ``key`` and the stamp it must hold (key and weights), or None for keys kept in memory."""
        parts = key.split("/")
        if len(parts) != 4 or parts[0] != "evaluators" or parts[3] not in self.keep:
            return None
        weights = next((v.weights_sha256 for v in dict.values(self)
                        if getattr(v, "fingerprint", None) == parts[2] and hasattr(v, "weights_sha256")), None)
        if weights is None:
            return None
        stamp = f"{key}@{weights}"
        return self.folder / f"{sha256_bytes(stamp.encode())[:32]}.npz", stamp

    def __contains__(self, key: object) -> bool:
        if super().__contains__(key):
            return True
        where = self._file(key) if isinstance(key, str) else None
        if where is None or not where[0].is_file():
            return False
        try:
            with np.load(where[0], allow_pickle=False) as z:
                if bytes(z["key"]).decode() != where[1]:
                    return False
                value = z["value"]
        except Exception as err:
            log.warning("%s does not read back (%s); it is recomputed", where[0], err)
            return False
        super().__setitem__(key, value)
        self.loaded.append(str(key))
        return True

    def __getitem__(self, key: str) -> Any:
        if not super().__contains__(key):
            self.__contains__(key)
        return super().__getitem__(key)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        where = self._file(key) if isinstance(value, np.ndarray) else None
        if where is not None:
            where[0].parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(where[0]) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, allow_pickle=False, key=np.frombuffer(where[1].encode(), np.uint8), value=value)


def _image_hash(images: RadioImages) -> str:
    """The content hash memo_apply keys a whole set's evaluator outputs by."""
    return sha256_bytes(images.images.tobytes())[:16]


# -- evaluate ----------------------------------------------------------------------------------------
def evaluate(config: ExternalConfig) -> RunSummary:
    """Check the samples, then score them (and, once per run directory, the real-vs-real row) into
    ``config.out``; return what was done, reused, skipped or failed."""
    preset = get_preset(config.preset)
    if isinstance(config.seed, bool) or not isinstance(config.seed, (int, np.integer)) or config.seed < 0:
        raise InputError(f"the seed must be a non-negative integer; got {config.seed!r}")
    if config.n_generated is not None and (isinstance(config.n_generated, bool) or not isinstance(
            config.n_generated, (int, np.integer)) or config.n_generated < 2):
        raise InputError(f"--n-generated must be an integer >= 2; got {config.n_generated!r}")
    if config.scale not in SCALES:
        raise InputError(f"--scale must be one of {', '.join(SCALES)}; got {config.scale!r}")
    source = Path(config.samples)
    name = config.name or re.sub(r"[^A-Za-z0-9_.+-]", "-", source.name.split(".")[0] or "external")
    out = Path(config.out)
    _check_name(name, out, config.seed)
    check_out(out)
    dataset_cls = registry.dataset(config.dataset)
    names = config.metrics if config.metrics is not None else default_metrics(dataset_cls.task, preset.name)
    metrics = build_metrics(names, config.metric_options, preset.name, dataset_cls.task)
    resolution = config.dataset_options.get("resolution", preset.resolution)
    ds_opts = {k: v for k, v in config.dataset_options.items() if k != "resolution"}
    dataset: Dataset = dataset_cls(resolution=resolution, data_dir=config.data_dir, **ds_opts)
    train, reference = dataset.load(dataset.train_split), dataset.load(dataset.reference_split)
    if len(reference) == 0 or len(train) == 0:
        raise InputError(f"dataset {config.dataset!r} has an empty train or reference split")
    arrays, source_sha = read_samples(source, reference.class_names)
    directory_n = config.n_generated or _directory_n_generated(out)
    n_generated = directory_n or len(reference)
    samples, checks = check_samples(arrays, reference, scale=config.scale, resize=config.resize, source=str(source),
                                    n_scored=n_generated, rng=np.random.default_rng([config.seed, 2]))
    # -- checked: from here on things are written
    fingerprint = dataset.fingerprint()
    device = config.device or default_device()
    run_config = RunConfig(generators=[], dataset=config.dataset, out=out, metrics=names, preset=preset.name,
                           seeds=[config.seed], data_dir=config.data_dir, dataset_options=config.dataset_options,
                           metric_options=config.metric_options, device=device, reference=config.reference,
                           n_generated=directory_n)
    real, real_source = reference_set(dataset, train, reference)
    reference_row = {"source": real_source, "n": len(real), "class_counts": real.class_counts()}
    manifest = open_manifest(out, run_config, dataset, fingerprint, train, reference,
                              reference_row if config.reference else None)
    held_out = held_out_set(real, real_source, reference, dataset.train_split)
    memo = DiskMemo(out / STATISTICS_DIR, {_image_hash(s) for s in (reference, real, train, held_out)})

    def context(seed: int) -> MetricContext:
        return MetricContext(dataset=config.dataset, dataset_fingerprint=fingerprint, train=train, preset=preset,
                             seed=seed, device=device, cache_dir=default_cache_dir(), memo=memo)

    summary = RunSummary(out=out)
    if config.reference:
        label = f"{REFERENCE_ROW}/seed-{REFERENCE_SEED}"
        inputs = {"real_sha256": custody.set_sha256(real), "reference_sha256": custody.set_sha256(reference)}
        evaluate_row(out / label, real, reference, metrics, context(REFERENCE_SEED), inputs=inputs,
                     provenance={**manifest["provenance"], "seed": REFERENCE_SEED, "reference_source": real_source},
                     summary=summary, label=label, held_out=held_out)
    label = f"{name}/seed-{config.seed}"
    rowdir = out / label
    info = _store_samples(rowdir, samples, source, source_sha, checks)
    inputs = {"samples_sha256": info["sha256"], "source_sha256": source_sha}
    custody.discard_other_inputs(rowdir, inputs)
    supports = frozenset(k for k, f in (("class", "labels"), ("flux", "peak_flux"), ("mask", "masks"))
                         if getattr(samples, f) is not None)
    provenance = {**manifest["provenance"], "seed": config.seed, "generator": name,
                  "generator_config": {"name": name, "external": True}, "external": True,
                  "source": source.name, "source_sha256": source_sha, "checks": checks,
                  "n_generated": len(samples)}
    evaluate_row(rowdir, samples, reference, metrics, context(config.seed), inputs=inputs, supports=supports,
                 provenance=provenance, summary=summary, label=label)
    return summary


def _directory_n_generated(out: Path) -> int | None:
    """The generated-set size the run directory's manifest asks for (None: the reference split's)."""
    manifest = custody.record(out / "manifest.json", config=dict) if (out / "manifest.json").exists() else None
    n = (manifest or {}).get("config", {}).get("n_generated")
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 2 else None


def _check_name(name: str, out: Path, seed: int) -> None:
    """InputError for a row name that is not a plain folder name, or names the reference row, a radiobench
    generator, or a trained generator's folder in ``out``."""
    if not NAME.fullmatch(name) or name in (REFERENCE_ROW, STATISTICS_DIR, "report"):
        raise InputError(f"--name {name!r}: give a plain row name (letters, digits, _ . + -), not "
                         f"{REFERENCE_ROW!r}, {STATISTICS_DIR!r} or 'report'")
    if name in registry.names("generators", include_broken=True):
        raise InputError(f"--name {name!r} is a radiobench generator's row; name the external set otherwise "
                         f"(e.g. {name}-external)")
    seed_dir = out / name / f"seed-{seed}"
    info = custody.record(seed_dir / "samples.json") if (seed_dir / "samples.json").exists() else None
    if (seed_dir / "checkpoint").exists() or (info is not None and not info.get("external")):
        raise InputError(f"{seed_dir} holds a trained generator's row; choose another --name")


def _store_samples(rowdir: Path, samples: RadioImages, source: Path, source_sha: str,
                   checks: dict[str, Any]) -> dict[str, Any]:
    """Write the checked set and its record into ``rowdir`` (the stored file is kept when it holds this set:
    ``np.savez`` files differ byte-wise between writes, and its sha256 is what the metric records name)."""
    path, info_path = rowdir / "samples.npz", rowdir / "samples.json"
    content = custody.set_sha256(samples)
    old = custody.record(info_path) if path.exists() else None
    if old is None or old.get("content_sha256") != content or old.get("sha256") != sha256_file(path):
        samples.save(path)
    info = {"external": True, "source": source.name, "source_sha256": source_sha, "n": len(samples),
            "sha256": sha256_file(path), "content_sha256": content, "checks": checks}
    if info != old:
        write_json(info_path, info)
    return info
