"""Progressive growing of GANs (Karras et al. 2017), the PG-GAN baseline of paper 001 Table 3.

Resolutions double from a base b (b·2^L = image side; 40 = 5·2³: 5 → 10 → 20 → 40). Training runs
2L + 1 phases: stabilise at b, then for each new resolution a fade-in, in which the new block's
output is blended with the upsampled (G) / downsampled (D) path of the previous one, x = (1 − α)·old + α·new
with α rising linearly 0 → 1 (real images are blended the same way), and a stabilisation at α = 1.
The phases are equal, as in the paper's schedule, or the last one (full resolution) takes ``final_share`` of
training, as in Karras et al.'s released configurations, which train on at the final resolution (e.g. 12 000k
images at 1024² against 1200k for each earlier resolution).
Progress is step/steps, or the used share of ``max_minutes`` when larger, so a wall-clock-limited run
still reaches the full resolution.
Equalised learning rate (weights N(0, 1) scaled at run time by the He constant), pixel normalisation
after every generator convolution, minibatch standard deviation before the discriminator's last block,
leaky ReLU 0.2, linear generator output (clipped to [−1, 1] when sampling, so backgrounds can be exactly 0).
Loss: WGAN-GP as in the paper,

    L_D = D(G(z)) − D(x) + λ (‖∇_x̂ D(x̂)‖₂ − 1)² + ε_drift D(x)²,   x̂ = u·x + (1 − u)·G(z), u ~ U(0, 1),
    L_G = −D(G(z)),   λ = 10, ε_drift = 0.001, one critic step per generator step,

Adam (lr 1e-3, β = (0, 0.99), ε = 1e-8); samples come from an exponential moving average of the generator.
The conditional variant (default when the data has labels) concatenates a normalised embedding of onehot(y)
to the normalised latent. The critic is conditioned by a projection term ⟨embed(y), φ(x)⟩ (``critic=
"projection"``, default) or carries an auxiliary classifier head C (``critic="auxiliary"``: AC-GAN, as in the
paper's conditional CIFAR-10 runs), trained on real images, the generator rewarded when C recognises its class:

    L_D += w_ac CE(C(x), y),   L_G += w_ac,G CE(C(G(z, y)), y),   w_ac = 1, w_ac,G = 0.1 (Gulrajani et al. 2017).

The projection critic is the default because on FIRST the auxiliary critic's C stays weak and the generator
satisfies it with images of other classes (benchmarks/README.md, "PG-GAN class conditioning").
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from radiobench.options import PROBABILITY, Option, Options
from radiobench.seeding import PerImageRandom
from radiobench.training import EMA, TrainingRun

from ._torch import (
    TORCH_OPTIONS,
    EqConv2d,
    EqLinear,
    MinibatchStd,
    TorchGenerator,
    grid_for,
    one_hot,
    pixel_norm,
)

__all__ = ["PGGAN", "PGGenerator", "PGDiscriminator", "schedule", "training_progress"]


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def schedule(progress: float, levels: int, final_share: float | None = None) -> tuple[int, float]:
    """(level, α) at training ``progress`` ∈ [0, 1]: phase 0 stabilises level 0; phase 2l − 1 fades level l in
    (α: 0 → 1); phase 2l stabilises it. The last phase (full resolution) takes ``final_share`` of training and
    the 2·levels before it share the rest equally; None: 2·levels + 1 equal phases."""
    if final_share is None:
        pos = max(0.0, progress) * (2 * levels + 1)
    elif 0.0 <= final_share < 1.0:
        pos = max(0.0, progress) / (1.0 - final_share) * 2 * levels
    else:
        raise ValueError(f"final_share must be in [0, 1); got {final_share}")
    k = min(int(pos), 2 * levels)
    if k % 2 == 1:
        return (k + 1) // 2, min(1.0, pos - k)
    return k // 2, 1.0


def training_progress(step: int, run: TrainingRun) -> float:
    """step / steps, or the used share of the wall-clock budget when that is larger: a run that
    max_minutes will cut short still grows to full resolution (so it depends on the machine's speed)."""
    frac = step / max(1, run.total_steps)
    if run.max_seconds:
        frac = max(frac, run.elapsed / run.max_seconds)
    return min(1.0, frac)


class PGGenerator(nn.Module):
    def __init__(self, nz: int, n_classes: int, base: int, levels: int, nf: Callable[[int], int]):
        super().__init__()
        self.nz, self.n_classes, self.base, self.levels = nz, n_classes, base, levels
        c0 = nf(0)
        # the class enters as a normalised nz-dim embedding beside the normalised latent (as in StyleGAN2-ADA's
        # mapping network): a bare one-hot is 4 of nz + 4 inputs and the generator learned to ignore it
        self.embed = EqLinear(n_classes, nz, gain=1.0) if n_classes else None
        self.dense = EqLinear(nz + (nz if n_classes else 0), c0 * base * base, gain=math.sqrt(2) / base)
        self.conv0 = EqConv2d(c0, c0, 3)
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqConv2d(nf(k - 1), nf(k), 3), EqConv2d(nf(k), nf(k), 3)]) for k in range(1, levels + 1)
        )
        self.to_rgb = nn.ModuleList(EqConv2d(nf(k), 1, 1, gain=1.0) for k in range(levels + 1))

    def forward(self, z: torch.Tensor, y1h: torch.Tensor | None, level: int, alpha: float) -> torch.Tensor:
        """Image at resolution base·2^level in [−1, 1] (linear output; not clipped here)."""
        h = pixel_norm(z)
        if y1h is not None and self.embed is not None:
            h = torch.cat([h, pixel_norm(self.embed(y1h.to(h.dtype)))], 1)
        h = pixel_norm(lrelu(self.dense(h).view(len(z), -1, self.base, self.base)))
        h = pixel_norm(lrelu(self.conv0(h)))
        prev = h
        for block in self.blocks[:level]:
            conv_a, conv_b = block.children()
            prev = h
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = pixel_norm(lrelu(conv_b(pixel_norm(lrelu(conv_a(h))))))
        out = self.to_rgb[level](h)
        if level > 0 and alpha < 1:  # fade-in: (1 − α)·upsample(old toRGB) + α·new toRGB
            old = F.interpolate(self.to_rgb[level - 1](prev), scale_factor=2, mode="nearest")
            out = torch.lerp(old, out, alpha)
        return out


class PGDiscriminator(nn.Module):
    def __init__(self, n_classes: int, base: int, levels: int, nf: Callable[[int], int], group: int,
                 critic: str = "projection"):
        super().__init__()
        self.from_rgb = nn.ModuleList(EqConv2d(1, nf(k), 1) for k in range(levels + 1))
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqConv2d(nf(k), nf(k), 3), EqConv2d(nf(k), nf(k - 1), 3)]) for k in range(1, levels + 1)
        )
        c0 = nf(0)
        self.mbstd = MinibatchStd(group)
        self.conv = EqConv2d(c0 + 1, c0, 3)
        self.dense = EqLinear(c0 * base * base, c0)
        self.out = EqLinear(c0, 1, gain=1.0)
        if critic not in ("projection", "auxiliary"):
            raise ValueError(f"critic must be 'projection' or 'auxiliary'; got {critic!r}")
        self.embed = nn.Embedding(n_classes, c0) if n_classes and critic == "projection" else None
        self.classify = EqLinear(c0, n_classes, gain=1.0) if n_classes and critic == "auxiliary" else None

    def _block(self, k: int, h: torch.Tensor) -> torch.Tensor:
        conv_a, conv_b = self.blocks[k - 1].children()
        return F.avg_pool2d(lrelu(conv_b(lrelu(conv_a(h)))), 2)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None, level: int, alpha: float
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Critic value D(x, y) for images at resolution base·2^level (projection critic: + ⟨embed(y), φ(x)⟩),
        and the auxiliary classifier's class logits (AC-GAN critic; else None)."""
        h = lrelu(self.from_rgb[level](x))
        if level > 0:
            h = self._block(level, h)
            if alpha < 1:  # fade-in: (1 − α)·fromRGB(downsample x) + α·new block
                h = torch.lerp(lrelu(self.from_rgb[level - 1](F.avg_pool2d(x, 2))), h, alpha)
            for k in range(level - 1, 0, -1):
                h = self._block(k, h)
        h = lrelu(self.conv(self.mbstd(h)))
        f = lrelu(self.dense(h.flatten(1)))
        out = self.out(f).squeeze(1)
        if self.embed is not None and y is not None:
            out = out + (self.embed(y).to(f.dtype) * f).sum(1)
        return out, (self.classify(f) if self.classify is not None else None)


def real_at(x: torch.Tensor, level: int, levels: int, alpha: float) -> torch.Tensor:
    """Real images at the current resolution, blended during fade-in like the generator's output."""
    x = F.avg_pool2d(x, 2 ** (levels - level)) if level < levels else x
    if level > 0 and alpha < 1:
        x = torch.lerp(F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest"), x, alpha)
    return x


class PGGAN(TorchGenerator):
    """Progressive GAN. Options: nz (512), fmap_base / fmap_max (channels at level l: min(fmap_base/2^(l+1),
    fmap_max)), lr, beta1, beta2, gp_weight λ, drift ε_drift, critic ("projection" / "auxiliary"),
    ac_weight / ac_weight_g (auxiliary classifier loss weights of critic / generator), mbstd_group,
    ema_decay (0 = sample from the raw generator), conditional, batch_size, steps (all phases together) or
    phase_images (images shown per fade-in / stabilisation phase; sets steps), final_share (share of
    training in the last, full-resolution stabilisation phase; None: all 2L + 1 phases equal), max_minutes,
    checkpoint_every, mixed_precision, augment (flips and 90° rotations), progress, zero_below and
    peak_normalise (sampling: see ``radiobench.postprocess.survey_threshold`` and ``peak_normalised``).
    A run stopped early by max_minutes samples at the level reached, upsampled to the image side."""

    name = "pggan"
    description = ("progressive growing GAN (Karras et al. 2017): fade-in, minibatch std, equalised lr, pixel norm, "
                   "WGAN-GP")
    supports = frozenset({"class"})
    data_range = (-1.0, 1.0)

    length_options = ("steps", "epochs", "phase_images")
    OPTIONS = Options(
        TORCH_OPTIONS,
        nz=Option(int, 512, presets={"smoke": 16, "cpu": 128}, low=1),
        fmap_base=Option(int, 8192, presets={"smoke": 64, "cpu": 256}, low=1),
        fmap_max=Option(int, 512, presets={"smoke": 8, "cpu": 64}, low=1),
        beta1=replace(PROBABILITY, default=0.0),
        beta2=replace(PROBABILITY, default=0.99),
        gp_weight=Option(float, 10.0, low=0.0),
        drift=Option(float, 1e-3, low=0.0),
        mbstd_group=Option(int, 4, low=1),
        ema_decay=replace(PROBABILITY, default=0.999, presets={"smoke": 0.9, "cpu": 0.98}),
        # Karras et al.: 800k images per phase (paper preset)
        phase_images=Option(int, None, presets={"paper": 800_000}, nullable=True, low=1),
        critic=Option(str, "projection", choices=("projection", "auxiliary")),
        ac_weight=Option(float, 1.0, low=0.0),
        ac_weight_g=Option(float, 0.1, low=0.0),
        final_share=replace(PROBABILITY, default=None, presets={"cpu": 0.45}, nullable=True),
    ).with_defaults(
        # cpu: channels 64, 64, 32, 16 at 5, 10, 20, 40 px, batch 16 (as the paper), steps sized to a CPU budget
        # (benchmarks/README.md, "Training cost of the cpu presets"); long phases, since short ones left the
        # generator ignoring z, and a long last one, as in Karras et al.'s released schedules, since it raised
        # class accuracy (benchmarks/README.md, "CVAE sharpness and PG-GAN variety" and "CVAE budget, PG-GAN's
        # last phase and peak-normalised samples"); generator EMA half-life 34 steps (the paper's 0.999 at 16
        # images/step is ~1% of a phase; 0.999 would lag it).
        # paper: minibatch 16, 512 channels at ≤ 32², latent 512
        lr=1e-3, batch_size={"smoke": 8, "cpu": 16, "paper": 16}, steps={"smoke": 14, "cpu": 7600, "paper": None},
        max_minutes={"cpu": 60.0}, checkpoint_every={"smoke": 1000, "cpu": 200, "paper": 5000},
    )

    def _grid(self) -> tuple[int, int]:
        base, levels, _ = grid_for(int(self.train_info["image_size"]))
        return base, levels

    def total_steps(self, n_train: int) -> int:
        if self.opt.get("phase_images"):
            levels = self._grid()[1]
            return (2 * levels + 1) * math.ceil(self.opt["phase_images"] / self.opt["batch_size"])
        return super().total_steps(n_train)

    def build(self) -> None:
        o, n_classes = self.opt, int(self.train_info["n_classes"])
        base, levels = self._grid()
        nf = lambda k: max(1, min(int(o["fmap_base"]) // 2 ** (k + 1), int(o["fmap_max"])))  # noqa: E731
        self.nets = {
            "G": PGGenerator(int(o["nz"]), n_classes, base, levels, nf),
            "D": PGDiscriminator(n_classes, base, levels, nf, int(o["mbstd_group"]), str(o["critic"])),
        }
        self.ema = None

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        o = self.opt
        kw: dict[str, Any] = dict(lr=float(o["lr"]), betas=(float(o["beta1"]), float(o["beta2"])), eps=1e-8)
        if float(o["ema_decay"]) > 0:  # the generator is on its training device here
            self.ema = EMA(self.nets["G"], float(o["ema_decay"]))
        return {"opt_g": torch.optim.Adam(self.nets["G"].parameters(), **kw),
                "opt_d": torch.optim.Adam(self.nets["D"].parameters(), **kw)}

    def train_step(self, step: int, x: torch.Tensor, y: torch.Tensor | None, run: TrainingRun,
                   extra: dict[str, torch.Tensor]) -> dict[str, float]:
        G, D = self.train_nets["G"], self.train_nets["D"]
        opt_g, opt_d = self.opts["opt_g"], self.opts["opt_d"]
        n_classes, levels = int(self.train_info["n_classes"]), self._grid()[1]
        if step == run.start_step:  # growth never goes back, also when a resumed run has a new budget
            hist = run.history()
            self._progress = float(hist[-1].get("progress", 0.0)) if hist else 0.0
        self._progress = max(self._progress, training_progress(step, run))
        final = self.opt.get("final_share")
        level, alpha = schedule(self._progress, levels, None if final is None else float(final))
        real = real_at(x, level, levels, alpha)
        z = torch.randn(len(x), int(self.opt["nz"]), device=x.device)
        y1h = one_hot(y, n_classes)
        # critic: D(G(z)) − D(x) + λ (‖∇D(x̂)‖ − 1)² + ε_drift D(x)² [+ w_ac CE(C(x), y)]
        with run.autocast():
            fake = G(z, y1h, level, alpha)
            (d_real, c_real), (d_fake, _) = D(real, y, level, alpha), D(fake.detach(), y, level, alpha)
        u = torch.rand(len(x), 1, 1, 1, device=x.device)
        x_hat = torch.lerp(fake.detach().float(), real.float(), u).requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x_hat, y, level, alpha)[0].sum(), x_hat, create_graph=True)
        gp = (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
        wdist = d_real.float().mean() - d_fake.float().mean()
        loss_d = -wdist + float(self.opt["gp_weight"]) * gp + float(self.opt["drift"]) * d_real.float().pow(2).mean()
        ac = {}
        if c_real is not None and y is not None:  # the auxiliary classifier learns the classes on real images only
            ac["ac_real"] = F.cross_entropy(c_real.float(), y)
            loss_d = loss_d + float(self.opt["ac_weight"]) * ac["ac_real"]
        run.optimizer_step(opt_d, loss_d)
        # generator: −D(G(z)) [+ w_ac,G CE(C(G(z, y)), y)]
        D.requires_grad_(False)
        with run.autocast():
            score, c_fake = D(fake, y, level, alpha)
            loss_g = -score.float().mean()
            if c_fake is not None and y is not None:
                ac["ac_fake"] = F.cross_entropy(c_fake.float(), y)
                loss_g = loss_g + float(self.opt["ac_weight_g"]) * ac["ac_fake"]
        run.optimizer_step(opt_g, loss_g)
        D.requires_grad_(True)
        if self.ema is not None:
            self.ema.update(run.unwrap(G))
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "wdist": wdist.item(), "gp": gp.item(),
                **{k: v.item() for k, v in ac.items()},
                "level": float(level), "alpha": float(alpha), "progress": self._progress}

    def after_training(self, seed: int) -> None:
        last = self.run.history()[-1] if self.run.history() else {"level": 0.0, "alpha": 1.0}
        self.train_info.update(level=int(last["level"]), alpha=float(last["alpha"]))

    def generate(self, rng: PerImageRandom, y: torch.Tensor | None) -> torch.Tensor:
        G = cast(PGGenerator, self.sampling_modules()["G"])
        z = rng.randn((G.nz,))
        level, alpha = int(self.train_info["level"]), float(self.train_info["alpha"])
        x = G(z, one_hot(y, G.n_classes), level, alpha)
        if level < G.levels:  # stopped before the last phase: nearest-neighbour up to the full grid
            x = F.interpolate(x, scale_factor=2 ** (G.levels - level), mode="nearest")
        return (x.clamp(-1, 1) + 1) / 2
