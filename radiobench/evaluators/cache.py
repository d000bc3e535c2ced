"""The evaluator cache: each evaluator network is trained once per content fingerprint of
(dataset content, resolution, architecture + training config, seed, code version) and stored as

    <cache_dir>/evaluators/<kind>-<fingerprint>/weights.safetensors   tensors (never pickle)
                                                /metadata.json        payload, fingerprint, weights sha256,
                                                                      training summary
                                                /losses.csv           the loss curve

Training runs in ``<cache_dir>/evaluators/.work/<kind>-<fingerprint>`` (TrainingRun checkpoints, so an
interrupted training resumes) and the finished entry is renamed into place in one step.
Export/import move entries between labs as a tar of those plain files; import re-derives the
fingerprint from the metadata, checks the weights' sha256 and loads them into the architecture.

Identity: an evaluator is its fingerprint (what it was trained from) *and* the sha256 of its weights
(training is not bit-reproducible across machines). Metric results record both (``Evaluator.identity``:
``fingerprints["byol"]``, ``fingerprints["byol_weights"]``); ``stale_evaluators`` says which a stored
result no longer matches. Weights that do not match the sha256 in their metadata.json are refused, in
the cache and in archives alike (never silently retrained over: delete the entry to retrain it).

Archive limits (import; checked on each member's declared size before anything is extracted):
weights.safetensors at most 256 MiB (the largest real evaluator, the cpu/paper classifier, writes
43 MiB), metadata.json 1 MiB, losses.csv 16 MiB, at most 256 entries, and in all at most 2 GiB and at
most 16 MiB + 32x the archive's own size (trained weights barely compress: real exports unpack to about
their size). The tar stream is read no further than that limit plus 1 KiB per member (tarfile holds a
long-name or pax header in memory before the member can be checked) and names are at most 255 characters.
An import is all or nothing: every entry is unpacked and verified in a staging directory
before any of them enters the cache.
"""
from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import re
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import nn

from .. import __version__
from ..checkpoint import save_weights, tensors_under
from ..interfaces import MetricContext
from ..store import atomic_path, current_umask, read_json, sha256_bytes, sha256_file, stable_hash, unit_lock, write_json
from ..training import TrainingRun
from ..types import InputError, RadioImages
from .base import EvaluatorSpec, total_steps
from .kinds import KINDS

__all__ = [
    "KINDS",
    "Evaluator",
    "get_evaluator",
    "current_fingerprint",
    "current_weights",
    "stale_evaluators",
    "fingerprint_payload",
    "train_evaluator",
    "load_entry",
    "list_evaluators",
    "export_evaluators",
    "import_evaluators",
    "evaluator_root",
]

FILES = ("weights.safetensors", "metadata.json", "losses.csv")
REQUIRED_FILES = ("weights.safetensors", "metadata.json")
MAX_FILE_BYTES = {"weights.safetensors": 256 << 20, "metadata.json": 1 << 20, "losses.csv": 16 << 20}
MAX_UNPACKED_BYTES = 2 << 30
MAX_ENTRIES = 256
MAX_NAME = 255  # characters in a member name (real ones have under 100)
ENTRY_NAME = re.compile(r"([a-z_0-9]+)-([0-9a-f]{16})")


@dataclass
class Evaluator:
    """A trained evaluator network: ``module`` (eval mode, CPU), its ``fingerprint`` and ``metadata``."""

    kind: str
    module: nn.Module
    fingerprint: str
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def class_names(self) -> tuple[str, ...] | None:
        names = self.metadata["payload"].get("class_names")
        return tuple(names) if names else None

    @property
    def weights_sha256(self) -> str:
        return self.metadata["weights_sha256"]

    @property
    def identity(self) -> dict[str, str]:
        """What a metric result records in its ``fingerprints``: the training fingerprint under the kind's
        name, the sha256 of the weights under ``<kind>_weights``."""
        return {self.kind: self.fingerprint, f"{self.kind}_weights": self.weights_sha256}


def evaluator_root(cache_dir: str | os.PathLike) -> Path:
    return Path(cache_dir) / "evaluators"


def spec_for(kind: str) -> EvaluatorSpec:
    """The registered evaluator kind (radiobench.evaluators.kinds), or InputError saying why there is none."""
    if kind not in KINDS:
        if kind in KINDS.broken:
            raise InputError(f"evaluator kind {kind!r} {KINDS.broken[kind]}")
        raise InputError(f"unknown evaluator kind {kind!r}; one of {', '.join(KINDS)}")
    return KINDS[kind]


def train_digest(train: RadioImages) -> str:
    """sha256 over what evaluators learn from: images, labels, class names, binarised masks."""
    parts = [train.images.tobytes(), repr(train.class_names).encode()]
    if train.labels is not None:
        parts.append(train.labels.tobytes())
    if train.masks is not None:
        parts.append(np.packbits(train.masks > 0).tobytes())
    return sha256_bytes(*parts)[:16]


def fingerprint_payload(
    kind: str, context: MetricContext, *, seed: int | None = None, config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Everything that determines the trained weights; its stable hash is the fingerprint (``seed``: default
    the context's ``evaluator_seed``)."""
    spec = spec_for(kind)
    seed = context.evaluator_seed if seed is None else seed
    train = context.train
    for need in sorted(spec.requires):
        if getattr(train, need) is None:
            raise InputError(f"evaluator {kind!r} needs {need} on the training split of {context.dataset!r}")
    return {
        "kind": kind,
        "version": spec.version,
        "radiobench": __version__,
        "dataset": context.dataset,
        "dataset_fingerprint": context.dataset_fingerprint,
        "train_digest": context.remember("evaluators/train_digest", lambda: train_digest(train)),
        "n_train": len(train),
        "resolution": list(train.resolution),
        "class_names": list(train.class_names) if train.class_names else None,
        "config": dict(config) if config is not None else spec.config(context.preset.name),
        "seed": int(seed),
    }


def _info(payload: Mapping[str, Any]) -> dict[str, Any]:
    names = payload.get("class_names")
    return {"resolution": tuple(payload["resolution"]), "n_classes": len(names) if names else 0}


def current_fingerprint(kind: str, context: MetricContext) -> str:
    """The fingerprint of the evaluator ``kind`` that this context's dataset and preset call for
    (the context's evaluator seed, default config), without loading or training it."""
    return stable_hash(fingerprint_payload(kind, context), 16)


def get_evaluator(
    kind: str,
    context: MetricContext,
    *,
    seed: int | None = None,
    config: Mapping[str, Any] | None = None,
    train: bool = True,
    progress: bool = True,
) -> Evaluator:
    """The evaluator ``kind`` for this context's dataset and preset: from the cache, else trained now
    (on context.train, seeded, resumable) and cached. Memoised for the context's lifetime."""
    payload = fingerprint_payload(kind, context, seed=seed, config=config)
    fp = stable_hash(payload, 16)

    def cached(entry: Path) -> Evaluator:
        try:
            return load_entry(entry)
        except InputError as err:
            raise InputError(f"{err}; delete {entry} to retrain this evaluator, or import it again") from None

    def obtain() -> Evaluator:
        entry = evaluator_root(context.cache_dir) / f"{kind}-{fp}"
        if entry.exists():
            return cached(entry)
        if not train:
            raise InputError(
                f"no cached {kind} evaluator {fp} for dataset {context.dataset!r} (preset {context.preset.name}); "
                "train it with `radiobench evaluators train` or import a shared set"
            )
        # one process trains it (runs sharing the cache, fan-out workers); the others wait, then load it
        with unit_lock(evaluator_root(context.cache_dir) / ".locks" / entry.name):
            if entry.exists():
                return cached(entry)
            return train_evaluator(payload, context.train, context.cache_dir, device=context.device,
                                   preset=context.preset.name, progress=progress)

    return context.remember(_memo_key(kind, fp), obtain)


def _memo_key(kind: str, fp: str) -> str:
    return f"evaluators/{kind}/{fp}"


def current_weights(kind: str, context: MetricContext, fp: str | None = None) -> str | None:
    """The sha256 of the weights this context would use for ``kind`` (its evaluator seed, default config): those
    already loaded in this context, else those in the cache; None when no such evaluator is cached yet
    (it would be trained afresh, into weights not known now). ``fp``: its fingerprint, when known."""
    fp = fp or current_fingerprint(kind, context)
    loaded = context.memo.get(_memo_key(kind, fp))
    if loaded is not None:
        return loaded.weights_sha256
    path = evaluator_root(context.cache_dir) / f"{kind}-{fp}" / "weights.safetensors"
    try:
        st = path.stat()
    except OSError:
        return None
    return context.remember(f"evaluators/weights/{path}/{st.st_ino}/{st.st_mtime_ns}/{st.st_size}",
                            lambda: sha256_file(path))


def stale_evaluators(fingerprints: Mapping[str, str], context: MetricContext) -> list[str]:
    """The evaluator kinds in a result's ``fingerprints`` that this run would not reuse: another training
    fingerprint, or other weights than ``<kind>_weights`` records (a result that records none, written
    before weights were recorded, counts as stale; so does one whose evaluator is no longer cached)."""
    stale = []
    for kind, fp in fingerprints.items():
        if kind not in KINDS:
            continue
        try:
            current = current_fingerprint(kind, context)
        except InputError:  # this dataset cannot train that kind any more (e.g. its masks are gone)
            current = None
        if fp != current or fingerprints.get(f"{kind}_weights") != current_weights(kind, context, current):
            stale.append(kind)
    return stale


def train_evaluator(
    payload: Mapping[str, Any],
    train: RadioImages,
    cache_dir: str | os.PathLike,
    *,
    device: str = "cpu",
    preset: str = "",
    progress: bool = True,
) -> Evaluator:
    """Train the evaluator the payload describes; write the cache entry atomically; return it."""
    spec = spec_for(payload["kind"])
    fp = stable_hash(dict(payload), 16)
    cfg = payload["config"]
    root = evaluator_root(cache_dir)
    name = f"{spec.kind}-{fp}"
    workdir = root / ".work" / name
    run = TrainingRun(
        workdir,
        steps=total_steps(cfg, len(train)),
        seed=payload["seed"],
        mixed_precision=cfg.get("mixed_precision", "no") if device != "cpu" else "no",
        checkpoint_every=cfg.get("checkpoint_every", 500),
        desc=f"train {name}",
        device=device,
        progress=progress,
    )
    module = spec.build(cfg, _info(payload))  # after TrainingRun: torch is seeded, so the init is too
    summary = spec.fit(module, train, cfg, run)
    module = module.cpu().eval()  # fit trained it in place (prepare moves, never copies, a single-device module)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        save_weights(tmp, {"module": module})
        if (workdir / "losses.csv").exists():
            shutil.copy2(workdir / "losses.csv", tmp / "losses.csv")
        metadata = {
            "kind": spec.kind,
            "fingerprint": fp,
            "payload": dict(payload),
            "weights_sha256": sha256_file(tmp / "weights.safetensors"),
            "parameters": int(sum(p.numel() for p in module.parameters())),
            "preset": preset,
            "description": spec.description,
            "notes": spec.notes,
            "training": summary,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_json(tmp / "metadata.json", metadata)
        tmp.chmod(0o777 & ~current_umask())  # mkdtemp makes 0700: a shared cache's group could not enter the entry
        try:
            os.replace(tmp, root / name)  # atomic; fails if a concurrent run already placed the entry
        except OSError:
            if not (root / name).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(workdir, ignore_errors=True)
    return load_entry(root / name)


def load_entry(path: str | os.PathLike) -> Evaluator:
    """Load and verify one cache entry: fingerprint = hash(payload), name, version, weights sha256, shapes.
    Weights that do not match the sha256 in metadata.json are refused (InputError), never used."""
    return _verified(Path(path), str(path))


def _verified(path: Path, label: str) -> Evaluator:
    """load_entry for the entry directory ``path``, errors naming ``label`` (the path, or archive:entry)."""
    for f in REQUIRED_FILES:
        if not (path / f).is_file():
            raise InputError(f"{label}: no {f}; an evaluator entry holds {' and '.join(REQUIRED_FILES)}")
    try:
        meta = read_json(path / "metadata.json")
    except ValueError as err:  # also invalid UTF-8
        raise InputError(f"{label}/metadata.json: not valid JSON ({err})") from None
    meta = meta if isinstance(meta, dict) else {}
    kind, fp, payload = meta.get("kind"), meta.get("fingerprint"), meta.get("payload")
    if (not isinstance(kind, str) or not isinstance(payload, dict) or kind not in KINDS or payload.get("kind") != kind
            or not isinstance(payload.get("config"), dict) or not isinstance(payload.get("resolution"), list)):
        raise InputError(f"{label}/metadata.json: does not describe a known evaluator (kind, fingerprint, payload)")
    if stable_hash(payload, 16) != fp:
        raise InputError(f"{label}: fingerprint {fp} does not match its metadata (hash {stable_hash(payload, 16)})")
    if path.name != f"{kind}-{fp}":
        raise InputError(f"{label}: directory name does not match {kind}-{fp}")
    spec = KINDS[kind]
    if payload.get("version") != spec.version:
        raise InputError(f"{label}: trained by {kind} code version {payload.get('version')}, "
                         f"this radiobench has {spec.version}")
    data = (path / "weights.safetensors").read_bytes()  # read once: the bytes hashed are the bytes loaded
    if (actual := hashlib.sha256(data).hexdigest()) != meta.get("weights_sha256"):
        raise InputError(f"{label}/weights.safetensors: sha256 {actual} does not match the "
                         f"{meta.get('weights_sha256')} recorded in metadata.json (replaced or damaged weights are "
                         "refused)")
    module = _build(spec, payload, f"{label}/metadata.json", len(data))
    try:
        module.load_state_dict(tensors_under(safetensors.torch.load(data), "module"), strict=True)
    except (RuntimeError, KeyError, ValueError, SafetensorError) as err:
        raise InputError(f"{label}/weights.safetensors: weights do not fit the {kind} architecture: {err}") from None
    return Evaluator(kind, module.eval(), fp, meta, path)


def _build(spec: EvaluatorSpec, payload: Mapping[str, Any], label: str, max_bytes: int) -> nn.Module:
    """The untrained network the payload describes, after checking (without allocating: meta device) that
    its weights fit in ``max_bytes``: a forged config cannot make loading allocate more than the file holds."""
    try:
        with torch.device("meta"):
            shape = spec.build(payload["config"], _info(payload))
        need = sum(t.numel() * t.element_size() for t in shape.state_dict().values())
        if need <= max_bytes:
            return spec.build(payload["config"], _info(payload))
    except Exception as err:  # a config this code cannot build: any exception of the builder
        why = f"{type(err).__name__}: {err}"
        raise InputError(f"{label}: config does not build a {spec.kind} network ({why})") from None
    raise InputError(f"{label}: config describes {need} bytes of {spec.kind} weights; "
                     f"weights.safetensors holds {max_bytes}")


def list_evaluators(cache_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """One row per cache entry (unverified: reads metadata only; a row with "error" for unreadable metadata)."""
    rows: list[dict[str, Any]] = []
    root = evaluator_root(cache_dir)
    for d in sorted(root.glob("*-*")) if root.exists() else []:
        if not (d / "metadata.json").exists() or d.name.startswith("."):
            continue
        try:
            m = read_json(d / "metadata.json")
            p = m.get("payload") if isinstance(m, dict) else None
            if not isinstance(p, dict):
                raise ValueError("not an evaluator's metadata")
        except ValueError as err:
            rows.append({"kind": d.name.rsplit("-", 1)[0], "path": str(d), "error": f"unreadable metadata.json: {err}"})
            continue
        rows.append({
            "kind": m.get("kind"),
            "fingerprint": m.get("fingerprint"),
            "weights_sha256": m.get("weights_sha256"),
            "dataset": p.get("dataset"),
            "dataset_fingerprint": p.get("dataset_fingerprint"),
            "resolution": "x".join(map(str, p.get("resolution", []))),
            "preset": m.get("preset", ""),
            "seed": p.get("seed"),
            "parameters": m.get("parameters"),
            "train_seconds": round(float((m.get("training") or {}).get("train_seconds") or 0), 1),
            "created": m.get("created"),
            "path": str(d),
        })
    return rows


def export_evaluators(
    cache_dir: str | os.PathLike, dest: str | os.PathLike, *, kinds: Iterable[str] | None = None,
    fingerprints: Iterable[str] | None = None,
) -> list[str]:
    """Write the chosen entries (all by default) into one tar file of plain files; returns the entry names."""
    kinds, fps = set(kinds or ()), set(fingerprints or ())
    rows = [r for r in list_evaluators(cache_dir)
            if (not kinds or r["kind"] in kinds) and (not fps or r.get("fingerprint") in fps)]
    if not rows:
        raise InputError(f"no cached evaluators match in {evaluator_root(cache_dir)}")
    names = []
    with atomic_path(dest) as tmp:
        with tarfile.open(tmp, "w") as tar:
            for r in rows:
                entry = Path(r["path"])
                load_entry(entry)  # never export something that does not verify
                for f in FILES:
                    if (entry / f).exists():
                        tar.add(entry / f, arcname=f"{entry.name}/{f}", recursive=False)
                names.append(entry.name)
    return names


def import_evaluators(src: str | os.PathLike, cache_dir: str | os.PathLike, *, overwrite: bool = False) -> list[str]:
    """Read a tar written by export_evaluators: plain files only, ``<kind>-<fp>/<known file>`` names only,
    within the size limits (module docstring). Every entry is verified (weights sha256, fingerprint,
    architecture) before any enters the cache; an entry already cached with other weights is refused
    unless ``overwrite``. All or nothing: on any InputError the cache is left as it was. Returns the
    entry names."""
    src = Path(src)
    if not src.is_file():
        raise InputError(f"{src}: no such archive file")
    root = evaluator_root(cache_dir)
    made = [d for d in (root, *root.parents) if not d.exists()]
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".import-", dir=root))
    ok = False
    try:
        names = _unpack(src, stage)
        replace = []
        for name in names:
            new = _verified(stage / name, f"{src}:{name}")
            final = root / name
            if final.exists() and not overwrite:
                try:
                    old = load_entry(final).weights_sha256
                except InputError as err:
                    raise InputError(f"{err}; pass --overwrite to replace it with {src}'s") from None
                if old != new.weights_sha256:
                    raise InputError(
                        f"{src}:{name}: the cache already holds this evaluator with other weights ({final}: sha256 "
                        f"{old}, archive: {new.weights_sha256}); pass --overwrite to replace it (results computed "
                        "with the old weights are then stale)")
                continue
            replace.append(name)
        for name in replace:  # all verified: move them in (an old entry goes to the stage, deleted below)
            if (root / name).exists():
                os.replace(root / name, stage / f"old-{name}")
            os.replace(stage / name, root / name)
        ok = True
        return names
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        for d in made if not ok else ():
            try:
                d.rmdir()
            except OSError:
                break


class _Bounded(io.RawIOBase):
    """A read-only view of ``raw`` (the decompressed tar stream; closed with it) that refuses to go past
    ``limit`` bytes: tarfile reads long-name and pax headers whole into memory before a member can be checked."""

    def __init__(self, raw: io.BufferedIOBase, limit: int, message: str) -> None:
        super().__init__()
        self.raw, self.limit, self.message, self.pos = raw, limit, message, 0

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0 or self.pos + n > self.limit:
            raise InputError(self.message)
        data = self.raw.read(n)
        self.pos += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        target = offset + (self.pos if whence == os.SEEK_CUR else 0)
        if whence not in (os.SEEK_SET, os.SEEK_CUR) or target > self.limit:
            raise InputError(self.message)
        self.pos = self.raw.seek(target)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def close(self) -> None:
        self.raw.close()
        super().close()


def _decompressed(src: Path) -> io.BufferedIOBase:
    """``src`` opened for reading, through the decompressor its magic bytes name (plain tar otherwise)."""
    with open(src, "rb") as fh:
        head = fh.read(6)
    for magic, opener in ((b"\x1f\x8b", gzip.open), (b"BZh", bz2.open), (b"\xfd7zXZ\x00", lzma.open)):
        if head.startswith(magic):
            return opener(src, "rb")
    return open(src, "rb")


def _unpack(src: Path, stage: Path) -> list[str]:
    """Extract an export archive into ``stage``, checking every member's name, type and declared size (and
    the running total) before its data is read; returns the entry names."""
    size = src.stat().st_size
    budget = min(MAX_UNPACKED_BYTES, (16 << 20) + 32 * size)
    headers = (len(FILES) + 1) * MAX_ENTRIES * 1024 + (20 << 10)  # a header and padding per member, the end
    too_big = (f"{src}: unpacks to more than {budget} bytes (limit: 16 MiB + 32x the archive's {size} bytes, "
               f"at most {MAX_UNPACKED_BYTES}); not an evaluator export")
    expected = f"<kind>-<16 hex fingerprint>/{{{','.join(FILES)}}}"
    total, seen = 0, set()
    archive_errors = (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error, OSError)
    stream = _Bounded(_decompressed(src), budget + headers, too_big)
    try:
        tar = tarfile.open(fileobj=stream, mode="r:")
    except archive_errors as err:
        stream.close()
        raise InputError(f"{src}: not a tar archive (plain, gzip, bzip2 or xz; {type(err).__name__}); "
                         "write one with `radiobench evaluators export`") from None
    except InputError:  # past the limit in the first header
        stream.close()
        raise
    try:
        with stream, tar:  # closing the stream closes the file
            for i, member in enumerate(tar):  # streaming: a header is checked before its data is decompressed
                if i >= (len(FILES) + 1) * MAX_ENTRIES:  # files and a directory per entry
                    raise InputError(f"{src}: more than {MAX_ENTRIES} evaluators in one archive")
                if len(member.name) > MAX_NAME:
                    raise InputError(f"{src}: member {member.name[:64]!r}... has a {len(member.name)}-character "
                                     f"name; an evaluator export holds only {expected}")
                name, parts = member.name, member.name.split("/")
                entry = ENTRY_NAME.fullmatch(parts[0])
                if member.isdir() and len(parts) == 1 and entry:
                    continue
                if member.issym() or member.islnk():
                    raise InputError(f"{src}: member {name!r} is a link; an evaluator export holds plain files only")
                if not member.isfile():
                    raise InputError(f"{src}: member {name!r} is not a plain file; "
                                     "an evaluator export holds plain files only")
                if len(parts) != 2 or parts[1] not in FILES or not entry:
                    raise InputError(f"{src}: unexpected member {name!r}; an evaluator export holds only {expected}")
                if entry.group(1) not in KINDS:
                    raise InputError(f"{src}: member {name!r} names no known evaluator kind ({', '.join(KINDS)})")
                if name in seen:
                    raise InputError(f"{src}: member {name!r} appears twice")
                if member.size > MAX_FILE_BYTES[parts[1]]:
                    raise InputError(f"{src}: member {name!r} declares {member.size} bytes; a {parts[1]} may hold "
                                     f"at most {MAX_FILE_BYTES[parts[1]]}")
                total += member.size
                if total > budget:
                    raise InputError(too_big)
                seen.add(name)
                (stage / parts[0]).mkdir(exist_ok=True)
                data = tar.extractfile(member)
                assert data is not None  # a regular file always has data
                with data, open(stage / name, "wb") as out:
                    shutil.copyfileobj(data, out)
    except archive_errors as err:
        if isinstance(err, OSError) and err.errno is not None and Path(err.filename or "") != src:
            raise  # the disk (full, unwritable), not the archive
        raise InputError(f"{src}: damaged tar archive ({type(err).__name__}: {' '.join(str(err).split())})") from None
    names = sorted({n.split("/")[0] for n in seen})
    if not names:
        raise InputError(f"{src}: holds no evaluators; an evaluator export holds {expected}")
    return names
