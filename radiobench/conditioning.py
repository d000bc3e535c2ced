"""Conditions for generated sets that match a real reference set.

Same size and class counts as the reference (or n images in its class proportions); peak fluxes drawn as
paper 000 Sect. 6.1 does (Box-Cox transform, 100-bin histogram of the training values, uniform within the chosen bin);
masks (and other conditioning images) taken from the reference split.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from .types import Conditions, InputError, RadioImages

__all__ = ["BoxCox", "FluxSampler", "match_conditions"]


@dataclass
class BoxCox:
    """Box-Cox transform y = (x^λ − 1)/λ (λ ≠ 0; ln x for λ = 0), λ fitted by maximum likelihood,
    then standardised: z = (y − μ)/s. Paper 000 finds λ = −0.23 for LoTSS peak fluxes."""

    lam: float
    mu: float
    sd: float

    @classmethod
    def fit(cls, x: np.ndarray) -> BoxCox:
        x = np.asarray(x, np.float64)
        if len(x) < 2 or np.any(~np.isfinite(x)) or np.any(x <= 0):
            raise InputError("Box-Cox needs at least two finite, positive values")
        y, lam = stats.boxcox(x)
        return cls(float(lam), float(y.mean()), float(y.std() or 1.0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (special.boxcox(np.asarray(x, np.float64), self.lam) - self.mu) / self.sd

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return special.inv_boxcox(np.asarray(z, np.float64) * self.sd + self.mu, self.lam)

    def to_dict(self) -> dict[str, float]:
        return {"lam": self.lam, "mu": self.mu, "sd": self.sd}


class FluxSampler:
    """Draw peak fluxes like the training set: pick one of ``bins`` histogram bins of the Box-Cox
    transformed training fluxes with probability ∝ its count, then a value uniformly inside it."""

    def __init__(self, train_flux: np.ndarray, bins: int = 100):
        self.transform = BoxCox.fit(train_flux)
        counts, self.edges = np.histogram(self.transform(train_flux), bins=bins)
        self.p = counts / counts.sum()

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        k = rng.choice(len(self.p), size=n, p=self.p)
        z = rng.uniform(self.edges[k], self.edges[k + 1])
        return self.transform.inverse(z)


def match_conditions(
    reference: RadioImages, train: RadioImages, supports: frozenset[str], rng: np.random.Generator,
    n: int | None = None,
) -> Conditions:
    """Conditions for a generated set matched to ``reference`` for a generator that ``supports`` these kinds;
    ``n`` images (default: as many as the reference) repeat the reference's conditions (``proportional_index``)."""
    if n is not None and n != len(reference):
        reference = reference.subset(proportional_index(reference, n))
    n = len(reference)
    labels = class_names = flux = masks = None
    if "class" in supports and reference.labels is not None:
        labels, class_names = reference.labels.copy(), reference.class_names
    if "flux" in supports and train.peak_flux is not None:
        flux = FluxSampler(train.peak_flux).sample(n, rng)
    if "mask" in supports and reference.masks is not None:
        masks = reference.masks.copy()
    images = {k: v.copy() for k, v in reference.extra.items() if k in supports}
    if "background" in supports:
        images["background"] = background_images(train, n, rng)
    return Conditions(n=n, labels=labels, class_names=class_names, peak_flux=flux, masks=masks, images=images)


def background_images(train: RadioImages, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random training images with their sources (mask > 0, where the set has masks) set to 0: the
    background conditions of a generated set (paper 001 Sect. 4.3), never images of the reference split."""
    idx = rng.integers(0, len(train), n)
    images = train.images[idx].copy()
    if train.masks is not None:
        images[train.masks[idx] > 0] = 0.0
    return images


def proportional_index(reference: RadioImages, n: int) -> np.ndarray:
    """Indices of ``n`` reference images in the reference's class proportions: every image n // N times, then
    n mod N more spread evenly over the images ordered by class (each class's count within one of n·N_c/N)."""
    n_ref = len(reference)
    if n_ref == 0:
        raise InputError("cannot match conditions to an empty reference set")
    order = np.argsort(reference.labels, kind="stable") if reference.labels is not None else np.arange(n_ref)
    extra = order[(np.arange(n % n_ref) * n_ref) // (n % n_ref)] if n % n_ref else order[:0]
    return np.concatenate([np.tile(np.arange(n_ref), n // n_ref), np.sort(extra)])
