"""Raw-data fetching: checksums, zip-slip guards, atomic unpacking, offline fallbacks."""
from __future__ import annotations

import os
import shutil
import stat
import urllib.error
import zipfile
from pathlib import Path

import pytest

from radiobench import datafetch
from radiobench.datafetch import FetchError, download, extract_zip, read_sha256sums, verify_sha256
from radiobench.store import sha256_file
from radiobench.types import InputError
from radiobench_plugins.datasets import first as first_mod
from radiobench_plugins.datasets.first import FirstDataset

SHARED = Path(os.environ.get("RADIOBENCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
FIRST_ZIP = SHARED / "first" / "galaxy_data_h5.zip"
needs_first = pytest.mark.skipif(
    not FIRST_ZIP.is_file(), reason=f"real FIRST zip not found at {FIRST_ZIP} (set RADIOBENCH_SHARED_DATA)"
)


def _offline(*a, **k):
    raise urllib.error.URLError("network unreachable")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("RADIOBENCH_CACHE", str(path))
    monkeypatch.delenv("RADIOBENCH_FIRST_DIR", raising=False)
    return path


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@needs_first
def test_shared_checksum_matches_hardcoded():
    sums = read_sha256sums(FIRST_ZIP.parent / "SHA256SUMS")
    assert sums["galaxy_data_h5.zip"] == first_mod.ZIP_SHA256
    assert verify_sha256(FIRST_ZIP, first_mod.ZIP_SHA256) == first_mod.ZIP_SHA256


def test_verify_sha256_messages(tmp_path):
    f = tmp_path / "data.bin"
    f.write_bytes(b"radio")
    good = sha256_file(f)
    with pytest.raises(InputError) as e:
        verify_sha256(f, "0" * 64)
    msg = str(e.value)
    assert "data.bin" in msg and "0" * 64 in msg and good in msg and "fetch it again" in msg
    with pytest.raises(InputError, match="does not exist"):
        verify_sha256(tmp_path / "missing.zip", good)


@needs_first
@pytest.mark.parametrize("damage", ["corrupt", "truncate"])
def test_bad_first_zip_rejected_and_cache_untouched(tmp_path, cache, damage):
    folder = tmp_path / "first"
    folder.mkdir()
    bad = folder / "galaxy_data_h5.zip"
    shutil.copy(FIRST_ZIP, bad)
    with open(bad, "r+b") as fh:
        if damage == "corrupt":
            fh.seek(1000)
            fh.write(b"\x00" * 16)
        else:
            fh.truncate(bad.stat().st_size // 2)
    with pytest.raises(InputError) as e:
        FirstDataset(data_dir=folder).load("train")
    msg = str(e.value)
    assert str(bad) in msg and first_mod.ZIP_SHA256 in msg and sha256_file(bad) in msg
    assert "radiobench data fetch first" in msg
    assert not (cache / "data" / "first").exists()


@pytest.mark.parametrize(
    "name", ["../evil.txt", "ok/../../evil.txt", "/tmp/evil-abs.txt", "C:/evil.txt", "..\\evil.txt"]
)
def test_zip_slip_rejected(tmp_path, name):
    archive = _zip(tmp_path / "bad.zip", {"fine.txt": b"x", name: b"evil"})
    target = tmp_path / "sub" / "out"
    with pytest.raises(InputError, match="refusing member"):
        extract_zip(archive, target)
    assert not target.exists() and _leftovers(target.parent) == []
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "sub" / "evil.txt").exists()


def test_zip_symlink_rejected(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(InputError, match="links and special files"):
        extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_extract_is_atomic(tmp_path, monkeypatch):
    archive = _zip(tmp_path / "a.zip", {f"d/f{i}.bin": os.urandom(1000) for i in range(5)})
    target = tmp_path / "cache" / "out"
    real_copy = shutil.copyfileobj
    calls = {"n": 0}

    def failing_copy(src, dst, length=0):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full (simulated)")
        return real_copy(src, dst, length)

    monkeypatch.setattr(datafetch.shutil, "copyfileobj", failing_copy)
    with pytest.raises(OSError, match="simulated"):
        extract_zip(archive, target)
    assert not target.exists() and _leftovers(target.parent) == []  # no half-written folder, no temp folder
    monkeypatch.setattr(datafetch.shutil, "copyfileobj", real_copy)
    extract_zip(archive, target, marker={"origin": "test"})
    assert sorted(p.name for p in (target / "d").iterdir()) == [f"f{i}.bin" for i in range(5)]
    assert (target / "SOURCE.json").is_file()
    # a failed re-extraction leaves the complete old folder in place
    calls["n"] = 0
    monkeypatch.setattr(datafetch.shutil, "copyfileobj", failing_copy)
    with pytest.raises(OSError):
        extract_zip(archive, target)
    assert len(list((target / "d").iterdir())) == 5 and _leftovers(target.parent) == ["out"]


def test_corrupt_member_rejected(tmp_path):
    archive = tmp_path / "c.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.bin", b"radio galaxy " * 10000)
    raw = bytearray(archive.read_bytes())
    raw[200:208] = b"\xff" * 8  # inside the compressed stream
    archive.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="big.bin"):
        extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == ["c.zip"]


def test_download_verifies_and_is_atomic(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"FIRST" * 100)
    dest = tmp_path / "dl" / "copy.bin"
    download(src.as_uri(), dest, sha256=sha256_file(src))
    assert dest.read_bytes() == src.read_bytes()
    dest.unlink()
    with pytest.raises(FetchError, match="checksum mismatch"):
        download(src.as_uri(), dest, sha256="1" * 64)
    assert _leftovers(dest.parent) == []
    with pytest.raises(FetchError, match="could not download"):
        download((tmp_path / "nope.bin").as_uri(), dest)


def test_fetch_offline_reports_every_source(monkeypatch, cache):
    monkeypatch.setattr(datafetch.urllib.request, "urlopen", _offline)
    monkeypatch.setattr(first_mod, "pip_download", lambda *a, **k: (_ for _ in ()).throw(FetchError("no index")))
    with pytest.raises(InputError) as e:
        FirstDataset().fetch()
    msg = str(e.value)
    assert "Zenodo" in msg and "network unreachable" in msg and "no index" in msg and "RADIOBENCH_FIRST_DIR" in msg
    assert not (cache / "data" / "first").exists()


@needs_first
def test_fetch_from_wheel_when_zenodo_unreachable(monkeypatch, cache, tmp_path):
    """The offline path of `radiobench data fetch first`: Zenodo fails, the zip is taken out of the wheel."""
    wheel = tmp_path / "firstgalaxydata-0.2.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("firstgalaxydata/__init__.py", "")
        zf.write(FIRST_ZIP, first_mod.WHEEL_MEMBER)

    def pip_download(req, dest):
        shutil.copy(wheel, Path(dest) / wheel.name)
        return Path(dest) / wheel.name

    monkeypatch.setattr(datafetch.urllib.request, "urlopen", _offline)
    monkeypatch.setattr(first_mod, "pip_download", pip_download)
    target = FirstDataset().fetch()
    assert target == cache / "data" / "first"
    assert (target / "galaxy_data_h5.h5").stat().st_size == first_mod.H5_SIZE
    assert "pip download" in (target / "SOURCE.json").read_text()
    assert FirstDataset().fetch() == target  # idempotent, no second download


def test_mirabest_fetch_offline_and_from_archive(monkeypatch, cache, tmp_path):
    from radiobench_plugins.datasets import mirabest as mb

    monkeypatch.setattr(datafetch.urllib.request, "urlopen", _offline)
    with pytest.raises(InputError, match="RADIOBENCH_MIRABEST_DIR"):
        mb.MiraBestDataset().fetch()
    src = SHARED / "mirabest-fits"
    if not src.is_dir():
        pytest.skip(f"MiraBest FITS not found at {src}")
    files = sorted(src.glob("100_*.fits"))[:5] + sorted(src.glob("200_*.fits"))[:5]
    archive = tmp_path / "repo.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("MiraBest_builder-main/README.md", "MiraBest")
        for f in files:
            zf.write(f, f"MiraBest_builder-main/FITS/{f.name}")
    def fake_download(url, dest, **kw):
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy(archive, dest))

    monkeypatch.setattr(mb, "download", fake_download)
    target = mb.MiraBestDataset().fetch()
    assert sorted(p.name for p in target.glob("*.fits")) == [f.name for f in files]
    ds = mb.MiraBestDataset(split_fractions=(0.6, 0.2, 0.2))  # codes from the file names (no labels.csv)
    train = ds.load("train")
    assert train.class_counts() == {"FRI": 3, "FRII": 3} and train.peak_flux is not None
