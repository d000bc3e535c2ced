"""EDM generator (paper 000): preconditioning, Heun sampler, guidance, seeds, persistence, training."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from radiobench.checkpoint import load_config, save_config
from radiobench.types import Conditions, InputError, RadioImages, SurveyInfo
from radiobench_plugins.generators.edm import EDM, Denoiser, edm_sigmas, guided, heun_sampler, precondition
from radiobench_plugins.generators.unet import UNet

torch.set_num_threads(1)
CLASSES = ("left", "right", "centre")
TINY = dict(channels=(8, 16), num_blocks=1, attn_levels=(1,), num_steps=6, progress=False)


def blobs(n: int, side: int = 16, seed: int = 0, flux: bool = False) -> RadioImages:
    """Gaussian blobs whose position is set by the class; each image scaled to peak 1."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    yy, xx = np.mgrid[:side, :side]
    cx = np.array([side * 0.3, side * 0.7, side * 0.5])[labels] + rng.normal(0, 0.5, n)
    cy = side / 2 + rng.normal(0, 0.5, n)
    w = rng.uniform(1.0, 2.0, n)
    img = np.exp(-((xx - cx[:, None, None]) ** 2 + (yy - cy[:, None, None]) ** 2) / (2 * w[:, None, None] ** 2))
    img = img / img.max(axis=(1, 2), keepdims=True)
    return RadioImages(
        img[:, None].astype(np.float32), SurveyInfo("blobs"), labels=labels, class_names=CLASSES,
        peak_flux=rng.lognormal(-4, 1, n) if flux else None,
    )


@pytest.fixture(scope="module")
def class_model() -> EDM:
    g = EDM("smoke", **TINY, steps=12)
    g.fit(blobs(48), seed=0)
    return g


@pytest.fixture(scope="module")
def flux_model() -> EDM:
    g = EDM("smoke", **TINY, steps=12)
    g.fit(blobs(48, flux=True), seed=1)
    return g


# -- Eq. 19-20 ------------------------------------------------------------------------------------
def test_preconditioning_limits_and_unit_variance():
    sd = 0.5
    c_skip, c_out, c_in, c_noise = precondition(torch.tensor([1e-6, 1e6], dtype=torch.float64), sd)
    assert c_skip[0] == pytest.approx(1.0) and c_out[0] == pytest.approx(0.0, abs=1e-5)  # σ→0: D(x;σ)→x
    assert c_skip[1] == pytest.approx(0.0, abs=1e-9) and c_out[1] == pytest.approx(sd)  # σ→∞: D→σ_data·F
    assert c_noise[0] == pytest.approx(math.log(1e-6) / 4)
    # c_skip² σ² + … : the ideal-denoiser design — for data of std σ_data the network input c_in x
    # and its training target (y − c_skip x)/c_out both have unit variance at every σ (Karras et al. App. B.6)
    g = torch.Generator().manual_seed(0)
    y = torch.randn(200_000, generator=g, dtype=torch.float64) * sd
    for s in (0.01, 0.3, 2.0, 40.0):
        x = y + s * torch.randn(len(y), generator=g, dtype=torch.float64)
        c_skip, c_out, c_in, _ = precondition(torch.tensor(s, dtype=torch.float64), sd)
        assert (c_in * x).std().item() == pytest.approx(1.0, rel=0.01)
        assert ((y - c_skip * x) / c_out).std().item() == pytest.approx(1.0, rel=0.01)
        assert 1 / c_out**2 == pytest.approx((s**2 + sd**2) / (s * sd) ** 2)  # loss weight λ(σ)
    # the preconditioned network: D(x;σ) → x as σ → 0 whatever F outputs
    net = UNet(channels=(8, 16), num_blocks=1, attn_levels=())
    torch.nn.init.normal_(net.conv_out.weight)
    den = Denoiser(net).eval()
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(den(x, torch.tensor(1e-7)), x, atol=1e-5)
        assert not torch.allclose(den(x, torch.tensor(1.0)), x, atol=1e-3)


# -- Eq. 25 and Algorithm 1 --------------------------------------------------------------------------
def test_sigma_steps_and_function_evaluations():
    s = edm_sigmas(25)
    assert len(s) == 26 and s[0] == pytest.approx(80.0) and s[24] == pytest.approx(2e-3) and s[25] == 0
    assert torch.all(s[1:] < s[:-1])
    calls = []
    heun_sampler(lambda x, sig: calls.append(1) or torch.zeros_like(x), torch.randn(3, 1, 4, 4), s)
    assert len(calls) == 2 * 25 - 1


def test_heun_sampler_reproduces_a_gaussian():
    mu, sd = 0.3, 0.2  # exact denoiser of N(μ, s²): D(x; σ) = (s² x + σ² μ)/(s² + σ²)
    noise = torch.randn(4000, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    ideal = lambda x, s: (sd**2 * x + s**2 * mu) / (sd**2 + s**2)  # noqa: E731
    x25, x100 = heun_sampler(ideal, noise, edm_sigmas(25)), heun_sampler(ideal, noise, edm_sigmas(100))
    assert x25.mean().item() == pytest.approx(mu, abs=0.005) and x100.mean().item() == pytest.approx(mu, abs=0.005)
    # Heun's truncation error at N = 25 widens this narrow Gaussian by ~3.5%; it vanishes as N grows
    assert x25.std().item() == pytest.approx(sd, rel=0.06)
    assert x100.std().item() == pytest.approx(sd, rel=0.01)


def test_heun_sampler_reproduces_a_mixture_of_points():
    points, weights = torch.tensor([-0.6, 0.2, 0.7]), torch.tensor([0.2, 0.5, 0.3])

    def ideal(x, s):  # posterior mean of the point given x = point + σ n
        logp = weights.log() - (x[..., None] - points) ** 2 / (2 * s**2)
        return (logp.softmax(-1) * points).sum(-1)

    noise = torch.randn(2000, 1, 2, 2, generator=torch.Generator().manual_seed(2))
    x = heun_sampler(ideal, noise, edm_sigmas(25)).flatten()
    near = (x[:, None] - points).abs().min(1)
    assert near.values.max() < 0.02
    share = torch.bincount(near.indices, minlength=3) / len(x)
    assert torch.allclose(share, weights, atol=0.03)


# -- guidance, seeds, persistence ----------------------------------------------------------------------
def test_guidance_zero_is_the_conditional_model(class_model):
    den = class_model.denoiser
    labels = torch.tensor([0, 1, 2])
    cond, uncond = (lambda x, s: den(x, s, labels=labels)), (lambda x, s: den(x, s))
    x, s = torch.randn(3, 1, 16, 16), torch.tensor(0.7)
    with torch.no_grad():
        assert torch.equal(guided(cond, uncond, 0.0)(x, s), cond(x, s))
        assert not torch.allclose(guided(cond, uncond, 2.0)(x, s), cond(x, s))
    c = Conditions(n=3, labels=np.array([0, 1, 2]))
    class_model.configure_sampling(omega=0.0)
    a = class_model.sample(c, seed=5).images
    assert class_model.cost().nfe_per_sample == 2 * 6 - 1
    noise = torch.stack([torch.randn(1, 16, 16, generator=torch.Generator().manual_seed(s)) for s in _seeds(5, 3)])
    direct = heun_sampler(cond, noise, edm_sigmas(6))
    np.testing.assert_allclose(a, ((direct.clamp(-1, 1) + 1) / 2).numpy(), atol=1e-6)
    class_model.configure_sampling(omega=2.0)
    b = class_model.sample(c, seed=5).images
    assert class_model.cost().nfe_per_sample == 2 * (2 * 6 - 1)
    assert np.abs(a - b).max() > 1e-3
    class_model.configure_sampling(omega=None)


def _seeds(seed, n):
    from radiobench.seeding import image_seeds

    return image_seeds(seed, 0, n)


def test_samples_do_not_depend_on_batch_size_and_survive_save_load(class_model, tmp_path):
    c = Conditions(n=5, labels=np.array([0, 1, 2, 2, 0]), class_names=CLASSES)
    a = class_model.sample(c, seed=3, batch_size=5).images
    b = class_model.sample(c, seed=3, batch_size=2).images
    np.testing.assert_allclose(a, b, atol=1e-5)  # per-image seeds; conv kernels may round differently per batch
    assert np.abs(a - class_model.sample(c, seed=4, batch_size=5).images).max() > 1e-3
    class_model.save(tmp_path / "m")
    again = EDM("smoke", num_steps=TINY["num_steps"])  # sampling options are the caller's, weights the checkpoint's
    again.load(tmp_path / "m")
    assert again.num_parameters() == class_model.num_parameters()
    np.testing.assert_array_equal(again.sample(c, seed=3, batch_size=5).images, a)


def test_load_fills_options_a_checkpoint_predates(class_model, tmp_path):
    """A checkpoint of the first format (options under "hp"), written before two sampling options existed, loads;
    sampling options are the instance's (preset defaults and constructor keywords), not the checkpoint's."""
    c = Conditions(n=3, labels=np.array([0, 1, 2]), class_names=CLASSES)
    class_model.save(tmp_path / "m")
    cfg = load_config(tmp_path / "m")
    # as EDM wrote it before it was a TorchGenerator (format 1), before it had these two options
    cfg = {"format": 1, "preset": cfg["preset"], "hp": cfg["options"], "train_info": cfg["train_info"],
           "cost": cfg["cost"]}
    for old in ("zero_below", "sample_precision"):
        cfg["hp"].pop(old)
    save_config(tmp_path / "m", cfg)
    again = EDM("smoke", num_steps=TINY["num_steps"])
    again.load(tmp_path / "m")
    assert again.training_config() == class_model.training_config()
    assert again.opt["zero_below"] == EDM("smoke").opt["zero_below"]
    assert again.opt["sample_precision"] == EDM("smoke").opt["sample_precision"]
    np.testing.assert_array_equal(again.sample(c, seed=3).images, class_model.sample(c, seed=3).images)
    steps = EDM("smoke", num_steps=4)
    steps.load(tmp_path / "m")
    assert steps.opt["num_steps"] == 4 and steps.sampling_config()["num_steps"] == 4


def test_flux_conditioning_and_missing_conditions(flux_model):
    out = flux_model.sample(Conditions(n=3, labels=np.array([0, 1, 2]), peak_flux=np.array([0.01, 0.02, 0.1])), seed=0)
    np.testing.assert_array_equal(out.peak_flux, [0.01, 0.02, 0.1])  # images carry their drawn flux
    assert out.images.shape == (3, 1, 16, 16)
    only_flux = flux_model.sample(Conditions(n=2, peak_flux=np.array([0.01, 0.1])), seed=0)  # class via ∅
    neither = flux_model.sample(Conditions(n=2), seed=0)
    assert only_flux.labels is None and np.all(np.isfinite(neither.images))
    with pytest.raises(InputError, match="positive"):
        flux_model.sample(Conditions(n=1, peak_flux=np.array([-1.0])), seed=0)


def test_bad_conditions_raise_clear_input_errors(class_model):
    with pytest.raises(InputError, match=r"lie in \[0, 2\]"):
        class_model.sample(Conditions(n=1, labels=np.array([3])), seed=0)
    with pytest.raises(InputError, match=r"cannot be conditioned on \['flux'\]; it supports \['class'\]"):
        class_model.sample(Conditions(n=1, peak_flux=np.array([0.1])), seed=0)
    with pytest.raises(InputError, match="cannot be conditioned on"):
        class_model.sample(Conditions(n=1, masks=np.zeros((1, 1, 16, 16))), seed=0)
    plain = EDM("smoke", **{**TINY, "use_labels": False}, steps=2)
    before = plain.config()
    plain.fit(blobs(8), seed=0)
    assert plain.config() == before  # the runner reuses a checkpoint when configs match
    with pytest.raises(InputError, match=r"cannot be conditioned on \['class'\]"):
        plain.sample(Conditions(n=1, labels=np.array([0])), seed=0)
    assert plain.sample(Conditions(n=2), seed=0).images.shape == (2, 1, 16, 16)
    with pytest.raises(InputError, match=r"has no option\(s\) \['omgea'\]; it knows .*omega"):
        EDM("smoke", omgea=1.0)
    with pytest.raises(InputError, match="fit or load"):
        EDM("smoke").sample(Conditions(n=1), seed=0)


# -- training ----------------------------------------------------------------------------------------
def _eval_loss(g: EDM, data: RadioImages) -> float:
    from radiobench_plugins.generators.edm import edm_loss

    torch.manual_seed(123)
    y = torch.from_numpy(data.images) * 2 - 1
    sigma = (torch.randn(len(y)) * 1.2 - 1.2).exp()
    with torch.no_grad():
        return edm_loss(g.denoiser, y, sigma, labels=torch.from_numpy(data.labels)).item()


def test_smoke_fit_lowers_the_loss_and_resumes(tmp_path):
    data = blobs(48)
    fresh = EDM("smoke", **TINY, steps=0)
    fresh.fit(data, seed=0)
    trained = EDM("smoke", **TINY, steps=40, lr=3e-3)
    trained.fit(data, seed=0, workdir=tmp_path / "full")
    assert _eval_loss(trained, data) < 0.7 * _eval_loss(fresh, data)
    rows = list(csv.DictReader(open(tmp_path / "full" / "losses.csv")))
    assert [int(r["step"]) for r in rows] == list(range(40))

    # stop after 20 steps, then resume with the full budget: same losses and weights as without a break
    part = EDM("smoke", **TINY, steps=20, lr=3e-3)
    part.fit(data, seed=0, workdir=tmp_path / "resumed")
    resumed = EDM("smoke", **TINY, steps=40, lr=3e-3)
    resumed.fit(data, seed=0, workdir=tmp_path / "resumed")
    assert resumed.cost().train_steps == 40
    again = [float(r["loss"]) for r in csv.DictReader(open(tmp_path / "resumed" / "losses.csv"))]
    np.testing.assert_allclose(again, [float(r["loss"]) for r in rows], rtol=1e-5)
    for p, q in zip(resumed.denoiser.parameters(), trained.denoiser.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="different EDM"):
        EDM("smoke", **{**TINY, "channels": (8, 8)}).fit(data, seed=0, workdir=tmp_path / "resumed")


def test_loss_draws_sigma_as_nvlabs_edm():
    """EDMLoss draws ln σ ~ N(P_mean, P_std²) per image (NVlabs/edm's EDMLoss) and weights by λ(σ)."""
    from radiobench_plugins.generators.edm import EDMLoss

    seen = []

    def denoiser(x, sigma, **context):
        seen.append(sigma)
        return torch.zeros_like(x)

    torch.manual_seed(0)
    y = torch.full((20_000, 1, 2, 2), 0.5)
    loss = EDMLoss(p_mean=-1.2, p_std=1.2, sigma_data=0.5)(denoiser, y)
    log_sigma = seen[0].log()
    assert seen[0].shape == (20_000,) and abs(log_sigma.mean() + 1.2) < 0.03 and abs(log_sigma.std() - 1.2) < 0.03
    s = seen[0]  # D = 0: λ(σ)·y² = (σ² + σ_d²)/(σ σ_d)² · 0.25 per pixel
    torch.testing.assert_close(loss, ((s**2 + 0.25) / (s * 0.5) ** 2 * 0.25).mean(), rtol=1e-5, atol=0)


def test_fit_draws_sigma_with_the_presets_p_mean_and_p_std():
    """Paper 000 Table 4: P_mean = -2.5, P_std = 1.8 reach the loss (not EDMLoss's NVlabs defaults)."""
    g = EDM("smoke", **TINY, steps=1)
    g.fit(blobs(6), seed=0)
    assert (g.loss.p_mean, g.loss.p_std, g.loss.sigma_data) == (-2.5, 1.8, 0.5)


def test_undersampling_draws_minibatches_from_balanced_classes():
    data = blobs(30)
    keep = np.flatnonzero((data.labels != 2) | (np.arange(30) < 9))  # class 2: 3 images, the others 10
    data = data.subset(keep)
    g = EDM("smoke", **TINY, steps=2, class_balance="undersample")
    g.fit(data, seed=0)
    assert np.bincount(data.labels[g.pool]).tolist() == [3, 3, 3]
    plain = EDM("smoke", **TINY, steps=2)
    plain.fit(data, seed=0)
    assert plain.pool is None  # every training image
