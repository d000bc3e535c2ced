"""Discrete-time diffusion (Ho et al. 2020) shared by the ``ddpm`` and ``ldm`` generators, on diffusers' schedulers.

Forward    q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I),  ᾱ_t = ∏_{s≤t} (1 − β_s),  β linear in t    (paper 002 Eq. 7)
Training   E_{t, x_0, ε} ‖ε − ε_θ(x_t, t, c)‖², t uniform in {0, …, T−1}                      (paper 001 Eq. 7-8)
           or, with ``prediction="v"``, the velocity v = √ᾱ_t ε − √(1 − ᾱ_t) x_0 as target (Salimans & Ho
           2022): at high noise ε-prediction gives x̂_0 = (x_t − √(1 − ᾱ) ε̂)/√ᾱ, which multiplies the network's
           error by 1/√ᾱ_T ≈ 157; v-prediction does not.
Sampling   the ancestral chain of ``DDPMScheduler`` (all T steps, or a strided subset) or the DDIM
           update of ``DDIMScheduler`` (η = 0: deterministic) on a shorter schedule;
           classifier-free guidance ε̃ = (1 + ω) ε_θ(x_t, c) − ω ε_θ(x_t, ∅) (Ho & Salimans 2022).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch
from diffusers import DDIMScheduler, DDPMScheduler

from radiobench.options import POSITIVE, PROBABILITY, Option, Options
from radiobench.types import InputError

__all__ = ["DIFFUSION_OPTIONS", "EpsFn", "check_schedule", "linear_scheduler", "diffusion_loss", "reverse_chain",
           "guided_eps", "sampling_nfe", "group_norm_groups"]

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # ε_θ(x_t, t) (or v_θ) for a batch and t

# options of the diffusion process and its sampler (both plugins; each sets its presets' values)
DIFFUSION_OPTIONS = Options(
    timesteps=Option(int, 1000, low=2),  # T
    beta_start=replace(POSITIVE, default=1e-4),  # linear β schedule of Ho et al. (2020)
    beta_end=replace(POSITIVE, default=0.02),
    prediction=Option(str, "epsilon", choices=("epsilon", "v")),  # the network's target: ε (Ho et al.) or v
    cond_dropout=Option(float, 0.1, low=0.0, high=1.0),  # condition replaced by the null token ∅ in training
    ema=replace(PROBABILITY, default=0.0),  # decay of the weights' average used for sampling; 0: none
    sampler=Option(str, "ddpm", sampling=True, choices=("ddpm", "ddim")),
    num_steps=Option(int, None, sampling=True, nullable=True, low=1),  # None: all T steps
    eta=Option(float, 0.0, sampling=True, low=0.0, high=1.0),  # DDIM's η (0: deterministic; 1: DDPM's variance)
    omega=Option(float, 0.0, sampling=True, low=0.0),  # guidance strength ω; 0: the conditional model alone
)


def check_schedule(name: str, opt: dict[str, Any]) -> None:
    """InputError unless β rises over the schedule (``beta_start`` < ``beta_end``)."""
    if opt["beta_start"] >= opt["beta_end"]:
        raise InputError(f"generator {name!r}: beta_start ({opt['beta_start']}) must be below beta_end "
                         f"({opt['beta_end']})")


def linear_scheduler(timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02,
                     clip_sample: bool = False, prediction: str = "epsilon") -> DDPMScheduler:
    """Ho et al.'s process: T steps, β_t linear from β_1 to β_T; the network predicts ε (or v)."""
    return DDPMScheduler(num_train_timesteps=timesteps, beta_start=beta_start, beta_end=beta_end,
                         beta_schedule="linear", prediction_type="v_prediction" if prediction == "v" else "epsilon",
                         clip_sample=clip_sample, variance_type="fixed_small")


def diffusion_loss(net: EpsFn, x0: torch.Tensor, scheduler: DDPMScheduler) -> torch.Tensor:
    """Eq. 7: ‖ε − ε_θ(√ᾱ_t x_0 + √(1 − ᾱ_t) ε, t)‖² averaged over pixels and the batch (t per image); the
    target is v = √ᾱ_t ε − √(1 − ᾱ_t) x_0 when the scheduler's prediction type is v."""
    t = torch.randint(0, scheduler.config.num_train_timesteps, (len(x0),), device=x0.device)
    noise = torch.randn_like(x0)
    xt = scheduler.add_noise(x0, noise, t)
    target = scheduler.get_velocity(x0, noise, t) if scheduler.config.prediction_type == "v_prediction" else noise
    return ((net(xt, t).float() - target) ** 2).mean()


def guided_eps(conditional: EpsFn, unconditional: EpsFn, omega: float) -> EpsFn:
    """Classifier-free guidance: (1 + ω) ε(x_t, c) − ω ε(x_t, ∅)."""
    if omega == 0:
        return conditional
    return lambda x, t: (1 + omega) * conditional(x, t) - omega * unconditional(x, t)


def _sampling_scheduler(train: DDPMScheduler, sampler: str) -> DDPMScheduler | DDIMScheduler:
    cfg = dict(train.config)
    return DDIMScheduler.from_config(cfg) if sampler == "ddim" else DDPMScheduler.from_config(cfg)


def sampling_nfe(timesteps: int, sampler: str, num_steps: int | None, omega: float) -> int:
    """Network evaluations per image: one per step, two with guidance."""
    return min(num_steps or timesteps, timesteps) * (2 if omega else 1)


@torch.no_grad()
def reverse_chain(eps: EpsFn, noise: torch.Tensor, train: DDPMScheduler, *, sampler: str = "ddpm",
                  num_steps: int | None = None, eta: float = 0.0,
                  generators: Sequence[torch.Generator] | None = None) -> torch.Tensor:
    """x_T = ``noise`` → x_0 with ``sampler`` ("ddpm": ancestral steps; "ddim") over ``num_steps`` of the T
    training steps (None: all). ``generators`` (one per image) draw the ancestral noise, so an image depends
    only on its own generator."""
    sched = _sampling_scheduler(train, sampler)
    sched.set_timesteps(min(num_steps or sched.config.num_train_timesteps, sched.config.num_train_timesteps),
                        device=noise.device)
    gen: Any = list(generators) if generators is not None else None
    x = noise
    for t in sched.timesteps:
        e = eps(x, t).float()
        kw: dict[str, Any] = {"eta": eta} if sampler == "ddim" else {}
        x = sched.step(e, t, x, generator=gen, **kw).prev_sample
    return x


def group_norm_groups(channels: Sequence[int]) -> int:
    """The largest group count ≤ 32 that divides every width (GroupNorm of the diffusers blocks)."""
    return next(g for g in range(min(32, *channels), 0, -1) if all(c % g == 0 for c in channels))
