"""The evaluator cache: each evaluator network is trained once per content fingerprint of
(dataset content, resolution, architecture + training config, seed, code version) and stored as

    <cache_dir>/evaluators/<kind>-<fingerprint>/weights.safetensors   tensors (never pickle)
                                                /metadata.json        payload, fingerprint, weights sha256, training summary
                                                /losses.csv           the loss curve

Training runs in ``<cache_dir>/evaluators/.work/<kind>-<fingerprint>`` (TrainingRun checkpoints, so an
interrupted training resumes) and the finished entry is renamed into place in one step.
Export/import move entries between labs as a tar of those plain files; import re-derives the
fingerprint from the metadata, checks the weights' sha256 and loads them into the architecture.
"""
from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
from torch import nn

from .. import __version__
from ..checkpoint import load_weights, save_weights
from ..interfaces import MetricContext
from ..store import atomic_path, read_json, sha256_bytes, sha256_file, stable_hash, write_json
from ..training import TrainingRun
from ..types import InputError, RadioImages
from . import byol, classifier, radio_cnn, segmenter
from .base import EvaluatorSpec, total_steps

__all__ = [
    "KINDS",
    "Evaluator",
    "get_evaluator",
    "current_fingerprint",
    "fingerprint_payload",
    "train_evaluator",
    "load_entry",
    "list_evaluators",
    "export_evaluators",
    "import_evaluators",
    "evaluator_root",
]

KINDS: dict[str, EvaluatorSpec] = {s.kind: s for s in (byol.SPEC, classifier.SPEC, radio_cnn.SPEC, segmenter.SPEC)}
FILES = ("weights.safetensors", "metadata.json", "losses.csv")


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


def evaluator_root(cache_dir: str | os.PathLike) -> Path:
    return Path(cache_dir) / "evaluators"


def spec_for(kind: str) -> EvaluatorSpec:
    if kind not in KINDS:
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
    kind: str, context: MetricContext, *, seed: int = 0, config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Everything that determines the trained weights; its stable hash is the fingerprint."""
    spec = spec_for(kind)
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
    (default seed and config), without loading or training it."""
    return stable_hash(fingerprint_payload(kind, context), 16)


def get_evaluator(
    kind: str,
    context: MetricContext,
    *,
    seed: int = 0,
    config: Mapping[str, Any] | None = None,
    train: bool = True,
    progress: bool = True,
) -> Evaluator:
    """The evaluator ``kind`` for this context's dataset and preset: from the cache, else trained now
    (on context.train, seeded, resumable) and cached. Memoised for the context's lifetime."""
    payload = fingerprint_payload(kind, context, seed=seed, config=config)
    fp = stable_hash(payload, 16)

    def obtain() -> Evaluator:
        entry = evaluator_root(context.cache_dir) / f"{kind}-{fp}"
        if entry.exists():
            return load_entry(entry)
        if not train:
            raise InputError(
                f"no cached {kind} evaluator {fp} for dataset {context.dataset!r} (preset {context.preset.name}); "
                "train it with `radiobench evaluators train` or import a shared set"
            )
        return train_evaluator(payload, context.train, context.cache_dir, device=context.device,
                               preset=context.preset.name, progress=progress)

    return context.remember(f"evaluators/{kind}/{fp}", obtain)


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
    """Load and verify one cache entry: fingerprint = hash(payload), name, version, weights sha256, shapes."""
    path = Path(path)
    meta = read_json(path / "metadata.json")
    kind, fp, payload = meta.get("kind"), meta.get("fingerprint"), meta.get("payload")
    if not isinstance(payload, dict) or kind not in KINDS or payload.get("kind") != kind:
        raise InputError(f"{path}: metadata does not describe a known evaluator")
    if stable_hash(payload, 16) != fp:
        raise InputError(f"{path}: fingerprint {fp} does not match its metadata (hash {stable_hash(payload, 16)})")
    if path.name != f"{kind}-{fp}":
        raise InputError(f"{path}: directory name does not match {kind}-{fp}")
    spec = KINDS[kind]
    if payload["version"] != spec.version:
        raise InputError(f"{path}: trained by {kind} code version {payload['version']}, this radiobench has {spec.version}")
    if sha256_file(path / "weights.safetensors") != meta.get("weights_sha256"):
        raise InputError(f"{path}: weights.safetensors does not match the sha256 in metadata.json")
    module = spec.build(payload["config"], _info(payload))
    try:
        load_weights(path, {"module": module}, strict=True)
    except (RuntimeError, KeyError) as err:
        raise InputError(f"{path}: weights do not fit the {kind} architecture: {err}") from None
    return Evaluator(kind, module.eval(), fp, meta, path)


def list_evaluators(cache_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """One row per cache entry (unverified: reads metadata only)."""
    rows = []
    root = evaluator_root(cache_dir)
    for d in sorted(root.glob("*-*")) if root.exists() else []:
        if not (d / "metadata.json").exists() or d.name.startswith("."):
            continue
        m = read_json(d / "metadata.json")
        p = m.get("payload", {})
        rows.append({
            "kind": m.get("kind"),
            "fingerprint": m.get("fingerprint"),
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
            if (not kinds or r["kind"] in kinds) and (not fps or r["fingerprint"] in fps)]
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
    """Read a tar written by export_evaluators: plain files only, ``<kind>-<fp>/<known file>`` names only;
    every entry is verified (load_entry) before it is moved into the cache. Returns the entry names."""
    root = evaluator_root(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    staged: dict[str, dict[str, bytes]] = {}
    with tarfile.open(src, "r") as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if member.isdir():
                continue
            if not member.isfile() or len(parts) != 2 or parts[1] not in FILES or parts[0].startswith("."):
                raise InputError(f"{src}: unexpected member {member.name!r}; not an evaluator export")
            kind = parts[0].rsplit("-", 1)[0]
            if kind not in KINDS:
                raise InputError(f"{src}: member {member.name!r} names no known evaluator kind")
            staged.setdefault(parts[0], {})[parts[1]] = tar.extractfile(member).read()
    done = []
    for name, files in staged.items():
        final = root / name
        if final.exists() and not overwrite:
            load_entry(final)
            done.append(name)
            continue
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root)) / name
        try:
            tmp.mkdir()
            for f, data in files.items():
                (tmp / f).write_bytes(data)
            load_entry(tmp)  # raises InputError on any mismatch
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp.parent, ignore_errors=True)
        done.append(name)
    return done
