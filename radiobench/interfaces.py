"""The three plugin interfaces: Dataset, Generator, Metric, and the context metrics run in.

A third party implements one of these classes and declares it under the entry-point group
``radiobench.datasets``, ``radiobench.generators`` or ``radiobench.metrics`` (see README).
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .options import Option, Options
from .postprocess import peak_normalised, postprocess, survey_threshold
from .presets import Preset, get_preset
from .seeding import image_seeds
from .store import jsonable
from .types import (
    Conditions,
    GeneratorCost,
    GeneratorOutputError,
    InputError,
    MetricResult,
    RadioImages,
    SampleBatch,
)

__all__ = ["Dataset", "Generator", "Metric", "MetricContext", "Plugin"]


TASKS = ("generation", "reconstruction")  # what a dataset asks for; a generator or metric serves one task


class Plugin:
    """What every plugin declares about itself (shown by ``radiobench list``)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""  # one line

    @classmethod
    def summary(cls) -> dict[str, Any]:
        return {"name": cls.name, "description": cls.description}


class Dataset(Plugin, ABC):
    """A fixed, documented set of splits of radio images.

    ``load(split)`` returns float32 images (N, 1, H, W) in [0, 1] with whatever the dataset knows
    (labels, peak flux, masks, survey metadata). Test images are never used to train generators
    or evaluator networks; ``reference_split`` is what generated sets are compared with.
    """

    provides: ClassVar[frozenset[str]] = frozenset()  # subset of {"labels", "flux", "masks"} or condition images
    # "generation": generators learn the images; "reconstruction": they predict each reference image from its
    # condition images (``extra``, e.g. a dirty image), and metrics score the prediction against the image
    task: ClassVar[str] = "generation"
    splits: ClassVar[tuple[str, ...]] = ("train", "valid", "test")
    train_split: ClassVar[str] = "train"
    reference_split: ClassVar[str] = "test"
    # the options besides resolution and data_dir (``radiobench.options``; no preset defaults): what
    # ``check_options`` accepts. None: undeclared, the constructor's keywords are taken as they come
    OPTIONS: ClassVar[Options | None] = None
    RESOLUTION: ClassVar[Option] = Option(int, low=1, nullable=True)  # None: the dataset's default

    def __init__(self, resolution: int | None = None, data_dir: str | Path | None = None, **options: Any):
        self.resolution = self.check_options(resolution, {})
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.options = options

    @classmethod
    def check_options(cls, resolution: Any, options: dict[str, Any]) -> int | None:
        """``resolution`` once checked (a positive integer or None); InputError naming the option for a bad
        resolution, or an option unknown to ``OPTIONS`` (listing the known ones) or of the wrong type."""
        given = options if cls.OPTIONS is not None else {}
        Options(cls.OPTIONS or {}, resolution=cls.RESOLUTION).check(cls.name, {"resolution": resolution, **given})
        return resolution

    @abstractmethod
    def load(self, split: str) -> RadioImages:
        ...

    def config(self) -> dict[str, Any]:
        """Everything that changes the loaded content (goes into the fingerprint)."""
        return {"name": self.name, "resolution": self.resolution, **self.options}

    def fetch(self) -> Path | None:
        """Download / unpack the raw data into the cache (``radiobench data fetch``); None if nothing to fetch."""
        return None

    def fingerprint(self) -> str:
        """sha256 over the content of every split and the config: two results are comparable only if equal."""
        from .store import sha256_bytes, stable_hash

        parts = [stable_hash(self.config(), 64).encode()]
        for split in self.splits:
            d = self.load(split)
            parts.append(d.images.tobytes())
            if d.labels is not None:
                parts.append(d.labels.tobytes())
        return sha256_bytes(*parts)[:16]

    def fits_header(self, split: str | None = None) -> Any:
        """The FITS header (astropy) that source finders get for this dataset's images: celestial WCS, pixel
        scale, restoring beam and frequency from the ``SurveyInfo`` of ``split`` (default the reference split;
        ``radiobench.sourcefind.fits_header``). InputError when the survey lacks any of them."""
        from .sourcefind import fits_header

        d = self.load(split or self.reference_split)
        return fits_header(d.survey, d.images.shape[2:])

    def check_split(self, split: str) -> None:
        if split not in self.splits:
            raise InputError(f"dataset {self.name!r} has splits {self.splits}; no split {split!r}")

    @classmethod
    def summary(cls) -> dict[str, Any]:
        return {**super().summary(), "provides": sorted(cls.provides), "splits": list(cls.splits)}


class Generator(Plugin, ABC):
    """A generative model: fit on a training split, then sample sets that match given conditions.

    Subclasses implement ``fit``, ``sample_batch`` (images for a list of per-image seeds),
    ``save`` and ``load``. The base class's ``sample`` handles batching, per-image seeds,
    validation of conditions and output, timing, and attaches the conditions to the result so
    that metrics can compare generated images with what they were asked to be.
    """

    # conditioning kinds: "class", "flux", "mask", ...; an instance may narrow it to what its options and
    # training data allow (the runner conditions on ``gen.supports``)
    supports: frozenset[str] = frozenset()
    reference: ClassVar[bool] = False  # True for honest reference rows (replay, pixel floor)
    floor: ClassVar[bool] = False  # True for the structure-free reference a generator must beat
    task: ClassVar[str] = "generation"  # the datasets' task it serves (``TASKS``)
    # the declared options (``radiobench.options``): checked at construction, resolved per preset into
    # ``self.opt``; None: undeclared, the constructor's keywords are taken as they come
    OPTIONS: ClassVar[Options | None] = None
    # options that change how samples are drawn but not the trained weights: changing one re-samples
    # a run's row without re-training it (derived from OPTIONS when declared)
    sampling_options: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.OPTIONS is not None:
            cls.sampling_options = cls.OPTIONS.sampling

    def __init__(self, preset: str = "smoke", device: str | None = None, **options: Any):
        self.preset: Preset = get_preset(preset)
        self.options = options  # as given
        declared = self.OPTIONS
        self.opt: dict[str, Any] = (dict(options) if declared is None
                                    else declared.resolve(f"generator {self.name!r}", self.preset.name, options))
        self.device = device or default_device()
        self.train_info: dict[str, Any] = {}  # class names, image shape, flux transform, ...
        self._cost = GeneratorCost(device=str(self.device))

    # -- to implement -------------------------------------------------------------------
    @abstractmethod
    def fit(self, train: RadioImages, *, seed: int, workdir: Path | None = None) -> None:
        """Train on ``train``. Write periodic checkpoints and the loss curve into ``workdir``
        (when given) and resume from them if they are there."""

    @abstractmethod
    def sample_batch(self, conditions: Conditions, seeds: Sequence[int]) -> np.ndarray | SampleBatch:
        """Images (len(seeds), 1, H, W) in [0, 1]; image i must depend only on seeds[i] and its conditions. A
        ``SampleBatch`` adds per-image arrays (such as a source catalogue) to the images."""

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write weights (safetensors) and configuration (JSON) into ``directory``."""

    @abstractmethod
    def load(self, directory: Path) -> None:
        """Restore what ``save`` wrote (never by unpickling arbitrary objects)."""

    def config(self) -> dict[str, Any]:
        """Hyperparameters that define this generator (recorded in results)."""
        return {"name": self.name, "preset": self.preset.name, **self._recorded(self.opt)}

    def _recorded(self, opt: dict[str, Any]) -> dict[str, Any]:
        return jsonable(opt if self.OPTIONS is None else self.OPTIONS.recorded(opt))

    def num_parameters(self) -> int:
        return 0

    def training_config(self, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """``config`` (default ``config()``) without the sampling options: what a trained checkpoint must
        agree with. A stored ``config`` that lacks an option this plugin has gained since reads as having
        that option's preset default (so a new option's default must keep the old behaviour)."""
        if config is None:
            config = self.config()
        elif self.OPTIONS is not None:
            defaults = self.OPTIONS.defaults(self.preset.name)
            config = self._recorded({"name": self.name, "preset": self.preset.name, **defaults, **config})
        else:
            config = {**type(self)(preset=self.preset.name, device=self.device).config(), **config}
        return {k: v for k, v in config.items() if k not in self.sampling_options}

    def sampling_config(self) -> dict[str, Any]:
        """The sampling options of ``config()``: what a drawn sample set must agree with. A stored set that
        lacks one (drawn before the plugin gained it) is drawn again: a sampling option's preset value need
        not be the old behaviour (``peak_normalise`` is on for the CVAE's cpu preset), and drawing is cheap."""
        return {k: v for k, v in self.config().items() if k in self.sampling_options}

    def restore_options(self, stored: dict[str, Any], preset: str | None = None) -> None:
        """Options of a loaded checkpoint: its training options (over ``preset``'s defaults, for options added
        since) and this instance's sampling options (preset defaults and constructor keywords): a checkpoint
        holds weights, how to draw from them is the caller's."""
        sampling = {k: v for k, v in self.opt.items() if k in self.sampling_options}
        if preset is not None:
            self.preset = get_preset(preset)
        defaults = self.OPTIONS.defaults(self.preset.name) if self.OPTIONS is not None else {}
        self.opt = jsonable({**defaults, **stored, **sampling})

    def zero_level(self) -> float:
        """Pixels of drawn images below this level are set to 0 (option ``zero_below``; 0: none)."""
        return survey_threshold(self.config().get("zero_below", 0.0), self.train_info)

    def peak_normalised(self) -> bool:
        """Whether drawn images are divided by their own peak (option ``peak_normalise``)."""
        return peak_normalised(self.config().get("peak_normalise", False), self.train_info)

    # -- provided ------------------------------------------------------------------------
    def check_conditions(self, conditions: Conditions) -> None:
        """Raise InputError for conditions this generator cannot honour."""
        unsupported = conditions.kinds() - self.supports
        if unsupported:
            raise InputError(
                f"generator {self.name!r} cannot be conditioned on {sorted(unsupported)}; "
                f"it supports {sorted(self.supports) or 'no conditioning'}"
            )
        trained = self.train_info.get("class_names")
        if conditions.labels is not None:
            if trained is None:
                raise InputError(
                    f"generator {self.name!r} was asked for class-conditioned images but knows no class names: its "
                    "training set had no labels, or its fit() did not call self.remember_training_set(train) first, "
                    "or its save()/load() did not keep train_info")
            if conditions.class_names is not None and tuple(conditions.class_names) != tuple(trained):
                raise InputError(
                    f"conditions name classes {tuple(conditions.class_names)} but the generator was "
                    f"trained on {tuple(trained)}"
                )
            if len(conditions.labels) and (conditions.labels.min() < 0 or conditions.labels.max() >= len(trained)):
                raise InputError(f"class labels must lie in [0, {len(trained) - 1}] ({', '.join(trained)})")
        if conditions.peak_flux is not None:
            if not np.all(np.isfinite(conditions.peak_flux)) or np.any(conditions.peak_flux <= 0):
                raise InputError("peak-flux conditions must be finite and positive (Jy/beam)")

    def sample(
        self, conditions: Conditions, *, seed: int, batch_size: int = 64, start_index: int = 0, progress: bool = False,
        partial: Path | None = None, checkpoint_sha256: str = "",
    ) -> RadioImages:
        """Draw ``conditions.n`` images; image i uses seed image_seeds(seed, start_index + i, ...).

        ``partial``: a directory where finished batches are kept (``radiobench.partial``); an interrupted call
        repeated with the same checkpoint (``checkpoint_sha256``), options, seed and conditions continues after
        the last finished batch, and the directory is removed once every image is drawn."""
        self.check_conditions(conditions)
        from .partial import PartialSamples, conditions_sha256
        from .progress import progress_bar

        out: list[np.ndarray] = []
        more: list[dict[str, np.ndarray]] = []  # the batches' further arrays (``SampleBatch.extra``)
        zero_level, to_peak_one = self.zero_level(), self.peak_normalised()
        known = self.train_info.get("image_shape")  # set by remember_training_set
        shape: tuple[int, ...] | None = None if known is None else tuple(known)
        kept = None if partial is None else PartialSamples(partial, {
            "checkpoint_sha256": checkpoint_sha256, "config": self.config(), "seed": int(seed),
            "start_index": int(start_index), "batch_size": int(batch_size), "zero_level": zero_level,
            "peak_normalised": to_peak_one, "conditions_sha256": conditions_sha256(conditions)})
        drawn = 0
        t0 = time.perf_counter()
        bar = progress_bar(total=conditions.n, desc=f"sample {self.name}", unit="img", disable=not progress)
        for lo in range(0, conditions.n, batch_size):
            hi = min(conditions.n, lo + batch_size)
            stored = None if kept is None else kept.load(lo, hi - lo, shape)
            if stored is None:
                seeds = image_seeds(seed, start_index + lo, start_index + hi)
                raw = self.sample_batch(conditions.slice(lo, hi), seeds)
                batch, extra = (raw.images, raw.extra) if isinstance(raw, SampleBatch) else (raw, {})
                batch = np.asarray(batch)
                shape = shape or (1, *batch.shape[2:])  # unknown: one channel, as the first batch
                done = postprocess(self._checked(batch, (hi - lo, *shape)), zero_level, to_peak_one)
                drawn += hi - lo
                if kept is not None:
                    kept.save(lo, done, extra)
            else:
                done, extra = stored
            shape = shape or tuple(done.shape[1:])
            out.append(done)
            more.append(extra)
            bar.update(hi - lo)
        bar.close()
        elapsed = time.perf_counter() - t0
        if drawn:  # the images drawn now (a resumed call loads the others)
            self._cost.sample_seconds_per_image = elapsed / drawn
        empty = (0, *(shape or (1, self.preset.resolution, self.preset.resolution)))
        images = np.concatenate(out) if out else np.zeros(empty, np.float32)
        from .types import SurveyInfo

        survey = self.train_info.get("survey")
        result = RadioImages(
            images=images,
            survey=SurveyInfo.from_dict(survey) if isinstance(survey, dict) else (survey or SurveyInfo("generated")),
            labels=conditions.labels,
            class_names=tuple(self.train_info["class_names"]) if conditions.labels is not None else None,
            peak_flux=conditions.peak_flux,
            masks=conditions.masks,
            extra={**conditions.images, **_joined(more)},
        )
        if kept is not None:
            kept.remove()
        return result

    def _checked(self, batch: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """``batch`` as float32 if it is what was asked: ``shape`` (n, 1, H, W) with (1, H, W) the training
        images' shape, finite pixels in [0, 1] (to 1e-6: float error, then clipped); else GeneratorOutputError.
        A model whose outputs may overshoot clips them in its own ``sample_batch``."""
        if batch.shape != shape:
            raise GeneratorOutputError(f"generator {self.name!r} returned images of shape {batch.shape}; "
                                       f"asked for {shape} (n, channels, height, width of the training images)")
        batch = batch.astype(np.float32, copy=False)
        if not np.all(np.isfinite(batch)):
            raise GeneratorOutputError(f"generator {self.name!r} produced {int(np.sum(~np.isfinite(batch)))} "
                                       "NaN or infinite pixels")
        lo, hi = (float(batch.min()), float(batch.max())) if batch.size else (0.0, 1.0)
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise GeneratorOutputError(f"generator {self.name!r} produced pixels in [{lo:.6g}, {hi:.6g}]; "
                                       "images must lie in [0, 1] (clip or rescale in sample_batch)")
        return batch if lo >= 0.0 and hi <= 1.0 else np.clip(batch, 0.0, 1.0)

    def remember_training_set(self, train: RadioImages) -> None:
        """Record what sampling needs to know about the training data (call at the start of fit)."""
        peaks = train.images.max(axis=(1, 2, 3))
        self.train_info.update(
            class_names=list(train.class_names) if train.class_names else None,
            image_shape=list(train.images.shape[1:]),
            survey=train.survey.to_dict(),
            zero_fraction=float(np.mean(train.images == 0)),  # near 1 for thresholded surveys (FIRST)
            # every cutout scaled to its own peak (empty cutouts aside: FIRST's train split holds two)
            peak_one=bool(np.any(peaks > 0) and np.allclose(peaks[peaks > 0], 1.0, atol=1e-4)),
        )

    def cost(self) -> GeneratorCost:
        self._cost.parameters = self.num_parameters()
        return self._cost

    @classmethod
    def summary(cls) -> dict[str, Any]:
        return {**super().summary(), "supports": sorted(cls.supports), "reference": cls.reference}


class Metric(Plugin, ABC):
    """A comparison of a generated set with a real reference set.

    ``requires`` names what the real and generated sets must carry ("labels", "masks", "flux");
    ``requires_conditioning`` what the generator must have been conditioned on ("class", "mask").
    """

    direction: ClassVar[str] = "lower"
    unit: ClassVar[str] = ""
    requires: ClassVar[frozenset[str]] = frozenset()
    requires_conditioning: ClassVar[frozenset[str]] = frozenset()
    # the declared options (``radiobench.options``): checked at construction and resolved per preset into
    # ``self.options``; None: undeclared, the constructor's keywords are taken as they come. Two have a meaning
    # to the harness: ``against`` (options.AGAINST: which real set the runner scores against) and
    # ``evaluator_seed`` (options.EVALUATOR_SEED: which evaluator networks the metric's context names)
    OPTIONS: ClassVar[Options | None] = None
    task: ClassVar[str] = "generation"  # the datasets' task it scores (``TASKS``)
    # the presets whose default metric set holds it (None: every preset; empty: opt-in, run only when --metrics
    # names it). Costly metrics leave out ``smoke``, whose runs take seconds per generator
    default_presets: ClassVar[frozenset[str] | None] = None

    def __init__(self, preset: str | None = None, **options: Any):
        declared = self.OPTIONS
        self.options: dict[str, Any] = (dict(options) if declared is None
                                        else declared.resolve(f"metric {self.name!r}", preset or "", options))

    @property
    def against(self) -> str:
        """The real set generated images are scored against: "reference" (the reference split) or "train"."""
        return self.options.get("against", "reference")

    def in_context(self, context: MetricContext) -> MetricContext:
        """The context this metric computes in: its ``evaluator_seed`` option picks the evaluator networks."""
        seed = self.options.get("evaluator_seed")
        return context if seed is None or seed == context.evaluator_seed else replace(context, evaluator_seed=seed)

    @abstractmethod
    def compute(self, real: RadioImages, generated: RadioImages, context: MetricContext) -> MetricResult:
        ...

    def applicable(self, real: RadioImages, generator_supports: frozenset[str] | None) -> str | None:
        """None when the metric applies, else the reason it is skipped (written into results).

        ``generator_supports`` is None for the real-vs-real reference row (always conditioned exactly)."""
        have = {"labels": real.labels is not None, "masks": real.masks is not None, "flux": real.peak_flux is not None}
        for need in sorted(self.requires):
            if not have.get(need, False):
                return f"the reference data carries no {need}"
        if generator_supports is not None:
            missing = self.requires_conditioning - generator_supports
            if missing:
                return f"the generator cannot be conditioned on {sorted(missing)}"
        return None

    def config(self) -> dict[str, Any]:
        return {"name": self.name, **self.options}

    @classmethod
    def summary(cls) -> dict[str, Any]:
        return {
            **super().summary(),
            "direction": cls.direction,
            "requires": sorted(cls.requires | {f"conditioning:{c}" for c in cls.requires_conditioning}),
        }


@dataclass
class MetricContext:
    """What a metric may use beyond the two sets: the training split (for evaluator networks), the
    preset, a seed, a device, a cache directory, and a per-run memo for real-side statistics."""

    dataset: str
    dataset_fingerprint: str
    train: RadioImages
    preset: Preset
    seed: int = 0
    device: str = "cpu"
    cache_dir: Path = field(default_factory=lambda: default_cache_dir())
    memo: dict[str, Any] = field(default_factory=dict)
    evaluator_seed: int = 0  # the seed of the evaluator networks metrics use (``get_evaluator``'s default)

    @property
    def n_bootstrap(self) -> int:
        return self.preset.n_bootstrap

    def rng(self, salt: str = "") -> np.random.Generator:
        """A generator seeded by (seed, salt): metrics get reproducible bootstrap draws."""
        import zlib

        return np.random.default_rng([self.seed, zlib.crc32(salt.encode())])

    def remember(self, key: str, compute):
        """Memoise a real-side statistic for the lifetime of this context (e.g. features of the test set)."""
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def default_cache_dir() -> Path:
    import os

    env = os.environ.get("RADIOBENCH_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("radiobench"))


def _joined(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The batches' further arrays concatenated per name; GeneratorOutputError unless every batch has the same
    names."""
    names = {frozenset(b) for b in batches}
    if len(names) > 1:
        raise GeneratorOutputError(f"sample batches returned different extra arrays: {sorted(map(sorted, names))}")
    return {k: np.concatenate([b[k] for b in batches]) for k in (batches[0] if batches else {})}
