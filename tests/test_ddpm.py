"""DDPM generator (Ho et al. 2020; papers 001, 002): the forward process, the samplers against an exact ε for
Gaussian data, guidance, seeds, save/load, training and resumption."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from test_edm import blobs

from radiobench.types import Conditions, InputError
from radiobench_plugins.generators._diffusion import guided_eps, linear_scheduler, reverse_chain
from radiobench_plugins.generators.ddpm import DDPM

torch.set_num_threads(1)
TINY = dict(channels=(8, 16), layers_per_block=1, attn_levels=(1,), num_steps=4, progress=False)


def alpha_bar(T: int = 1000, b0: float = 1e-4, b1: float = 0.02) -> np.ndarray:
    """ᾱ_t = ∏_{s≤t} (1 − β_s) with β linear from b0 to b1, computed here without diffusers."""
    return np.cumprod(1 - np.linspace(b0, b1, T, dtype=np.float64))


@pytest.fixture(scope="module")
def model() -> DDPM:
    g = DDPM("smoke", **TINY, steps=10)
    g.fit(blobs(32), seed=0)
    return g


# -- the process --------------------------------------------------------------------------------------
def test_forward_process_matches_the_closed_form():
    sched, ab = linear_scheduler(), alpha_bar()
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((100_000, 1, 1, 1), 0.7)
    for t in (0, 10, 250, 999):
        noise = torch.randn(x0.shape, generator=g)
        xt = sched.add_noise(x0, noise, torch.full((len(x0),), t))
        torch.testing.assert_close(xt, (np.sqrt(ab[t]) * x0 + np.sqrt(1 - ab[t]) * noise).float(), rtol=1e-5, atol=1e-5)
        # q(x_t | x_0) = N(√ᾱ_t x_0, 1 − ᾱ_t)
        assert xt.mean().item() == pytest.approx(np.sqrt(ab[t]) * 0.7, abs=4 * np.sqrt((1 - ab[t]) / len(x0)) + 1e-6)
        assert xt.var().item() == pytest.approx(1 - ab[t], rel=0.02, abs=1e-6)
    assert ab[-1] < 1e-4  # x_T is (nearly) pure noise


def exact_eps(mu: float, s: float, ab: np.ndarray):
    """E[ε | x_t] for data x_0 ~ N(μ, s²) per pixel: x_t ~ N(√ᾱ μ, ᾱ s² + 1 − ᾱ) and
    Cov(ε, x_t) = √(1 − ᾱ), so E[ε | x_t] = √(1 − ᾱ) (x_t − √ᾱ μ) / (ᾱ s² + 1 − ᾱ)."""
    abt = torch.from_numpy(ab)

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = abt[int(t)]
        return (torch.sqrt(1 - a) * (x.double() - torch.sqrt(a) * mu) / (a * s**2 + 1 - a)).float()

    return eps


def _chain(mu: float, s: float, sampler: str, num_steps: int | None, eta: float = 0.0) -> torch.Tensor:
    torch.manual_seed(1)
    return reverse_chain(exact_eps(mu, s, alpha_bar()), torch.randn(10_000, 1, 1, 1), linear_scheduler(),
                         sampler=sampler, num_steps=num_steps, eta=eta)


@pytest.mark.parametrize("sampler,num_steps", [("ddpm", None), ("ddim", 250)])
def test_sampler_with_the_exact_epsilon_recovers_a_gaussian(sampler, num_steps):
    """The full ancestral chain, and DDIM (η = 0) at paper 002's 250 steps, draw N(μ, s²) from the exact ε."""
    mu, s = 0.3, 0.4
    x = _chain(mu, s, sampler, num_steps)
    assert x.mean().item() == pytest.approx(mu, abs=0.015)
    assert x.std().item() == pytest.approx(s, rel=0.03)
    y = _chain(-mu, s, sampler, num_steps)  # a wrong data mean in ε moves the samples there: the test can fail
    assert y.mean().item() == pytest.approx(-mu, abs=0.015)


def exact_v(mu: float, s: float, ab: np.ndarray):
    """E[v | x_t] = √ᾱ E[ε | x_t] − √(1 − ᾱ) E[x_0 | x_t], with E[x_0 | x_t] = μ + √ᾱ s² (x_t − √ᾱ μ)/(ᾱ s² + 1 − ᾱ)."""
    abt, eps = torch.from_numpy(ab), exact_eps(mu, s, ab)

    def v(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = abt[int(t)]
        x0 = mu + torch.sqrt(a) * s**2 * (x.double() - torch.sqrt(a) * mu) / (a * s**2 + 1 - a)
        return (torch.sqrt(a) * eps(x, t).double() - torch.sqrt(1 - a) * x0).float()

    return v


@pytest.mark.parametrize("sampler,num_steps", [("ddpm", None), ("ddim", 250)])
def test_v_prediction_with_the_exact_velocity_recovers_a_gaussian(sampler, num_steps):
    """``prediction="v"`` (Salimans & Ho 2022): the schedulers turn an exact v into the same samples."""
    torch.manual_seed(1)
    x = reverse_chain(exact_v(0.3, 0.4, alpha_bar()), torch.randn(10_000, 1, 1, 1), linear_scheduler(prediction="v"),
                      sampler=sampler, num_steps=num_steps)
    assert x.mean().item() == pytest.approx(0.3, abs=0.015) and x.std().item() == pytest.approx(0.4, rel=0.03)
    y = reverse_chain(exact_v(-0.3, 0.4, alpha_bar()), torch.randn(10_000, 1, 1, 1), linear_scheduler(prediction="v"),
                      sampler=sampler, num_steps=num_steps)
    assert y.mean().item() == pytest.approx(-0.3, abs=0.015)  # the samples follow the predictor: the test can fail


def test_the_v_loss_is_zero_for_the_true_velocity():
    """``diffusion_loss`` regresses v = √ᾱ_t ε − √(1 − ᾱ_t) x_0 when the scheduler predicts v."""
    from radiobench_plugins.generators._diffusion import diffusion_loss

    sched, ab = linear_scheduler(prediction="v"), torch.from_numpy(alpha_bar()).float()
    x0 = torch.rand(64, 1, 4, 4)
    torch.manual_seed(0)
    seen = {}

    def oracle(xt, t):  # recovers ε from x_t and the known x_0, then forms v
        a = ab[t].view(-1, 1, 1, 1)
        eps = (xt - a.sqrt() * x0) / (1 - a).sqrt()
        seen["t"] = t
        return a.sqrt() * eps - (1 - a).sqrt() * x0

    assert diffusion_loss(oracle, x0, sched).item() < 1e-8
    assert diffusion_loss(lambda xt, t: torch.zeros_like(xt), x0, sched).item() > 0.1
    assert len(seen["t"]) == 64


def test_short_ddim_schedules_under_disperse_at_first_order():
    """DDIM is a first-order solver: the deficit of the std halves when the steps double (measured: 0.376 at 50
    steps, 0.389 at 100, 0.397 at 250 for s = 0.4). A strided ancestral chain (sampler="ddpm", num_steps < T)
    under-disperses too (0.384 at 250 steps): the full chain is the reference."""
    d50, d100 = (0.4 - _chain(0.3, 0.4, "ddim", n).std().item() for n in (50, 100))
    assert 0.01 < d50 < 0.04 and d100 == pytest.approx(d50 / 2, rel=0.3)


def test_stochastic_ddim_keeps_the_mean_and_under_disperses_more_with_an_exact_epsilon():
    """DDIM with η = 1 at 50 steps: the mean of N(μ, s²) is kept, the std falls short by more than at η = 0
    (measured 0.350 against 0.376 for s = 0.4): with an exact ε the injected noise only costs accuracy."""
    x, det = _chain(0.3, 0.4, "ddim", 50, eta=1.0), _chain(0.3, 0.4, "ddim", 50)
    assert x.mean().item() == pytest.approx(0.3, abs=0.015)
    assert 0.33 < x.std().item() < det.std().item() - 0.01


def test_guidance_extrapolates_from_the_unconditional_prediction():
    c, u = (lambda x, t: x + 1), (lambda x, t: x * 0)
    x, t = torch.ones(3), torch.tensor(5)
    assert guided_eps(c, u, 0.0) is c
    torch.testing.assert_close(guided_eps(c, u, 0.5)(x, t), 1.5 * (x + 1))


# -- the generator -----------------------------------------------------------------------------------
def test_samples_seeds_save_load_and_cost(model, tmp_path):
    cond = Conditions(n=5, labels=np.array([0, 1, 2, 0, 1]), class_names=("left", "right", "centre"))
    a = model.sample(cond, seed=3, batch_size=5).images
    assert a.shape == (5, 1, 16, 16) and 0 <= a.min() and a.max() <= 1
    np.testing.assert_allclose(model.sample(cond, seed=3, batch_size=2).images, a, atol=1e-5)  # per-image seeds
    assert not np.allclose(model.sample(cond, seed=4).images, a)
    model.save(tmp_path)
    back = DDPM("smoke", num_steps=4)  # sampling options are the caller's, not the checkpoint's
    back.load(tmp_path)
    assert back.opt["channels"] == [8, 16] and back.train_info == model.train_info
    np.testing.assert_array_equal(back.sample(cond, seed=3, batch_size=5).images, a)
    assert model.cost().nfe_per_sample == 4
    model.configure_sampling(sampler="ddpm", num_steps=6, omega=1.0)
    try:
        b = model.sample(cond, seed=3).images  # a strided ancestral chain with guidance
        assert b.shape == a.shape and model.cost().nfe_per_sample == 12
    finally:
        model.configure_sampling(sampler="ddim", num_steps=4, omega=0.0)


def test_unconditional_model_and_bad_input():
    u = DDPM("smoke", **TINY, steps=2, conditional=False)
    u.fit(blobs(8), seed=0)
    assert u.supports == frozenset() and u.nets["unet"].class_embedding is None
    assert u.sample(Conditions(n=2), seed=0).images.shape == (2, 1, 16, 16)
    with pytest.raises(InputError):
        u.sample(Conditions(n=1, labels=np.array([0]), class_names=("left", "right", "centre")), seed=0)
    with pytest.raises(InputError, match="beta_start"):
        DDPM("smoke", beta_start=0.1, beta_end=0.01)
    with pytest.raises(InputError, match="divisible"):
        DDPM("smoke", **{**TINY, "channels": (8,) * 6}, steps=1).fit(blobs(4), seed=0)
    with pytest.raises(InputError, match="no option"):
        DDPM("smoke", n_steps=3)


def _eval_loss(g: DDPM, data) -> float:
    from radiobench_plugins.generators._diffusion import diffusion_loss

    torch.manual_seed(0)
    net, y = g.nets["unet"], torch.from_numpy(data.labels)
    with torch.no_grad():
        return diffusion_loss(lambda x, t: net(x, t, class_labels=y).sample, torch.from_numpy(data.images) * 2 - 1,
                            g.scheduler).item()


def test_fit_lowers_the_loss_and_an_interrupted_fit_resumes_to_the_same_weights(tmp_path):
    data = blobs(32)
    fresh = DDPM("smoke", **TINY, steps=0, ema=0.0)
    fresh.fit(data, seed=0)
    full = DDPM("smoke", **TINY, steps=30, checkpoint_every=5, ema=0.0)
    full.fit(data, seed=0, workdir=tmp_path / "full")
    assert _eval_loss(full, data) < 0.8 * _eval_loss(fresh, data)

    crashing = DDPM("smoke", **TINY, steps=30, checkpoint_every=5, ema=0.0)
    original = crashing.train_step

    def crash(step, *args):
        if step == 17:
            raise KeyboardInterrupt
        return original(step, *args)

    crashing.train_step = crash  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        crashing.fit(data, seed=0, workdir=tmp_path / "resumed")
    resumed = DDPM("smoke", **TINY, steps=30, checkpoint_every=5, ema=0.0)
    resumed.fit(data, seed=0, workdir=tmp_path / "resumed")
    assert resumed.train_info["start_step"] == 15 and resumed.cost().train_steps == 30
    rows = [list(csv.DictReader(open(tmp_path / d / "losses.csv"))) for d in ("full", "resumed")]
    np.testing.assert_allclose([float(r["loss"]) for r in rows[1]], [float(r["loss"]) for r in rows[0]], rtol=1e-5)
    for p, q in zip(resumed.nets["unet"].parameters(), full.nets["unet"].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("p,trained_rows", [(1.0, [3]), (0.0, [0, 1, 2])])
def test_condition_dropout_trains_the_null_class(p, trained_rows):
    """The class embedding has a row per class and one for ∅ (= n_classes); with dropout 1 only ∅ is trained,
    with dropout 0 only the real classes are."""
    g = DDPM("smoke", **TINY, steps=0, ema=0.0)
    g.fit(blobs(12), seed=0)
    before = g.nets["unet"].class_embedding.weight.detach().clone()
    h = DDPM("smoke", **TINY, steps=3, ema=0.0, cond_dropout=p)
    h.fit(blobs(12), seed=0)
    changed = (h.nets["unet"].class_embedding.weight.detach() != before).any(dim=1)
    assert before.shape[0] == 4 and changed.nonzero().flatten().tolist() == trained_rows
