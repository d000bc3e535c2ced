"""The denoiser U-Net of paper 000 Sect. 4.1 (Figs. 6-7), small enough to train on a CPU.

Every block is GN → SiLU → 3×3 conv → GN → FiLM(embedding) → SiLU → dropout → 3×3 conv, plus a
skip connection (1×1 conv when the channel count changes). Resampling blocks downsample by
splitting the image into four sub-images stacked on the channel axis followed by a 1×1 conv, and
upsample by nearest neighbour, on both paths. The noise level enters through a sinusoidal encoding
and a one-layer FCN; the context (class label, scalar peak flux) through its own two-layer GELU FCN
per kind, added to the noise embedding; the sum goes through one more two-layer GELU FCN and every
block modulates its features with it (FiLM). A context kind that is absent (``None``) or dropped
(``keep`` = 0) contributes nothing: that is the null token ∅ of classifier-free guidance.

Self-attention (GN, multi-head, residual) follows the resolution-preserving blocks at the levels
named in ``attn_levels`` and sits between the two bottleneck blocks. The network is shared with
other diffusion generators (DDPM): it maps (x, noise scalar, context) to an image of x's shape.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UNet", "PositionalEmbedding"]


def _groups(channels: int) -> int:
    return math.gcd(channels, 32) if channels >= 8 else 1


class PositionalEmbedding(nn.Module):
    """Sinusoidal encoding of a scalar per image (Vaswani et al. 2017), as NVlabs/edm feeds c_noise."""

    freqs: torch.Tensor

    def __init__(self, channels: int, max_positions: int = 10000):
        super().__init__()
        half = channels // 2
        freqs = (1 / max_positions) ** (torch.arange(half, dtype=torch.float32) / max(half - 1, 1))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        x = t.float()[:, None] * self.freqs[None, :]
        return torch.cat([x.cos(), x.sin()], dim=1)


def _fcn(n_in: int, n_out: int) -> nn.Sequential:
    """The paper's two-layer embedding network with GELU."""
    return nn.Sequential(nn.Linear(n_in, n_out), nn.GELU(), nn.Linear(n_out, n_out))


class Block(nn.Module):
    """Paper 000 Fig. 6: the U-Net building block with FiLM conditioning after the second GN."""

    def __init__(self, c_in: int, c_out: int, emb: int, resample: str | None = None, dropout: float = 0.0):
        super().__init__()
        self.resample = resample
        if resample == "down":  # four sub-images stacked along channels, then 1x1 conv
            self.down = nn.Sequential(nn.PixelUnshuffle(2), nn.Conv2d(4 * c_in, c_in, 1))
        self.norm0 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv0 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm1 = nn.GroupNorm(_groups(c_out), c_out)
        self.film = nn.Linear(emb, 2 * c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv1 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.resample == "down":
            x = self.down(x)
        elif self.resample == "up":
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        h = self.conv0(F.silu(self.norm0(x)))
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)
        h = F.silu(self.norm1(h) * (1 + scale) + shift)
        h = self.conv1(self.dropout(h))
        return h + self.skip(x)


class Attention(nn.Module):
    """Multi-head self-attention over pixels, preceded by GN and added to its input."""

    def __init__(self, channels: int, head_channels: int = 32):
        super().__init__()
        self.heads = max(1, channels // head_channels)
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        a = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(a.transpose(-1, -2).reshape(b, c, h, w))


class UNet(nn.Module):
    """F_θ(x, c_noise, context): paper 000 Fig. 7 with configurable width and depth.

    channels:    feature channels per resolution level (len = number of levels; paper: 3 levels)
    num_blocks:  resolution-preserving blocks per encoder level (the decoder has one more; paper: 2)
    attn_levels: levels (0 = full resolution) with self-attention after every such block
    num_classes: size of the class vocabulary (0: no class input)
    flux:        whether a scalar (standardised peak flux) is an input
    """

    def __init__(
        self,
        channels: Sequence[int] = (32, 64, 128),
        num_blocks: int = 2,
        attn_levels: Sequence[int] = (2,),
        num_classes: int = 0,
        flux: bool = False,
        dropout: float = 0.0,
        in_channels: int = 1,
        emb_channels: int | None = None,
    ):
        super().__init__()
        channels = list(channels)
        emb = emb_channels or 4 * channels[0]
        self.num_classes, self.flux = int(num_classes), bool(flux)
        self.noise_pos = PositionalEmbedding(channels[0])
        self.noise_fc = nn.Linear(channels[0], emb)  # "sinusoidal encoding followed by a single-layer FCN"
        if self.num_classes:
            self.class_emb = nn.Sequential(nn.Embedding(self.num_classes, emb), nn.GELU(), nn.Linear(emb, emb))
        if self.flux:
            self.flux_emb = _fcn(1, emb)
        self.emb_fc = _fcn(emb, emb)

        self.conv_in = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        self.enc = nn.ModuleList()
        skips = [channels[0]]
        c = channels[0]
        for level, ch in enumerate(channels):
            for _ in range(num_blocks):
                self.enc.append(Block(c, ch, emb, dropout=dropout))
                c = ch
                skips.append(c)
                if level in attn_levels:
                    self.enc.append(Attention(c))
            if level < len(channels) - 1:
                self.enc.append(Block(c, c, emb, resample="down", dropout=dropout))
                skips.append(c)
        self.mid = nn.ModuleList([Block(c, c, emb, dropout=dropout), Attention(c), Block(c, c, emb, dropout=dropout)])
        self.dec = nn.ModuleList()
        for level in reversed(range(len(channels))):
            ch = channels[level]
            for _ in range(num_blocks + 1):
                self.dec.append(Block(c + skips.pop(), ch, emb, dropout=dropout))
                c = ch
                if level in attn_levels:
                    self.dec.append(Attention(c))
            if level > 0:
                self.dec.append(Block(c, c, emb, resample="up", dropout=dropout))
        self.norm_out = nn.GroupNorm(_groups(c), c)
        self.conv_out = nn.Conv2d(c, in_channels, 3, padding=1)
        for p in self.conv_out.parameters():  # F_θ starts at 0: D(x; σ) = c_skip x
            nn.init.zeros_(p)

    def embedding(
        self,
        c_noise: torch.Tensor,
        labels: torch.Tensor | None = None,
        flux: torch.Tensor | None = None,
        keep_class: torch.Tensor | None = None,
        keep_flux: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Noise embedding + Σ_kinds keep · context embedding, then the shared FCN (Sect. 4.1)."""
        e = self.noise_fc(self.noise_pos(c_noise))
        if labels is not None and self.num_classes:
            ce = self.class_emb(labels.long().clamp(0, self.num_classes - 1))
            e = e + ce * (1.0 if keep_class is None else keep_class.to(ce.dtype)[:, None])
        if flux is not None and self.flux:
            fe = self.flux_emb(flux.to(e.dtype)[:, None])
            e = e + fe * (1.0 if keep_flux is None else keep_flux.to(fe.dtype)[:, None])
        return self.emb_fc(e)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, **context: torch.Tensor | None) -> torch.Tensor:
        """F_θ(x; c_noise, context); ``context``: the keywords of ``embedding`` (labels, flux, keep_class,
        keep_flux)."""
        emb = self.embedding(c_noise, **context)
        h = self.conv_in(x)
        skips = [h]
        for layer in self.enc:
            if isinstance(layer, Attention):
                h = skips[-1] = layer(h)
            else:
                h = layer(h, emb)
                skips.append(h)
        for layer in self.mid:
            h = layer(h) if isinstance(layer, Attention) else layer(h, emb)
        for layer in self.dec:
            if isinstance(layer, Attention):
                h = layer(h)
            elif layer.resample == "up":
                h = layer(h, emb)
            else:
                h = layer(torch.cat([h, skips.pop()], dim=1), emb)
        return self.conv_out(F.silu(self.norm_out(h)))
