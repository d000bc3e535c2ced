"""The data radiobench plugins exchange: image sets, sampling conditions, metric results.

Images are float32 numpy arrays ``(N, 1, H, W)`` scaled to [0, 1]; physical units are kept beside
them (per-image peak flux in Jy/beam before scaling, survey metadata) so that metrics which need
them (PyBDSF) can restore them.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = [
    "InputError",
    "GeneratorOutputError",
    "SurveyInfo",
    "RadioImages",
    "Conditions",
    "SampleBatch",
    "MetricResult",
    "GeneratorCost",
    "Direction",
]

Direction = Literal["lower", "higher"]


class InputError(ValueError):
    """Bad user input (data, names, conditions): the message says what is wrong and how to fix it."""


class GeneratorOutputError(RuntimeError):
    """A generator drew images that are not what was asked (shape, count, non-finite or out-of-range pixels)."""


@dataclass(frozen=True)
class SurveyInfo:
    """Survey metadata that physical metrics need (PyBDSF: pixel scale, beam, frequency)."""

    name: str
    pixel_scale_arcsec: float | None = None
    beam_fwhm_arcsec: tuple[float, float, float] | None = None  # (bmaj, bmin, bpa[deg])
    frequency_hz: float | None = None
    units: str = "scaled [0, 1]"  # what the stored pixel values mean
    noise_rms: float | None = None  # in physical units where known (Jy/beam)
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SurveyInfo:
        d = dict(d)
        if d.get("beam_fwhm_arcsec") is not None:
            d["beam_fwhm_arcsec"] = tuple(d["beam_fwhm_arcsec"])
        return cls(**d)


@dataclass
class RadioImages:
    """A set of single-channel radio images with optional labels, fluxes and masks.

    images:     float32 (N, 1, H, W) in [0, 1]
    labels:     int64 (N,) indices into ``class_names``, or None
    peak_flux:  float64 (N,) physical peak flux (Jy/beam) before scaling, or None
    masks:      uint8 (N, 1, H, W) segmentation masks (0 background, >0 source), or None
    extra:      further per-image arrays (e.g. ``{"background": (N,1,H,W)}``), first axis N
    """

    images: np.ndarray
    survey: SurveyInfo
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None
    peak_flux: np.ndarray | None = None
    masks: np.ndarray | None = None
    ids: tuple[str, ...] | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        imgs = np.asarray(self.images)
        if imgs.ndim != 4 or imgs.shape[1] != 1:
            raise InputError(f"images must have shape (N, 1, H, W); got {imgs.shape}")
        if imgs.dtype != np.float32:
            imgs = imgs.astype(np.float32)
        bad = ~np.isfinite(imgs)
        if bad.any():
            nbad = int(bad.reshape(len(imgs), -1).any(1).sum())
            raise InputError(
                f"{nbad} of {len(imgs)} images contain NaN or infinite pixels; "
                "clean them (the dataset loaders offer nan_policy) before building RadioImages"
            )
        if imgs.size and (imgs.min() < -1e-6 or imgs.max() > 1 + 1e-6):
            raise InputError(
                f"images must be scaled to [0, 1]; got range [{imgs.min():.4g}, {imgs.max():.4g}]"
            )
        self.images = imgs
        n = len(imgs)
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if self.labels.shape != (n,):
                raise InputError(f"labels must have shape ({n},); got {self.labels.shape}")
            if self.class_names is None:
                raise InputError("labels given without class_names")
            if n and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
                raise InputError(
                    f"labels must lie in [0, {len(self.class_names) - 1}] for classes {self.class_names}"
                )
        if self.class_names is not None:
            self.class_names = tuple(self.class_names)
        if self.peak_flux is not None:
            self.peak_flux = np.asarray(self.peak_flux, dtype=np.float64)
            if self.peak_flux.shape != (n,):
                raise InputError(f"peak_flux must have shape ({n},); got {self.peak_flux.shape}")
        if self.masks is not None:
            self.masks = np.asarray(self.masks)
            if self.masks.shape != imgs.shape:
                raise InputError(f"masks must have the images' shape {imgs.shape}; got {self.masks.shape}")
        if self.ids is not None:
            self.ids = tuple(self.ids)
            if len(self.ids) != n:
                raise InputError(f"ids must have length {n}; got {len(self.ids)}")
        for k, v in self.extra.items():
            if len(v) != n:
                raise InputError(f"extra[{k!r}] must have first axis {n}; got {len(v)}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def resolution(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def subset(self, index: Sequence[int] | np.ndarray) -> RadioImages:
        """The images at ``index`` (any integer index or boolean mask), with everything that goes with them."""
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        take = lambda a: None if a is None else a[idx]  # noqa: E731
        return RadioImages(
            images=self.images[idx],
            survey=self.survey,
            labels=take(self.labels),
            class_names=self.class_names,
            peak_flux=take(self.peak_flux),
            masks=take(self.masks),
            ids=None if self.ids is None else tuple(self.ids[i] for i in idx),
            extra={k: v[idx] for k, v in self.extra.items()},
        )

    def class_counts(self) -> dict[str, int] | None:
        if self.labels is None or self.class_names is None:
            return None
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {c: int(k) for c, k in zip(self.class_names, counts)}

    def physical(self) -> np.ndarray:
        """Images in physical units: pixel × peak_flux (the loaders scale each image by its peak)."""
        if self.peak_flux is None:
            raise InputError("these images carry no peak flux, so physical units cannot be restored")
        return self.images * self.peak_flux[:, None, None, None].astype(np.float32)

    # -- storage ---------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write to ``path`` (.npz) atomically."""
        from .store import atomic_path  # local import: store imports types

        arrays: dict[str, np.ndarray] = {"images": self.images}
        for name in ("labels", "peak_flux", "masks"):
            val = getattr(self, name)
            if val is not None:
                arrays[name] = val
        for k, v in self.extra.items():
            arrays[f"extra__{k}"] = v
        import json

        meta = {
            "survey": self.survey.to_dict(),
            "class_names": list(self.class_names) if self.class_names else None,
            "ids": list(self.ids) if self.ids else None,
        }
        arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                # explicit, so the stubs do not bind **arrays to allow_pickle; load() refuses pickles anyway
                np.savez_compressed(fh, allow_pickle=False, **arrays)

    @classmethod
    def load(cls, path) -> RadioImages:
        import json

        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta_json"]).decode())
            get = lambda k: z[k] if k in z.files else None  # noqa: E731
            extra = {k[len("extra__"):]: z[k] for k in z.files if k.startswith("extra__")}
            return cls(
                images=z["images"],
                survey=SurveyInfo.from_dict(meta["survey"]),
                labels=get("labels"),
                class_names=tuple(meta["class_names"]) if meta["class_names"] else None,
                peak_flux=get("peak_flux"),
                masks=get("masks"),
                ids=tuple(meta["ids"]) if meta["ids"] else None,
                extra=extra,
            )


@dataclass(frozen=True)
class SampleBatch:
    """What ``Generator.sample_batch`` may return instead of bare images: the images (n, 1, H, W) and further
    per-image arrays with first axis n that travel with them into the set's ``extra`` (e.g. ``catalogue``: a
    reconstruction method's own source list, see :func:`radiobench.localisation.catalogue_array`)."""

    images: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for k, v in self.extra.items():
            if len(v) != len(self.images):
                raise GeneratorOutputError(f"sample batch extra[{k!r}] has {len(v)} entries for "
                                           f"{len(self.images)} images")


@dataclass
class Conditions:
    """What a generated set must match, image by image.

    n is the number of images; each other field is None or has first axis n. ``images`` carries
    whole conditioning images by name (a background image for latent diffusion, dirty images for
    reconstruction). Unconditional generators ignore everything but n.
    """

    n: int
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None
    peak_flux: np.ndarray | None = None
    masks: np.ndarray | None = None
    images: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.n < 0:
            raise InputError("n must be non-negative")
        for name in ("labels", "peak_flux", "masks"):
            v = getattr(self, name)
            if v is not None and len(v) != self.n:
                raise InputError(f"conditions.{name} has {len(v)} entries for n = {self.n}")
        for k, v in self.images.items():
            if len(v) != self.n:
                raise InputError(f"conditions.images[{k!r}] has {len(v)} entries for n = {self.n}")
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)

    def kinds(self) -> frozenset[str]:
        """Which conditioning kinds are present: subset of {'class', 'flux', 'mask', <image names>}."""
        out = set()
        if self.labels is not None:
            out.add("class")
        if self.peak_flux is not None:
            out.add("flux")
        if self.masks is not None:
            out.add("mask")
        out.update(self.images)
        return frozenset(out)

    def slice(self, start: int, stop: int) -> Conditions:
        cut = lambda a: None if a is None else a[start:stop]  # noqa: E731
        return Conditions(
            n=max(0, min(stop, self.n) - start),
            labels=cut(self.labels),
            class_names=self.class_names,
            peak_flux=cut(self.peak_flux),
            masks=cut(self.masks),
            images={k: v[start:stop] for k, v in self.images.items()},
        )


@dataclass
class MetricResult:
    """One metric evaluated on one (real, generated) pair of sets.

    value with a 95% confidence interval [ci_low, ci_high]; direction says whether lower or higher
    is better; n_real / n_generated are the set sizes it was computed at; details hold what plots
    need (JSON-serialisable); fingerprints name the evaluator networks and data it depended on.
    """

    metric: str
    value: float
    ci_low: float
    ci_high: float
    direction: Direction
    n_real: int
    n_generated: int
    unit: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.direction not in ("lower", "higher"):
            raise ValueError(f"direction must be 'lower' or 'higher', not {self.direction!r}")
        self.value = float(self.value)
        self.ci_low = float(self.ci_low)
        self.ci_high = float(self.ci_high)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("value", "ci_low", "ci_high"):
            if not math.isfinite(d[k]):
                d[k] = None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MetricResult:
        d = dict(d)
        for k in ("value", "ci_low", "ci_high"):
            if d.get(k) is None:
                d[k] = float("nan")
        return cls(**d)


@dataclass
class GeneratorCost:
    """What a generator costs: size, training time, and sampling effort per image."""

    parameters: int = 0
    train_seconds: float = 0.0
    train_steps: int = 0
    nfe_per_sample: int | None = None  # network function evaluations per image
    sample_seconds_per_image: float | None = None
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
