"""Conditional variational auto-encoder of Bastien et al. 2021 (paper 003): a fully connected funnel.

Encoder q_φ(z|x, y) = N(μ, σ²): [x, onehot(y)] → 4096 (softplus) → 2048 → 1024 → 512 → 256 (leaky ReLU,
α = 0.001), each followed by dropout p = 0.2, then two d-dimensional heads μ and log σ². Decoder
p_θ(x|z, y) = Bernoulli(x | H_θ(z, y)): [z, onehot(y)] → 256 → 512 → 1024 → 2048 → 4096 (leaky ReLU + dropout)
→ D, sigmoid (Table 2, Fig. 3). Trained on the negative ELBO (Eq. 12):

    −ELBO = −E_q[log p_θ(x|z, y)] + D_KL(q_φ(z|x, y) ‖ N(0, I)),  D_KL = −½ Σ_j (1 + log σ_j² − μ_j² − σ_j²)  (Eq. 6)

with z = μ + σ·ε (Eq. 5). Sampling draws z ~ N(0, I) per image and returns the decoder mean H_θ(z, y)
(at the cpu preset thresholded and divided by its peak, as the training cutouts were: Sect. 3.4 and 7).
Without labels (or ``conditional=False``) it is the unconditional VAE of Sect. 2.1.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from radiobench.options import PROBABILITY, Option, Options
from radiobench.seeding import PerImageRandom
from radiobench.training import TrainingRun

from ._torch import TORCH_OPTIONS, TorchGenerator, one_hot

__all__ = ["CVAE", "CVAENet"]


class CVAENet(nn.Module):
    """Encoder F_φ, G_φ and decoder H_θ of Table 2 (label one-hot concatenated at both inputs)."""

    def __init__(
        self, n_pixels: int, n_classes: int, latent_dim: int, hidden: Sequence[int], slope: float, dropout: float
    ):
        super().__init__()
        self.n_classes, self.latent_dim = n_classes, latent_dim

        def funnel(dims: Sequence[int], first_softplus: bool) -> nn.Sequential:
            layers: list[nn.Module] = []
            for i, (a, b) in enumerate(zip(dims, dims[1:])):
                act = nn.Softplus() if (first_softplus and i == 0) else nn.LeakyReLU(slope)
                layers += [nn.Linear(a, b), act, nn.Dropout(dropout)]
            return nn.Sequential(*layers)

        hidden = list(hidden)
        self.encoder = funnel([n_pixels + n_classes, *hidden], first_softplus=True)
        self.mu = nn.Linear(hidden[-1], latent_dim)
        self.logvar = nn.Linear(hidden[-1], latent_dim)
        self.decoder = funnel([latent_dim + n_classes, *hidden[::-1]], first_softplus=False)
        self.out = nn.Linear(hidden[0], n_pixels)

    @staticmethod
    def _cat(v: torch.Tensor, y1h: torch.Tensor | None) -> torch.Tensor:
        return v if y1h is None else torch.cat([v, y1h.to(v.dtype)], dim=1)

    def encode(self, x: torch.Tensor, y1h: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(self._cat(x.flatten(1), y1h))
        return self.mu(h), self.logvar(h)

    def decode_logits(self, z: torch.Tensor, y1h: torch.Tensor | None) -> torch.Tensor:
        return self.out(self.decoder(self._cat(z, y1h)))

    def forward(self, x: torch.Tensor, y1h: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(decoder logits, μ, log σ²) for z = μ + σ·ε (Eq. 5)."""
        mu, logvar = self.encode(x, y1h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode_logits(z, y1h), mu, logvar


def negative_elbo(
    x: torch.Tensor, logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, likelihood: str, sigma: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-image mean of −ELBO (Eq. 12) and its two terms, in nats.

    bernoulli: −log p(x|z) = Σ_pixels BCE(x, sigmoid(logits));  gaussian: Σ (x − x̂)² / 2σ² (the
    squared error of Eq. 7/8 with a fixed pixel σ; the constant D·log(σ√2π) is left out)."""
    x = x.flatten(1).float()
    logits = logits.float()
    if likelihood == "bernoulli":
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
    else:
        rec = (x - torch.sigmoid(logits)).pow(2).sum(1) / (2 * sigma**2)
    kl = kl_per_dim(mu, logvar).sum(1)
    return (rec + kl).mean(), rec.mean(), kl.mean()


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """D_KL(N(μ_j, σ_j²) ‖ N(0, 1)) per image and latent dimension j (the summand of Eq. 6)."""
    mu, logvar = mu.float(), logvar.float()
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


def free_bits_kl(mu: torch.Tensor, logvar: torch.Tensor, free_bits: float) -> torch.Tensor:
    """Σ_j max(λ, E_batch D_KL,j): the KL term with λ free nats per latent dimension (Kingma et al. 2016),
    so that no dimension gains by collapsing onto the prior; λ = 0 is the plain KL term."""
    return kl_per_dim(mu, logvar).mean(0).clamp_min(free_bits).sum()


class CVAE(TorchGenerator):
    """Fully connected (conditional) VAE, paper 003. Options (constructor keywords, defaults per preset):

    latent_dim d (32), hidden funnel widths (4096, 2048, 1024, 512, 256), leaky_slope α (0.001), dropout (0.2),
    likelihood "bernoulli" | "gaussian" (pixel σ = gaussian_sigma), kl_warmup (steps over which the KL
    weight rises linearly from 0 to 1; 0 = the plain ELBO as in the paper), free_bits λ (nats per latent
    dimension below which the KL term does not pull a dimension onto the prior; 0 = off), conditional
    (True: one-hot labels when the data has them), lr (Adam), batch_size, steps or epochs, max_minutes,
    checkpoint_every, mixed_precision ("no" | "bf16"), augment (random flips and 90° rotations of each
    minibatch), progress, zero_below and peak_normalise (sampling: see ``radiobench.postprocess``).
    """

    name = "cvae"
    description = ("fully connected conditional VAE (Bastien et al. 2021): funnel 4096→256, latent d=32; "
                   "Bernoulli ELBO (paper, smoke), Gaussian (σ = 0.1) with KL warm-up (cpu)")
    supports = frozenset({"class"})
    sampled_net = "vae"

    OPTIONS = Options(
        TORCH_OPTIONS,
        latent_dim=Option(int, 32, presets={"smoke": 8}, low=1),
        hidden=Option((int,), (4096, 2048, 1024, 512, 256), presets={"smoke": (64, 32)}, low=1),
        leaky_slope=Option(float, 0.001, low=0.0),
        dropout=replace(PROBABILITY, default=0.2),
        likelihood=Option(str, "bernoulli", presets={"cpu": "gaussian"}, choices=("bernoulli", "gaussian")),
        gaussian_sigma=Option(float, 0.1, low=0.0, low_open=True),
        kl_warmup=Option(int, 0, presets={"cpu": 600}, low=0),
        free_bits=Option(float, 0.0, low=0.0),
    ).with_defaults(
        # Table 2 / Table 4 (d = 32: initial lr 0.88e-3), 5000 epochs; batch size is not given in the paper
        lr=0.88e-3, epochs={"paper": 5000},
        # smoke: seconds, a tiny funnel on a few steps (tests).
        # cpu: the paper's network in float32 (bf16 is emulated where the CPU lacks it; benchmarks/README.md,
        # "bf16 on CPUs without it"), steps sized to a CPU budget (FID still falls
        # with more steps; benchmarks/README.md, "Training cost of the cpu presets" and "CVAE budget, PG-GAN's
        # last phase and peak-normalised samples").
        # With β = 1 from the first step the posterior collapses, so the KL weight warms up (kl_warmup); the
        # Gaussian likelihood (σ = 0.1) rewards a better reconstruction more than the Bernoulli one on these
        # near-empty images (benchmarks/README.md, "CVAE posterior collapse"). Samples are the decoder mean
        # E[x | z, y], whose peak averaging lowers while every training cutout peaks at 1: divided by their peak
        # (paper 003 Sect. 3.4 scaling, the post-processing its Sect. 7 proposes), which lowers FID (same section)
        batch_size={"smoke": 16, "cpu": 128, "paper": 128}, steps={"smoke": 30, "cpu": 4400, "paper": None},
        max_minutes={"cpu": 90.0},
        checkpoint_every={"smoke": 1000, "cpu": 200, "paper": 2000}, peak_normalise={"cpu": "auto"},
    )

    @property
    def vae(self) -> CVAENet:
        return cast(CVAENet, self.nets["vae"])

    def build(self) -> None:
        o = self.opt
        size = int(self.train_info["image_size"])
        self.nets = {
            "vae": CVAENet(size * size, int(self.train_info["n_classes"]), int(o["latent_dim"]), tuple(o["hidden"]),
                           float(o["leaky_slope"]), float(o["dropout"]))
        }

    def init_from_data(self, images: np.ndarray) -> None:
        """Output bias = logit of the mean training image, output weights × 0.1: the decoder starts at the
        data mean. From the default init (sigmoid ≈ 0.5 on every pixel, while ~97% of FIRST pixels are ≈ 0)
        the first steps push all logits far negative, the leaky-ReLU (α = 0.001) units die and the network
        never learns to use z: even a deterministic auto-encoder then stays at the all-zero image."""
        out = self.vae.out
        mean = torch.from_numpy(np.asarray(images, np.float32).mean(0)).flatten().clamp(1e-3, 1 - 1e-3)
        with torch.no_grad():
            out.bias.copy_(torch.logit(mean))
            out.weight.mul_(0.1)

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": torch.optim.Adam(self.nets["vae"].parameters(), lr=float(self.opt["lr"]))}

    def train_step(self, step: int, x: torch.Tensor, y: torch.Tensor | None, run: TrainingRun,
                   extra: dict[str, torch.Tensor]) -> dict[str, float]:
        net, opt = self.train_nets["vae"], self.opts["opt"]
        with run.autocast():
            logits, mu, logvar = net(x, one_hot(y, int(self.train_info["n_classes"])))
        loss, rec, kl = negative_elbo(x, logits, mu, logvar, self.opt["likelihood"], float(self.opt["gaussian_sigma"]))
        warm, free_bits = int(self.opt["kl_warmup"]), float(self.opt["free_bits"])
        beta = min(1.0, (step + 1) / warm) if warm > 0 else 1.0  # KL weight β: 0 → 1 over kl_warmup steps
        run.optimizer_step(opt, rec + beta * (free_bits_kl(mu, logvar, free_bits) if free_bits > 0 else kl))
        return {"loss": loss.item(), "reconstruction": rec.item(), "kl": kl.item(), "beta": beta}

    def generate(self, rng: PerImageRandom, y: torch.Tensor | None) -> torch.Tensor:
        net = self.vae
        z = rng.randn((net.latent_dim,))
        size = int(self.train_info["image_size"])
        x = torch.sigmoid(net.decode_logits(z, one_hot(y, net.n_classes)))
        return x.view(-1, 1, size, size)

    @torch.no_grad()
    def elbo(self, images: Any, labels: Any = None, seed: int = 0) -> float:
        """Mean −ELBO (nats per image) of ``images`` (N, 1, H, W) in [0, 1], in eval mode, one ε draw per image."""
        net = self.vae
        net.eval()
        x = torch.as_tensor(images, dtype=torch.float32, device=self.device)
        y1h = one_hot(None if labels is None else torch.as_tensor(labels, device=self.device), net.n_classes)
        mu, logvar = net.encode(x, y1h)
        g = torch.Generator(self.device).manual_seed(seed)
        z = mu + torch.randn(mu.shape, generator=g, device=mu.device) * torch.exp(0.5 * logvar)
        loss, _, _ = negative_elbo(x, net.decode_logits(z, y1h), mu, logvar, self.opt["likelihood"],
                                   float(self.opt["gaussian_sigma"]))
        return float(loss)

