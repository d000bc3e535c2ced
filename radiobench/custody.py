"""Chain of custody of a run directory's files: a sample set names the checkpoint it was drawn from, a
metric record the sets it scored (``inputs``) and the evaluator networks it used; a stored file that does
not read back, or whose parent no longer matches, is redone (``radiobench.runner``)."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .evaluators.cache import stale_evaluators
from .interfaces import MetricContext
from .store import jsonable, read_json, sha256_bytes, sha256_file
from .types import MetricResult, RadioImages

__all__ = ["stored", "record", "discard_other_inputs", "safetensors_keys", "checkpoint_sha256", "resample_reason",
           "sample_inputs", "set_sha256", "distrust", "well_formed", "stale_fingerprints"]

log = logging.getLogger("radiobench")
T = TypeVar("T")


def stored(path: Path, load: Callable[[Path], T]) -> T | None:
    """``load(path)``; None when the file is missing or does not read back (truncated, garbled: a warning
    names it), so that the caller redoes what it held."""
    if not path.exists():
        return None
    try:
        return load(path)
    except Exception as err:
        log.warning("%s does not read back (%s: %s); it is redone", path, type(err).__name__, err)
        return None


def record(path: Path, **fields: type) -> dict[str, Any] | None:
    """The JSON object stored at ``path`` when it has ``fields`` of their types (else None, with a warning
    naming the file)."""
    obj = stored(path, read_json)
    if obj is not None and not (isinstance(obj, dict) and all(isinstance(obj.get(k), t) for k, t in fields.items())):
        needs = ", ".join(f"{k} ({t.__name__})" for k, t in fields.items()) or "an object"
        log.warning("%s is not a radiobench record (it needs %s); it is redone", path, needs)
        return None
    return obj


def discard_other_inputs(rowdir: Path, inputs: dict[str, str]) -> None:
    """Delete ``rowdir``'s metric records that scored other sets than ``inputs`` (or do not read back): the
    results of an earlier sample set, also one deleted by hand."""
    for old in (rowdir / "metrics").glob("*.json"):
        if not isinstance(rec := stored(old, read_json), dict) or rec.get("inputs") != inputs:
            old.unlink()


def safetensors_keys(path: Path) -> list[str]:
    """The tensor names of a safetensors file (reads the header; a truncated file fails here)."""
    from safetensors import safe_open

    with safe_open(str(path), "np") as fh:
        return list(fh.keys())


def checkpoint_sha256(ckpt: Path) -> str:
    """Hash of what a checkpoint's model is: its files by name and content (hidden temporaries and fit.json,
    the runner's record, aside), config.json without the bookkeeping of how the fit ran (``cost``: times,
    device; ``train_info.start_step``: where a resume began), so equal weights from a resumed or another
    machine's fit hash alike."""
    files = sorted(f for f in ckpt.rglob("*") if f.is_file() and not f.name.startswith(".") and f.name != "fit.json")
    parts: list[bytes] = []
    for f in files:
        data = f.read_bytes()
        parts += [f.relative_to(ckpt).as_posix().encode(), _model_config(data) if f.name == "config.json" else data]
    return sha256_bytes(*parts)


def _model_config(data: bytes) -> bytes:
    """config.json without its bookkeeping, canonically serialised (unparsable bytes are hashed as they are)."""
    try:
        config = json.loads(data)
    except ValueError:
        return data
    if isinstance(config, dict):
        config = {k: v for k, v in config.items() if k != "cost"}
        if isinstance(config.get("train_info"), dict):
            config["train_info"] = {k: v for k, v in config["train_info"].items() if k != "start_step"}
    return json.dumps(config, sort_keys=True).encode()


def resample_reason(info: dict[str, Any], sampling: dict[str, Any], checkpoint_sha: str, path: Path,
                    n: int | None = None) -> str | None:
    """Why a stored sample set is not the one this run would draw (None: it is); ``n``: the set size asked for."""
    if info.get("sampling", {}) != sampling:
        return f"samples were drawn with {info.get('sampling', {})}, now {sampling}"
    if n is not None and info.get("n") != n:
        return f"the stored set holds {info.get('n')} images, now {n} are asked for"
    if info.get("checkpoint_sha256") != checkpoint_sha:
        return "samples were drawn from another checkpoint" if info.get("checkpoint_sha256") else \
            "samples record no checkpoint (drawn before radiobench recorded it)"
    if not isinstance(info.get("cost"), dict):
        return "samples record no sampling cost"
    if info.get("sha256") != sha256_file(path):
        return f"{path} does not match the sha256 recorded in {path.with_suffix('.json')}"
    return None


def sample_inputs(info: dict[str, Any]) -> dict[str, str]:
    """What a generator row's metrics score: the sample set and the checkpoint it was drawn from."""
    return {"samples_sha256": info["sha256"], "checkpoint_sha256": info["checkpoint_sha256"]}


def set_sha256(images: RadioImages) -> str:
    """Content hash of an image set in memory (images and everything that goes with them)."""
    arrays = [images.images, images.labels, images.peak_flux, images.masks, *images.extra.values()]
    return sha256_bytes(repr((images.class_names, sorted(images.extra))).encode(),
                        *(np.ascontiguousarray(a).tobytes() for a in arrays if a is not None))


def distrust(record: dict[str, Any], name: str, inputs: dict[str, str], context: MetricContext,
             options: Mapping[str, Any] | None = None, defaults: Mapping[str, Any] | None = None) -> str | None:
    """Why a stored ok/skipped metric record cannot stand for this run's result (None: it can). ``options``: the
    metric's options this run asks for (None: not checked); a record lacks those it was written without, which
    read as their ``defaults``."""
    if "inputs" not in record:
        return "it records no inputs (computed before radiobench recorded them)"
    if record["inputs"] != inputs:
        return "the sets it scored have changed"
    if options is not None:
        stored = record.get("options", {})
        if not isinstance(stored, dict) or jsonable({**(defaults or {}), **stored}) != jsonable(dict(options)):
            return f"it was computed with the options {stored}, now {dict(options)}"
    if record.get("metric") != name or (record["status"] == "ok" and not well_formed(record.get("result")))\
            or (record["status"] == "skipped" and not isinstance(record.get("reason"), str)):
        return "the stored record is malformed"
    stale = stale_fingerprints(record, context)
    return f"{', '.join(stale)} changed since it was computed" if stale else None


def well_formed(result: Any) -> bool:
    """Whether a stored result reads back as a MetricResult with numeric (or null: NaN) values."""
    try:
        MetricResult.from_dict(result)
    except (TypeError, ValueError):
        return False
    numbers = [result.get(k, "missing") for k in ("value", "ci_low", "ci_high")]
    return all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in numbers)


def stale_fingerprints(record: dict[str, Any], context: MetricContext) -> list[str]:
    """Names of the data / evaluator networks a stored result was computed with that this run would
    replace (another dataset version, or a built-in evaluator trained from another configuration or holding
    other weights)."""
    used = (record.get("result") or {}).get("fingerprints", {})
    stale = stale_evaluators(used, context)
    if "dataset" in used and used["dataset"] != context.dataset_fingerprint:
        stale.append("dataset")
    return stale
