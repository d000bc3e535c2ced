"""Batch augmentations for radio images (B, C, H, W), drawn per image from an explicit torch.Generator.

Geometric operations act on all channels together, so an (image, mask) pair stays aligned when
stacked along C. Gaps left by rotations and crops are filled with 0, the background of images scaled
to [0, 1] (paper 000 fills with -1 on its [-1, 1] scale: the same pixel value).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "Augment", "random_flip_rot90", "random_affine", "gaussian_blur", "add_noise", "uniform",
    "degrade_blur", "degrade_noise", "blank_edges",
]


def uniform(n: int, lo: float, hi: float, g: torch.Generator, device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g).to(device)


def random_flip_rot90(x: torch.Tensor, g: torch.Generator, flip_h: bool = True, rot90: bool = True) -> torch.Tensor:
    """Dihedral group: vertical flip with p = 1/2, optional horizontal flip, rotation by k·90°, k uniform."""
    n = len(x)
    sel = lambda p: (torch.rand(n, generator=g) < p).to(x.device)[:, None, None, None]  # noqa: E731
    x = torch.where(sel(0.5), x.flip(-2), x)
    if flip_h:
        x = torch.where(sel(0.5), x.flip(-1), x)
    if rot90 and x.shape[-1] == x.shape[-2]:
        k = torch.randint(0, 4, (n,), generator=g).to(x.device)[:, None, None, None]
        out = x
        for j in (1, 2, 3):
            out = torch.where(k == j, torch.rot90(x, j, (-2, -1)), out)
        x = out
    return x


def random_affine(
    x: torch.Tensor, g: torch.Generator, max_angle: float = 0.0, crop: tuple[float, float] = (1.0, 1.0)
) -> torch.Tensor:
    """Rotate by a uniform angle in [-max_angle, max_angle] degrees and take a random square crop of
    relative size s ~ U(crop), resampled (bilinear) back to the full size: one grid_sample per batch."""
    n, dev = len(x), x.device
    theta = uniform(n, -max_angle, max_angle, g, dev) * (math.pi / 180)
    s = uniform(n, crop[0], crop[1], g, dev)
    t = (torch.rand(n, 2, generator=g).to(dev) * 2 - 1) * (1 - s)[:, None]  # crop centre inside the image
    cos, sin = torch.cos(theta) * s, torch.sin(theta) * s
    mat = torch.stack([torch.stack([cos, -sin, t[:, 0]], 1), torch.stack([sin, cos, t[:, 1]], 1)], 1)
    grid = F.affine_grid(mat.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, size: int = 3) -> torch.Tensor:
    """Convolve image i with a normalised size×size Gaussian of standard deviation sigma[i] (pixels)."""
    n, c, h, w = x.shape
    r = torch.arange(size, device=x.device, dtype=x.dtype) - (size - 1) / 2
    k1 = torch.exp(-0.5 * (r[None, :] / sigma[:, None].clamp_min(1e-3)) ** 2)
    k1 = k1 / k1.sum(1, keepdim=True)
    k2 = (k1[:, :, None] * k1[:, None, :]).repeat_interleave(c, 0)[:, None]  # (n·c, 1, size, size)
    out = F.conv2d(F.pad(x.reshape(1, n * c, h, w), [size // 2] * 4, mode="reflect"), k2, groups=n * c)
    return out.reshape(n, c, h, w)


def add_noise(x: torch.Tensor, std: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """x + N(0, std[i]²) per pixel of image i."""
    return x + std[:, None, None, None] * torch.randn(x.shape, generator=g).to(x.device, x.dtype)


@dataclass(frozen=True)
class Augment:
    """A random augmentation pipeline: dihedral flips/rotations, arbitrary rotation + crop-rescale,
    then (image channel only) Gaussian blur and additive Gaussian noise, each applied with
    probability p_blur / p_noise and a strength drawn uniformly from its range."""

    flip_h: bool = True
    rot90: bool = True
    max_angle: float = 0.0
    crop: tuple[float, float] = (1.0, 1.0)
    blur_sigma: tuple[float, float] | None = None
    p_blur: float = 1.0
    noise_std: tuple[float, float] | None = None
    p_noise: float = 1.0
    geometric_only_channels: int = 0  # trailing channels (masks) that get geometry but no blur/noise

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n, dev = len(x), x.device
        x = random_flip_rot90(x, g, self.flip_h, self.rot90)
        if self.max_angle > 0 or self.crop != (1.0, 1.0):
            x = random_affine(x, g, self.max_angle, self.crop)
        k = x.shape[1] - self.geometric_only_channels
        img, rest = x[:, :k], x[:, k:]
        if self.blur_sigma is not None:
            on = (torch.rand(n, generator=g) < self.p_blur).to(dev)[:, None, None, None]
            img = torch.where(on, gaussian_blur(img, uniform(n, *self.blur_sigma, g, dev)), img)
        if self.noise_std is not None:
            on = (torch.rand(n, generator=g) < self.p_noise).to(dev)
            img = add_noise(img, uniform(n, *self.noise_std, g, dev) * on, g)
        return torch.cat([img, rest], 1) if rest.shape[1] else img


# -- degradations of whole image sets (paper 003 Fig. 1 sensitivity tests); numpy in [0, 1] -> [0, 1] --
def degrade_blur(images, sigma: float):
    """Gaussian blur of standard deviation ``sigma`` pixels (kernel 2*ceil(3 sigma)+1), renormalised to peak 1
    as the datasets scale images (a blurred image keeps its [0, 1] scaling)."""
    import numpy as np

    if sigma <= 0:
        return images.copy()
    size = 2 * int(math.ceil(3 * sigma)) + 1
    x = torch.from_numpy(np.ascontiguousarray(images, np.float32))
    size = min(size, 2 * (min(x.shape[-2:]) // 2) - 1)
    out = gaussian_blur(x, torch.full((len(x),), float(sigma)), size=size).numpy()
    peak = out.reshape(len(out), -1).max(1)[:, None, None, None]
    return np.clip(np.where(peak > 0, out / np.maximum(peak, 1e-12), out), 0, 1).astype(np.float32)


def degrade_noise(images, std: float, rng):
    """Add N(0, std^2) per pixel and clip to [0, 1]."""
    import numpy as np

    return np.clip(images + rng.normal(0, std, images.shape), 0, 1).astype(np.float32)


def blank_edges(images, width: int):
    """Set an edge strip ``width`` pixels wide to 0 (paper 003's cropping experiment)."""
    out = images.copy()
    if width > 0:
        out[..., :width, :] = 0
        out[..., -width:, :] = 0
        out[..., :, :width] = 0
        out[..., :, -width:] = 0
    return out
