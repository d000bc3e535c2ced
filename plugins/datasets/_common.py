"""Shared preprocessing for the built-in datasets: crops, binning, peak scaling, NaN policy, splits,
S/N_sigma (paper 000 Sect. 3.1), data-folder resolution and an atomic on-disk array cache."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from radiobench.interfaces import Dataset, default_cache_dir
from radiobench.options import Option, Options
from radiobench.store import atomic_path, stable_hash
from radiobench.types import InputError, RadioImages

NAN_POLICIES = ("zero", "drop", "raise")
# options of the datasets that draw their own splits (mirabest, folder)
SPLIT_OPTIONS = Options(
    nan_policy=Option(str, choices=NAN_POLICIES), split_seed=Option(int, low=0),
    split_fractions=Option((float,), low=0),
)
FIRST_BEAM_ARCSEC = 5.4  # FWHM of the FIRST restoring beam (Becker et al. 1995)
FIRST_FREQ_HZ = 1.4e9
CACHE_VERSION = 1  # bump when preprocessing changes, so old cache entries are not reused


class MemoisedSplits(Dataset):
    """A dataset whose splits are built once (``build_split``) and kept; ``load`` checks the name first."""

    def load(self, split: str) -> RadioImages:
        self.check_split(split)
        loaded: dict[str, RadioImages] = self.__dict__.setdefault("_loaded", {})
        if split not in loaded:
            loaded[split] = self.build_split(split)
        return loaded[split]

    def build_split(self, split: str) -> RadioImages:
        """The images of ``split`` (a name ``check_split`` accepted)."""
        raise NotImplementedError


def plan_resolution(resolution: int | None, crop: int, crop_given: bool, side: int, dataset: str) -> tuple[int, int]:
    """(crop side, bin factor) for an output of ``resolution`` pixels from images of ``side`` pixels.

    None -> the crop at native pixels; a divisor of the crop -> the crop mean-binned by crop/resolution;
    a larger value (when ``crop`` was not given) -> a native crop of that size."""
    if crop < 1 or crop > side:
        raise InputError(f"{dataset}: crop must lie in [1, {side}]; got {crop}")
    if resolution is None:
        return crop, 1
    r = int(resolution)
    if r >= 1 and crop % r == 0:
        return crop, crop // r
    if not crop_given and crop < r <= side:
        return r, 1
    divisors = [d for d in range(1, crop + 1) if crop % d == 0 and d >= 8]
    raise InputError(
        f"{dataset}: resolution {resolution} is not available from a {crop}x{crop} crop; choose one of "
        f"{divisors} (mean-binned) or up to {side} (a larger native crop)"
    )


def central_crop(a: np.ndarray, size: int) -> np.ndarray:
    """Central ``size`` x ``size`` window of (..., H, W); odd margins put the extra pixel at the end."""
    h, w = a.shape[-2:]
    if size > h or size > w:
        raise InputError(f"cannot crop {size}x{size} from {h}x{w} images")
    y, x = (h - size) // 2, (w - size) // 2
    return a[..., y : y + size, x : x + size]


def bin_mean(a: np.ndarray, factor: int) -> np.ndarray:
    """Mean over non-overlapping ``factor`` x ``factor`` blocks of (..., H, W) (H, W multiples of factor)."""
    if factor == 1:
        return a
    *lead, h, w = a.shape
    return a.reshape(*lead, h // factor, factor, w // factor, factor).mean(axis=(-3, -1))


def peak_scale(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Divide each image of (N, H, W) by its maximum; return (scaled float32, peaks). All-zero images stay 0."""
    peak = a.reshape(len(a), -1).max(axis=1) if len(a) else np.zeros(0)
    safe = np.where(peak > 0, peak, 1.0)
    return (a / safe[:, None, None]).astype(np.float32), peak


def apply_nan_policy(
    images: list[np.ndarray], names: Sequence[str], policy: str, dataset: str
) -> tuple[list[np.ndarray], np.ndarray, dict[str, Any]]:
    """Replace (zero), drop or refuse (raise) non-finite pixels; return (images, kept mask, report).

    report = {"policy", "files_with_nan": {name: count}, "nan_pixels": total, "dropped": [names]}."""
    if policy not in NAN_POLICIES:
        raise InputError(f"{dataset}: nan_policy must be one of {NAN_POLICIES}; got {policy!r}")
    counts = {n: int((~np.isfinite(im)).sum()) for n, im in zip(names, images)}
    bad = {n: c for n, c in counts.items() if c}
    if bad and policy == "raise":
        listing = ", ".join(f"{n} ({c} px)" for n, c in list(bad.items())[:10])
        raise InputError(
            f"{dataset}: {len(bad)} image(s) contain NaN/inf pixels: {listing}{' ...' if len(bad) > 10 else ''}; "
            "use nan_policy='zero' to set them to 0 or 'drop' to leave those images out"
        )
    keep = np.array([counts[n] == 0 or policy == "zero" for n in names], dtype=bool)
    out = [np.nan_to_num(im, nan=0.0, posinf=0.0, neginf=0.0) if counts[n] else im for n, im in zip(names, images)]
    report = {
        "policy": policy,
        "files_with_nan": bad,
        "nan_pixels": int(sum(bad.values())),
        "dropped": [n for n in names if counts[n] and policy == "drop"],
    }
    return out, keep, report


def clipped_stats(images: np.ndarray, sigma: float = 3.0, maxiters: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Per-image (median, std) of (N, H, W) after iterative sigma clipping (astropy ``sigma_clipped_stats``)."""
    from astropy.stats import sigma_clipped_stats

    if len(images) == 0:
        return np.zeros(0), np.zeros(0)
    _, med, std = sigma_clipped_stats(images, sigma=sigma, maxiters=maxiters, axis=(1, 2))
    return np.asarray(med, dtype=np.float64), np.asarray(std, dtype=np.float64)


def snr_sigma(images: np.ndarray, tau0: float = 5.0, step: float = 0.5) -> np.ndarray:
    """S/N_sigma of paper 000 Sect. 3.1 (Eqs. 9-10) for each image of (N, H, W).

    Median m and std s from sigma_clipped_stats; source pixels are x > m + tau s with tau = 5, lowered in
    steps of 0.5 until some pixel qualifies; the rest is background; S/N_sigma = mean(source) / mean(background).
    NaN where the ratio is undefined (no source pixels, no background pixels, background mean <= 0)."""
    x = np.asarray(images, dtype=np.float64)
    med, std = clipped_stats(x)
    out = np.full(len(x), np.nan)
    for i, (img, m, s) in enumerate(zip(x, med, std)):
        if not (np.isfinite(s) and s > 0):
            continue
        tau = tau0
        src = img > m + tau * s
        while not src.any() and tau > 0:
            tau -= step
            src = img > m + tau * s
        if src.any() and not src.all():
            bg = img[~src].mean()
            if bg > 0:
                out[i] = img[src].mean() / bg
    return out


def stratified_split(
    strata: Sequence[Any], fractions: Sequence[float], seed: int, splits: Sequence[str]
) -> np.ndarray:
    """Assign each item a split index: within every stratum a seeded permutation cut by ``fractions``
    (largest-remainder rounding, so every split gets its share of every stratum)."""
    f = np.asarray(fractions, dtype=np.float64)
    if len(f) != len(splits) or np.any(f < 0) or not np.isclose(f.sum(), 1.0):
        raise InputError(
            f"split fractions must be {len(splits)} non-negative numbers summing to 1; got {tuple(fractions)}"
        )
    strata = np.asarray([str(s) for s in strata])
    out = np.empty(len(strata), dtype=np.int64)
    rng = np.random.default_rng(seed)
    for s in sorted(set(strata.tolist())):
        idx = np.flatnonzero(strata == s)
        idx = idx[rng.permutation(len(idx))]
        raw = f * len(idx)
        counts = np.floor(raw).astype(int)
        counts[np.argsort(-(raw - counts), kind="stable")[: len(idx) - counts.sum()]] += 1
        out[idx] = np.repeat(np.arange(len(splits)), counts)
    return out


def data_folder(data_dir: Path | None, env: str) -> Path | None:
    """The user-supplied folder: the ``data_dir`` argument, else the environment variable, else None."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    value = os.environ.get(env)
    return Path(value).expanduser() if value else None


def cache_root() -> Path:
    return default_cache_dir()


def cached_arrays(
    name: str, key: Any, build: Callable[[], dict[str, np.ndarray]], compress: bool = True
) -> dict[str, np.ndarray]:
    """Arrays from ``<cache>/preprocessed/<name>-<hash(key)>.npz``, built and written atomically if absent."""
    path = cache_root() / "preprocessed" / f"{name}-{stable_hash([CACHE_VERSION, key], 20)}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError):
            pass  # unreadable entry (e.g. disk trouble): rebuild it below
    arrays = build()
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            (np.savez_compressed if compress else np.savez)(fh, **arrays)
    except OSError:
        pass  # a read-only cache only costs speed
    return arrays


def read_simple_fits(raw: bytes) -> tuple[np.ndarray, dict[str, Any]] | None:
    """Image and header cards of a plain single-HDU float FITS file straight from its bytes, or None.

    Faster than astropy's header parsing (benchmarks/README.md, "Datasets"); reads primary HDUs with BITPIX -32/-64, no
    BSCALE/BZERO/BLANK and no extensions (the MiraBest cutouts). Anything else returns None (use astropy)."""
    cards: dict[str, Any] = {}
    pos = 0
    while True:
        if pos + 2880 > len(raw):
            return None
        block = raw[pos : pos + 2880]
        pos += 2880
        done = False
        for i in range(0, 2880, 80):
            card = block[i : i + 80].decode("ascii", "replace")
            key = card[:8].strip()
            if key == "END":
                done = True
                break
            if card[8:10] != "= ":
                continue
            value = card[10:].split("/", 1)[0].strip() if not card[10:].lstrip().startswith("'") else card[10:].strip()
            if value.startswith("'"):
                cards[key] = value[1:].split("'", 1)[0].strip()
            else:
                try:
                    cards[key] = float(value) if any(c in value for c in ".EeDd") else int(value)
                except ValueError:
                    cards[key] = value
        if done:
            break
    if cards.get("SIMPLE") != "T" or cards.get("BITPIX") not in (-32, -64) or cards.get("EXTEND") == "T":
        return None
    if any(k in cards for k in ("BSCALE", "BZERO", "BLANK")) or cards.get("NAXIS") not in (2, 3, 4):
        return None
    shape = tuple(int(cards[f"NAXIS{ax}"]) for ax in range(int(cards["NAXIS"]), 0, -1))
    dtype = ">f4" if cards["BITPIX"] == -32 else ">f8"
    n = int(np.prod(shape))
    if len(raw) < pos + n * np.dtype(dtype).itemsize:
        return None
    data = np.frombuffer(raw, dtype=dtype, count=n, offset=pos).reshape(shape)
    while data.ndim > 2 and data.shape[0] == 1:
        data = data[0]
    return (data.astype(np.float32), cards) if data.ndim == 2 else None
