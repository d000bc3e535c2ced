"""Seeds. Every generated image has its own seed, derived from (run seed, image index), so that a
sample never depends on the batch size it was drawn in (as NVlabs/edm's StackedRandomGenerator)."""
from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Sequence

import numpy as np
import torch

__all__ = ["image_seeds", "PerImageRandom", "seed_everything", "step_generator"]


def image_seeds(seed: int, start: int, stop: int) -> list[int]:
    """Seeds of images start..stop-1 for run seed ``seed`` (63-bit, well mixed)."""
    return [
        int(np.random.SeedSequence([int(seed), int(i)]).generate_state(1, np.uint64)[0] >> np.uint64(1))
        for i in range(start, stop)
    ]


class PerImageRandom:
    """One torch.Generator per image; draws are stacked along the batch axis."""

    def __init__(self, seeds: Sequence[int], device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.generators = [torch.Generator(self.device).manual_seed(int(s) % (2**63)) for s in seeds]

    def _stacked(self, draw: Callable[[torch.Generator], torch.Tensor]) -> torch.Tensor:
        return torch.stack([draw(g) for g in self.generators])

    def randn(self, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Standard normal noise of shape (len(seeds), *shape)."""
        return self._stacked(lambda g: torch.randn(tuple(shape), generator=g, device=self.device, dtype=dtype))

    def rand(self, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Uniform [0, 1) draws of shape (len(seeds), *shape)."""
        return self._stacked(lambda g: torch.rand(tuple(shape), generator=g, device=self.device, dtype=dtype))

    def randint(self, high: int, shape: Sequence[int] = ()) -> torch.Tensor:
        """Integers in [0, high) of shape (len(seeds), *shape)."""
        return self._stacked(lambda g: torch.randint(high, tuple(shape), generator=g, device=self.device))


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch.Generator for explicit use."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def step_generator(seed: int, step: int, salt: str = "") -> torch.Generator:
    """Augmentation randomness as a pure function of (seed, step): a resumed run repeats it exactly."""
    s = np.random.SeedSequence([int(seed), int(step), zlib.crc32(salt.encode())]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(s >> np.uint64(1)))
