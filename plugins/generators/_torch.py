"""Shared machinery of the torch generators (EDM, CVAE, DCGAN, PG-GAN).

``TorchGenerator`` turns a few hooks (build networks, one training step, decode a batch) into a full
radiobench Generator: declared options (``TORCH_OPTIONS`` and the plugin's own, see ``radiobench.options``),
a resumable ``TrainingRun`` (device placement through accelerate, bf16 autocast, checkpoints, losses.csv,
wall-clock budget), minibatches that are a pure function of (seed, step), shared out among data-parallel
processes (``TrainingRun.batch``), with random flips and 90° rotations drawn from the step's own generator
(``augment``, ``step_generator``), steps from ``steps`` or ``epochs`` (``total_steps``), per-image-seeded
sampling in eval mode, and save/load (safetensors + JSON).

Also here: the output grid of the convolutional generators (``grid_for``) and the equalised-learning-rate
layers, pixel norm and minibatch standard deviation of Karras et al. (2017).
"""
from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from radiobench.checkpoint import load_config, load_weights, save_config, save_weights
from radiobench.evaluators.augment import random_flip_rot90
from radiobench.interfaces import Generator
from radiobench.options import POSITIVE, Option, Options
from radiobench.postprocess import POSTPROCESSING
from radiobench.seeding import PerImageRandom, seed_everything, step_generator
from radiobench.training import EMA, TrainingRun
from radiobench.types import Conditions, GeneratorCost, InputError, RadioImages

__all__ = [
    "TorchGenerator",
    "TORCH_OPTIONS",
    "grid_for",
    "one_hot",
    "EqLinear",
    "EqConv2d",
    "pixel_norm",
    "MinibatchStd",
]


# options every TorchGenerator understands (each plugin gives the presets' values where they differ)
TORCH_OPTIONS = Options(
    POSTPROCESSING,
    steps=Option(int, nullable=True, low=0),  # None: ``epochs`` sets the length; 0: as initialised
    epochs=Option(float, nullable=True, low=0.0, low_open=True),
    batch_size=Option(int, low=1),
    lr=POSITIVE,
    max_minutes=Option(float, None, nullable=True, low=0.0, low_open=True),  # wall-clock safety stop
    checkpoint_every=Option(int, low=1),
    mixed_precision=Option(str, "no", choices=("no", "bf16")),
    conditional=Option(bool, True),
    augment=Option(bool, True),
    progress=Option(bool, True, recorded=False),  # display only: never part of what a checkpoint is
)


def grid_for(size: int) -> tuple[int, int, int]:
    """(base, n_up, out): the generator grows base → base·2^n_up = out by doublings.

    40 → (5, 3, 40) (5→10→20→40), 80 → (5, 4, 80), 64 → (4, 4, 64). A side with no such factorisation
    (base in 3..8) is generated at the next 4·2^n ≥ size and resized to size (area interpolation)."""
    for n in range(int(math.log2(max(size, 1))), -1, -1):
        if size % 2**n == 0 and 3 <= size // 2**n <= 8:
            return size // 2**n, n, size
    n = max(0, math.ceil(math.log2(size / 4)))
    return 4, n, 4 * 2**n


def one_hot(y: torch.Tensor | None, n_classes: int) -> torch.Tensor | None:
    return None if y is None or n_classes == 0 else F.one_hot(y, n_classes).float()


class TorchGenerator(Generator):
    """A generator trained with minibatch steps on the training images (see module docstring).

    Subclasses set ``OPTIONS`` (``TORCH_OPTIONS`` with their own, and the presets' values) and implement
    ``build``, ``make_optimizers``, ``train_step``, ``generate`` (or ``sample_batch``); optionally
    ``prepare_data``, ``after_training``, ``data_range`` and ``total_steps``.
    """

    OPTIONS = TORCH_OPTIONS
    supports = frozenset({"class"})
    data_range: ClassVar[tuple[float, float]] = (0.0, 1.0)  # training pixels: [0,1] or [-1,1]
    length_options: ClassVar[tuple[str, ...]] = ("steps", "epochs")  # one of them sets the training length
    labels_option: ClassVar[str] = "conditional"  # the option that says whether to use the data's labels
    nfe_per_sample: ClassVar[int | None] = 1  # network evaluations per drawn image (None: known when sampling)
    sampled_net: ClassVar[str] = "G"  # the network sampling uses (its average when ``self.ema`` is kept)

    def __init__(self, preset: str = "smoke", device: str | None = None, **options: Any):
        super().__init__(preset, device, **options)
        if self.length_options and all(self.opt.get(k) is None for k in self.length_options):
            raise InputError(f"generator {self.name!r}: set one of {', '.join(self.length_options)}")
        self.nets: dict[str, nn.Module] = {}
        self.losses: list[dict[str, Any]] = []
        self.run_opt: dict[str, Any] = dict(self.opt)  # the options a fit runs with (``prepare_data`` may fill some)
        self.pool: np.ndarray | None = None  # training images minibatches are drawn from (None: all)
        self.extras: dict[str, np.ndarray] = {}  # per-image training inputs beside labels, for train_step
        self.ema: EMA | None = None  # an average of ``sampled_net``'s weights (made by make_optimizers)

    # -- hooks ------------------------------------------------------------------------------------
    @abstractmethod
    def build(self) -> None:
        """Create ``self.nets`` from ``self.opt`` and ``self.train_info`` (image_size, n_classes)."""

    @abstractmethod
    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimisers over ``self.nets`` (already on the training device)."""

    @abstractmethod
    def train_step(self, step: int, x: torch.Tensor, y: torch.Tensor | None, run: TrainingRun,
                   extra: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimisation step on a minibatch (``extra``: the minibatch's ``self.extras``); returns the losses
        to log."""

    def generate(self, rng: PerImageRandom, y: torch.Tensor | None) -> torch.Tensor:
        """Images (B, 1, S, S) in [0, 1] from the sampling networks (already in eval mode); a plugin that
        overrides ``sample_batch`` instead need not implement it."""
        raise NotImplementedError

    def prepare_data(self, train: RadioImages, seed: int, workdir: Path | None) -> None:
        """Before the networks are built: fill ``run_opt``, ``pool``, ``extras`` and ``train_info`` from the data."""

    def sampling_modules(self) -> dict[str, nn.Module]:
        """What ``save`` writes and sampling needs: ``sampled_net``, or its average after training with one."""
        n = self.sampled_net
        return {n: self.nets.get(f"{n}_ema", self.nets[n])}

    def extra_state(self) -> dict[str, Any]:
        """Further objects with state_dict() to checkpoint (the EMA)."""
        return {"ema": self.ema} if self.ema is not None else {}

    def after_training(self, seed: int) -> None:
        """After the last step, with ``self.nets`` unwrapped and in eval mode."""

    def init_from_data(self, images: np.ndarray) -> None:
        """Data-dependent initialisation of the freshly built ``self.nets`` (training pixels in [0, 1])."""

    def total_steps(self, n_train: int) -> int:
        """``steps``, or ``epochs`` passes over the ``n_train`` images in minibatches."""
        o = self.run_opt
        return int(math.ceil(o["epochs"] * n_train / o["batch_size"])) if o.get("epochs") else int(o["steps"])

    # -- Generator API ----------------------------------------------------------------------------
    @property
    def conditional(self) -> bool:
        return bool(self.train_info.get("n_classes"))

    def fit(self, train: RadioImages, *, seed: int, workdir: Path | None = None) -> None:
        if len(train.images) == 0:
            raise InputError(f"{self.name}: the training set is empty")
        h, w = train.images.shape[-2:]
        if h != w:
            raise InputError(f"{self.name} needs square images; got {h}×{w}")
        self.remember_training_set(train)
        labels = train.labels if self.opt[self.labels_option] else None  # None: an unconditional model
        n_classes = 0 if labels is None else len(train.class_names or ())
        prior = np.zeros(0) if labels is None else np.bincount(labels, minlength=n_classes) / len(labels)
        self.train_info.update(image_size=int(h), n_classes=n_classes, class_prior=[float(p) for p in prior])
        self.run_opt, self.pool, self.extras = dict(self.opt), None, {}
        self.prepare_data(train, seed, workdir)
        self._set_supports()
        seed_everything(seed)
        self.build()
        self.init_from_data(train.images)
        o = self.run_opt
        pool = np.arange(len(train.images)) if self.pool is None else self.pool
        steps = self.total_steps(len(pool))
        run = TrainingRun(
            workdir, steps=steps, seed=seed, mixed_precision=o["mixed_precision"],
            checkpoint_every=o["checkpoint_every"], desc=f"fit {self.name}", device=self.device,
            max_seconds=None if o["max_minutes"] is None else 60.0 * o["max_minutes"], progress=bool(o["progress"]),
        )
        bs = int(o["batch_size"])
        run.batch(len(pool), bs, 0)  # InputError now for a batch the data-parallel processes cannot share
        names = list(self.nets)
        for m in self.nets.values():
            m.to(run.device).train()
        self.opts = self.make_optimizers()
        onames = list(self.opts)
        prepared = run.prepare(*self.nets.values(), *self.opts.values())
        prepared = prepared if isinstance(prepared, (tuple, list)) else (prepared,)
        self.train_nets = dict(zip(names, prepared[: len(names)]))
        self.opts = dict(zip(onames, prepared[len(names):]))
        start = run.resume(**self.train_nets, **self.opts, **self.extra_state())
        lo, hi = self.data_range
        x_all = torch.from_numpy(self.train_images(train.images)).to(run.device) * (hi - lo) + lo
        y_all = None if labels is None else torch.from_numpy(labels).to(run.device)
        extras = {k: torch.from_numpy(v).to(run.device) for k, v in self.extras.items()}
        self.run = run
        for step in run:
            idx = torch.from_numpy(pool[run.batch(len(pool), bs, step)]).to(run.device)  # this process's share
            x = x_all[idx]
            if o["augment"]:  # flips and 90° rotations: radio morphologies have no preferred orientation
                x = random_flip_rot90(x, step_generator(seed, step))
            y = None if y_all is None else y_all[idx]
            logs = self.train_step(step, x, y, run, {k: v[idx] for k, v in extras.items()})
            run.log(step, **logs)
            run.maybe_checkpoint(step, **self.train_nets, **self.opts, **self.extra_state())
        self.nets = {k: run.unwrap(m).eval() for k, m in self.train_nets.items()}
        if self.ema is not None:
            self.nets[f"{self.sampled_net}_ema"] = self.ema.module
        done = getattr(run, "steps_done", start)
        self.train_info.update(start_step=start, steps_done=done, total_steps=steps, stopped_early=run.stopped_early,
                               processes=run.world_size)
        self.after_training(seed)
        self.losses = run.history()
        self._cost.train_seconds = run.elapsed
        self._cost.train_steps = done
        self._cost.nfe_per_sample = self.nfe_per_sample
        self._cost.device = str(run.device)
        self.device = str(run.device)

    def train_images(self, images: np.ndarray) -> np.ndarray:
        """Training pixels in [0, 1] at the network's grid (resized when the side has no base·2^n form)."""
        out = grid_for(images.shape[-1])[2] if self.data_range[0] < 0 else images.shape[-1]
        if out == images.shape[-1]:
            return images
        t = F.interpolate(torch.from_numpy(images), size=(out, out), mode="bilinear", antialias=True)
        return t.clamp(0, 1).numpy()

    def _set_supports(self) -> None:
        # an unconditional model (no labels, or conditional=False) cannot honour class conditions
        self.supports = type(self).supports if self.conditional else frozenset()

    def _labels(self, conditions: Conditions, rng: PerImageRandom, device: torch.device) -> torch.Tensor | None:
        """Requested classes, or for a conditional model asked for none, one per image drawn from the
        training class frequencies with that image's own generator."""
        if not self.conditional:
            return None
        if conditions.labels is not None:
            return torch.as_tensor(conditions.labels, dtype=torch.long, device=device)
        cdf = torch.tensor(np.cumsum(self.train_info["class_prior"]), dtype=torch.float32, device=device)
        u = rng.rand(()).reshape(-1)
        return torch.searchsorted(cdf, u, right=True).clamp(max=len(cdf) - 1)

    @torch.no_grad()
    def sample_batch(self, conditions: Conditions, seeds: Sequence[int]) -> np.ndarray:
        if not self.nets:
            raise RuntimeError(f"{self.name}: fit or load the generator before sampling")
        device = torch.device(self.device)
        mods = self.sampling_modules()
        for m in mods.values():
            m.to(device).eval()
        rng = PerImageRandom(seeds, device)
        y = self._labels(conditions, rng, device)
        x = self.generate(rng, y).float()
        size = int(self.train_info["image_size"])
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="area")
        return x.clamp(0, 1).cpu().numpy()  # part of the model: a linear/decoded output may overshoot [0, 1]

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_config(directory, {"generator": self.name, "preset": self.preset.name, "options": self.opt,
                                "train_info": self.train_info, "cost": self._cost.to_dict()})
        save_weights(directory, self.sampling_modules())

    def stored_config(self, directory: Path) -> dict[str, Any]:
        """What ``save`` wrote into ``directory/config.json`` (a plugin converts its older formats here)."""
        return load_config(Path(directory))

    def load(self, directory: Path) -> None:
        cfg = self.stored_config(directory)
        if cfg.get("generator") != self.name:
            raise InputError(f"{directory} holds a {cfg.get('generator')!r} generator, not {self.name!r}")
        self.restore_options(cfg["options"], cfg.get("preset", self.preset.name))
        self.train_info = dict(cfg["train_info"])
        cost = dict(cfg.get("cost", {}), device=str(self.device))
        self._cost = GeneratorCost(**{k: v for k, v in cost.items() if k in GeneratorCost.__dataclass_fields__})
        self._set_supports()
        self.build()
        load_weights(Path(directory), self.sampling_modules())
        for m in self.nets.values():
            m.to(self.device).eval()

    def configure_sampling(self, **options: Any) -> None:
        """Change sampling options (``sampling_options``) of a fitted or loaded model; no re-training."""
        bad = sorted(set(options) - self.sampling_options)
        if bad:
            raise InputError(f"{bad} are not sampling options; choose from {sorted(self.sampling_options)}")
        self.OPTIONS.check(f"generator {self.name!r}", options)
        self.opt.update(options)

    def num_parameters(self) -> int:
        return sum(p.numel() for m in self.sampling_modules().values() for p in m.parameters()) if self.nets else 0


# -- Karras et al. (2017) building blocks ---------------------------------------------------------
class EqLinear(nn.Module):
    """Linear layer with equalised learning rate: w ~ N(0, 1) scaled at run time by gain/√fan_in (Sect. 4.1)."""

    def __init__(self, cin: int, cout: int, gain: float = math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale = gain / math.sqrt(cin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class EqConv2d(nn.Module):
    """k×k convolution (same padding) with equalised learning rate."""

    def __init__(self, cin: int, cout: int, k: int, gain: float = math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale = gain / math.sqrt(cin * k * k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.weight.shape[-1] // 2)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """b = a / sqrt(mean_c a² + ε) over the feature axis (Karras et al. Eq. in Sect. 4.2)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


class MinibatchStd(nn.Module):
    """Append one feature map: the std of each feature over groups of ``group`` images, averaged (Sect. 3)."""

    def __init__(self, group: int = 4):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = math.gcd(b, self.group)
        y = x.float().view(g, -1, c, h, w)
        std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (b/g,)
        s = std.repeat(g).view(b, 1, 1, 1).expand(b, 1, h, w).to(x.dtype)
        return torch.cat([x, s], dim=1)
