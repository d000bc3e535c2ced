"""Precision/recall/density/coverage against a brute-force k-NN written here, and their known behaviours on
identical sets, training copies and disjoint sets; per-class FID on the same features."""
import math

import numpy as np
import pytest

from radiobench import MetricContext
from radiobench.presets import get_preset
from radiobench.registry import registry
from radiobench_plugins.metrics.prdc import STATISTICS, prdc, prdc_intervals


def brute_force(real, fake, k):
    """Naeem et al. 2020 Eqs. 1-2 and Kynkaanniemi et al. 2019, one point at a time with sorted Python lists."""
    def dist(a, b):
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))

    def radius(points, i):  # distance to the k-th nearest other point
        return sorted(dist(points[i], q) for j, q in enumerate(points) if j != i)[k - 1]

    rr = [radius(real, i) for i in range(len(real))]
    rf = [radius(fake, j) for j in range(len(fake))]
    prec = sum(any(dist(y, x) < rr[i] for i, x in enumerate(real)) for y in fake) / len(fake)
    rec = sum(any(dist(x, y) < rf[j] for j, y in enumerate(fake)) for x in real) / len(real)
    dens = sum(sum(dist(y, x) < rr[i] for i, x in enumerate(real)) for y in fake) / (k * len(fake))
    cov = sum(min(dist(x, y) for y in fake) < rr[i] for i, x in enumerate(real)) / len(real)
    return {"precision": prec, "recall": rec, "density": dens, "coverage": cov}


@pytest.mark.parametrize("k", [1, 3, 5])
def test_matches_brute_force_knn(k):
    rng = np.random.default_rng(k)
    real = rng.normal(size=(40, 6))
    fake = rng.normal(0.4, 1.3, size=(33, 6))
    ours = prdc(real, fake, k)
    ref = brute_force(real.tolist(), fake.tolist(), k)
    for s in STATISTICS:
        assert ours[s] == pytest.approx(ref[s], abs=1e-12), s
    assert 0 < ours["precision"] < 1 and 0 < ours["coverage"] < 1  # a case that tests something


def test_identical_sets_and_disjoint_sets():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 8))
    same = prdc(x, x.copy(), 5)
    assert same == {"precision": 1.0, "recall": 1.0, "density": pytest.approx(1.0), "coverage": 1.0}
    far = prdc(x, x + 100.0, 5)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_training_copies_against_held_out():
    """Copies of training points scored against held-out points of the same distribution: every statistic
    near its matching-distribution value, like a second held-out draw; mode collapse drops recall/coverage."""
    rng = np.random.default_rng(1)
    test, train = rng.normal(size=(300, 4)), rng.normal(size=(300, 4))
    copies = train[rng.integers(0, 300, 300)]
    held = prdc(test, train, 5)
    rep = prdc(test, copies, 5)
    for s in STATISTICS:
        assert abs(rep[s] - held[s]) < 0.2, (s, rep, held)
    collapsed = prdc(test, np.repeat(train[:5], 60, axis=0) + rng.normal(0, 0.01, (300, 4)), 5)
    assert collapsed["coverage"] < 0.2 and collapsed["recall"] < 0.2


def test_intervals_match_the_sampling_spread():
    """The half-sample interval is about as wide as the spread of the statistic over fresh draws of both sets."""
    rng = np.random.default_rng(5)
    draws = np.array([[prdc(rng.normal(size=(240, 5)), rng.normal(0.3, 1, size=(240, 5)), 5)[s]
                       for s in STATISTICS] for _ in range(30)])
    res = prdc_intervals(rng.normal(size=(240, 5)), rng.normal(0.3, 1, size=(240, 5)), 5, 200,
                         np.random.default_rng(0))
    for s, spread in zip(STATISTICS, 2 * 1.96 * draws.std(0)):
        assert res[s]["low"] <= res[s]["value"] <= res[s]["high"], (s, res[s])
        assert 0.5 < (res[s]["high"] - res[s]["low"]) / spread < 2, (s, res[s], spread)


def _context(train):
    return MetricContext(dataset="synthetic", dataset_fingerprint="t", train=train, preset=get_preset("smoke"))


def test_metrics_on_byol_features_real_vs_itself_and_class_fid():
    ds = registry.dataset("synthetic")(n_train=120, n_valid=8, n_test=48)
    train, test = ds.load("train"), ds.load("test")
    ctx = _context(train)
    for name in ("precision_byol", "recall_byol", "density_byol", "coverage_byol"):
        res = registry.metric(name)().compute(test, test, ctx)
        assert res.value == pytest.approx(1.0) and res.ci_low <= res.value <= res.ci_high, name
        assert res.details["k"] == 5 and set(res.details["all"]) == set(STATISTICS)
    res = registry.metric("recall_byol")(k=2).compute(test, test, ctx)
    assert res.details["k"] == 2
    # per-class FID: zero for a set against itself, per class, with an interval per class
    cls = registry.metric("fid_byol_class")()
    same = cls.compute(test, test, ctx)
    assert same.value == pytest.approx(0.0, abs=1e-6)
    assert set(same.details["per_class"]) == set(test.class_names)
    # shuffled labels: every class compares mixtures with pure classes, so FID_c grows
    shuffled = test.subset(np.arange(len(test)))
    shuffled.labels = np.random.default_rng(0).permutation(test.labels)
    mixed = cls.compute(test, shuffled, ctx)
    fid_all = registry.metric("fid_byol")().compute(test, shuffled, ctx).value
    assert mixed.value > 0.1 and fid_all == pytest.approx(0.0, abs=1e-6)
    for v in mixed.details["per_class"].values():
        assert v["ci_low"] <= v["value"] <= v["ci_high"]
    # each class's value is the plain FID of that class's images, computed independently by fid_byol
    for c, name in enumerate(test.class_names):
        alone = registry.metric("fid_byol")().compute(test.subset(np.flatnonzero(test.labels == c)),
                                                     shuffled.subset(np.flatnonzero(shuffled.labels == c)), ctx)
        assert mixed.details["per_class"][name]["value"] == pytest.approx(alone.value, rel=1e-4, abs=1e-6)
    assert mixed.ci_low <= mixed.value <= mixed.ci_high
    # an unconditioned generator: skipped with a reason
    assert "class" in cls.applicable(test, frozenset())
