"""The built-in datasets: first, mirabest, synthetic, folder."""
from __future__ import annotations

import inspect
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from radiobench.types import InputError, RadioImages
from radiobench_plugins.datasets._common import stratified_split
from radiobench_plugins.datasets.first import FirstDataset
from radiobench_plugins.datasets.folder import FolderDataset
from radiobench_plugins.datasets.mirabest import MiraBestDataset
from radiobench_plugins.datasets.synthetic import SyntheticDataset

SHARED = Path(os.environ.get("RADIOBENCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
FIRST_DIR = SHARED / "first"
MIRABEST_DIR = SHARED / "mirabest-fits"
needs_first = pytest.mark.skipif(not (FIRST_DIR / "galaxy_data_h5.zip").is_file(),
                                 reason=f"real FIRST data not found at {FIRST_DIR} (set RADIOBENCH_SHARED_DATA)")
needs_mirabest = pytest.mark.skipif(not (MIRABEST_DIR / "labels.csv").is_file(),
                                    reason=f"MiraBest FITS not found at {MIRABEST_DIR} (set RADIOBENCH_SHARED_DATA)")


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("radiobench-cache")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, module_cache):
    """Every test uses a private cache (shared within this module, so FIRST is unpacked once) and no data env vars."""
    monkeypatch.setenv("RADIOBENCH_CACHE", str(module_cache))
    monkeypatch.delenv("RADIOBENCH_FIRST_DIR", raising=False)
    monkeypatch.delenv("RADIOBENCH_MIRABEST_DIR", raising=False)


def _check(d: RadioImages, shape: tuple[int, int]) -> None:
    assert d.images.dtype == np.float32 and d.images.shape[1:] == (1, *shape)
    assert d.images.min() >= 0 and d.images.max() <= 1
    assert d.labels is not None and d.labels.dtype == np.int64
    assert d.ids is not None and len(set(d.ids)) == len(d)


# -- first ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def first80(module_cache):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RADIOBENCH_CACHE", str(module_cache))
        ds = FirstDataset(data_dir=FIRST_DIR)
        return {s: ds.load(s) for s in ds.splits}


@needs_first
def test_first_literature_split(first80):
    sizes = {s: len(d) for s, d in first80.items()}
    assert sizes == {"train": 1758, "valid": 200, "test": 200}
    assert first80["train"].class_counts() == {"FRI": 395, "FRII": 824, "Compact": 291, "Bent": 248}
    for s in ("valid", "test"):
        assert first80[s].class_counts() == {c: 50 for c in ("FRI", "FRII", "Compact", "Bent")}
    ids = [set(d.ids) for d in first80.values()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])


@needs_first
def test_first_80_crop(first80):
    d = first80["test"]
    _check(d, (80, 80))
    peaks = d.images.reshape(len(d), -1).max(1)
    assert np.all((peaks == 1) | (peaks == 0))  # per-crop min-max (paper 000 Eq. 11); empty crops stay 0
    assert np.array_equal(d.masks[:, 0] > 0, d.images[:, 0] > 0)
    assert (d.images == 0).mean() > 0.9  # thresholded: the background is exactly 0
    assert d.survey.pixel_scale_arcsec == 1.8 and d.survey.beam_fwhm_arcsec == (5.4, 5.4, 0.0)
    assert d.peak_flux is None


@needs_first
def test_first_40_binned(first80, module_cache):
    ds = FirstDataset(resolution=40, data_dir=FIRST_DIR)
    d = ds.load("train")
    _check(d, (40, 40))
    assert ds.resolution == 40 and d.survey.pixel_scale_arcsec == 3.6
    full = first80["train"].images[:, 0].astype(np.float64)
    binned = full.reshape(-1, 40, 2, 40, 2).mean(axis=(2, 4))
    peak = binned.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(d.images[:, 0], np.where(peak > 0, binned / np.where(peak > 0, peak, 1), 0), atol=1e-6)
    assert np.array_equal(d.masks[:, 0] > 0, binned > 0)
    assert np.array_equal(d.labels, first80["train"].labels)


@needs_first
def test_first_sources_and_errors(monkeypatch, module_cache, tmp_path):
    FirstDataset(data_dir=FIRST_DIR).load("valid")  # populates the cache
    assert (module_cache / "data" / "first" / "SOURCE.json").is_file()
    monkeypatch.setenv("RADIOBENCH_FIRST_DIR", str(FIRST_DIR))
    assert len(FirstDataset(resolution=40).load("test")) == 200
    monkeypatch.delenv("RADIOBENCH_FIRST_DIR")
    assert len(FirstDataset().load("valid")) == 200  # from the cache alone
    with pytest.raises(InputError, match="neither galaxy_data_h5.zip"):
        FirstDataset(data_dir=tmp_path).load("train")
    with pytest.raises(InputError, match="resolution 30"):
        FirstDataset(resolution=30)
    with pytest.raises(InputError, match="no split"):
        FirstDataset(data_dir=FIRST_DIR).load("validation")
    monkeypatch.setenv("RADIOBENCH_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(InputError, match="radiobench data fetch first"):
        FirstDataset().load("train")


# -- mirabest ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mirabest():
    ds = MiraBestDataset(data_dir=MIRABEST_DIR)
    return ds, {s: ds.load(s) for s in ds.splits}


@needs_mirabest
def test_mirabest_loads_with_flux(mirabest):
    ds, splits = mirabest
    n = {s: len(d) for s, d in splits.items()}
    assert sum(n.values()) == 598  # confident FRI (285) + FRII (313), hybrids excluded
    assert n["train"] > 7 * n["test"] and abs(n["valid"] - n["test"]) <= 2
    for d in splits.values():
        _check(d, (80, 80))
        assert d.class_names == ("FRI", "FRII")
        assert np.all(d.peak_flux > 0) and np.allclose(d.images.reshape(len(d), -1).max(1), 1)
        assert np.all((d.extra["noise_rms"] > 5e-5) & (d.extra["noise_rms"] < 1e-3))  # FIRST ~0.15 mJy/beam
        assert set(np.unique(d.extra["mirabest_code"] // 10)) <= {10, 20}
    d = splits["train"]
    assert d.survey.beam_fwhm_arcsec == (5.4, 5.4, 0.0) and "5.4" in d.survey.notes
    assert 1e-4 < d.survey.noise_rms < 3e-4
    assert ds.nan_report["nan_pixels"] == 0 and ds.nan_report["files_with_nan"] == {}
    phys = d.physical()
    assert np.allclose(phys.reshape(len(d), -1).max(1), d.peak_flux)


@needs_mirabest
def test_mirabest_options(mirabest):
    ds, splits = mirabest
    every = MiraBestDataset(resolution=40, data_dir=MIRABEST_DIR, confidence="all", include_hybrid=True)
    train = every.load("train")
    _check(train, (40, 40))
    assert train.class_names == ("FRI", "FRII", "hybrid") and train.survey.pixel_scale_arcsec == 3.6
    total = sum(len(every.load(s)) for s in every.splits)
    assert total == 903
    # one split of the whole catalogue: confident test images are test images in every selection
    assert set(splits["test"].ids) <= set(every.load("test").ids)
    strict = MiraBestDataset(resolution=40, data_dir=MIRABEST_DIR, confidence="all", include_hybrid=True, min_snr=20)
    n_strict = sum(len(strict.load(s)) for s in strict.splits)
    assert 0 < n_strict < total and strict.selection_report["dropped_snr"] == total - n_strict
    assert np.all(strict.load("train").extra["snr_sigma"] >= 20)
    with pytest.raises(InputError, match="confidence"):
        MiraBestDataset(data_dir=MIRABEST_DIR, confidence="sure")


def _small_mirabest(tmp_path: Path, n: int = 24) -> Path:
    import csv

    rows = list(csv.DictReader(open(MIRABEST_DIR / "labels.csv")))
    pick = [r for r in rows if r["code"] == "100"][: n // 2] + [r for r in rows if r["code"] == "200"][: n // 2]
    out = tmp_path / "mb"
    out.mkdir()
    for r in pick:
        shutil.copy(MIRABEST_DIR / r["file"], out / r["file"])
    with open(out / "labels.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(pick)
    return out


@needs_mirabest
def test_mirabest_nan_policy(tmp_path):
    from astropy.io import fits

    folder = _small_mirabest(tmp_path)
    files = sorted(p.name for p in folder.glob("*.fits"))
    for name, k in ((files[0], 7), (files[-1], 150 * 150)):
        with fits.open(folder / name, mode="update") as h:
            h[0].data.reshape(-1)[:k] = np.nan
    zero = MiraBestDataset(data_dir=folder, split_fractions=(0.5, 0.25, 0.25))
    n = sum(len(zero.load(s)) for s in zero.splits)
    assert zero.nan_report["files_with_nan"] == {files[0]: 7, files[-1]: 22500}
    assert zero.nan_report["nan_pixels"] == 22507
    assert n == 23 and zero.selection_report["dropped_empty"] == 1  # the all-NaN image has nothing left
    drop = MiraBestDataset(data_dir=folder, nan_policy="drop", split_fractions=(0.5, 0.25, 0.25))
    assert sum(len(drop.load(s)) for s in drop.splits) == 22 and drop.nan_report["dropped"] == [files[0], files[-1]]
    with pytest.raises(InputError, match=files[0]):
        MiraBestDataset(data_dir=folder, nan_policy="raise").load("train")


@needs_mirabest
def test_mirabest_checksums(tmp_path):
    folder = _small_mirabest(tmp_path, 8)
    sums = (MIRABEST_DIR / "SHA256SUMS").read_text().splitlines()
    names = {p.name for p in folder.glob("*.fits")}
    (folder / "SHA256SUMS").write_text("\n".join(line for line in sums if line.split()[1] in names) + "\n")
    assert len(MiraBestDataset(data_dir=folder, split_fractions=(0.5, 0.25, 0.25)).load("train")) > 0
    victim = sorted(names)[3]
    with open(folder / victim, "r+b") as fh:
        fh.seek(20000)
        fh.write(b"\x7f\x7f\x7f\x7f")
    with pytest.raises(InputError, match=f"checksum mismatch for .*{re.escape(victim)}.*expected sha256"):
        MiraBestDataset(data_dir=folder).load("train")


# -- synthetic --------------------------------------------------------------------------------
def test_synthetic_deterministic_and_fast():
    t0 = time.perf_counter()
    a = SyntheticDataset(seed=3, n_train=40, n_valid=8, n_test=16)
    train = a.load("train")
    assert time.perf_counter() - t0 < 5
    _check(train, (40, 40))
    b = SyntheticDataset(seed=3, n_train=20, n_valid=8, n_test=16).load("train")
    np.testing.assert_array_equal(train.images[:20], b.images)  # image i depends only on (seed, split, i)
    c = SyntheticDataset(seed=4, n_train=20).load("train")
    assert not np.array_equal(c.images, b.images)
    assert not np.array_equal(a.load("test").images[:8], a.load("valid").images)
    assert train.class_counts() == {"FRI": 10, "FRII": 10, "Compact": 10, "Bent": 10}
    assert np.all(train.peak_flux > 1e-3) and np.allclose(train.images.reshape(40, -1).max(1), 1)
    assert train.masks.dtype == np.uint8 and 0.005 < train.masks.mean() < 0.3
    assert (train.images == 0).mean() > 0.8  # thresholded at 3 sigma like FIRST
    hi = SyntheticDataset(resolution=80, n_train=8).load("train")
    assert hi.images.shape == (8, 1, 80, 80) and hi.survey.pixel_scale_arcsec == 1.8


def _features(d: RadioImages) -> np.ndarray:
    """Hand features: radial profile, extent, second moments, offset of the flux centroid from the peak."""
    x = d.images[:, 0].astype(np.float64)
    n, h, w = x.shape
    yy, xx = np.mgrid[:h, :w] - (h - 1) / 2
    r = np.hypot(yy, xx)
    edges = np.linspace(0, h / 2 * 1.42, 9)
    tot = x.sum((1, 2)) + 1e-9
    prof = np.stack([(x * ((r >= a) & (r < b))).sum((1, 2)) / tot for a, b in zip(edges[:-1], edges[1:])], 1)
    cy, cx = (x * yy).sum((1, 2)) / tot, (x * xx).sum((1, 2)) / tot
    myy = (x * (yy - cy[:, None, None]) ** 2).sum((1, 2)) / tot
    mxx = (x * (xx - cx[:, None, None]) ** 2).sum((1, 2)) / tot
    mxy = (x * (yy - cy[:, None, None]) * (xx - cx[:, None, None])).sum((1, 2)) / tot
    tr, det = myy + mxx, myy * mxx - mxy**2
    l1 = tr / 2 + np.sqrt(np.maximum(tr**2 / 4 - det, 0))
    l2 = tr - l1
    pk = x.reshape(n, -1).argmax(1)
    off = np.hypot(yy.reshape(-1)[pk] - cy, xx.reshape(-1)[pk] - cx)
    area = (x > 0).sum((1, 2))
    shape = [np.log1p(l1), np.log1p(l2), l2 / (l1 + 1e-9), np.log1p(off), np.log1p(area), tot / area]
    return np.column_stack([prof, *shape])


def test_synthetic_classes_are_separable():
    ds = SyntheticDataset(n_train=400, n_test=200)
    tr, te = ds.load("train"), ds.load("test")
    ftr, fte = _features(tr), _features(te)
    mu, sd = ftr.mean(0), ftr.std(0) + 1e-9
    ftr, fte = (ftr - mu) / sd, (fte - mu) / sd
    cent = np.stack([ftr[tr.labels == k].mean(0) for k in range(4)])
    pred = np.argmin(((fte[:, None] - cent[None]) ** 2).sum(-1), 1)
    acc = (pred == te.labels).mean()
    assert acc > 0.6, f"nearest-centroid accuracy {acc:.2f} (chance 0.25)"


# -- folder --------------------------------------------------------------------------------
def _write_folder(tmp_path: Path, n: int = 12, shape=(32, 32)) -> Path:
    from astropy.io import fits
    from PIL import Image

    folder = tmp_path / "byo"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = ["file,label"]
    for i in range(n):
        img = rng.normal(0, 1e-4, shape)
        img[shape[0] // 2, shape[1] // 2] = 1e-2 * (i + 1)
        kind = ("fits", "png", "npy")[i % 3]
        name = f"img{i:02d}.{kind}"
        if kind == "fits":
            hdu = fits.PrimaryHDU(img.astype(np.float32))
            hdu.header.update(BUNIT="JY/BEAM", CDELT2=0.0005, BMAJ=0.0015, BMIN=0.0015)
            hdu.writeto(folder / name)
        elif kind == "png":
            Image.fromarray((np.clip(img / img.max(), 0, 1) * 255).astype(np.uint8)).save(folder / name)
        else:
            np.save(folder / name, img)
        rows.append(f"{name},{'AB'[i % 2]}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_folder_reads_mixed_formats(tmp_path):
    folder = _write_folder(tmp_path)
    ds = FolderDataset(data_dir=folder, split_fractions=(0.5, 0.25, 0.25))
    parts = {s: ds.load(s) for s in ds.splits}
    assert sum(len(d) for d in parts.values()) == 12
    d = parts["train"]
    _check(d, (32, 32))
    assert d.class_names == ("A", "B") and d.peak_flux is None  # PNG/NPY carry no physical units
    assert d.survey.pixel_scale_arcsec == pytest.approx(1.8)
    assert d.survey.beam_fwhm_arcsec == pytest.approx((5.4, 5.4, 0.0))
    cropped = FolderDataset(resolution=16, data_dir=folder, split_fractions=(0.5, 0.25, 0.25)).load("test")
    assert cropped.images.shape[2:] == (16, 16)
    for p in folder.glob("*.png"):
        p.unlink()
    for p in folder.glob("*.npy"):
        p.unlink()
    (folder / "labels.csv").write_text("file,label,split\n" + "".join(
        f"{p.name},A,{('train', 'valid', 'test')[i % 3]}\n" for i, p in enumerate(sorted(folder.glob("*.fits")))))
    fits_only = FolderDataset(data_dir=folder)
    t = fits_only.load("test")
    assert t.peak_flux is not None and len(t) == 1 and "JY/BEAM" in t.survey.units


def test_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no images"):
        FolderDataset(data_dir=empty).load("train")
    folder = _write_folder(tmp_path)
    (folder / "img03.fits").write_bytes(b"SIMPLE  = garbage")
    with pytest.raises(InputError, match="img03.fits"):
        FolderDataset(data_dir=folder).load("train")
    (folder / "img03.fits").unlink()
    (folder / "labels.csv").write_text((folder / "labels.csv").read_text().replace("img03.fits,B\n", ""))
    np.save(folder / "img05.npy", np.ones((20, 24)))
    with pytest.raises(InputError, match=r"different shapes.*20x24.*img05\.npy"):
        FolderDataset(data_dir=folder).load("train")
    np.save(folder / "img05.npy", np.ones((32, 32)))
    np.save(folder / "extra.npy", np.ones((32, 32)))
    with pytest.raises(InputError, match="missing from .*labels.csv: extra.npy"):
        FolderDataset(data_dir=folder).load("train")
    (folder / "extra.npy").unlink()
    with pytest.raises(InputError, match=r"unknown label\(s\) \['B'\]"):
        FolderDataset(data_dir=folder, classes=["A", "C"]).load("train")
    nan = np.ones((32, 32))
    nan[:3] = np.nan
    np.save(folder / "img05.npy", nan)
    with pytest.raises(InputError, match="img05.npy"):
        FolderDataset(data_dir=folder, nan_policy="raise").load("train")
    ok = FolderDataset(data_dir=folder, split_fractions=(0.5, 0.25, 0.25))
    ok.load("train")
    assert ok.nan_report["files_with_nan"] == {"img05.npy": 96}
    np.save(folder / "img05.npy", np.full((32, 32), np.nan))  # NaN-filled: nothing left after zeroing
    with pytest.raises(InputError, match="no positive pixel.*img05.npy"):
        FolderDataset(data_dir=folder).load("train")
    dropped = FolderDataset(data_dir=folder, nan_policy="drop", split_fractions=(0.5, 0.25, 0.25))
    assert "img05.npy" not in dropped.load("train").ids and dropped.nan_report["dropped"] == ["img05.npy"]


def test_stratified_split_is_seeded_and_stratified():
    strata = np.repeat(np.arange(3), [50, 30, 20])
    a = stratified_split(strata, (0.8, 0.1, 0.1), 0, ("train", "valid", "test"))
    assert np.array_equal(a, stratified_split(strata, (0.8, 0.1, 0.1), 0, ("train", "valid", "test")))
    assert not np.array_equal(a, stratified_split(strata, (0.8, 0.1, 0.1), 1, ("train", "valid", "test")))
    for k, n in enumerate((50, 30, 20)):
        assert np.bincount(a[strata == k], minlength=3).tolist() == [int(n * 0.8), int(n * 0.1), int(n * 0.1)]


# -- option checking at construction ------------------------------------------------------------------
DATASETS = {"first": FirstDataset, "mirabest": MiraBestDataset, "synthetic": SyntheticDataset, "folder": FolderDataset}


@pytest.mark.parametrize("name", sorted(DATASETS))
@pytest.mark.parametrize("resolution", [0, -40, 40.5, 2.5, "abc", "40", True, [40]])
def test_bad_resolution_is_refused_at_construction(name, resolution, tmp_path):
    message = rf"{name}: option 'resolution' must be an integer ≥ 1 .*got {re.escape(repr(resolution))}"
    with pytest.raises(InputError, match=message):
        DATASETS[name](resolution=resolution, data_dir=tmp_path)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_unknown_option_is_refused_listing_the_known_ones(name, tmp_path):
    cls = DATASETS[name]
    with pytest.raises(InputError, match=r"no option\(s\) \['foo'\]; it knows (.*)") as err:
        cls(data_dir=tmp_path, foo=1)
    known = re.search(r"it knows (.*)", str(err.value)).group(1).split(", ")
    params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "data_dir", "options")]
    assert sorted(known) == sorted(params) and "resolution" in known


@pytest.mark.parametrize("name, option, value", [
    ("synthetic", "seed", "abc"), ("synthetic", "seed", -1), ("synthetic", "n_train", 2.5),
    ("synthetic", "n_test", True), ("first", "crop", "abc"), ("first", "crop", 0), ("mirabest", "include_hybrid", "no"),
    ("mirabest", "split_seed", 1.5), ("mirabest", "min_snr", "high"), ("folder", "split_fractions", "abc"),
    ("folder", "pixel_scale_arcsec", -1.0), ("folder", "classes", "FRI"),
])
def test_badly_typed_option_is_refused_at_construction(name, option, value, tmp_path):
    with pytest.raises(InputError, match=rf"{name}: option '{option}' must be .*; got {re.escape(repr(value))}"):
        DATASETS[name](data_dir=tmp_path, **{option: value})


def test_valid_options_still_construct(tmp_path):
    assert SyntheticDataset(resolution=32, seed=3, n_train=5).config()["n_train"] == 5
    assert FirstDataset(resolution=40, crop=80).resolution == 40
    mirabest = MiraBestDataset(resolution=40, include_hybrid=True, min_snr=5, split_fractions=[0.6, 0.2, 0.2])
    assert mirabest.resolution == 40
    assert FolderDataset(data_dir=tmp_path, beam_arcsec=5.4, classes=["A"]).resolution is None
    assert FolderDataset(data_dir=tmp_path, beam_arcsec=[5.4, 5.4, 0]).config()["beam_arcsec"] == [5.4, 5.4, 0]


def test_third_party_dataset_resolution_is_checked_by_the_base_class():
    from radiobench import Dataset

    class Plain(Dataset):  # declares no OPTIONS: its keywords are taken as they come
        name = "plain"

        def load(self, split):
            raise NotImplementedError

    assert Plain(resolution=16, anything=1).options == {"anything": 1}
    for bad in (0, 2.5, "abc", True):
        with pytest.raises(InputError, match="plain: option 'resolution'"):
            Plain(resolution=bad)


def test_mirabest_fetch_refuses_a_folder_without_its_files(tmp_path):
    with pytest.raises(InputError, match="no MiraBest FITS files"):
        MiraBestDataset(data_dir=tmp_path).fetch()
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(InputError, match="x.txt is not a folder"):
        MiraBestDataset(data_dir=tmp_path / "x.txt").fetch()
