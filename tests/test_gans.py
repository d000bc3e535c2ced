"""DCGAN and PG-GAN: grids, building blocks, fade-in, a step updates both networks, class conditioning,
seeds, save/load, resume."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_cvae import (
    check_seeds_and_save_load,
    one_thread,  # noqa: F401 (autouse fixture: one intra-op thread)
)
from test_cvae import toy as cvae_toy

from radiobench.types import Conditions, InputError, RadioImages
from radiobench_plugins.generators._torch import EqConv2d, MinibatchStd, grid_for, pixel_norm
from radiobench_plugins.generators.cvae import CVAE
from radiobench_plugins.generators.dcgan import DCGAN, DCDiscriminator, DCGenerator
from radiobench_plugins.generators.pggan import PGGAN, PGDiscriminator, PGGenerator, schedule

GANS = [DCGAN, PGGAN]


def toy(n: int = 32, size: int = 40) -> RadioImages:
    return cvae_toy(n, size)


def test_grid_for_lands_on_the_dataset_side():
    assert grid_for(40) == (5, 3, 40) and grid_for(80) == (5, 4, 80) and grid_for(64) == (4, 4, 64)
    assert grid_for(10) == (5, 1, 10) and grid_for(100) == (4, 5, 128)  # no b·2^n form: generate 128, resize
    g, d = DCGenerator(100, 4, 5, 3, 8), DCDiscriminator(4, 5, 3, 8)
    y = torch.tensor([0, 3])
    x = g(torch.randn(2, 100), F.one_hot(y, 4).float())
    assert x.shape == (2, 1, 40, 40) and x.abs().max() <= 1 and d(x, y).shape == (2,)
    assert [m.stride for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)] == [(2, 2)] * 3


def test_karras_building_blocks():
    conv = EqConv2d(8, 4, 3)
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.2) and conv.scale == pytest.approx((2 / 72) ** 0.5)
    h = pixel_norm(torch.randn(3, 5, 4, 4) * 7)
    assert torch.allclose(h.pow(2).mean(1), torch.ones(3, 4, 4), atol=1e-4)
    x = torch.randn(8, 3, 5, 5)
    out = MinibatchStd(4)(x)
    s = out[:, 3, 0, 0]
    assert out.shape == (8, 4, 5, 5) and torch.equal(out[:, 3], s[:, None, None].expand(8, 5, 5))
    assert torch.equal(s[0::2], s[0].repeat(4)) and torch.equal(s[1::2], s[1].repeat(4))  # groups {0,2,4,6}, {1,3,5,7}
    same = MinibatchStd(4)(torch.ones(8, 3, 5, 5))[:, 3]
    assert torch.allclose(same, torch.full_like(same, 1e-4), atol=1e-4)  # identical images: std ≈ 0


def test_pggan_schedule_and_fade_in():
    assert schedule(0.0, 3) == (0, 1.0) and schedule(0.1, 3) == (0, 1.0)
    assert schedule(1.5 / 7, 3) == (1, 0.5) and schedule(2.5 / 7, 3) == (1, 1.0)
    assert schedule(3.25 / 7, 3) == (2, 0.25) and schedule(1.0, 3) == (3, 1.0)
    # a long last phase (Karras et al.'s code trains on at full resolution): 6 growth phases share 40%
    assert schedule(0.1, 3, 0.6) == (1, 0.5) and schedule(0.399, 3, 0.6)[0] == 3
    assert schedule(0.401, 3, 0.6) == (3, 1.0) and schedule(1.0, 3, 0.6) == (3, 1.0)
    assert schedule(2.5 / 7, 3, 1 / 7) == pytest.approx(schedule(2.5 / 7, 3))  # 1/(2L + 1): equal phases
    with pytest.raises(ValueError, match="final_share"):
        schedule(0.5, 3, 1.0)
    from types import SimpleNamespace

    from radiobench_plugins.generators.pggan import training_progress

    run = SimpleNamespace(total_steps=100, max_seconds=None, elapsed=50.0)
    assert training_progress(25, run) == 0.25
    run.max_seconds = 100.0  # a wall-clock budget that runs out first drives the growth
    assert training_progress(25, run) == 0.5 and training_progress(90, run) == 0.9
    nf = lambda k: 8  # noqa: E731
    torch.manual_seed(0)
    G, D = PGGenerator(6, 0, 5, 2, nf), PGDiscriminator(0, 5, 2, nf, 4)
    z = torch.randn(4, 6)
    for level in (1, 2):  # α = 0: the new resolution is the upsampled old one; α = 1 is the new path
        old = F.interpolate(G(z, None, level - 1, 1.0), scale_factor=2, mode="nearest")
        assert torch.allclose(G(z, None, level, 0.0), old, atol=1e-5)
        assert G(z, None, level, 1.0).shape[-1] == 5 * 2**level
        x = torch.randn(4, 1, 5 * 2**level, 5 * 2**level)
        assert torch.allclose(D(x, None, level, 0.0)[0], D(F.avg_pool2d(x, 2), None, level - 1, 1.0)[0], atol=1e-5)


@pytest.mark.parametrize("cls", GANS)
def test_a_step_updates_both_networks(cls):
    data = toy()
    before, after = cls(preset="smoke", steps=0, progress=False), cls(preset="smoke", steps=1, progress=False)
    before.fit(data, seed=0)
    after.fit(data, seed=0)
    for net in ("G", "D"):
        changed = [not torch.equal(p, q) for p, q in zip(before.nets[net].parameters(), after.nets[net].parameters())]
        assert any(changed), f"{cls.name}: {net} was not updated"
    assert all(np.isfinite(v) for v in after.losses[0].values())


def test_dcgan_batchnorm_uses_population_statistics():
    g = DCGAN(preset="smoke", steps=3, progress=False)
    g.fit(toy(), seed=0)
    bn = g.nets["G"].bn0
    assert not g.nets["G"].training and bn.num_batches_tracked.item() == g.opt["bn_batches"]
    assert not torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean))
    none = DCGAN(preset="smoke", steps=3, bn_batches=0, progress=False)  # keep training's running averages
    none.fit(toy(), seed=0)
    assert none.nets["G"].bn0.num_batches_tracked.item() == 3


@pytest.mark.parametrize("cls", GANS)
def test_samples_range_seeds_and_save_load(cls, tmp_path):
    g = cls(preset="smoke", steps=4, progress=False)
    g.fit(toy(), seed=0)
    cond = Conditions(n=6, labels=np.array([0, 1, 1, 0, 0, 1]), class_names=("a", "b"))
    a = check_seeds_and_save_load(g, cls(preset="smoke"), cond, seed=2, batch_size=4, tmp_path=tmp_path, atol=1e-5)
    assert a.shape == (6, 1, 40, 40) and 0 <= a.min() and a.max() <= 1
    free = g.sample(Conditions(n=4), seed=2, batch_size=4).images  # classes drawn per image
    assert np.allclose(free[:1], g.sample(Conditions(n=1), seed=2).images, atol=1e-5)
    u = cls(preset="smoke", steps=1, conditional=False, progress=False)
    u.fit(toy(), seed=0)
    assert u.supports == frozenset() and u.sample(Conditions(n=2), seed=0).images.shape == (2, 1, 40, 40)
    with pytest.raises(InputError):
        u.sample(cond, seed=0)
    with pytest.raises(InputError, match="no option"):
        cls(preset="smoke", lrate=1)


@pytest.mark.parametrize("cls", [*GANS, CVAE])
def test_resume_continues_at_saved_step(cls, tmp_path):
    """Every TorchGenerator: an interrupted fit resumes at its last checkpoint and ends where an uninterrupted
    one does; a wall-clock budget stops it and a later fit resumes from there."""
    data = toy(size=20)
    a = cls(preset="smoke", steps=6, checkpoint_every=2, progress=False)
    original = a.train_step

    def crash(step, *args):
        if step == 4:
            raise KeyboardInterrupt
        return original(step, *args)

    a.train_step = crash
    with pytest.raises(KeyboardInterrupt):
        a.fit(data, seed=0, workdir=tmp_path)
    b = cls(preset="smoke", steps=6, checkpoint_every=2, progress=False)
    b.fit(data, seed=0, workdir=tmp_path)
    assert b.train_info["start_step"] == 4 and b.train_info["steps_done"] == 6
    with open(tmp_path / "losses.csv") as fh:
        assert [int(r["step"]) for r in csv.DictReader(fh)] == list(range(6))
    c = cls(preset="smoke", steps=6, progress=False)
    c.fit(data, seed=0)
    cond = Conditions(n=3, labels=np.array([0, 1, 0]), class_names=("a", "b"))
    assert np.allclose(b.sample(cond, seed=0).images, c.sample(cond, seed=0).images, atol=1e-5)
    stop = cls(preset="smoke", steps=10_000, max_minutes=1e-9, progress=False)
    stop.fit(data, seed=0, workdir=tmp_path / "budget")
    assert stop.train_info["stopped_early"] and stop.train_info["steps_done"] == 1
    again = cls(preset="smoke", steps=3, progress=False)
    again.fit(data, seed=0, workdir=tmp_path / "budget")
    assert again.train_info["start_step"] == 1 and again.train_info["steps_done"] == 3


def two_class_synthetic(resolution: int) -> tuple[RadioImages, RadioImages]:
    """FRII and Compact sources of the ``synthetic`` dataset (train, test)."""
    from radiobench_plugins.datasets.synthetic import SyntheticDataset

    ds = SyntheticDataset(resolution=resolution, n_train=320, n_valid=0, n_test=80)

    def two(d: RadioImages) -> RadioImages:
        m = (d.labels == 1) | (d.labels == 2)
        return RadioImages(images=d.images[m], labels=(d.labels[m] == 2).astype(np.int64),
                           class_names=("FRII", "Compact"), survey=d.survey)

    return two(ds.load("train")), two(ds.load("test"))


def quick_classifier(train: RadioImages):
    """Logistic regression on pixels, trained on real images."""
    torch.manual_seed(0)
    x, y = torch.from_numpy(train.images.reshape(len(train.images), -1)), torch.from_numpy(train.labels)
    lin = torch.nn.Linear(x.shape[1], 2)
    opt = torch.optim.Adam(lin.parameters(), 0.05)
    for _ in range(200):
        opt.zero_grad()
        F.cross_entropy(lin(x), y).backward()
        opt.step()
    return lambda imgs: lin(torch.from_numpy(imgs.reshape(len(imgs), -1))).argmax(1).numpy()


def test_dcgan_conditional_samples_respect_the_class():
    train, test = two_class_synthetic(10)
    clf = quick_classifier(train)
    assert (clf(test.images) == test.labels).mean() >= 0.9
    g = DCGAN(preset="smoke", steps=300, ngf=16, ndf=16, batch_size=32, lr=5e-4, progress=False)
    g.fit(train, seed=0)
    cond = Conditions(n=80, labels=np.arange(80) % 2, class_names=train.class_names)
    assert (clf(g.sample(cond, seed=0).images) == cond.labels).mean() >= 0.75


def test_pggan_conditioning_reaches_generator_and_critic():
    """Wiring only (training PG-GAN to class fidelity takes minutes): the class changes the image for a
    fixed z; the projection critic's value depends on the class; the auxiliary critic gives class logits
    and its losses are logged."""
    g = PGGAN(preset="smoke", steps=2, progress=False)
    g.fit(toy(), seed=0)
    cond0 = Conditions(n=3, labels=np.zeros(3, np.int64), class_names=("a", "b"))
    cond1 = Conditions(n=3, labels=np.ones(3, np.int64), class_names=("a", "b"))
    assert not np.allclose(g.sample(cond0, seed=0).images, g.sample(cond1, seed=0).images)
    x = torch.randn(4, 1, 40, 40)
    zeros, ones = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    assert not torch.allclose(g.nets["D"](x, zeros, 3, 1.0)[0], g.nets["D"](x, ones, 3, 1.0)[0])  # projection
    ac = PGGAN(preset="smoke", steps=2, critic="auxiliary", progress=False)
    ac.fit(toy(), seed=0)
    score, logits = ac.nets["D"](x, None, 3, 1.0)
    assert score.shape == (4,) and logits.shape == (4, 2)
    assert {"ac_real", "ac_fake"} <= set(ac.losses[-1])


def test_survey_threshold_on_samples_of_a_thresholded_training_set():
    """``zero_below="auto"`` means SURVEY_THRESHOLD only when most training pixels are exactly 0; a level
    zeroes the sampled pixels below it and leaves the rest as drawn."""
    from radiobench.postprocess import SURVEY_THRESHOLD

    noisy = toy(size=20)
    thresholded = RadioImages(images=np.where(noisy.images < 0.05, 0, noisy.images), survey=noisy.survey,
                              labels=noisy.labels, class_names=noisy.class_names)
    for data, level in ((thresholded, SURVEY_THRESHOLD), (noisy, 0.0)):
        g = DCGAN(preset="smoke", steps=2, zero_below="auto", progress=False)
        g.fit(data, seed=0)
        assert g.zero_level() == level
    cond = Conditions(n=8, labels=np.arange(8) % 2, class_names=("a", "b"))
    raw = DCGAN(preset="smoke", steps=2, progress=False)
    raw.fit(thresholded, seed=0)
    y = raw.sample(cond, seed=0).images  # an untrained generator: pixels around 0.5
    cut = DCGAN(preset="smoke", steps=2, zero_below=0.5, progress=False)
    cut.fit(thresholded, seed=0)
    x = cut.sample(cond, seed=0).images
    assert np.any((y > 0) & (y < 0.5)) and not np.any((x > 0) & (x < 0.5))
    np.testing.assert_array_equal(x, np.where(y < 0.5, 0, y))


def test_peak_normalisation_of_samples_follows_the_training_images():
    """``peak_normalise="auto"`` divides each drawn image by its peak only when every training image peaks at
    1 (as the built-in surveys' cutouts do); True divides regardless, an empty image stays empty."""
    from radiobench.postprocess import peak_normalised

    data = toy(size=20)
    scaled_images = data.images / data.images.max(axis=(1, 2, 3), keepdims=True)
    scaled_images[0] = 0  # an empty cutout (FIRST's train split has two) does not count
    peaked = RadioImages(images=scaled_images, survey=data.survey, labels=data.labels, class_names=data.class_names)
    cond = Conditions(n=8, labels=np.arange(8) % 2, class_names=("a", "b"))
    for train, expected in ((peaked, True), (data, False)):
        g = DCGAN(preset="smoke", steps=2, peak_normalise="auto", progress=False)
        g.fit(train, seed=0)
        assert g.peak_normalised() is expected
    raw = DCGAN(preset="smoke", steps=2, progress=False)  # smoke: samples as drawn
    raw.fit(peaked, seed=0)
    y = raw.sample(cond, seed=0).images
    scaled = DCGAN(preset="smoke", steps=2, peak_normalise=True, zero_below=0.3, progress=False)
    scaled.fit(peaked, seed=0)
    x = scaled.sample(cond, seed=0).images
    assert y.max() < 1 and np.all(x.max(axis=(1, 2, 3)) == 1)
    cut = np.where(y < 0.3, 0, y)  # the survey threshold first, then x / max(x)
    np.testing.assert_allclose(x, cut / cut.max(axis=(1, 2, 3), keepdims=True), rtol=1e-6)
    # checkpoints from before the option recorded no peak: the survey's units tell
    units = {"units": "scaled [0, 1] (per-image peak normalised, thresholded at 3 sigma)"}
    assert peak_normalised("auto", {"survey": units}) and not peak_normalised("auto", {"survey": {"units": "Jy"}})
    with pytest.raises(InputError, match="peak_normalise"):
        peak_normalised("yes", {})


def test_configure_sampling_changes_a_fitted_gan_without_refitting():
    g = DCGAN("smoke", device="cpu", progress=False)
    g.fit(toy(size=20), seed=0)
    before = g.sample(Conditions(n=4, labels=np.array([0, 1, 0, 1])), seed=1).images
    g.configure_sampling(zero_below=0.5)
    after = g.sample(Conditions(n=4, labels=np.array([0, 1, 0, 1])), seed=1).images
    assert (before > 0).any() and (before < 0.5).any()  # the threshold has pixels to act on
    assert np.array_equal(after, np.where(before < 0.5, 0, before))
    with pytest.raises(InputError, match="not sampling options"):
        g.configure_sampling(lr=1.0)
    with pytest.raises(InputError, match="zero_below"):
        g.configure_sampling(zero_below=2.0)
