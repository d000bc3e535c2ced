"""MiraBest FRI/FRII galaxies (Miraghaei & Best 2017; Porter & Scaife) as un-thresholded FIRST FITS cutouts.

Each file is a FIRST (Becker et al. 1995) cutout in Jy/beam with 1.8" pixels and WCS (the shared copy holds
the central 150x150 of the authors' 300x300 SkyView images). ``labels.csv`` (or, failing that, the file name's
first three digits) gives the MiraBest code: first digit 1 FRI, 2 FRII, 3 hybrid; second digit 0 confident,
1 uncertain; third digit 0 standard, 1 double-double, 2 wide-angle tail, 4 head-tail.

Preprocessing per image, in this order (physical units until the last step):
  1. non-finite pixels: ``nan_policy`` "zero" (set to 0), "drop" (leave the image out) or "raise"; counts
     are kept in ``nan_report`` (the shared 150x150 copy has none; an image left empty is dropped and
     counted in ``selection_report``);
  2. noise: median and std of the whole cutout after 3-sigma clipping (astropy sigma_clipped_stats) at
     1.8" pixels -> ``extra["noise_rms"]`` (Jy/beam);
  3. negative pixels set to 0 (paper 000 Sect. 3.1: reconstruction artefacts). The negative half of the
     noise is lost, so the stored background is a half-Gaussian, not the thermal noise;
  3b. S/N_sigma of paper 000 Sect. 3.1 (mean source / mean background pixel, see ``_common.snr_sigma``) on the
     clipped central crop -> ``extra["snr_sigma"]``; ``min_snr`` keeps images with S/N_sigma >= min_snr. The
     paper's equations leave open on which stage of the image it is taken; on raw cutouts the background mean
     is ~0 and the ratio is undefined, so we take it after step 3. On that scale even a pure-noise crop passes
     the paper's LoTSS cut of 5, which therefore removes nothing here (benchmarks/README.md, "Datasets");
  4. central ``crop`` x ``crop`` window (default 80 = 144", the field of the ``first`` dataset), mean-binned
     to ``resolution`` (a divisor of the crop; 40 -> 3.6" pixels);
  5. division by the image's maximum: ``peak_flux`` (Jy/beam, after steps 3-4) times the image restores step 4.

Split: one seeded split of the whole catalogue, 80/10/10 per (class, confidence) stratum, made before any
selection, so an image is in the same split for every choice of ``confidence``/``include_hybrid``/``min_snr``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
from pathlib import Path
from typing import Any

import numpy as np

from radiobench.datafetch import download, extract_zip, first_available, read_sha256sums
from radiobench.options import Option, Options
from radiobench.store import sha256_file
from radiobench.types import InputError, RadioImages, SurveyInfo

from ._common import (
    FIRST_BEAM_ARCSEC,
    FIRST_FREQ_HZ,
    SPLIT_OPTIONS,
    MemoisedSplits,
    apply_nan_policy,
    bin_mean,
    cache_root,
    cached_arrays,
    central_crop,
    clipped_stats,
    data_folder,
    peak_scale,
    plan_resolution,
    read_simple_fits,
    snr_sigma,
    stratified_split,
)

ENV = "RADIOBENCH_MIRABEST_DIR"
REPO_ARCHIVES = (  # the MiraBest authors' repository with the FITS folder
    "https://github.com/fmporter/MiraBest_builder/archive/refs/heads/main.zip",
    "https://github.com/fmporter/MiraBest_builder/archive/refs/heads/master.zip",
)
CONFIDENCE = {"confident": ("0",), "uncertain": ("1",), "all": ("0", "1")}
SPLITS = ("train", "valid", "test")
NAME_RE = re.compile(r"^([123][01][0-9])_")
HOW_TO_GET = (
    f"Pass data_dir / set {ENV} to a folder of MiraBest FITS files (with labels.csv), or run "
    "`radiobench data fetch mirabest` (downloads the authors' repository)."
)


_MEMO: dict[tuple, dict[str, np.ndarray]] = {}


def _read_fits(path: Path, blob: bytes) -> tuple[np.ndarray, Any]:
    """(float32 image, header mapping) via the fast reader for plain files, else astropy."""
    fast = read_simple_fits(blob)
    if fast is not None:
        return fast
    from astropy.io import fits

    try:
        with fits.open(io.BytesIO(blob), memmap=False) as hdul:
            hdu = next(h for h in hdul if h.data is not None and h.data.ndim >= 2)
            data = np.asarray(hdu.data, dtype=np.float32)
            while data.ndim > 2:
                data = data[0]
            return data, dict(hdu.header)
    except (OSError, StopIteration, ValueError, TypeError) as e:
        raise InputError(f"mirabest: cannot read {path}: {e}") from None


def unpacked_dir() -> Path:
    return cache_root() / "data" / "mirabest"


class MiraBestDataset(MemoisedSplits):
    """MiraBest FRI/FRII FIRST cutouts in Jy/beam: peak flux, noise rms, S/N_sigma selection.

    Options: confidence ("confident" | "uncertain" | "all"), include_hybrid (False), nan_policy
    ("zero" | "drop" | "raise"), min_snr (None), crop (80), split_seed (0), split_fractions (0.8, 0.1, 0.1).
    """

    name = "mirabest"
    description = "MiraBest FRI/FRII FIRST cutouts (Jy/beam, un-thresholded) with peak flux and noise rms"
    provides = frozenset({"labels", "flux"})
    splits = SPLITS
    OPTIONS = Options(
        SPLIT_OPTIONS, confidence=Option(str, choices=tuple(CONFIDENCE)), include_hybrid=Option(bool),
        min_snr=Option(float, nullable=True), crop=Option(int, low=1, nullable=True),
    )

    def __init__(
        self,
        resolution: int | None = None,
        data_dir: str | Path | None = None,
        *,
        confidence: str = "confident",
        include_hybrid: bool = False,
        nan_policy: str = "zero",
        min_snr: float | None = None,
        crop: int | None = None,
        split_seed: int = 0,
        split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
        **options: Any,
    ):
        resolution = self.check_options(resolution, {
            "confidence": confidence, "include_hybrid": include_hybrid, "nan_policy": nan_policy, "min_snr": min_snr,
            "crop": crop, "split_seed": split_seed, "split_fractions": split_fractions, **options})
        self.crop, self.factor = plan_resolution(resolution, int(crop or 80), crop is not None, 150, "mirabest")
        super().__init__(
            self.crop // self.factor, data_dir, confidence=confidence, include_hybrid=bool(include_hybrid),
            nan_policy=nan_policy, min_snr=min_snr, crop=self.crop, split_seed=int(split_seed),
            split_fractions=tuple(float(f) for f in split_fractions),
        )
        self.class_names = ("FRI", "FRII", "hybrid") if include_hybrid else ("FRI", "FRII")
        self.nan_report: dict[str, Any] = {}
        self.selection_report: dict[str, int] = {}
        self._data: dict[str, np.ndarray] | None = None

    # -- data location ---------------------------------------------------------------------
    def folder(self) -> Path:
        folder = data_folder(self.data_dir, ENV)
        if folder is None:
            folder = unpacked_dir()
            if not folder.is_dir():
                raise InputError(f"mirabest: no data folder given and nothing in the cache ({folder}). {HOW_TO_GET}")
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise InputError(f"mirabest: data folder {folder} {what}. {HOW_TO_GET}")
        return folder

    def fetch(self) -> Path:
        """Download the authors' repository archive and unpack its FITS folder into the cache.

        The archive has no published checksum; the sha256 of what was downloaded is recorded in SOURCE.json."""
        if data_folder(self.data_dir, ENV) is not None:
            folder = self.folder()
            self.catalogue(folder)  # a supplied folder must hold the files
            return folder
        target = unpacked_dir()
        if target.is_dir() and any(target.glob("*.fits")):
            return target
        downloads = cache_root() / "downloads"
        archive_path = downloads / "MiraBest_builder.zip"
        sources = [(url, lambda url=url: download(url, archive_path, timeout=60)) for url in REPO_ARCHIVES]
        origin, archive = first_available(sources, "the MiraBest FITS files", HOW_TO_GET)
        extract_zip(archive, target, members=lambda n: "/FITS/" in n and n.endswith(".fits"), flatten=True,
                    marker={"origin": origin, "archive_sha256": sha256_file(archive)})
        return target

    def catalogue(self, folder: Path) -> list[tuple[str, str]]:
        """(file, MiraBest code) for every image: from labels.csv, else from the file names."""
        csv_path = folder / "labels.csv"
        if csv_path.is_file():
            with open(csv_path, newline="") as fh:
                rows = list(csv.DictReader(fh))
            if not rows or not {"file", "code"} <= set(rows[0]):
                raise InputError(f"{csv_path}: needs columns 'file' and 'code'")
            cat = [(r["file"], r["code"].strip()) for r in rows]
        else:
            cat = [(p.name, m.group(1)) for p in sorted(folder.glob("*.fits")) if (m := NAME_RE.match(p.name))]
        bad = [f"{f} ({c})" for f, c in cat if not re.fullmatch(r"[123][01][0-9]", c)]
        if bad:
            raise InputError(f"mirabest: {len(bad)} entries have no valid MiraBest code: {', '.join(bad[:5])}")
        if not cat:
            raise InputError(f"mirabest: no MiraBest FITS files in {folder}. {HOW_TO_GET}")
        missing = [f for f, _ in cat if not (folder / f).is_file()]
        if missing:
            raise InputError(f"mirabest: {len(missing)} listed file(s) missing from {folder}: {', '.join(missing[:5])}")
        return sorted(cat)

    # -- loading -------------------------------------------------------------------------
    def _products(self, folder: Path, cat: list[tuple[str, str]]) -> dict[str, np.ndarray]:
        """Per-file arrays for the whole catalogue (before any selection), cached by content hash on disk
        (``<cache>/preprocessed``) and in memory, so datasets with other selection options reuse them.

        Every file is read and hashed on each load and checked against SHA256SUMS
        when the folder has one; the parsed, clipped and measured arrays come from the cache."""
        sums_path = folder / "SHA256SUMS"
        sums = read_sha256sums(sums_path) if sums_path.is_file() else None
        blobs, digests = [], []
        for fname, _ in cat:
            path = folder / fname
            blob = path.read_bytes()
            actual = hashlib.sha256(blob).hexdigest()
            if sums is not None:
                if fname not in sums:
                    raise InputError(f"mirabest: {fname} is not listed in {sums_path}")
                if actual != sums[fname]:
                    raise InputError(
                        f"mirabest: checksum mismatch for {path}: expected sha256 {sums[fname]} (SHA256SUMS), "
                        f"got {actual}; the file is corrupt or modified - restore it from the original release"
                    )
            blobs.append(blob)
            digests.append(actual)
        files_digest = hashlib.sha256("".join(f + d for (f, _), d in zip(cat, digests)).encode()).hexdigest()
        key = {"files": files_digest, "crop": self.crop}
        memo_key = str(key)
        if memo_key not in _MEMO:
            if len(_MEMO) >= 4:
                _MEMO.pop(next(iter(_MEMO)))
            _MEMO[memo_key] = cached_arrays(
                "mirabest", key, lambda: self._build_products(folder, cat, blobs), compress=False
            )
        return _MEMO[memo_key]

    def _build_products(self, folder: Path, cat: list[tuple[str, str]], blobs: list[bytes]) -> dict[str, np.ndarray]:
        raws, beams = [], []
        for (fname, _), blob in zip(cat, blobs):
            path = folder / fname
            data, hdr = _read_fits(path, blob)
            if min(data.shape) < self.crop:
                raise InputError(
                    f"mirabest: {fname} is {data.shape[0]}x{data.shape[1]}, smaller than the crop {self.crop}"
                )
            beams.append((float(hdr["BMAJ"]) * 3600, float(hdr["BMIN"]) * 3600, float(hdr.get("BPA", 0.0)))
                         if "BMAJ" in hdr and "BMIN" in hdr else (np.nan, np.nan, np.nan))
            raws.append(data)
        nan_count = np.array([int((~np.isfinite(r)).sum()) for r in raws])
        raws = [np.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0) if k else r for r, k in zip(raws, nan_count)]
        if len({r.shape for r in raws}) == 1:
            noise = clipped_stats(np.stack(raws))[1]
        else:
            noise = np.concatenate([clipped_stats(r[None])[1] for r in raws])
        clipped = np.stack([central_crop(np.clip(r, 0, None), self.crop) for r in raws])
        return {"nan_count": nan_count, "noise": noise, "snr": snr_sigma(clipped), "phys": clipped.astype(np.float32),
                "beam": np.array(beams)}

    def _prepare(self) -> dict[str, np.ndarray]:
        if self._data is not None:
            return self._data
        folder = self.folder()
        cat = self.catalogue(folder)
        split_all = stratified_split(
            [c[:2] for _, c in cat], self.options["split_fractions"], self.options["split_seed"], SPLITS
        )
        wanted_conf = CONFIDENCE[self.options["confidence"]]
        classes = ("1", "2", "3") if self.options["include_hybrid"] else ("1", "2")
        chosen = np.array([c[0] in classes and c[1] in wanted_conf for _, c in cat], dtype=bool)
        prod = self._products(folder, cat)
        names = [f for f, _ in cat]
        idx = np.flatnonzero(chosen)
        _, keep, self.nan_report = apply_nan_policy(
            [np.full(int(prod["nan_count"][i]), np.nan) for i in idx], [names[i] for i in idx],
            self.options["nan_policy"], "mirabest")
        idx = idx[keep]
        images, peak = peak_scale(bin_mean(prod["phys"][idx].astype(np.float64), self.factor))
        ok = peak > 0
        min_snr = self.options["min_snr"]
        if min_snr is not None:
            ok &= np.nan_to_num(prod["snr"][idx], nan=-np.inf) >= float(min_snr)
        self.selection_report = {
            "catalogue": len(cat), "selected_by_class_confidence": int(chosen.sum()),
            "dropped_nan": int(chosen.sum()) - len(idx), "dropped_empty": int((peak <= 0).sum()),
            "dropped_snr": int(((peak > 0) & ~ok).sum()), "kept": int(ok.sum()),
        }
        idx = idx[ok]
        codes = np.array([cat[i][1] for i in idx], dtype=np.int64)
        beams = prod["beam"][idx]
        self._beam_from_header = (
            len(idx) > 0 and bool(np.all(np.isfinite(beams))) and len(np.unique(beams, axis=0)) == 1
        )
        self._beam = tuple(float(b) for b in beams[0]) if self._beam_from_header else None
        self._data = {
            "images": images[ok], "peak": peak[ok], "labels": codes // 100 - 1, "codes": codes,
            "split": split_all[idx], "noise": prod["noise"][idx], "snr": prod["snr"][idx],
            "ids": np.array([names[i] for i in idx], dtype=str),
        }
        return self._data

    def build_split(self, split: str) -> RadioImages:
        d = self._prepare()
        sel = d["split"] == SPLITS.index(split)
        return RadioImages(
            images=d["images"][sel][:, None],
            survey=self.survey(),
            labels=d["labels"][sel],
            class_names=self.class_names,
            peak_flux=d["peak"][sel],
            ids=tuple(d["ids"][sel].tolist()),
            extra={
                "noise_rms": d["noise"][sel].astype(np.float64),
                "snr_sigma": d["snr"][sel].astype(np.float64),
                "mirabest_code": d["codes"][sel],
            },
        )

    def survey(self) -> SurveyInfo:
        d = self._prepare()
        beam = self._beam if self._beam_from_header else (FIRST_BEAM_ARCSEC, FIRST_BEAM_ARCSEC, 0.0)
        beam_note = "beam from the FITS headers" if self._beam_from_header else (
            "the FITS headers carry no BMAJ/BMIN: FIRST restoring beam 5.4\" supplied")
        return SurveyInfo(
            name="FIRST",
            pixel_scale_arcsec=1.8 * self.factor,
            beam_fwhm_arcsec=beam,
            frequency_hz=FIRST_FREQ_HZ,
            units="scaled [0, 1] (negatives clipped, divided by per-image peak; x peak_flux = Jy/beam)",
            noise_rms=float(np.median(d["noise"])) if len(d["noise"]) else None,
            notes=(
                f"MiraBest (Miraghaei & Best 2017); {beam_note}; central {self.crop}x{self.crop} crop"
                + (f", {self.factor}x{self.factor} mean-binned" if self.factor > 1 else "")
                + "; noise_rms = median of the per-image 3-sigma-clipped std at 1.8\" pixels (extra['noise_rms'])"
            ),
        )
