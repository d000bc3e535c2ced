"""Data-augmentation utility at smoke size: it trains, adding copies of the training set changes nothing
systematic, adding images with shuffled labels or masks hurts (a known behaviour of label noise), and it is
opt-in."""
import numpy as np
import pytest

from radiobench import MetricContext
from radiobench.presets import get_preset
from radiobench.registry import registry


@pytest.fixture(scope="module")
def sets():
    ds = registry.dataset("synthetic")(n_train=200, n_valid=8, n_test=100)
    train, test = ds.load("train"), ds.load("test")
    ctx = MetricContext(dataset="synthetic", dataset_fingerprint="t", train=train, preset=get_preset("smoke"))
    return train, test, ctx


def test_copies_change_nothing_and_shuffled_labels_hurt(sets):
    train, test, ctx = sets
    metric = registry.metric("augmentation_gain")()
    copies = train.subset(np.random.default_rng(1).permutation(len(train)))
    same = metric.compute(test, copies, ctx)
    assert same.ci_low <= 0 <= same.ci_high and abs(same.value) <= 0.1, same
    assert same.details["real_only"] > 0.5  # a classifier that learned something: the test can fail
    assert same.details["n_train_generated"] == len(train)
    shuffled = train.subset(np.arange(len(train)))
    shuffled.labels = np.random.default_rng(0).permutation(train.labels)
    worse = metric.compute(test, shuffled, ctx)
    assert worse.ci_high < 0 and worse.value < same.value - 0.1, worse
    assert worse.details["real_only"] == same.details["real_only"]  # one cached baseline


def test_segmenter_gain_copies_change_little_and_shuffled_masks_hurt(sets):
    """augmentation_gain_iou (paper 001 Sect. 5.2): the U-Net trained on real + generated (image, mask) pairs."""
    train, test, ctx = sets
    metric = registry.metric("augmentation_gain_iou")()
    same = metric.compute(test, train.subset(np.random.default_rng(1).permutation(len(train))), ctx)
    assert abs(same.value) < 0.02 and same.details["real_only"] > 0.6, same
    shuffled = train.subset(np.arange(len(train)))
    shuffled.masks = shuffled.masks[np.random.default_rng(0).permutation(len(train))]  # masks of other images
    worse = metric.compute(test, shuffled, ctx)
    assert worse.ci_high < 0 and worse.value < same.value - 0.015, worse
    assert "mask" in metric.applicable(test, frozenset({"class"}))


def test_opt_in_and_needs_class_conditioning(sets, tmp_path):
    _, test, _ = sets
    cls = registry.metric("augmentation_gain")
    assert cls.default_presets == registry.metric("augmentation_gain_iou").default_presets == frozenset()
    assert "class" in cls().applicable(test, frozenset())
    from radiobench.external import default_metrics

    assert "augmentation_gain" not in default_metrics() and "fid_byol" in default_metrics()
    from radiobench.presets import get_preset as preset
    from radiobench.runner import RunConfig, check_config

    config = RunConfig(generators=[], dataset="synthetic", out=tmp_path / "o")
    _, metrics, _ = check_config(config, preset("smoke"), "cpu")
    opt_in = {"augmentation_gain", "augmentation_gain_iou"}
    assert not opt_in & set(metrics) and "precision_byol" in metrics  # `radiobench run` honours it too
    _, metrics, _ = check_config(RunConfig(generators=[], dataset="synthetic", out=tmp_path / "o",
                                       metrics=["augmentation_gain"]), preset("smoke"), "cpu")
    assert list(metrics) == ["augmentation_gain"]
