"""RADiff (paper 001): latent diffusion (Rombach et al. 2022) conditioned on a semantic mask, on diffusers.

Stage 1    a KL-regularised autoencoder (``AutoencoderKL``) with compression f = 4, z = E(x) ∈ R^{H/4 × W/4 × c_z},
           L = ‖x − D(z)‖₁ + λ_KL KL(q(z|x) ‖ N(0, I))                                  (Sect. 4.1, Eq. 2-3)
           then the latents rescaled to unit variance (1/σ_z of the training set, Rombach et al. Sect. 4.3.2).
Stage 2    DDPM in the latent space (``_diffusion``; T = 1000, linear β, ε-prediction), z_t sampled from
           q(z|x) of each (augmented) training image, the mask concatenated to the U-Net input at every
           step (Sect. 4.3): L = E ‖ε − ε_θ([z_t, m↓], t)‖² (Eq. 8), m↓ the source mask (mask > 0) averaged
           over f×f blocks; with probability ``cond_dropout`` the null mask ∅ (all −1) instead.
Background (option ``background``; Sect. 4.3's second condition, Fig. 4): a condition encoder E_c maps an image
           with its sources masked out to a few tokens c (global background features) that the U-Net's
           cross-attention layers attend to (``UNet2DConditionModel``): ε_θ([z_t, m↓], t, c); with probability
           ``cond_dropout`` the null tokens ∅ (zeros) instead. A generated set takes its backgrounds from
           random training images (``radiobench.conditioning.match_conditions``).
Sampling   z_T ~ N(0, I) → z_0 by the DDPM or DDIM chain, guidance ω on the conditions, x = D(z_0 / scale).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler
from torch import nn

from radiobench.options import POSITIVE, Option, Options
from radiobench.seeding import PerImageRandom
from radiobench.training import EMA, TrainingRun
from radiobench.types import Conditions, InputError, RadioImages

from ._diffusion import (
    check_schedule,
    diffusion_loss,
    group_norm_groups,
    guided_eps,
    linear_scheduler,
    reverse_chain,
    sampling_nfe,
)
from ._torch import TorchGenerator
from .ddpm import DDPM_OPTIONS, ddpm_unet

__all__ = ["LDM", "LDM_OPTIONS", "kl_autoencoder", "NULL_MASK", "BackgroundEncoder"]

F_COMPRESSION = 4  # paper 001 Sect. 4.1: two downsampling blocks
NULL_MASK = -1.0  # the value of every pixel of the null condition ∅ (a real mask lies in [0, 1])

LDM_OPTIONS = Options(
    DDPM_OPTIONS,
    # stage 1: the autoencoder. paper: Rombach et al.'s KL-f4 (widths 128, 256, 512, two residual blocks per
    # level, c_z = 3) with self-attention in every block as paper 001 Sect. 4.1 describes it
    ae_channels=Option((int,), presets={"smoke": (8, 16, 16), "cpu": (32, 64, 64), "paper": (128, 256, 512)}, low=1),
    ae_layers=Option(int, 1, presets={"paper": 2}, low=1),
    ae_attention=Option(bool, False, presets={"paper": True}),
    latent_channels=Option(int, 3, low=1),
    kl_weight=replace(POSITIVE, default=1e-6),  # λ_KL of Rombach et al.'s KL-f4
    ae_steps=Option(int, presets={"smoke": 20, "cpu": 300, "paper": 100_000}, low=0),  # cpu: ~10 min (README)
    ae_lr=replace(POSITIVE, default=1e-3, presets={"paper": 1e-4}),
    # the background condition (Sect. 4.3): E_c's tokens and their width (the U-Net's cross_attention_dim)
    background=Option(bool, False, presets={"paper": True}),
    context_dim=Option(int, presets={"smoke": 16, "cpu": 64, "paper": 512}, low=1),
).with_defaults(
    # stage 2: the latent U-Net. paper: LDM-4's (224·(1, 2, 3), attention at the two coarser levels)
    channels={"smoke": (16, 32), "cpu": (64, 128), "paper": (224, 448, 672)},
    attn_levels={"smoke": (), "cpu": (1,), "paper": (1, 2)},
    steps={"smoke": 20, "cpu": 1400, "paper": 200_000},  # cpu: ~20 min
    batch_size={"smoke": 8, "cpu": 32, "paper": 64},
    lr={"smoke": 2e-3, "cpu": 1e-3, "paper": 1e-4},
    # as before ddpm's cpu preset moved to η = 1 and a longer budget (that choice was measured on pixels only)
    eta={}, max_minutes={"cpu": 40.0},
)


def kl_autoencoder(channels: Sequence[int], layers: int, latent_channels: int, attention: bool,
                   image_channels: int = 1) -> AutoencoderKL:
    """diffusers' ``AutoencoderKL``: len(channels) − 1 downsamplings (f = 4 for three widths)."""
    n = len(channels)
    return AutoencoderKL(
        in_channels=image_channels, out_channels=image_channels, latent_channels=latent_channels,
        down_block_types=("AttnDownEncoderBlock2D" if attention else "DownEncoderBlock2D",) * n,
        up_block_types=("AttnUpDecoderBlock2D" if attention else "UpDecoderBlock2D",) * n,
        block_out_channels=tuple(channels), layers_per_block=layers, norm_num_groups=group_norm_groups(channels),
    )


class BackgroundEncoder(nn.Module):
    """E_c for the background: two stride-2 convolutions, average-pooled to a 2×2 grid, each cell a token of
    width ``dim`` (global features: where the sources lie is the mask's business)."""

    tokens = 4

    def __init__(self, width: int, dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, width, 3, 2, 1), nn.SiLU(), nn.Conv2d(width, width, 3, 2, 1), nn.SiLU(),
                                 nn.AdaptiveAvgPool2d(2))
        self.proj = nn.Linear(width, dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.proj(self.net(image).flatten(2).transpose(1, 2))  # (N, 4, dim)


def _background(image: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """An image in [−1, 1] with its sources (mask > 0) set to the data minimum: only the background is left."""
    return image if mask is None else torch.where(mask > 0, torch.full_like(image, -1.0), image)


def _mask_latent(mask: torch.Tensor) -> torch.Tensor:
    """Source mask (N, 1, H, W) in {0, 1} → its f×f block averages at the latent grid."""
    return F.avg_pool2d(mask.float(), F_COMPRESSION)


class LDM(TorchGenerator):
    """RADiff latent diffusion: a KL autoencoder, then a mask-conditioned DDPM on its latents.

    Options: those of ``ddpm`` (the latent U-Net, the process, training and sampling; ``conditional``: condition
    on the training set's masks when it has them) and ae_channels, ae_layers, ae_attention, latent_channels,
    kl_weight, ae_steps, ae_lr (the autoencoder, trained first with ``batch_size``); background, context_dim
    (the background condition encoder and the U-Net's cross-attention). ``fit(workdir=...)`` keeps
    each stage's checkpoint and losses.csv in workdir/autoencoder and workdir/diffusion.
    """

    name = "ldm"
    description = "RADiff latent diffusion (paper 001): KL autoencoder f=4, DDPM on latents conditioned on the mask"
    supports = frozenset({"mask"})
    OPTIONS = LDM_OPTIONS
    data_range = (-1.0, 1.0)
    length_options = ("steps",)
    nfe_per_sample = None
    sampled_net = "unet"

    def __init__(self, preset: str = "smoke", device: str | None = None, **options: Any):
        super().__init__(preset, device, **options)
        check_schedule(self.name, self.opt)
        if len(self.opt["ae_channels"]) != 3:
            raise InputError(f"generator 'ldm': ae_channels needs three widths (f = 4); got {self.opt['ae_channels']}")
        self.stage = "diffusion"  # what ``build`` makes and ``fit`` trains: "autoencoder", then "diffusion"
        self.autoencoder: AutoencoderKL | None = None
        self.masks: np.ndarray | None = None  # the training masks (fit only)

    @property
    def scheduler(self) -> DDPMScheduler:
        o = self.opt
        return linear_scheduler(o["timesteps"], o["beta_start"], o["beta_end"], clip_sample=False,
                                prediction=o["prediction"])

    @property
    def mask_conditioned(self) -> bool:
        return bool(self.train_info.get("mask_conditioned"))

    @property
    def background_conditioned(self) -> bool:
        return bool(self.opt["background"])

    # -- the two stages ---------------------------------------------------------------------------------
    def fit(self, train: RadioImages, *, seed: int, workdir: Path | None = None) -> None:
        """Stage 1 (autoencoder), then stage 2 (latent diffusion), each a resumable ``TrainingRun``."""
        train = replace(train, labels=None, class_names=None)  # conditioned on masks, not classes
        where = (lambda s: None) if workdir is None else (lambda s: Path(workdir) / s)
        self.stage, self.autoencoder = "autoencoder", None
        super().fit(train, seed=seed, workdir=where("autoencoder"))
        ae_info = {k: self.train_info[k] for k in ("start_step", "steps_done", "total_steps", "stopped_early")}
        ae_seconds, ae_losses = self._cost.train_seconds or 0.0, self.losses
        self.stage = "diffusion"
        super().fit(train, seed=seed, workdir=where("diffusion"))
        self.train_info["autoencoder"] = ae_info
        self.losses = [{"stage": "autoencoder", **r} for r in ae_losses] + [{"stage": "diffusion", **r}
                                                                           for r in self.losses]
        self._cost.train_seconds = ae_seconds + (self._cost.train_seconds or 0.0)
        self._cost.train_steps = ae_info["steps_done"] + self.train_info["steps_done"]
        self.masks = None

    def total_steps(self, n_train: int) -> int:
        return int(self.run_opt["ae_steps"]) if self.stage == "autoencoder" else super().total_steps(n_train)

    def _set_supports(self) -> None:
        kinds = {"mask"} if self.mask_conditioned else set()
        self.supports = frozenset(kinds | ({"background"} if self.background_conditioned else set()))

    def prepare_data(self, train: RadioImages, seed: int, workdir: Path | None) -> None:
        side, depth = train.images.shape[-1], len(self.opt["channels"]) - 1
        if side % (F_COMPRESSION * 2**depth):
            raise InputError(f"LDM (f = {F_COMPRESSION}, {depth + 1} U-Net levels) needs sides divisible by "
                             f"{F_COMPRESSION * 2**depth}; got {side}")
        if train.images.shape[1] != 1:
            raise InputError(f"LDM takes single-channel images; got {train.images.shape[1]} channels")
        use = bool(self.opt["conditional"]) and train.masks is not None
        self.train_info["mask_conditioned"] = use
        self.masks = (train.masks > 0).astype(np.float32) if use else None
        if self.background_conditioned and train.masks is not None and self.masks is None:
            self.masks = (train.masks > 0).astype(np.float32)  # to cut the sources out of the background

    def train_images(self, images: np.ndarray) -> np.ndarray:
        """The images with the source mask as a second channel, so augmentation flips and turns both alike."""
        return images if self.masks is None else np.concatenate([images, self.masks], axis=1)

    def build(self) -> None:
        o, ti = self.opt, self.train_info
        if self.stage == "autoencoder" or self.autoencoder is None:
            self.autoencoder = kl_autoencoder(o["ae_channels"], o["ae_layers"], o["latent_channels"],
                                              o["ae_attention"])
        if self.stage == "autoencoder":
            self.nets = {"autoencoder": self.autoencoder}
        else:
            c, side = int(o["latent_channels"]), int(ti["image_size"]) // F_COMPRESSION
            context = int(o["context_dim"]) if self.background_conditioned else None
            self.nets = {"unet": ddpm_unet(o["channels"], o["layers_per_block"], o["attn_levels"],
                                           in_channels=c + int(self.mask_conditioned), out_channels=c,
                                           dropout=o["dropout"], sample_size=side, context_dim=context)}
            if context is not None:
                self.nets["background_encoder"] = BackgroundEncoder(int(o["channels"][0]), context)
        self.ema = None

    def sampling_modules(self) -> dict[str, nn.Module]:
        assert self.autoencoder is not None
        if self.stage == "autoencoder":
            return {"autoencoder": self.autoencoder}
        out = {"autoencoder": self.autoencoder, "unet": self.nets.get("unet_ema", self.nets["unet"])}
        return out | ({"background_encoder": self.nets["background_encoder"]} if self.background_conditioned else {})

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        o = self.run_opt
        if self.stage == "autoencoder":
            return {"opt": torch.optim.Adam(self.nets["autoencoder"].parameters(), lr=o["ae_lr"])}
        device = next(self.nets["unet"].parameters()).device
        assert self.autoencoder is not None
        self.autoencoder.to(device).eval().requires_grad_(False)  # frozen in stage 2
        if o["ema"]:
            self.ema = EMA(self.nets["unet"], float(o["ema"]))
        trained = [p for k in ("unet", "background_encoder") if k in self.nets for p in self.nets[k].parameters()]
        return {"opt": torch.optim.Adam(trained, lr=o["lr"])}

    def train_step(self, step: int, x: torch.Tensor, y: torch.Tensor | None, run: TrainingRun,
                   extra: dict[str, torch.Tensor]) -> dict[str, float]:
        o, opt = self.run_opt, self.opts["opt"]
        image = x[:, :1]
        if self.stage == "autoencoder":  # Eq. 2-3: L1 reconstruction + λ_KL · KL(q(z|x) ‖ N(0, I))
            ae = self.train_nets["autoencoder"]
            with run.autocast():
                post = ae.encode(image).latent_dist
                rec = ae.decode(post.sample()).sample.float()
                l1 = (rec - image).abs().flatten(1).sum(1).mean()
                kl = post.kl().mean()
                loss = l1 + o["kl_weight"] * kl
            run.optimizer_step(opt, loss)
            return {"loss": loss.item(), "l1": l1.item() / image[0].numel(), "kl": kl.item()}
        net, ae = self.train_nets["unet"], self.autoencoder
        assert ae is not None
        with torch.no_grad():
            z = ae.encode(image).latent_dist.sample() * float(self.train_info["latent_scale"])
        cond: torch.Tensor | None = None
        mask = x[:, 1:] if x.shape[1] > 1 else None
        if self.mask_conditioned:  # condition dropout: the null mask ∅
            m = _mask_latent(x[:, 1:] > 0)
            drop = (torch.rand(len(m), device=m.device) < o["cond_dropout"]).view(-1, 1, 1, 1)
            cond = torch.where(drop, torch.full_like(m, NULL_MASK), m)
        context: torch.Tensor | None = None
        if self.background_conditioned:  # its own dropout: the null tokens ∅
            tokens = self.train_nets["background_encoder"](_background(image, mask))
            keep = (torch.rand(len(tokens), device=tokens.device) >= o["cond_dropout"]).view(-1, 1, 1)
            context = tokens * keep
        if o["lr_warmup"]:
            for g in opt.param_groups:
                g["lr"] = o["lr"] * min(1.0, (step + 1) / o["lr_warmup"])
        with run.autocast():
            loss = diffusion_loss(lambda zt, t: self._eps(net, zt, t, cond, context), z, self.scheduler)
        run.optimizer_step(opt, loss)
        if self.ema is not None:
            self.ema.decay = min(float(o["ema"]), (1 + step) / (10 + step))  # warm-up of the average
            self.ema.update(run.unwrap(net))
        return {"loss": loss.item()}

    @staticmethod
    def _eps(net: nn.Module, z: torch.Tensor, t: torch.Tensor, mask: torch.Tensor | None,
             context: torch.Tensor | None) -> torch.Tensor:
        """ε_θ([z_t, m↓], t, c): the mask concatenated to the input, the background tokens attended to."""
        z_in = z if mask is None else torch.cat([z, mask.to(z.dtype)], dim=1)
        return (net(z_in, t) if context is None else net(z_in, t, encoder_hidden_states=context.to(z.dtype))).sample

    @torch.no_grad()
    def after_training(self, seed: int) -> None:
        if self.stage != "autoencoder":
            return
        # Rombach et al.: rescale the latents to unit variance, scale = 1/σ of the training latents' means
        ae, device = self.nets["autoencoder"], next(self.nets["autoencoder"].parameters()).device
        self.autoencoder = ae
        x = torch.from_numpy(self._train_x) * 2 - 1
        means = torch.cat([ae.encode(b.to(device)).latent_dist.mean.cpu() for b in x.split(64)])
        self.train_info["latent_scale"] = float(1.0 / means.std().clamp_min(1e-6))

    def init_from_data(self, images: np.ndarray) -> None:
        self._train_x = images  # for the latent scale after stage 1

    # -- sampling -------------------------------------------------------------------------------------
    def check_conditions(self, conditions: Conditions) -> None:
        if not self.nets:
            raise InputError("the LDM generator has no weights yet: fit or load it before sampling")
        super().check_conditions(conditions)
        shape = tuple(self.train_info["image_shape"])
        if conditions.masks is not None and tuple(conditions.masks.shape[1:]) != shape:
            raise InputError(f"conditioning masks must have the images' shape {shape}; "
                             f"got {tuple(conditions.masks.shape[1:])}")
        background = conditions.images.get("background")
        if background is not None and tuple(background.shape[1:]) != shape:
            raise InputError(f"background images must have the images' shape {shape}; "
                             f"got {tuple(background.shape[1:])}")

    @torch.no_grad()
    def sample_batch(self, conditions: Conditions, seeds: Sequence[int]) -> np.ndarray:
        o, dev = self.opt, torch.device(self.device)
        mods = self.sampling_modules()
        ae, net = mods["autoencoder"].to(dev).eval(), mods["unet"].to(dev).eval()
        rng = PerImageRandom(seeds, dev)
        side = int(self.train_info["image_size"]) // F_COMPRESSION
        z = rng.randn((int(o["latent_channels"]), side, side))
        omega = 0.0
        cond = null = None
        if self.mask_conditioned:
            null = torch.full((len(seeds), 1, side, side), NULL_MASK, device=dev)
            cond = null
            if conditions.masks is not None:
                cond, omega = _mask_latent(torch.as_tensor(conditions.masks > 0, device=dev)), float(o["omega"])
        context = null_context = None
        if self.background_conditioned:
            null_context = torch.zeros(len(seeds), BackgroundEncoder.tokens, int(o["context_dim"]), device=dev)
            context = null_context
            background = conditions.images.get("background")
            if background is not None:
                encoder = mods["background_encoder"].to(dev).eval()  # sources already cut out (match_conditions)
                context, omega = encoder(torch.as_tensor(background, device=dev) * 2 - 1), float(o["omega"])
        eps = guided_eps(lambda zt, t: self._eps(net, zt, t, cond, context),
                         lambda zt, t: self._eps(net, zt, t, null, null_context), omega)
        z = reverse_chain(eps, z, self.scheduler, sampler=o["sampler"], num_steps=o["num_steps"], eta=o["eta"],
                          generators=rng.generators)
        x = ae.decode(z / float(self.train_info["latent_scale"])).sample.float()
        self._cost.nfe_per_sample = sampling_nfe(o["timesteps"], o["sampler"], o["num_steps"], omega)
        return ((x.clamp(-1, 1) + 1) / 2).cpu().numpy()

    def load(self, directory: Path) -> None:
        self.stage, self.autoencoder = "diffusion", None
        super().load(directory)
