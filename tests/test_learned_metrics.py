"""Learned metrics on the synthetic dataset at the smoke preset: fid_byol, kid_byol, ramis,
classifier_accuracy, segmentation_iou. Evaluators train once per session (shared on-disk cache)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from radiobench import MetricContext, MetricResult, RadioImages, get_preset
from radiobench.evaluators import embed, get_evaluator
from radiobench.evaluators.augment import blank_edges, degrade_blur, degrade_noise
from radiobench.evaluators.frechet import fid_from_features
from radiobench.interfaces import default_cache_dir
from radiobench.store import sha256_file
from radiobench.types import InputError
from radiobench_plugins.metrics.classifier_accuracy import ClassifierAccuracy
from radiobench_plugins.metrics.fid_byol import FidByol, KidByol
from radiobench_plugins.metrics.ramis import RAMIS, ramis_score
from radiobench_plugins.metrics.segmentation_iou import SegmentationIoU, per_image_iou

torch.set_num_threads(1)
SMOKE = dataclasses.replace(get_preset("smoke"), n_bootstrap=20)  # fewer resamples: tests stay fast
RES = 32


@pytest.fixture(scope="session")
def synth():
    """(train, test, context) on the synthetic dataset. The evaluator cache is RADIOBENCH_CACHE (conftest: one
    tmp dir per session), shared with test_evaluators.py, so each evaluator trains once per session."""
    from radiobench_plugins.datasets.synthetic import SyntheticDataset

    ds = SyntheticDataset(resolution=RES, n_train=256, n_valid=8, n_test=96)
    train, test = ds.load("train"), ds.load("test")
    return train, test, MetricContext("synthetic", "synthetic-smoke-test", train, SMOKE, cache_dir=default_cache_dir())


def with_images(base: RadioImages, images: np.ndarray) -> RadioImages:
    return RadioImages(images=images, survey=base.survey, labels=base.labels, class_names=base.class_names,
                       masks=base.masks)


def pixel_floor(train: RadioImages, n: int, seed: int = 0) -> RadioImages:
    """Independent per-pixel draws from the training marginals (every pixel from a random training image)."""
    rng = np.random.default_rng(seed)
    h, w = train.resolution
    idx = rng.integers(0, len(train), (n, 1, h, w))
    return RadioImages(images=train.images[idx, 0, np.arange(h)[:, None], np.arange(w)[None, :]], survey=train.survey)


def check_result(r: MetricResult, name: str, n: int, fingerprint_key: str, ctx: MetricContext) -> None:
    assert r.metric == name and r.n_real == n and r.n_generated == n
    assert r.ci_low <= r.value + 1e-9 and r.value <= r.ci_high + 1e-9 or name in ("fid_byol", "kid_byol")
    assert fingerprint_key in r.fingerprints and len(r.fingerprints[fingerprint_key]) == 16
    ev = get_evaluator(fingerprint_key, ctx)  # identity = training fingerprint + weights sha256
    assert r.fingerprints == {**ev.identity, "dataset": r.fingerprints["dataset"]}
    assert r.fingerprints[f"{fingerprint_key}_weights"] == sha256_file(ev.path / "weights.safetensors")
    assert r.fingerprints["dataset"] == "synthetic-smoke-test"


def test_every_learned_metric_runs(synth):
    train, test, ctx = synth
    gen = train.subset(range(len(test)))
    for metric, key in ((FidByol(), "byol"), (KidByol(), "byol"), (RAMIS(), "radio_cnn"),
                        (ClassifierAccuracy(), "classifier"), (SegmentationIoU(), "segmenter")):
        r = metric.compute(test, gen, ctx)
        check_result(r, metric.name, len(test), key, ctx)
        assert np.isfinite(r.value) and np.isfinite(r.ci_low) and np.isfinite(r.ci_high)
        r2 = MetricResult.from_dict(r.to_dict())  # JSON round trip of details
        assert r2.value == r.value


def test_fid_identical_sets_and_fixed_n(synth):
    train, test, ctx = synth
    r = FidByol().compute(test, test, ctx)
    assert abs(r.value) < 1e-6 and r.ci_low >= 0
    # unbiased KID of a set with itself is -O(1/N) (its cross term keeps the diagonal), not exactly 0
    k = KidByol().compute(test, test, ctx)
    assert k.value <= 0 < KidByol().compute(test, pixel_floor(train, len(test)), ctx).value
    r = FidByol(n=64).compute(test, train, ctx)  # fixed N below both set sizes
    assert r.n_real == r.n_generated == 64 and r.details["n"] == 64
    with pytest.raises(InputError):
        FidByol(n=10_000).compute(test, train, ctx)


def test_fid_real_vs_real_small_beside_pixel_floor(synth):
    train, test, ctx = synth
    rr = FidByol().compute(test, train.subset(range(len(test))), ctx)
    floor = FidByol().compute(test, pixel_floor(train, len(test)), ctx)
    # the tiny smoke BYOL (30 steps) separates them only modestly (about 1.3x here); the cpu-preset numbers
    # on FIRST are in benchmarks/evaluator_sensitivity.py
    assert floor.value > rr.value > 0, (rr.value, floor.value)
    assert floor.ci_low > 0


def test_features_and_fid_do_not_depend_on_batch_size(synth):
    train, test, ctx = synth
    ev = get_evaluator("byol", ctx)
    a, b = embed(ev.module, test.images, batch_size=7), embed(ev.module, test.images, batch_size=128)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    ref = embed(ev.module, train.images[:128], batch_size=128)
    assert abs(fid_from_features(ref, a) - fid_from_features(ref, b)) < 1e-4 * max(1.0, fid_from_features(ref, b))


# strongly separated degradation levels, so that monotonicity at smoke strength is not luck
DEGRADATIONS = {
    "blur": (lambda x, s: degrade_blur(x, s), [0.0, 1.5, 3.0]),
    "noise": (lambda x, s: degrade_noise(x, s, np.random.default_rng(1)), [0.0, 0.1, 0.3]),
    "edge": (lambda x, s: blank_edges(x, int(s)), [0, 13, 15]),
}


@pytest.mark.parametrize("kind", sorted(DEGRADATIONS))
def test_ramis_falls_and_fid_rises_with_degradation(synth, kind):
    """Paper 003 Fig. 1: RAMIS falls as images are blurred, noised, edge-blanked; FID-BYOL rises."""
    train, test, ctx = synth
    fn, levels = DEGRADATIONS[kind]
    ramis, fid = [], []
    for s in levels:
        g = with_images(test, fn(test.images, s))
        ramis.append(RAMIS().compute(test, g, ctx).value)
        fid.append(FidByol().compute(test, g, ctx).value)
    assert all(a > b for a, b in zip(ramis, ramis[1:])), (kind, ramis)
    assert all(a < b for a, b in zip(fid, fid[1:])), (kind, fid)


def test_ramis_bounds():
    k = 4
    assert ramis_score(np.eye(k)[np.arange(40) % k]) == pytest.approx(k)  # confident and balanced: maximum
    assert ramis_score(np.full((40, k), 1 / k)) == pytest.approx(1.0)  # uninformative: minimum
    assert ramis_score(np.eye(k)[np.zeros(40, int)]) == pytest.approx(1.0)  # one class only: minimum
    w = np.bincount([0, 0, 1, 2], minlength=4)
    p = np.random.default_rng(0).dirichlet(np.ones(k), 4)
    assert ramis_score(p, w) == pytest.approx(ramis_score(p[[0, 0, 1, 2]]))


def test_classifier_accuracy(synth):
    train, test, ctx = synth
    r = ClassifierAccuracy().compute(test, test, ctx)
    ref = r.details["real_reference"]
    assert r.value == pytest.approx(ref["accuracy"])  # the real set as "generated": value = reference
    cm = np.array(r.details["generated"]["confusion"])
    assert cm.shape == (4, 4) and cm.sum() == len(test)
    assert r.value == pytest.approx(np.trace(cm) / cm.sum())
    assert r.details["class_names"] == list(test.class_names)
    wrong = with_images(test, test.images)
    wrong.labels = (test.labels + 1) % 4  # every image "conditioned" on a wrong class
    assert ClassifierAccuracy().compute(test, wrong, ctx).value < r.value
    with pytest.raises(InputError):
        ClassifierAccuracy().compute(test, RadioImages(images=test.images, survey=test.survey), ctx)
    assert ClassifierAccuracy().applicable(test, frozenset()) is not None  # generator without class conditioning


def test_segmentation_iou(synth):
    train, test, ctx = synth
    r = SegmentationIoU().compute(test, test, ctx)
    assert r.value == pytest.approx(r.details["real_ceiling"]["iou"])
    assert 0.5 < r.value <= 1
    shuffled = with_images(test, test.images)
    shuffled.masks = np.roll(test.masks, 1, axis=0)  # images that ignore their conditioning masks
    assert SegmentationIoU().compute(test, shuffled, ctx).value < r.value
    m = np.zeros((2, 1, 4, 4), bool)
    m[0, 0, :2, :2] = True
    p = m.copy()
    p[0, 0, 0, 0] = False
    iou, src = per_image_iou(p, m)  # image 0: source 3/4, background 12/13; image 1: background only
    assert iou[0] == pytest.approx((3 / 4 + 12 / 13) / 2) and src[0] == pytest.approx(3 / 4)
    assert iou[1] == 1.0 and np.isnan(src[1])


def test_metrics_are_registered():
    from radiobench.registry import registry

    for name, cls in (("fid_byol", FidByol), ("kid_byol", KidByol), ("ramis", RAMIS),
                      ("classifier_accuracy", ClassifierAccuracy), ("segmentation_iou", SegmentationIoU)):
        assert registry.metric(name) is cls
