"""Sampling that survives an interruption: every finished batch of ``Generator.sample`` is written
atomically into a partial directory (``G/seed-S/samples.partial/`` in a run), and a re-run with the same
key (checkpoint, sampling options, seed, first image index, batch size, conditions) continues after the
last finished batch. Image i depends only on its own seed (``radiobench.seeding``) and the batches keep
their boundaries, so the resumed set is bit-identical to an uninterrupted one. Another key: the
directory is emptied and drawing starts at image 0."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .store import atomic_path, read_json, sha256_bytes, stable_hash, write_json
from .types import Conditions

__all__ = ["PartialSamples", "conditions_sha256"]


def conditions_sha256(conditions: Conditions) -> str:
    """sha256 over everything a generated set is asked to match (n, labels, class names, flux, masks, images)."""
    parts = [stable_hash({"n": conditions.n, "class_names": conditions.class_names,
                          "images": sorted(conditions.images)}, 64).encode()]
    for a in (conditions.labels, conditions.peak_flux, conditions.masks, *(conditions.images[k] for k in
                                                                           sorted(conditions.images))):
        parts.append(b"-" if a is None else np.ascontiguousarray(a).tobytes() + str(a.dtype).encode())
    return sha256_bytes(*parts)


class PartialSamples:
    """Finished batches of one sampling call in ``directory``: ``key.json`` and ``batch-<first index>.npz``
    (the images and any further per-image arrays of the batch)."""

    def __init__(self, directory: Path, key: dict[str, Any]):
        self.directory, self.key = Path(directory), {"key": stable_hash(key, 64), **key}
        stored = None
        if (self.directory / "key.json").exists():
            try:
                stored = read_json(self.directory / "key.json")
            except ValueError:  # torn or garbled: start over
                stored = None
        if stored != self.key:
            shutil.rmtree(self.directory, ignore_errors=True)
            write_json(self.directory / "key.json", self.key)

    def _path(self, lo: int) -> Path:
        return self.directory / f"batch-{lo:09d}.npz"

    def load(self, lo: int, n: int, shape: tuple[int, ...] | None
             ) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        """The finished batch of ``n`` images starting at image ``lo`` and its further arrays, if it is stored
        whole (images of ``shape`` when known), else None."""
        path = self._path(lo)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (ValueError, OSError, EOFError, KeyError):
            return None
        batch = arrays.pop("images", np.zeros(0))
        whole = batch.ndim == 4 and len(batch) == n and all(len(v) == n for v in arrays.values())
        return (batch, arrays) if whole and (shape is None or batch.shape[1:] == shape) else None

    def save(self, lo: int, batch: np.ndarray, extra: dict[str, np.ndarray] | None = None) -> None:
        with atomic_path(self._path(lo)) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, allow_pickle=False, images=batch, **(extra or {}))

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
