"""CVAE (paper 003): shapes, ranges, ELBO on real FIRST images, class conditioning, save/load, seeds, resume."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from radiobench.seeding import PerImageRandom
from radiobench.types import Conditions, InputError, RadioImages, SurveyInfo
from radiobench_plugins.generators.cvae import CVAE, free_bits_kl, negative_elbo


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: on a shared, loaded 2-core machine two spinning threads run several times slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def first64(tmp_path_factory) -> RadioImages:
    """The first 64 FIRST train images at 40×40 (real data; skipped where it is not available)."""
    from conftest import SHARED_DATA

    from radiobench_plugins.datasets.first import FirstDataset

    if not (SHARED_DATA / "first").exists():
        pytest.skip("FIRST data not available")
    d = FirstDataset(resolution=40, data_dir=SHARED_DATA / "first").load("train")
    return RadioImages(images=d.images[:64], labels=d.labels[:64], class_names=d.class_names, survey=d.survey)


def check_seeds_and_save_load(g, fresh, cond: Conditions, seed: int, batch_size: int, tmp_path, atol: float):
    """Samples of the fitted ``g`` do not depend on batching, do on the seed, and come back identical from
    ``fresh`` after save/load; returns them."""
    a = g.sample(cond, seed=seed, batch_size=cond.n).images
    assert np.allclose(a, g.sample(cond, seed=seed, batch_size=batch_size).images, atol=atol)
    assert not np.allclose(a, g.sample(cond, seed=seed + 1, batch_size=cond.n).images)
    g.save(tmp_path)
    fresh.load(tmp_path)
    assert np.array_equal(a, fresh.sample(cond, seed=seed, batch_size=cond.n).images)
    assert fresh.num_parameters() == g.num_parameters() > 0
    return a


def toy(n: int = 32, size: int = 16, labels: bool = True) -> RadioImages:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (n, 1, size, size)).astype(np.float32) ** 8
    return RadioImages(images=x, survey=SurveyInfo("toy"), labels=np.arange(n) % 2 if labels else None,
                       class_names=("a", "b") if labels else None)


def _layers(seq: torch.nn.Module) -> list[tuple]:
    """Each module of a funnel as (kind, size): Linear → ("linear", in, out), activations and dropout by parameter."""
    out: list[tuple] = []
    for m in seq.modules() if isinstance(seq, torch.nn.Sequential) else [seq]:
        if isinstance(m, torch.nn.Linear):
            out.append(("linear", m.in_features, m.out_features))
        elif isinstance(m, torch.nn.Softplus):
            out.append(("softplus",))
        elif isinstance(m, torch.nn.LeakyReLU):
            out.append(("leaky_relu", m.negative_slope))
        elif isinstance(m, torch.nn.Dropout):
            out.append(("dropout", m.p))
    return out


def test_architecture_follows_table_2():
    """The paper preset's network, built for the paper's data (100×100 FIRST cutouts, FRI/FRII), is Table 2's
    CVAE: Linear layers (10 000 + 2) → 4096 → 2048 → 1024 → 512 → 256 → two d = 32 heads (z_μ, z_σ²), and
    (d + 2) → 256 → 512 → 1024 → 2048 → 4096 → 10 000 with a sigmoid output; every hidden layer is followed by
    its activation and dropout p = 0.2 (Sect. 5), the encoder's first by the table's softplus, the others by a
    leaky ReLU with α = 0.001 (Eq. 15)."""
    g = CVAE(preset="paper", device="cpu")
    g.train_info.update(image_size=100, n_classes=2)
    g.build()
    net = g.nets["vae"]
    d, lrelu, drop = 32, ("leaky_relu", 0.001), ("dropout", 0.2)
    enc = [10_000 + 2, 4096, 2048, 1024, 512, 256]
    dec = [d + 2, 256, 512, 1024, 2048, 4096]
    encoder = [("linear", a, b) for a, b in zip(enc, enc[1:])]
    encoder = [x for i, lin in enumerate(encoder) for x in (lin, ("softplus",) if i == 0 else lrelu, drop)]
    decoder = [x for a, b in zip(dec, dec[1:]) for x in (("linear", a, b), lrelu, drop)]
    assert _layers(net.encoder) == encoder and _layers(net.decoder) == decoder
    assert _layers(net.mu) == _layers(net.logvar) == [("linear", 256, d)]
    assert _layers(net.out) == [("linear", 4096, 10_000)]
    x = g.generate(PerImageRandom([0, 1], "cpu"), torch.tensor([0, 1]))  # sigmoid output: in (0, 1)
    assert x.shape == (2, 1, 100, 100) and 0 < x.min() and x.max() < 1


def test_negative_elbo_terms():
    x = torch.full((2, 1, 2, 2), 0.5)
    mu, logvar = torch.zeros(2, 3), torch.zeros(2, 3)
    loss, rec, kl = negative_elbo(x, torch.zeros(2, 4), mu, logvar, "bernoulli", 0.1)
    assert kl.item() == pytest.approx(0.0) and rec.item() == pytest.approx(4 * np.log(2), rel=1e-5)
    _, _, kl1 = negative_elbo(x, torch.zeros(2, 4), torch.ones(2, 3), logvar, "bernoulli", 0.1)
    assert kl1.item() == pytest.approx(1.5)  # ½ Σ μ² (Eq. 6)
    _, rec_g, _ = negative_elbo(x, torch.zeros(2, 4), mu, logvar, "gaussian", 0.5)
    assert rec_g.item() == pytest.approx(0.0)  # sigmoid(0) = 0.5 = x


def test_free_bits_floor_each_latent_dimension():
    mu = torch.tensor([[2.0, 0.1, 0.0], [2.0, -0.1, 0.0]], requires_grad=True)
    logvar = torch.zeros(2, 3)
    _, _, kl = negative_elbo(torch.zeros(2, 1, 2, 2), torch.zeros(2, 4), mu, logvar, "gaussian", 0.1)
    assert free_bits_kl(mu, logvar, 0.0).item() == pytest.approx(kl.item())  # λ = 0: the plain KL term
    fb = free_bits_kl(mu, logvar, 0.5)  # per-dimension KL: 2, 0.005, 0 → 2 + 0.5 + 0.5
    assert fb.item() == pytest.approx(3.0)
    fb.backward()
    assert mu.grad[:, 0].abs().min() > 0 and torch.all(mu.grad[:, 1:] == 0)  # no pull onto the prior below λ


def test_elbo_decreases_on_first_and_samples_in_range(first64):
    before = CVAE(preset="smoke", steps=0, progress=False)
    before.fit(first64, seed=0)
    # the decoder starts at the mean image (init_from_data), so the gain is what the latent code adds
    g = CVAE(preset="smoke", steps=100, batch_size=64, lr=3e-3, augment=False, progress=False)
    g.fit(first64, seed=0)
    losses = [r["loss"] for r in g.losses]
    assert np.mean(losses[-5:]) < 0.96 * np.mean(losses[:5])
    assert g.elbo(first64.images, first64.labels) < 0.95 * before.elbo(first64.images, first64.labels)
    assert g.losses[-1]["kl"] > 0.5  # the posterior carries information (it has not collapsed)
    cond = Conditions(n=8, labels=np.arange(8) % 4, class_names=first64.class_names)
    s = g.sample(cond, seed=3)
    assert s.images.shape == (8, 1, 40, 40) and s.images.dtype == np.float32
    assert 0 <= s.images.min() and s.images.max() <= 1
    assert list(s.labels) == list(cond.labels)


def test_decoder_starts_at_the_data_mean(first64):
    """init_from_data: sigmoid(output bias) is the mean training image, so training does not start with
    every pixel at 0.5 (which kills the leaky-ReLU units and collapses the posterior, see the cpu preset)."""
    g = CVAE(preset="smoke", steps=0, progress=False)
    g.fit(first64, seed=0)
    mean = first64.images.mean(0).reshape(-1).clip(1e-3, 1 - 1e-3)
    assert np.allclose(torch.sigmoid(g.nets["vae"].out.bias).detach().numpy(), mean, atol=1e-5)


    class DefaultInit(CVAE):
        def init_from_data(self, images):
            pass

    plain = DefaultInit(preset="smoke", steps=0, progress=False)
    plain.fit(first64, seed=0)  # sigmoid ≈ 0.5 everywhere: ~1100 nats per image
    assert g.elbo(first64.images, first64.labels) < 0.1 * plain.elbo(first64.images, first64.labels)


def test_options_and_unconditional_vae():
    with pytest.raises(InputError, match="no option"):
        CVAE(preset="smoke", latent=3)
    g = CVAE(preset="smoke", latent_dim=4, likelihood="gaussian", steps=3, progress=False)
    g.fit(toy(labels=False), seed=0)
    assert g.config()["latent_dim"] == 4 and g.nets["vae"].n_classes == 0 and g.supports == frozenset()
    assert g.sample(Conditions(n=3), seed=0).images.shape == (3, 1, 16, 16)
    with pytest.raises(InputError):
        g.sample(Conditions(n=2, labels=np.array([0, 1]), class_names=("a", "b")), seed=0)
    c = CVAE(preset="smoke", steps=3, conditional=False, progress=False)
    c.fit(toy(), seed=0)
    assert c.supports == frozenset() and c.nets["vae"].n_classes == 0


def test_seeds_batch_size_save_load(tmp_path):
    g = CVAE(preset="smoke", steps=5, progress=False)
    g.fit(toy(), seed=1)
    cond = Conditions(n=7, labels=np.array([0, 1, 1, 0, 1, 0, 0]), class_names=("a", "b"))
    h = CVAE(preset="smoke")
    a = check_seeds_and_save_load(g, h, cond, seed=5, batch_size=2, tmp_path=tmp_path, atol=1e-6)
    assert np.array_equal(a, g.sample(cond, seed=5, batch_size=7).images)  # eval mode: no dropout noise
    assert h.cost().train_steps == g.cost().train_steps == 5 and h.config() == g.config()
    # a conditional model asked for no class draws one per image from the class frequencies
    free = g.sample(Conditions(n=6), seed=5, batch_size=6).images
    assert np.allclose(free[:2], g.sample(Conditions(n=2), seed=5, batch_size=1).images, atol=1e-6)


def test_conditional_samples_respect_the_class():
    """A logistic-regression classifier trained on real synthetic FRII / Compact images recognises the class
    that CVAE samples were asked for."""
    from test_gans import quick_classifier, two_class_synthetic

    train, test = two_class_synthetic(16)
    clf = quick_classifier(train)
    assert (clf(test.images) == test.labels).mean() >= 0.9
    g = CVAE(preset="smoke", steps=150, lr=3e-3, progress=False)
    g.fit(train, seed=0)
    cond = Conditions(n=80, labels=np.arange(80) % 2, class_names=train.class_names)
    assert (clf(g.sample(cond, seed=0).images) == cond.labels).mean() >= 0.9
