"""Bring your own images: a folder of FITS, PNG or NPY files, with an optional ``labels.csv``.

``labels.csv`` has columns ``file,label`` and optionally ``split`` (train/valid/test); every image must be
listed and every listed file must exist. Without a split column a seeded split stratified by label is made
(``split_fractions``, ``split_seed``). Class names are the sorted labels, or ``classes`` in that order
(then a label outside it is an error). Each image: non-finite pixels per ``nan_policy`` (as ``mirabest``),
negatives set to 0, central crop to ``resolution`` (native size when None; all images must then share one
shape), divided by its maximum. ``peak_flux`` is recorded when every file is FITS (header BUNIT, usually
Jy/beam); survey metadata come from the first FITS header (CDELT2, BMAJ/BMIN/BPA, a FREQ axis or
RESTFRQ) or from the ``pixel_scale_arcsec`` / ``beam_arcsec`` / ``frequency_hz`` options.
"""
from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from radiobench.options import POSITIVE, Option, Options
from radiobench.types import InputError, RadioImages, SurveyInfo

from ._common import SPLIT_OPTIONS, MemoisedSplits, apply_nan_policy, central_crop, peak_scale, stratified_split

SPLITS = ("train", "valid", "test")
SUFFIXES = {".fits": "fits", ".fit": "fits", ".fts": "fits", ".fits.gz": "fits", ".png": "png", ".npy": "npy"}


def file_kind(path: Path) -> str | None:
    name = path.name.lower()
    return next((k for s, k in SUFFIXES.items() if name.endswith(s)), None)


def read_image(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """A 2-D float64 image (singleton leading axes dropped) and FITS header facts."""
    kind = file_kind(path)
    meta: dict[str, Any] = {}
    try:
        if kind == "npy":
            data = np.load(path, allow_pickle=False)
        elif kind == "png":
            from PIL import Image

            with Image.open(path) as im:
                im.load()
                if im.mode not in ("L", "I", "I;16", "F", "1"):
                    im = im.convert("L")
                data = np.asarray(im)
        else:
            from astropy.io import fits

            with fits.open(path, memmap=False) as hdul:
                hdu = next((h for h in hdul if h.data is not None and np.ndim(h.data) >= 2), None)
                if hdu is None:
                    raise ValueError("no image HDU")
                data, hdr = np.asarray(hdu.data), hdu.header
                meta["unit"] = str(hdr.get("BUNIT", "")).strip()
                if "CDELT2" in hdr:
                    meta["pixel_scale_arcsec"] = abs(float(hdr["CDELT2"])) * 3600
                if "BMAJ" in hdr and "BMIN" in hdr:
                    meta["beam"] = (float(hdr["BMAJ"]) * 3600, float(hdr["BMIN"]) * 3600, float(hdr.get("BPA", 0.0)))
                for ax in range(1, int(hdr.get("NAXIS", 0)) + 1):
                    if str(hdr.get(f"CTYPE{ax}", "")).upper().startswith("FREQ"):
                        meta["frequency_hz"] = float(hdr[f"CRVAL{ax}"])
                if "frequency_hz" not in meta and "RESTFRQ" in hdr:
                    meta["frequency_hz"] = float(hdr["RESTFRQ"])
    except Exception as e:  # any reader failure is the file's fault: name it
        raise InputError(f"folder: cannot read {path}: {type(e).__name__}: {e}") from None
    data = np.asarray(data, dtype=np.float64)
    while data.ndim > 2 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 2:
        raise InputError(f"folder: {path} holds an array of shape {data.shape}; expected a single 2-D image")
    return data, meta


class FolderDataset(MemoisedSplits):
    """A directory of FITS / PNG / NPY images with optional labels.csv (file,label[,split]).

    Options: classes, nan_policy ("zero" | "drop" | "raise"), split_seed (0), split_fractions (0.8, 0.1, 0.1),
    pixel_scale_arcsec, beam_arcsec, frequency_hz, survey_name."""

    name = "folder"
    description = "bring-your-own folder of FITS/PNG/NPY images with optional labels.csv"
    provides = frozenset({"labels", "flux"})  # labels with labels.csv; flux when all files are FITS
    splits = SPLITS
    _POSITIVE = replace(POSITIVE, nullable=True)
    OPTIONS = Options(
        SPLIT_OPTIONS, classes=Option((str,), nullable=True), pixel_scale_arcsec=_POSITIVE, frequency_hz=_POSITIVE,
        beam_arcsec=Option((float,), low=0, nullable=True),  # (major, minor, pa), or one FWHM (checked as [FWHM])
        survey_name=Option(str),
    )

    def __init__(
        self,
        resolution: int | None = None,
        data_dir: str | Path | None = None,
        *,
        classes: tuple[str, ...] | list[str] | None = None,
        nan_policy: str = "zero",
        split_seed: int = 0,
        split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
        pixel_scale_arcsec: float | None = None,
        beam_arcsec: float | tuple[float, float, float] | None = None,
        frequency_hz: float | None = None,
        survey_name: str = "folder",
        **options: Any,
    ):
        one_beam = isinstance(beam_arcsec, (int, float)) and not isinstance(beam_arcsec, bool)
        resolution = self.check_options(resolution, {
            "classes": classes, "nan_policy": nan_policy, "split_seed": split_seed, "split_fractions": split_fractions,
            "pixel_scale_arcsec": pixel_scale_arcsec, "beam_arcsec": [beam_arcsec] if one_beam else beam_arcsec,
            "frequency_hz": frequency_hz, "survey_name": survey_name, **options})
        if data_dir is None:
            raise InputError("folder: pass data_dir, the folder holding your images (and optional labels.csv)")
        super().__init__(
            resolution, data_dir, classes=list(classes) if classes else None, nan_policy=nan_policy,
            split_seed=int(split_seed), split_fractions=tuple(float(f) for f in split_fractions),
            pixel_scale_arcsec=pixel_scale_arcsec, beam_arcsec=beam_arcsec, frequency_hz=frequency_hz,
            survey_name=survey_name,
        )
        self.nan_report: dict[str, Any] = {}
        self._data: dict[str, Any] | None = None

    def labels_csv(self, folder: Path, files: list[str]) -> tuple[dict[str, str] | None, dict[str, str] | None]:
        path = folder / "labels.csv"
        if not path.is_file():
            return None, None
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        cols = set(rows[0]) if rows else set()
        if not {"file", "label"} <= cols:
            raise InputError(
                f"folder: {path} needs columns 'file' and 'label' (optional 'split'); found {sorted(cols)}"
            )
        labels = {r["file"].strip(): (r["label"] or "").strip() for r in rows}
        empty = [f for f, lab in labels.items() if not lab]
        if empty:
            raise InputError(f"folder: {path}: empty label for {', '.join(empty[:10])}")
        not_listed = sorted(set(files) - set(labels))
        if not_listed:
            raise InputError(f"folder: {len(not_listed)} image(s) missing from {path}: {', '.join(not_listed[:10])}"
                             f"{' ...' if len(not_listed) > 10 else ''}; add a row for each or remove the files")
        absent = sorted(set(labels) - set(files))
        if absent:
            raise InputError(f"folder: {path} lists {len(absent)} file(s) not in {folder}: {', '.join(absent[:10])}")
        classes = self.options["classes"]
        if classes:
            unknown = sorted({lab for lab in labels.values() if lab not in classes})
            if unknown:
                raise InputError(f"folder: {path}: unknown label(s) {unknown}; classes are {classes}")
        splits = None
        if "split" in cols:
            splits = {r["file"].strip(): (r["split"] or "").strip() for r in rows}
            bad = sorted({s for s in splits.values() if s not in SPLITS})
            if bad:
                raise InputError(f"folder: {path}: split values {bad} are not among {list(SPLITS)}")
        return labels, splits

    def _prepare(self) -> dict[str, Any]:
        if self._data is not None:
            return self._data
        folder = Path(self.data_dir)  # type: ignore[arg-type]
        if not folder.is_dir():
            raise InputError(f"folder: {folder} is not a directory")
        paths = sorted(p for p in folder.iterdir() if p.is_file() and file_kind(p))
        if not paths:
            raise InputError(f"folder: {folder} holds no images (*.fits, *.fit, *.fits.gz, *.png, *.npy)")
        files = [p.name for p in paths]
        labels, splits = self.labels_csv(folder, files)
        read = [read_image(p) for p in paths]
        imgs = [d for d, _ in read]
        r = self.resolution
        if r is None:
            shapes: dict[tuple, list[str]] = {}
            for f, im in zip(files, imgs):
                shapes.setdefault(im.shape, []).append(f)
            if len(shapes) > 1:
                listing = "; ".join(f"{s[0]}x{s[1]}: {len(v)} ({', '.join(v[:3])}{', ...' if len(v) > 3 else ''})"
                                    for s, v in shapes.items())
                raise InputError(f"folder: images have different shapes - {listing}. "
                                 "Pass resolution to crop them all centrally, or make them one size")
        else:
            small = [f"{f} ({im.shape[0]}x{im.shape[1]})" for f, im in zip(files, imgs) if min(im.shape) < int(r)]
            if small:
                raise InputError(f"folder: {len(small)} image(s) smaller than resolution {r}: {', '.join(small[:10])}")
        imgs, keep, self.nan_report = apply_nan_policy(imgs, files, self.options["nan_policy"], "folder")
        if not keep.any():
            raise InputError(f"folder: every image in {folder} was dropped by nan_policy='drop'")
        crop = int(r) if r is not None else None
        stack = np.stack([np.clip(central_crop(im, crop) if crop else im, 0, None) for im, k in zip(imgs, keep) if k])
        files = [f for f, k in zip(files, keep) if k]
        metas = [m for (_, m), k in zip(read, keep) if k]
        scaled, peak = peak_scale(stack)
        if (peak <= 0).any():
            empty = [f for f, pk in zip(files, peak) if pk <= 0]
            if self.options["nan_policy"] != "drop":
                raise InputError(f"folder: {len(empty)} image(s) have no positive pixel (all NaN, zero or negative): "
                                 f"{', '.join(empty[:10])}; remove them or use nan_policy='drop'")
            ok = peak > 0
            scaled, peak, stack = scaled[ok], peak[ok], stack[ok]
            files = [f for f, k in zip(files, ok) if k]
            metas = [m for m, k in zip(metas, ok) if k]
            self.nan_report["dropped_empty"] = empty
        all_fits = all(file_kind(folder / f) == "fits" for f in files)
        if labels is not None:
            class_names = tuple(self.options["classes"] or sorted(set(labels.values())))
            y = np.array([class_names.index(labels[f]) for f in files], dtype=np.int64)
        else:
            class_names, y = None, None
        if splits is not None:
            split = np.array([SPLITS.index(splits[f]) for f in files], dtype=np.int64)
        else:
            strata = y if y is not None else np.zeros(len(files), np.int64)
            split = stratified_split(strata, self.options["split_fractions"], self.options["split_seed"], SPLITS)
        self._data = {"images": scaled, "peak": peak if all_fits else None, "labels": y, "class_names": class_names,
                      "split": split, "ids": np.array(files), "meta": metas[0] if metas else {}, "all_fits": all_fits}
        return self._data

    def build_split(self, split: str) -> RadioImages:
        d = self._prepare()
        sel = d["split"] == SPLITS.index(split)
        if not sel.any():
            raise InputError(f"folder: split {split!r} is empty ({len(d['ids'])} images in all); add images or "
                             "give a 'split' column in labels.csv")
        return RadioImages(
            images=d["images"][sel][:, None],
            survey=self.survey(),
            labels=None if d["labels"] is None else d["labels"][sel],
            class_names=d["class_names"],
            peak_flux=None if d["peak"] is None else d["peak"][sel],
            ids=tuple(d["ids"][sel].tolist()),
        )

    def survey(self) -> SurveyInfo:
        d = self._prepare()
        meta, o = d["meta"], self.options
        beam = o["beam_arcsec"]
        if isinstance(beam, (int, float)):
            beam = (float(beam), float(beam), 0.0)
        elif beam is not None:
            beam = tuple(float(b) for b in beam)
        unit = meta.get("unit") or "unknown units"
        peak_note = f"; x peak_flux = {unit}" if d["all_fits"] else ""
        return SurveyInfo(
            name=o["survey_name"],
            pixel_scale_arcsec=o["pixel_scale_arcsec"] or meta.get("pixel_scale_arcsec"),
            beam_fwhm_arcsec=beam or meta.get("beam"),
            frequency_hz=o["frequency_hz"] or meta.get("frequency_hz"),
            units=f"scaled [0, 1] (negatives clipped, divided by per-image peak{peak_note})",
            notes=f"folder {self.data_dir}" + (f"; central crop to {self.resolution}" if self.resolution else ""),
        )
