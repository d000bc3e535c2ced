"""DDPM: the pixel-space denoising diffusion model of Ho et al. (2020), paper 001's baseline (Table 3) and
paper 002's model (Sect. 3.3), on diffusers' ``UNet2DModel`` and schedulers.

Forward    x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, T = 1000, β linear from 1e-4 to 0.02        (paper 002 Eq. 7)
Training   L = E ‖ε − ε_θ(x_t, t, c)‖² (paper 001 Eq. 7-8), images mapped [0, 1] → [−1, 1], random flips
           and 90° rotations, class label c replaced by the null class ∅ with probability ``cond_dropout``.
Sampling   the full ancestral chain (``sampler="ddpm"``, x̂_0 clipped to [−1, 1] as Ho et al.), or DDIM on
           ``num_steps`` of the T steps; classifier-free guidance with strength ω (``_diffusion``).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import DDPMScheduler, UNet2DConditionModel, UNet2DModel

from radiobench.options import PROBABILITY, Option, Options
from radiobench.seeding import PerImageRandom
from radiobench.training import EMA, TrainingRun
from radiobench.types import InputError, RadioImages

from ._diffusion import (
    DIFFUSION_OPTIONS,
    check_schedule,
    diffusion_loss,
    group_norm_groups,
    guided_eps,
    linear_scheduler,
    reverse_chain,
    sampling_nfe,
)
from ._torch import TORCH_OPTIONS, TorchGenerator

__all__ = ["DDPM", "DDPM_OPTIONS", "ddpm_unet"]

DDPM_OPTIONS = Options(
    {k: o for k, o in TORCH_OPTIONS.items() if k != "epochs"},
    DIFFUSION_OPTIONS,
    # U-Net widths per level (each level but the last halves the side), residual blocks per level, the
    # levels with self-attention. paper: Ho et al.'s CIFAR-10 network (widths 128·(1, 2, 2, 2), attention
    # at the 16×16-like level, dropout 0.1, 35.7M parameters); cpu: sized to the CPU budget (README)
    channels=Option((int,), presets={"smoke": (8, 16), "cpu": (32, 64, 64), "paper": (128, 256, 256, 256)}, low=1),
    layers_per_block=Option(int, 2, presets={"smoke": 1, "cpu": 1}, low=1),
    attn_levels=Option((int,), presets={"smoke": (), "cpu": (2,), "paper": (2,)}, low=0),
    dropout=replace(PROBABILITY, default=0.0, presets={"paper": 0.1}),
    lr_warmup=Option(int, 0, presets={"cpu": 50, "paper": 5000}, low=0),
).with_defaults(
    steps={"smoke": 20, "cpu": 1400, "paper": 800_000},  # cpu: ~40 min on one idle core (README); Ho et al.: 800k
    batch_size={"smoke": 8, "cpu": 32, "paper": 128},
    lr={"smoke": 2e-3, "cpu": 1e-3, "paper": 2e-4},
    ema={"smoke": 0.9, "cpu": 0.999, "paper": 0.9999},
    checkpoint_every={"smoke": 10, "cpu": 100, "paper": 5000},
    max_minutes={"cpu": 90.0},  # only a safety stop on a loaded machine
    sampler={"smoke": "ddim", "cpu": "ddim"},  # paper: the full 1000-step chain
    num_steps={"smoke": 5, "cpu": 50},
    # cpu: stochastic DDIM, chosen on the validation split (benchmarks/README.md, "DDPM at the cpu budget")
    eta={"cpu": 1.0},
)


def ddpm_unet(channels: Sequence[int], layers_per_block: int, attn_levels: Sequence[int], *, in_channels: int,
              out_channels: int, num_classes: int = 0, dropout: float = 0.0, sample_size: int | None = None,
              context_dim: int | None = None) -> UNet2DModel | UNet2DConditionModel:
    """diffusers' ``UNet2DModel`` (the DDPM U-Net) with one class embedding per class plus the null class ∅; with
    ``context_dim``, the same widths as ``UNet2DConditionModel``, whose attention levels and middle block
    cross-attend to context tokens of that width (``encoder_hidden_states``)."""
    levels, attn = range(len(channels)), "Attn" if context_dim is None else "CrossAttn"
    shared = dict(
        sample_size=sample_size, in_channels=in_channels, out_channels=out_channels,
        block_out_channels=tuple(channels), layers_per_block=layers_per_block,
        down_block_types=tuple(f"{attn}DownBlock2D" if i in attn_levels else "DownBlock2D" for i in levels),
        up_block_types=tuple(f"{attn}UpBlock2D" if i in attn_levels else "UpBlock2D" for i in reversed(levels)),
        norm_num_groups=group_norm_groups(channels), dropout=dropout,
        attention_head_dim=None if not attn_levels and context_dim is None else max(8, min(channels) // 4),
        num_class_embeds=num_classes + 1 if num_classes else None,
    )
    if context_dim is None:
        return UNet2DModel(**shared)
    return UNet2DConditionModel(**shared, cross_attention_dim=context_dim)


class DDPM(TorchGenerator):
    """Ho et al. (2020) DDPM, optionally class-conditional with classifier-free guidance.

    Options: channels, layers_per_block, attn_levels, dropout (U-Net); timesteps, beta_start, beta_end (the
    process); steps, batch_size, lr, lr_warmup, ema, cond_dropout, conditional, augment, mixed_precision,
    checkpoint_every, max_minutes (training); sampler ("ddpm": ancestral, "ddim"), num_steps (None: all T),
    eta (DDIM), omega (guidance), zero_below, peak_normalise (sampling).
    """

    name = "ddpm"
    description = "DDPM (Ho et al. 2020; papers 001, 002): ε-prediction, 1000 linear-β steps, DDPM/DDIM sampling"
    # cpu: v-prediction; with ε the cpu budget's samples were grey noise (benchmarks/README.md, "DDPM at the cpu
    # budget"), as for ddpm_recon
    OPTIONS = DDPM_OPTIONS.with_defaults(prediction={"cpu": "v"})
    data_range = (-1.0, 1.0)
    length_options = ("steps",)
    nfe_per_sample = None  # set by the sampler
    sampled_net = "unet"

    def __init__(self, preset: str = "smoke", device: str | None = None, **options: Any):
        super().__init__(preset, device, **options)
        check_schedule(self.name, self.opt)
        if any(a >= len(self.opt["channels"]) for a in self.opt["attn_levels"]):
            raise InputError(f"generator {self.name!r}: attn_levels {self.opt['attn_levels']} must index the "
                             f"{len(self.opt['channels'])} U-Net levels")
        self.scheduler = self.make_scheduler()

    def make_scheduler(self) -> DDPMScheduler:
        o = self.opt  # x̂_0 clipped to the data range in the ancestral steps, as Ho et al.
        return linear_scheduler(o["timesteps"], o["beta_start"], o["beta_end"], clip_sample=True,
                                prediction=o["prediction"])

    # -- TorchGenerator hooks -------------------------------------------------------------------------
    def train_images(self, images: np.ndarray) -> np.ndarray:
        return images  # the U-Net takes any side divisible by 2^(levels − 1)

    def prepare_data(self, train: RadioImages, seed: int, workdir: Path | None) -> None:
        side, depth = train.images.shape[-1], len(self.opt["channels"]) - 1
        if side % 2**depth:
            raise InputError(f"DDPM with {depth + 1} U-Net levels needs sides divisible by {2**depth}; got {side}")

    def build(self) -> None:
        ti, o = self.train_info, self.opt
        self.nets = {"unet": ddpm_unet(o["channels"], o["layers_per_block"], o["attn_levels"],
                                       in_channels=int(ti["image_shape"][0]), out_channels=int(ti["image_shape"][0]),
                                       num_classes=int(ti.get("n_classes") or 0), dropout=o["dropout"],
                                       sample_size=int(ti["image_size"]))}
        self.scheduler = self.make_scheduler()
        self.ema = None

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        if self.run_opt["ema"]:
            self.ema = EMA(self.nets["unet"], float(self.run_opt["ema"]))
        return {"opt": torch.optim.Adam(self.nets["unet"].parameters(), lr=self.run_opt["lr"])}

    def train_step(self, step: int, x: torch.Tensor, y: torch.Tensor | None, run: TrainingRun,
                   extra: dict[str, torch.Tensor]) -> dict[str, float]:
        o, net, opt = self.run_opt, self.train_nets["unet"], self.opts["opt"]
        if y is not None:  # condition dropout: the null class ∅ = n_classes
            drop = torch.rand(len(y), device=y.device) < o["cond_dropout"]
            y = torch.where(drop, torch.full_like(y, int(self.train_info["n_classes"])), y)
        if o["lr_warmup"]:
            for g in opt.param_groups:
                g["lr"] = o["lr"] * min(1.0, (step + 1) / o["lr_warmup"])
        with run.autocast():
            loss = diffusion_loss(lambda xt, t: net(xt, t, class_labels=y).sample, x, self.scheduler)
        run.optimizer_step(opt, loss)
        if self.ema is not None:
            self.ema.decay = min(float(o["ema"]), (1 + step) / (10 + step))  # warm-up of the average
            self.ema.update(run.unwrap(net))
        return {"loss": loss.item()}

    # -- sampling ---------------------------------------------------------------------------------------
    def generate(self, rng: PerImageRandom, y: torch.Tensor | None) -> torch.Tensor:
        o, net = self.opt, self.sampling_modules()["unet"]
        noise = rng.randn(self.train_info["image_shape"])
        omega = float(o["omega"]) if y is not None else 0.0
        null = None if y is None else torch.full_like(y, int(self.train_info["n_classes"]))
        eps = guided_eps(lambda x, t: net(x, t, class_labels=y).sample,
                         lambda x, t: net(x, t, class_labels=null).sample, omega)
        x = reverse_chain(eps, noise, self.scheduler, sampler=o["sampler"], num_steps=o["num_steps"], eta=o["eta"],
                          generators=rng.generators)
        self._cost.nfe_per_sample = sampling_nfe(o["timesteps"], o["sampler"], o["num_steps"], omega)
        return (x.clamp(-1, 1) + 1) / 2
