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
The sampler functions (``edm_sigmas``, ``heun_sampler``, ``guided``) take any denoiser callable.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from radiobench.checkpoint import load_config, load_weights, save_config, save_weights
from radiobench.conditioning import BoxCox
from radiobench.interfaces import Generator, postprocessing_defaults
from radiobench.seeding import PerImageRandom
from radiobench.training import EMA, TrainingRun, batch_indices
from radiobench.types import Conditions, InputError, RadioImages

from .unet import UNet

__all__ = ["EDM", "Denoiser", "precondition", "edm_loss", "edm_sigmas", "heun_sampler", "guided", "augment"]

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

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, labels=None, flux=None, keep_class=None, keep_flux=None):
        sigma = sigma.to(torch.float32).reshape(-1, 1, 1, 1).expand(len(x), 1, 1, 1)
        c_skip, c_out, c_in, c_noise = precondition(sigma, self.sigma_data)
        f = self.net(c_in * x, c_noise.flatten(), labels, flux, keep_class, keep_flux)
        return c_skip * x + c_out * f.to(torch.float32)


def edm_loss(
    denoiser: Callable[..., torch.Tensor], y: torch.Tensor, sigma: torch.Tensor, sigma_data: float = 0.5, **context: Any
) -> torch.Tensor:
    """Sect. 4.2: E λ(σ) ‖D(y + σn; σ) − y‖² with λ(σ) = c_out(σ)⁻² = (σ² + σ_data²)/(σ σ_data)²."""
    s = sigma.reshape(-1, 1, 1, 1)
    weight = (s**2 + sigma_data**2) / (s * sigma_data) ** 2
    d = denoiser(y + s * torch.randn_like(y), sigma, **context)
    return (weight * (d - y) ** 2).mean()


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


def augment(y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random horizontal and vertical flips, then a rotation by a random multiple of 90° (Sect. 4.2),
    drawn per image: one of the 8 symmetries of the square."""
    k = torch.randint(0, 8, (len(y),), generator=generator).tolist()
    out = torch.empty_like(y)
    for i, ki in enumerate(k):
        t = y[i]
        if ki & 1:
            t = t.flip(-1)
        if ki & 2:
            t = t.flip(-2)
        out[i] = t.rot90(ki >> 2, (-2, -1)) if ki >> 2 else t
    return out


# -- presets -------------------------------------------------------------------------------------
_COMMON: dict[str, Any] = dict(
    sigma_data=0.5, p_mean=-2.5, p_std=1.8, context_dropout=0.1,  # Table 4
    num_steps=25, sigma_min=2e-3, sigma_max=80.0, rho=7.0, omega=None, sample_precision="fp32",  # Sect. 4.3
    augment=True, use_labels=True, use_flux=True, class_balance="none", num_blocks=2,
    lr_warmup=0, checkpoint_every=200, max_minutes=None, progress=True,
)
PRESET_OPTIONS: dict[str, dict[str, Any]] = {
    # a few seconds: for tests
    "smoke": dict(channels=(8, 16), num_blocks=1, attn_levels=(), dropout=0.0, steps=20, batch_size=8,
                  lr=2e-3, ema=0.9, mixed_precision="no", checkpoint_every=10),
    # ~29 min on one idle CPU core at 40x40 (measurements in benchmarks/README.md); bf16 sampling is 1.6x
    # faster and moves pixels by 1.6e-4 on average; max_minutes is only a safety stop on a loaded machine
    "cpu": dict(channels=(32, 64, 128), attn_levels=(2,), dropout=0.0, steps=1200, batch_size=32,
                lr=1e-3, lr_warmup=100, ema=0.999, mixed_precision="bf16", sample_precision="bf16",
                max_minutes=40.0),
    # Table 4, FIRST column (LoTSS-like flux data: batch 256, 1e5 iterations, EMA 0.9999); dropout 0.1
    "paper": dict(channels=(128, 256, 256), attn_levels=(1, 2), dropout=0.1, steps=None, batch_size=None,
                  lr=2e-5, ema=None, mixed_precision="bf16", class_balance="undersample", checkpoint_every=1000),
}
_PAPER_FIRST = dict(steps=40_000, batch_size=128, ema=0.0)
_PAPER_LOFAR = dict(steps=100_000, batch_size=256, ema=0.9999)
_SAMPLING = (
    "num_steps", "omega", "sigma_min", "sigma_max", "rho", "sample_precision", "zero_below", "peak_normalise",
)
_ARCH = ("channels", "num_blocks", "attn_levels", "dropout", "sigma_data")


def _defaults(preset: str) -> dict[str, Any]:
    """Every option's value at ``preset`` (post-processing: ``postprocessing_defaults``)."""
    return {**_COMMON, **postprocessing_defaults(preset), **PRESET_OPTIONS[preset]}


class EDM(Generator):
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
    sampling_options = frozenset(_SAMPLING)

    def __init__(self, preset: str = "smoke", device: str | None = None, **options: Any):
        super().__init__(preset, device, **options)
        base = _defaults(self.preset.name)
        unknown = sorted(set(options) - set(base))
        if unknown:
            raise InputError(f"unknown EDM options {unknown}; valid: {', '.join(sorted(base))}")
        self.hp: dict[str, Any] = {**base, **options}
        self.denoiser: Denoiser | None = None

    # -- configuration ----------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        hp = {k: v for k, v in self.hp.items() if k != "progress"}  # display only
        return {"name": self.name, "preset": self.preset.name, **_jsonable(hp)}

    def num_parameters(self) -> int:
        return 0 if self.denoiser is None else sum(p.numel() for p in self.denoiser.parameters())

    def configure_sampling(self, **options: Any) -> None:
        """Change sampling options (num_steps, omega, sigma_min, sigma_max, rho, sample_precision, zero_below,
        peak_normalise)."""
        bad = sorted(set(options) - set(_SAMPLING))
        if bad:
            raise InputError(f"{bad} are not sampling options; choose from {_SAMPLING}")
        self.hp.update(options)

    def omega(self) -> float:
        w = self.hp["omega"]
        if w is None:
            w = 0.75 if self.train_info.get("class_names") else 0.1 if self.train_info.get("flux_transform") else 0.0
        return float(w)

    def _build(self) -> Denoiser:
        ti = self.train_info
        net = UNet(
            channels=self.hp["channels"], num_blocks=self.hp["num_blocks"], attn_levels=self.hp["attn_levels"],
            num_classes=len(ti["class_names"]) if ti.get("class_names") else 0,
            flux=ti.get("flux_transform") is not None, dropout=self.hp["dropout"],
            in_channels=int(ti["image_shape"][0]),
        )
        return Denoiser(net, self.hp["sigma_data"])

    # -- training ---------------------------------------------------------------------------------
    def fit(self, train: RadioImages, *, seed: int, workdir: Path | None = None) -> None:
        hp = dict(self.hp)  # resolved below; self.hp stays as configured (the runner compares configs)
        self.remember_training_set(train)
        if not hp["use_labels"]:
            self.train_info["class_names"] = None
        labels = train.labels if self.train_info["class_names"] else None
        flux = train.peak_flux if hp["use_flux"] else None
        self.train_info["flux_transform"] = BoxCox.fit(flux).to_dict() if flux is not None else None
        if self.preset.name == "paper":  # Table 4: LoTSS (flux) column vs FIRST column
            for k, v in (_PAPER_LOFAR if flux is not None else _PAPER_FIRST).items():
                if hp[k] is None:
                    hp[k] = v
        self.train_info["training"] = {k: hp[k] for k in ("steps", "batch_size", "lr", "ema", "mixed_precision")}
        h, w = train.resolution
        depth = len(hp["channels"]) - 1
        if h % 2**depth or w % 2**depth:
            raise InputError(f"EDM with {depth + 1} U-Net levels needs sides divisible by {2**depth}; got {h}x{w}")
        if workdir is not None:
            ti = self.train_info
            _check_workdir(Path(workdir), {k: _jsonable(hp[k]) for k in _ARCH}
                           | {k: ti[k] for k in ("class_names", "image_shape", "flux_transform")})

        y_all = torch.from_numpy(train.images) * 2 - 1  # [0, 1] -> [-1, 1]
        lab_all = torch.from_numpy(labels) if labels is not None else None
        z_all = None if flux is None else torch.from_numpy(BoxCox(**self.train_info["flux_transform"])(flux)).float()
        pool = np.arange(len(train))
        if hp["class_balance"] == "undersample" and labels is not None:  # Sect. 3.2: random undersampling
            rng = np.random.default_rng(seed)
            m = np.bincount(labels).min()
            pool = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), m, replace=False)
                                           for c in np.unique(labels)]))
        elif hp["class_balance"] not in ("none", "undersample"):
            raise InputError(f"class_balance must be 'none' or 'undersample'; got {hp['class_balance']!r}")

        run = TrainingRun(
            workdir, steps=hp["steps"], seed=seed, mixed_precision=hp["mixed_precision"],
            checkpoint_every=hp["checkpoint_every"], desc="edm",
            max_seconds=None if hp["max_minutes"] is None else 60.0 * hp["max_minutes"],
            device=str(self.device), progress=hp["progress"],
        )
        model = self._build()
        opt = torch.optim.Adam(model.parameters(), lr=hp["lr"])
        model, opt = run.prepare(model, opt)
        ema = EMA(run.unwrap(model), hp["ema"]) if hp["ema"] else None
        state: dict[str, Any] = {"model": model, "opt": opt} | ({"ema": ema} if ema else {})
        run.resume(**state)
        dev, p = run.device, float(hp["context_dropout"])
        model.train()
        for step in run:
            idx = torch.from_numpy(pool[batch_indices(len(pool), hp["batch_size"], seed, step)])
            y = y_all[idx]
            if hp["augment"]:
                y = augment(y)
            y = y.to(dev)
            n = len(y)
            sigma = (torch.randn(n, device=dev) * hp["p_std"] + hp["p_mean"]).exp()
            ctx: dict[str, torch.Tensor] = {}
            # context dropout: drop everything with probability p, and each kind alone with probability p
            drop_all = torch.rand(n, device=dev) < p
            if lab_all is not None:
                ctx["labels"] = lab_all[idx].to(dev)
                ctx["keep_class"] = ~(drop_all | (torch.rand(n, device=dev) < p) if z_all is not None else drop_all)
            if z_all is not None:
                ctx["flux"] = z_all[idx].to(dev)
                ctx["keep_flux"] = ~(drop_all | (torch.rand(n, device=dev) < p) if lab_all is not None else drop_all)
            if hp["lr_warmup"]:
                for g in opt.param_groups:
                    g["lr"] = hp["lr"] * min(1.0, (step + 1) / hp["lr_warmup"])
            with run.autocast():
                loss = edm_loss(model, y, sigma, hp["sigma_data"], **ctx)
            run.backward(loss)
            opt.step()
            opt.zero_grad(set_to_none=True)
            if ema is not None:
                ema.decay = min(float(hp["ema"]), (1 + step) / (10 + step))  # warm-up of the average
                ema.update(run.unwrap(model))
            run.log(step, loss=loss.item())
            run.maybe_checkpoint(step, **state)
        self.denoiser = (ema.module if ema is not None else run.unwrap(model)).eval()
        self.history = run.history()
        self._cost.train_seconds = run.elapsed
        self._cost.train_steps = getattr(run, "steps_done", run.start_step)
        self._cost.device = str(dev)
        self.device = str(dev)

    # -- sampling ---------------------------------------------------------------------------------
    def check_conditions(self, conditions: Conditions) -> None:
        if self.denoiser is None:
            raise InputError("the EDM generator has no weights yet: fit or load it before sampling")
        super().check_conditions(conditions)
        if conditions.peak_flux is not None and self.train_info.get("flux_transform") is None:
            raise InputError(
                "generator 'edm' was trained without peak flux, so it cannot be conditioned on it; "
                "drop conditions.peak_flux or train on a dataset that carries peak flux"
            )

    def sample_batch(self, conditions: Conditions, seeds: Sequence[int]) -> np.ndarray:
        if self.denoiser is None:
            raise InputError("the EDM generator has no weights yet: fit or load it before sampling")
        net, dev, hp = self.denoiser, torch.device(self.device), self.hp
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
        sigmas = edm_sigmas(hp["num_steps"], hp["sigma_min"], hp["sigma_max"], hp["rho"], device=dev)
        if hp["sample_precision"] not in ("fp32", "bf16"):
            raise InputError(f"sample_precision must be 'fp32' or 'bf16'; got {hp['sample_precision']!r}")
        with torch.no_grad(), torch.autocast(dev.type, torch.bfloat16, enabled=hp["sample_precision"] == "bf16"):
            x = heun_sampler(denoise, noise, sigmas)
        self._cost.nfe_per_sample = (2 * hp["num_steps"] - 1) * (2 if omega else 1)
        return ((x.clamp(-1, 1) + 1) / 2).cpu().numpy()

    # -- persistence ------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        if self.denoiser is None:
            raise InputError("nothing to save: the EDM generator has not been fitted")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_weights(directory, {"denoiser": self.denoiser})
        save_config(directory, {"format": 1, "preset": self.preset.name, "hp": _jsonable(self.hp),
                                "train_info": self.train_info, "cost": self._cost.to_dict()})

    def load(self, directory: Path) -> None:
        cfg = load_config(Path(directory))
        sampling = {k: v for k, v in self.options.items() if k in _SAMPLING}  # constructor overrides
        self.hp = {**_defaults(cfg.get("preset", self.preset.name)), **cfg["hp"], **sampling}  # + options added later
        self.train_info = cfg["train_info"]
        for k in ("train_seconds", "train_steps"):
            setattr(self._cost, k, cfg.get("cost", {}).get(k, 0))
        self.denoiser = self._build()
        load_weights(Path(directory), {"denoiser": self.denoiser})
        self.denoiser.to(torch.device(self.device)).eval()


def _jsonable(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _jsonable(v) for k, v in d.items()}
    if isinstance(d, (tuple, list)):
        return [_jsonable(v) for v in d]
    return d


def _check_workdir(workdir: Path, identity: dict[str, Any]) -> None:
    """Refuse to resume a checkpoint of a different network or training set in ``workdir``."""
    import json

    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "edm_identity.json"
    if (workdir / "train_state.pt").exists() and path.exists():
        old = json.loads(path.read_text())
        if old != json.loads(json.dumps(identity)):
            raise InputError(f"{workdir} holds a checkpoint of a different EDM (network or training data); "
                             "use a fresh workdir")
    path.write_text(json.dumps(identity, indent=1))
