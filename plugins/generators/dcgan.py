"""DCGAN (Radford et al. 2015), the baseline of paper 001 Table 3, for one-channel radio images.

Generator: [z, onehot(y)] → linear "project and reshape" to C₀×b×b → n_up × (ConvTranspose 4×4 stride 2,
BatchNorm, ReLU), the last one to 1 channel with tanh. The grid is b·2^n_up = image side with b in 3..8:
40 = 5·2³ (5→10→20→40), 80 = 5·2⁴ — no resizing at the benchmark's resolutions (``grid_for``).
Discriminator: mirrored strided 4×4 convolutions with LeakyReLU 0.2 and BatchNorm (none on the input
layer), the last feature map flattened to a linear output; conditional models add a projection term
⟨embed(y), φ(x)⟩ (Miyato & Koyama 2018). Loss: the non-saturating GAN loss

    L_D = −log σ(D(x, y)) − log(1 − σ(D(G(z, y), y))),   L_G = −log σ(D(G(z, y), y)),

Adam (lr 2e-4, β₁ = 0.5), weights N(0, 0.02). Images are mapped to [−1, 1] for training, outputs back to [0, 1].
After training the generator's BatchNorm statistics are re-estimated with the final weights (a cumulative
average over ``bn_batches`` batches, train-mode forward passes) so that eval-mode sampling — image by image,
independent of the batch — uses population statistics of the final generator.
"""
from __future__ import annotations

from dataclasses import replace
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from radiobench.options import PROBABILITY, Option, Options
from radiobench.seeding import PerImageRandom
from radiobench.training import TrainingRun

from ._torch import TORCH_OPTIONS, TorchGenerator, grid_for, one_hot

__all__ = ["DCGAN", "DCGenerator", "DCDiscriminator"]


class DCGenerator(nn.Module):
    def __init__(self, nz: int, n_classes: int, base: int, n_up: int, ngf: int):
        super().__init__()
        self.nz, self.n_classes, self.base = nz, n_classes, base
        chans = [ngf * 2 ** (n_up - 1 - i) for i in range(n_up)]  # e.g. 4ngf, 2ngf, ngf
        self.c0 = chans[0]
        self.project = nn.Linear(nz + n_classes, chans[0] * base * base, bias=False)
        self.bn0 = nn.BatchNorm2d(chans[0])
        layers: list[nn.Module] = []
        for a, b in zip(chans, chans[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(chans[-1], 1, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y1h: torch.Tensor | None) -> torch.Tensor:
        h = z if y1h is None else torch.cat([z, y1h.to(z.dtype)], 1)
        h = F.relu(self.bn0(self.project(h).view(-1, self.c0, self.base, self.base)))
        return self.body(h)


class DCDiscriminator(nn.Module):
    def __init__(self, n_classes: int, base: int, n_up: int, ndf: int):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for i in range(n_up):
            cout = ndf * 2**i
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=i == 0)]
            layers += [nn.BatchNorm2d(cout)] if i else []
            layers += [nn.LeakyReLU(0.2, True)]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(cin * base * base, 1)
        self.embed = nn.Embedding(n_classes, cin * base * base) if n_classes else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Logit D(x, y) = w·φ(x) + b (+ ⟨embed(y), φ(x)⟩)."""
        f = self.body(x).flatten(1)
        out = self.out(f).squeeze(1)
        if self.embed is not None and y is not None:
            out = out + (self.embed(y).to(f.dtype) * f).sum(1)
        return out


def init_dcgan(m: nn.Module) -> None:
    """Radford et al.: all weights N(0, 0.02); BatchNorm scale N(1, 0.02), shift 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        bias = getattr(m, "bias", None)
        if bias is not None:
            nn.init.zeros_(bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class DCGAN(TorchGenerator):
    """DCGAN. Options: nz (100), ngf / ndf (generator / discriminator width at the finest layer), lr (2e-4),
    beta1 (0.5), conditional (True: class-conditional when the data has labels), bn_batches (BatchNorm
    re-estimation batches after training, 0 = keep the running averages of training), batch_size,
    steps or epochs, max_minutes, checkpoint_every, mixed_precision, augment (flips and
    90° rotations), progress, zero_below (sampling: pixels below it set to 0; "auto" at cpu, see
    ``radiobench.postprocess.survey_threshold``), peak_normalise (sampling: each image divided by its peak;
    off by default, see ``radiobench.postprocess.peak_normalised``)."""

    name = "dcgan"
    description = "DCGAN (Radford et al. 2015), class-conditional by label concatenation + projection discriminator"
    supports = frozenset({"class"})
    data_range = (-1.0, 1.0)

    OPTIONS = Options(
        TORCH_OPTIONS,
        nz=Option(int, 100, presets={"smoke": 16}, low=1),
        # Radford et al.: width 1024 at the coarsest generator layer (ngf = 128 with 4 doublings)
        ngf=Option(int, presets={"smoke": 8, "cpu": 32, "paper": 128}, low=1),
        ndf=Option(int, presets={"smoke": 8, "cpu": 32, "paper": 128}, low=1),
        beta1=replace(PROBABILITY, default=0.5),
        bn_batches=Option(int, 16, presets={"smoke": 2}, low=0),
    ).with_defaults(
        # cpu: ngf = ndf = 32 at 40×40, steps sized to a CPU budget (benchmarks/README.md, "Training cost of the
        # cpu presets"; max_minutes: a safety stop on a loaded machine).
        # paper: Radford et al.'s batch 128; paper 001 gives no training length for its DCGAN baseline: 20k steps
        # (~1450 FIRST epochs) chosen
        lr=2e-4, batch_size={"smoke": 16, "cpu": 64, "paper": 128}, steps={"smoke": 20, "cpu": 3000, "paper": 20000},
        max_minutes={"cpu": 30.0}, checkpoint_every={"smoke": 1000, "cpu": 250, "paper": 2000},
    )

    def build(self) -> None:
        o, n_classes = self.opt, int(self.train_info["n_classes"])
        base, n_up, _ = grid_for(int(self.train_info["image_size"]))
        self.nets = {
            "G": DCGenerator(int(o["nz"]), n_classes, base, n_up, int(o["ngf"])),
            "D": DCDiscriminator(n_classes, base, n_up, int(o["ndf"])),
        }
        for m in self.nets.values():
            m.apply(init_dcgan)

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (float(self.opt["beta1"]), 0.999)
        lr = float(self.opt["lr"])
        return {
            "opt_g": torch.optim.Adam(self.nets["G"].parameters(), lr=lr, betas=betas),
            "opt_d": torch.optim.Adam(self.nets["D"].parameters(), lr=lr, betas=betas),
        }

    def train_step(self, step: int, x: torch.Tensor, y: torch.Tensor | None, run: TrainingRun,
                   extra: dict[str, torch.Tensor]) -> dict[str, float]:
        G, D = self.train_nets["G"], self.train_nets["D"]
        opt_g, opt_d = self.opts["opt_g"], self.opts["opt_d"]
        n_classes = int(self.train_info["n_classes"])
        z = torch.randn(len(x), int(self.opt["nz"]), device=x.device)
        with run.autocast():
            fake = G(z, one_hot(y, n_classes))
            # discriminator: −log σ(D(x)) − log(1 − σ(D(G(z))))
            loss_d = F.softplus(-D(x, y)).mean() + F.softplus(D(fake.detach(), y)).mean()
        run.optimizer_step(opt_d, loss_d)
        D.requires_grad_(False)
        with run.autocast():
            loss_g = F.softplus(-D(fake, y)).mean()  # non-saturating: −log σ(D(G(z)))
        run.optimizer_step(opt_g, loss_g)
        D.requires_grad_(True)
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}

    @torch.no_grad()
    def after_training(self, seed: int) -> None:
        """Re-estimate the generator's BatchNorm population statistics with its final weights."""
        G = cast(DCGenerator, self.nets["G"])
        nb = int(self.opt["bn_batches"])
        if nb > 0:
            g = torch.Generator().manual_seed(seed)
            bns = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
            momenta = [m.momentum for m in bns]
            for m in bns:
                m.reset_running_stats()
                m.momentum = None  # cumulative average
            G.train()
            n_classes, bs = G.n_classes, int(self.opt["batch_size"])
            prior = torch.tensor(self.train_info["class_prior"]) if n_classes else None
            dev = next(G.parameters()).device
            for _ in range(nb):
                z = torch.randn(bs, G.nz, generator=g).to(dev)
                y = None if prior is None else torch.multinomial(prior, bs, replacement=True, generator=g).to(dev)
                G(z, one_hot(y, n_classes))
            for m, mom in zip(bns, momenta):
                m.momentum = mom
        G.eval()

    def generate(self, rng: PerImageRandom, y: torch.Tensor | None) -> torch.Tensor:
        G = cast(DCGenerator, self.nets["G"])
        z = rng.randn((G.nz,))
        return (G(z, one_hot(y, G.n_classes)) + 1) / 2
