"""EDM: the continuous-time diffusion model of paper 000 (Vicanek Martinez & Brüggen 2024), after
Karras et al. (2022) and NVlabs/edm.

Denoiser   D_θ(x; σ, c) = c_skip(σ) x + c_out(σ) F_θ(c_in(σ) x; c_noise(σ), c)          (Eq. 19-20)
Training   ln σ ~ N(P_mean, P_std²), loss λ(σ) ‖D_θ(y + σn; σ, c) − y‖², λ = c_out(σ)⁻²   (Sect. 4.2)
           images mapped [0, 1] → [−1, 1]; random flips and 90° rotations; context dropout
           (the null token ∅) so the same network is also the unconditional model.
Sampling   Heun's 2nd-order solver on the PF-ODE with the EDM σ steps (Eq. 25, Algorithm 1),
           classifier-free guidance D̃ = (1 + ω) D(x; σ, c) − ω D(x; σ) (Sect. 2.3),
           output clamped to [−1, 1] and mapped to [0, 1].

Conditioning: class labels and/or the peak flux, Box-Cox transformed and standardised (Sect. 3.1).
The sampler functions (``edm_sigmas``, ``heun_sampler``, ``guided``) take any denoiser callable. Training
(minibatches, augmentation, checkpoints, resumption) is the shared ``TorchGenerator``'s; EDM adds its network,
its loss (``EDMLoss``, which draws σ as NVlabs/edm's) and its sampler.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from radiobench.conditioning import BoxCox
from radiobench.options import POSITIVE, PROBABILITY, Option, Options
from radiobench.seeding import PerImageRandom
from radiobench.store import jsonable, read_json, write_json
from radiobench.training import EMA, TrainingRun, warn_if_emulated_bf16
from radiobench.types import Conditions, InputError, RadioImages

from ._torch import TORCH_OPTIONS, TorchGenerator
from .unet import UNet

__all__ = ["EDM", "EDM_OPTIONS", "Denoiser", "EDMLoss", "precondition", "edm_loss", "edm_sigmas", "heun_sampler",
           "guided"]

DenoiserFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# -- Eq. 19-20: preconditioning -----------------------------------------------------------------
def precondition(sigma: torch.Tensor, sigma_data: float = 0.5) -> tuple[torch.Tensor, ...]:
    """(c_skip, c_out, c_in, c_noise) of Eq. 20 for noise level σ."""
    s2 = sigma**2 + sigma_data**2
    return sigma_data**2 / s2, sigma * sigma_data / s2.sqrt(), 1 / s2.sqrt(), sigma.log() / 4


class Denoiser(nn.Module):
    """D_θ(x; σ, c) = c_skip x + c_out F_θ(c_in x; c_noise, c)  (Eq. 19) around a U-Net F_θ."""

    def __init__(self, net: UNet, sigma_data: float = 0.5):
        super().__init__()
        self.net, self.sigma_data = net, float(sigma_data)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, **context: torch.Tensor | None) -> torch.Tensor:
        """D_θ(x; σ, context) for a scalar or per-image σ; ``context`` as ``UNet.embedding`` takes it."""
        sigma = sigma.to(torch.float32).reshape(-1, 1, 1, 1).expand(len(x), 1, 1, 1)
        c_skip, c_out, c_in, c_noise = precondition(sigma, self.sigma_data)
        f = self.net(c_in * x, c_noise.flatten(), **context)
        return c_skip * x + c_out * f.to(torch.float32)


def edm_loss(
    denoiser: Callable[..., torch.Tensor], y: torch.Tensor, sigma: torch.Tensor, sigma_data: float = 0.5, **context: Any
) -> torch.Tensor:
    """Sect. 4.2: E λ(σ) ‖D(y + σn; σ) − y‖² with λ(σ) = c_out(σ)⁻² = (σ² + σ_data²)/(σ σ_data)²."""
    s = sigma.reshape(-1, 1, 1, 1)
    weight = (s**2 + sigma_data**2) / (s * sigma_data) ** 2
    d = denoiser(y + s * torch.randn_like(y), sigma, **context)
    return (weight * (d - y) ** 2).mean()


class EDMLoss:
    """NVlabs/edm's ``EDMLoss``: σ drawn per image with ln σ ~ N(P_mean, P_std²) (Sect. 4.2), then ``edm_loss``."""

    def __init__(self, p_mean: float = -1.2, p_std: float = 1.2, sigma_data: float = 0.5):
        self.p_mean, self.p_std, self.sigma_data = p_mean, p_std, sigma_data

    def __call__(self, denoiser: Callable[..., torch.Tensor], y: torch.Tensor, **context: Any) -> torch.Tensor:
        sigma = (torch.randn(len(y), device=y.device) * self.p_std + self.p_mean).exp()
        return edm_loss(denoiser, y, sigma, self.sigma_data, **context)


# -- Eq. 25 and Algorithm 1: sampling -----------------------------------------------------------
def edm_sigmas(num_steps: int = 25, sigma_min: float = 2e-3, sigma_max: float = 80.0, rho: float = 7.0,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """σ_i = (σ_max^(1/ρ) + i/(N−1) (σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ for i < N, and σ_N = 0 (Eq. 25)."""
    if num_steps < 1:
        raise InputError(f"num_steps must be at least 1; got {num_steps}")
    i = torch.arange(num_steps, dtype=torch.float64, device=device)
    frac = i / max(num_steps - 1, 1)
    s = (sigma_max ** (1 / rho) + frac * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([s, torch.zeros(1, dtype=torch.float64, device=device)])


@torch.no_grad()
def heun_sampler(denoise: DenoiserFn, noise: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Algorithm 1: Heun's method on dx/dσ = (x − D(x; σ))/σ from x_0 = σ_0 n down to σ_N = 0.

    ``denoise(x, sigma)`` gets a batch and a scalar σ tensor; ``noise`` is standard normal. The
    last step (σ_N = 0) is a plain Euler step, so N steps cost 2N − 1 denoiser evaluations."""
    sig = sigmas.to(torch.float64)
    x = noise.to(torch.float64) * sig[0]
    for i in range(len(sig) - 1):
        s_cur, s_next = sig[i], sig[i + 1]
        d = (x - denoise(x.to(torch.float32), s_cur.to(torch.float32)).to(torch.float64)) / s_cur
        x_next = x + (s_next - s_cur) * d  # Euler step
        if s_next > 0:  # 2nd-order correction (trapezoidal rule)
            d2 = (x_next - denoise(x_next.to(torch.float32), s_next.to(torch.float32)).to(torch.float64)) / s_next
            x_next = x + (s_next - s_cur) * 0.5 * (d + d2)
        x = x_next
    return x.to(torch.float32)


def guided(conditional: DenoiserFn, unconditional: DenoiserFn, omega: float) -> DenoiserFn:
    """Classifier-free guidance (Sect. 2.3, Ho & Salimans 2022): (1 + ω) D(x; σ, c) − ω D(x; σ)."""
    if omega == 0:
        return conditional
    return lambda x, sigma: (1 + omega) * conditional(x, sigma) - omega * unconditional(x, sigma)


# -- options (Table 4 and Sect. 4.3 of paper 000) ---------------------------------------------------
_POSITIVE_SAMPLING = replace(POSITIVE, sampling=True)
EDM_OPTIONS = Options(
    {k: o for k, o in TORCH_OPTIONS.items() if k not in ("epochs", "conditional")},
    # U-Net. smoke: a few seconds, for tests; cpu: sized to a CPU budget (benchmarks/README.md, "cpu-preset
    # choice"); paper: Table 4, dropout 0.1
    channels=Option((int,), presets={"smoke": (8, 16), "cpu": (32, 64, 128), "paper": (128, 256, 256)}, low=1),
    num_blocks=Option(int, 2, presets={"smoke": 1}, low=1),
    attn_levels=Option((int,), presets={"smoke": (), "cpu": (2,), "paper": (1, 2)}, low=0),
    dropout=replace(PROBABILITY, default=0.0, presets={"paper": 0.1}),
    sigma_data=replace(POSITIVE, default=0.5),
    # training; None at paper: Table 4's FIRST column (batch 128, 40k iterations, no EMA), or its LoTSS column
    # for flux data (batch 256, 1e5 iterations, EMA 0.9999)
    batch_size=replace(TORCH_OPTIONS["batch_size"], nullable=True),
    lr_warmup=Option(int, 0, presets={"cpu": 100}, low=0),
    ema=replace(PROBABILITY, presets={"smoke": 0.9, "cpu": 0.999}, nullable=True),  # decay; 0: none
    p_mean=Option(float, -2.5),
    p_std=replace(POSITIVE, default=1.8),
    context_dropout=Option(float, 0.1, low=0.0, high=1.0),
    class_balance=Option(str, "none", presets={"paper": "undersample"}, choices=("none", "undersample")),
    use_labels=Option(bool, True),
    use_flux=Option(bool, True),
    # sampling (Sect. 4.3)
    num_steps=Option(int, 25, presets={"smoke": 10}, sampling=True, low=1),  # smoke: 2.6x fewer network calls
    omega=Option(float, None, sampling=True, nullable=True, low=0.0),
    sigma_min=replace(_POSITIVE_SAMPLING, default=2e-3),
    sigma_max=replace(_POSITIVE_SAMPLING, default=80.0),
    rho=replace(_POSITIVE_SAMPLING, default=7.0),
    sample_precision=Option(str, "fp32", sampling=True, choices=("fp32", "bf16")),
).with_defaults(
    steps={"smoke": 20, "cpu": 1200},  # 0: as initialised
    batch_size={"smoke": 8, "cpu": 32},
    lr={"smoke": 2e-3, "cpu": 1e-3, "paper": 2e-5},
    # cpu: float32, the same model on every CPU (bf16 is emulated, 13x slower, where the CPU lacks it;
    # benchmarks/README.md, "bf16 on CPUs without it"); paper: bf16 on the GPU
    mixed_precision={"paper": "bf16"},
    checkpoint_every={"smoke": 10, "cpu": 200, "paper": 1000},
    max_minutes={"cpu": 120.0},  # only a safety stop on a loaded machine (~63 min on one idle core)
)
_PAPER_FIRST = dict(steps=40_000, batch_size=128, ema=0.0)
_PAPER_LOFAR = dict(steps=100_000, batch_size=256, ema=0.9999)
_ARCH = ("channels", "num_blocks", "attn_levels", "dropout", "sigma_data")


class EDM(TorchGenerator):
    """Paper-000 EDM diffusion model, conditional on class and/or Box-Cox peak flux with
    classifier-free guidance.

    Options (constructor keywords; defaults from the preset): channels, num_blocks, attn_levels,
    dropout (U-Net); steps, batch_size, lr, lr_warmup, ema (decay; 0 = none), mixed_precision
    ("bf16"/"no"), p_mean, p_std, sigma_data, context_dropout, augment, class_balance
    ("none"/"undersample"), use_labels, use_flux, checkpoint_every, max_minutes (training);
    num_steps, omega, sigma_min, sigma_max, rho, sample_precision ("fp32"/"bf16": autocast of the
    network while sampling; the solver itself runs in float64), zero_below (pixels below it set to 0;
    "auto": the survey threshold on thresholded data, see ``survey_threshold``), peak_normalise (each image
    divided by its peak, as the training images were; see ``peak_normalised``) (sampling).
    ``omega=None`` means the paper's values: 0.75 for a class-conditional model (Sect. 6.3), 0.1 for
    a flux-only one (Sect. 6.1).

    A model is conditioned on what its training set carried (labels, peak flux). Sampling with a
    condition it was not trained on raises InputError; a condition it was trained on but that the
    conditions lack is sampled unconditionally through the null token ∅ (e.g. class given, flux
    not: the flux is marginalised as the context dropout taught the network).
    """

    name = "edm"
    description = "EDM diffusion (paper 000): Heun sampler, classifier-free guidance on class / peak flux"
    supports = frozenset({"class", "flux"})
    OPTIONS = EDM_OPTIONS
    data_range = (-1.0, 1.0)
    length_options = ()  # steps None: Table 4's, by the data
    labels_option = "use_labels"
    nfe_per_sample = None  # set by the sampler's steps and guidance
    sampled_net = "denoiser"

    def __init__(self, preset: str = "smoke", device: str | None = None, **options: Any):
        super().__init__(preset, device, **options)
        if self.opt["sigma_min"] >= self.opt["sigma_max"]:
            raise InputError(f"generator 'edm': sigma_min ({self.opt['sigma_min']}) must be below sigma_max "
                             f"({self.opt['sigma_max']})")
        # what it can be conditioned on: by the options until fitted, then by what it was trained on
        self.supports = frozenset(k for k, use in (("class", "use_labels"), ("flux", "use_flux")) if self.opt[use])

    @property
    def denoiser(self) -> Denoiser | None:
        """D_θ as sampled: the EMA of the weights when there is one."""
        return cast(Denoiser, self.sampling_modules()["denoiser"]) if self.nets else None

    def omega(self) -> float:
        w = self.opt["omega"]
        if w is None:
            w = 0.75 if self.train_info.get("class_names") else 0.1 if self.train_info.get("flux_transform") else 0.0
        return float(w)

    # -- TorchGenerator hooks -----------------------------------------------------------------------
    def _set_supports(self) -> None:
        ti = self.train_info
        self.supports = frozenset({"class"} if ti.get("class_names") else ()) | frozenset(
            {"flux"} if ti.get("flux_transform") is not None else ())

    def train_images(self, images: np.ndarray) -> np.ndarray:
        return images  # the U-Net takes any side divisible by 2^(levels - 1)

    def prepare_data(self, train: RadioImages, seed: int, workdir: Path | None) -> None:
        ti, o = self.train_info, self.run_opt
        if not ti["n_classes"]:
            ti["class_names"] = None
        flux = train.peak_flux if o["use_flux"] else None
        ti["flux_transform"] = BoxCox.fit(flux).to_dict() if flux is not None else None
        if flux is not None:
            self.extras["flux"] = BoxCox(**ti["flux_transform"])(flux).astype(np.float32)
        for k, v in (_PAPER_LOFAR if flux is not None else _PAPER_FIRST).items():  # None: Table 4, by the data
            if o[k] is None:
                o[k] = v
        ti["training"] = {k: o[k] for k in ("steps", "batch_size", "lr", "ema", "mixed_precision")}
        h, w = train.resolution
        depth = len(o["channels"]) - 1
        if h % 2**depth or w % 2**depth:
            raise InputError(f"EDM with {depth + 1} U-Net levels needs sides divisible by {2**depth}; got {h}x{w}")
        if workdir is not None:
            _check_workdir(Path(workdir), {k: o[k] for k in _ARCH}
                           | {k: ti[k] for k in ("class_names", "image_shape", "flux_transform")})
        if o["class_balance"] == "undersample" and train.labels is not None and ti["class_names"]:  # Sect. 3.2
            rng, labels = np.random.default_rng(seed), train.labels  # random undersampling
            m = np.bincount(labels).min()
            self.pool = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), m, replace=False)
                                                for c in np.unique(labels)]))

    def build(self) -> None:
        ti = self.train_info
        net = UNet(
            channels=self.opt["channels"], num_blocks=self.opt["num_blocks"], attn_levels=self.opt["attn_levels"],
            num_classes=len(ti["class_names"]) if ti.get("class_names") else 0,
            flux=ti.get("flux_transform") is not None, dropout=self.opt["dropout"],
            in_channels=int(ti["image_shape"][0]),
        )
        self.nets = {"denoiser": Denoiser(net, self.opt["sigma_data"])}
        self.ema = None

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        o = self.run_opt
        self.loss = EDMLoss(p_mean=o["p_mean"], p_std=o["p_std"], sigma_data=o["sigma_data"])
        if o["ema"]:  # the network is on its training device here
            self.ema = EMA(self.nets["denoiser"], float(o["ema"]))
        return {"opt": torch.optim.Adam(self.nets["denoiser"].parameters(), lr=self.run_opt["lr"])}

    def train_step(self, step: int, x: torch.Tensor, y: torch.Tensor | None, run: TrainingRun,
                   extra: dict[str, torch.Tensor]) -> dict[str, float]:
        o, net, opt = self.run_opt, self.train_nets["denoiser"], self.opts["opt"]
        n, dev, p = len(x), x.device, float(o["context_dropout"])
        # context dropout: drop everything with probability p, and (with both kinds) each kind alone with
        # probability p
        drop_all = torch.rand(n, device=dev) < p
        both = y is not None and "flux" in extra

        def keep() -> torch.Tensor:
            return ~(drop_all | (torch.rand(n, device=dev) < p)) if both else ~drop_all

        ctx: dict[str, torch.Tensor] = {}
        if y is not None:
            ctx["labels"], ctx["keep_class"] = y, keep()
        if "flux" in extra:
            ctx["flux"], ctx["keep_flux"] = extra["flux"], keep()
        if o["lr_warmup"]:
            for g in opt.param_groups:
                g["lr"] = o["lr"] * min(1.0, (step + 1) / o["lr_warmup"])
        with run.autocast():
            loss = self.loss(net, x, **ctx)
        run.optimizer_step(opt, loss)
        if self.ema is not None:
            self.ema.decay = min(float(o["ema"]), (1 + step) / (10 + step))  # warm-up of the average
            self.ema.update(run.unwrap(net))
        return {"loss": loss.item()}

    # -- sampling ---------------------------------------------------------------------------------
    def _fitted(self) -> Denoiser:
        """``denoiser``; InputError before ``fit`` or ``load``."""
        if self.denoiser is None:
            raise InputError("the EDM generator has no weights yet: fit or load it before sampling")
        return self.denoiser

    def check_conditions(self, conditions: Conditions) -> None:
        self._fitted()
        super().check_conditions(conditions)  # ``supports``: what it was trained on

    @torch.no_grad()
    def sample_batch(self, conditions: Conditions, seeds: Sequence[int]) -> np.ndarray:
        net, dev, o = self._fitted(), torch.device(self.device), self.opt
        net.to(dev).eval()
        noise = PerImageRandom(seeds, dev).randn(self.train_info["image_shape"])
        ctx: dict[str, torch.Tensor] = {}
        if conditions.labels is not None:
            ctx["labels"] = torch.as_tensor(conditions.labels, device=dev)
        if conditions.peak_flux is not None:
            z = BoxCox(**self.train_info["flux_transform"])(conditions.peak_flux)
            ctx["flux"] = torch.as_tensor(z, dtype=torch.float32, device=dev)
        omega = self.omega() if ctx else 0.0
        denoise = guided(lambda x, s: net(x, s, **ctx), lambda x, s: net(x, s), omega)
        sigmas = edm_sigmas(o["num_steps"], o["sigma_min"], o["sigma_max"], o["rho"], device=dev)
        if o["sample_precision"] == "bf16":
            warn_if_emulated_bf16(dev, f"sample {self.name}")
        with torch.autocast(dev.type, torch.bfloat16, enabled=o["sample_precision"] == "bf16"):
            x = heun_sampler(denoise, noise, sigmas)
        self._cost.nfe_per_sample = (2 * o["num_steps"] - 1) * (2 if omega else 1)
        return ((x.clamp(-1, 1) + 1) / 2).cpu().numpy()  # the ODE's end point may overshoot the data range

    # -- persistence ------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        if self.denoiser is None:
            raise InputError("nothing to save: the EDM generator has not been fitted")
        super().save(directory)

    def stored_config(self, directory: Path) -> dict[str, Any]:
        cfg = super().stored_config(directory)
        if "hp" in cfg:  # format 1 (before 2026-12-02): options under "hp", weights under "denoiser" as now
            cfg = {"generator": self.name, "options": cfg.pop("hp"), **cfg}
        return cfg


def _check_workdir(workdir: Path, identity: dict[str, Any]) -> None:
    """Refuse to resume a checkpoint of a different network or training set in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "edm_identity.json"
    if (workdir / "train_state.pt").exists() and path.exists() and read_json(path) != jsonable(identity):
        raise InputError(f"{workdir} holds a checkpoint of a different EDM (network or training data); "
                         "use a fresh workdir")
    write_json(path, identity)
