"""The ranking protocol (issue 18): generated sets of N images in the reference's class proportions, FID/KID
against the training split, the paired gap interval, and the leaderboard showing and guarding the protocol."""
import dataclasses
import json

import numpy as np
import pytest
import torch
from test_runner import Counting, registered, runner_plugins

from radiobench import Metric, MetricContext, MetricResult, RadioImages, SurveyInfo, get_preset
from radiobench.conditioning import match_conditions
from radiobench.evaluators.frechet import fid_from_features, kid_from_features, paired_gap
from radiobench.interfaces import default_cache_dir
from radiobench.options import AGAINST, Options
from radiobench.registry import registry
from radiobench.runner import RunConfig, build_metrics, evaluate_row, run

torch.set_num_threads(1)


# -- the paired gap ------------------------------------------------------------------------------
def gaussian(n: int, shift: float, seed: int, d: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).normal(shift, 1.0, (n, d))


@pytest.mark.parametrize("statistic", ["fid", "kid"])
def test_the_gap_between_identical_sets_is_zero_and_tight(statistic):
    real, a = gaussian(120, 0.0, 0), gaussian(120, 0.3, 1)
    iv = paired_gap(real, a, a.copy(), 50, np.random.default_rng(0), statistic=statistic)
    assert iv.value == 0 and iv.low == 0 and iv.high == 0 and np.all(iv.draws == 0)


@pytest.mark.parametrize("statistic, full", [("fid", fid_from_features), ("kid", kid_from_features)])
def test_the_gap_between_real_images_and_noise_excludes_zero(statistic, full):
    real, a = gaussian(150, 0.0, 0), gaussian(150, 0.0, 1)  # a: more real images
    noise = np.random.default_rng(2).uniform(-3, 3, (150, 6))
    iv = paired_gap(real, a, noise, 100, np.random.default_rng(0), statistic=statistic)
    assert iv.value == pytest.approx(full(real, a) - full(real, noise), rel=1e-6, abs=1e-9)
    assert iv.low <= iv.value <= iv.high < 0  # a is closer to the real images, at 95%


def test_the_gap_interval_is_the_measured_spread_of_the_gap():
    """Against fresh draws of all three sets: the interval's half-width is about the 95% spread of the gap, and
    narrower than the unpaired intervals combined (the real set's error is shared by both distances)."""
    n = 200
    gaps = [fid_from_features(gaussian(n, 0, s), gaussian(n, 0.15, s + 1000))
            - fid_from_features(gaussian(n, 0, s), gaussian(n, 0.3, s + 2000)) for s in range(150)]
    lo, hi = np.quantile(gaps, [0.025, 0.975])
    measured = (hi - lo) / 2
    real, a, b = gaussian(n, 0, 5000), gaussian(n, 0.15, 6000), gaussian(n, 0.3, 7000)
    iv = paired_gap(real, a, b, 200, np.random.default_rng(1))
    half = (iv.high - iv.low) / 2
    assert 0.6 * measured < half < 1.6 * measured
    from radiobench.evaluators.frechet import fid_bootstrap

    ia, ib = (fid_bootstrap(real, x, 200, np.random.default_rng(2)) for x in (a, b))
    assert half < np.hypot(ia.high - ia.low, ib.high - ib.low) / 2


def test_ranking_power_uses_the_public_gap():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import ranking_power
    finally:
        sys.path.pop(0)
    assert ranking_power.paired_gap is paired_gap


# -- N generated images in the reference's class proportions ------------------------------------------
def labelled(counts: list[int], h: int = 4) -> RadioImages:
    labels = np.repeat(np.arange(len(counts)), counts)[np.random.default_rng(0).permutation(sum(counts))]
    masks = (np.arange(len(labels))[:, None, None, None] % 2 * np.ones((1, 1, h, h))).astype(np.uint8)
    return RadioImages(np.zeros((len(labels), 1, h, h), np.float32), SurveyInfo("t"), labels,
                       tuple("abc"[: len(counts)]), masks=masks)


@pytest.mark.parametrize("n", [50, 40, 13, 7])
def test_n_conditions_keep_the_reference_class_proportions(n):
    reference = labelled([7, 2, 11])
    cond = match_conditions(reference, reference, frozenset({"class", "mask"}), np.random.default_rng(0), n=n)
    assert cond.n == n and len(cond.labels) == n and len(cond.masks) == n
    counts = np.bincount(cond.labels, minlength=3)
    assert np.all(np.abs(counts - n * np.array([7, 2, 11]) / 20) < 1)
    if n % 20 == 0:  # whole repeats: every reference condition n / 20 times
        assert np.array_equal(counts, np.array([7, 2, 11]) * n // 20)
    for label, mask in zip(cond.labels, cond.masks):  # masks travel with their labels
        assert any(np.array_equal(mask, reference.masks[i]) for i in np.flatnonzero(reference.labels == label))


def test_the_default_size_draws_what_it_drew_before():
    reference = labelled([7, 2, 11])
    a = match_conditions(reference, reference, frozenset({"class", "mask"}), np.random.default_rng(3))
    b = match_conditions(reference, reference, frozenset({"class", "mask"}), np.random.default_rng(3), n=20)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.labels, reference.labels)
    assert np.array_equal(a.masks, b.masks)


class SetSizes(Metric):
    """Test metric recording which sets it was given."""

    name = "set_sizes"
    description = "test metric: the sizes of the sets it scores"
    OPTIONS = Options(against=AGAINST)

    def compute(self, real, generated, context):
        return MetricResult(self.name, float(len(generated)), 0.0, 0.0, "lower", len(real), len(generated),
                            details={"real_is_train": real is context.train,
                                     "class_counts": generated.class_counts()})


@pytest.fixture
def plugins():
    with runner_plugins(), registered(("metrics", SetSizes)):
        yield


def result(row_dir, metric="set_sizes"):
    return json.loads((row_dir / "metrics" / f"{metric}.json").read_text())


def test_a_run_draws_n_generated_images_and_redraws_for_another_n(plugins, tmp_path):
    cfg = RunConfig(generators=["counting"], dataset="blobs", out=tmp_path, metrics=["set_sizes"], progress=False,
                    n_generated=50)
    run(cfg)
    row = tmp_path / "counting" / "seed-0"
    samples = RadioImages.load(row / "samples.npz")
    assert len(samples) == 50 and samples.class_counts() == {"narrow": 25, "wide": 25}  # blobs test: 10 + 10
    assert json.loads((row / "samples.json").read_text())["n"] == 50
    rec = result(row)
    assert rec["result"]["n_generated"] == 50 and rec["provenance"]["n_generated"] == 50
    assert "counting/seed-0:samples" in run(cfg).reused
    summary = run(dataclasses.replace(cfg, n_generated=None))  # the default: the reference split's size again
    assert "counting/seed-0:samples" in summary.done and "counting/seed-0:set_sizes" in summary.done
    assert len(RadioImages.load(row / "samples.npz")) == 20 and Counting.fits == 1


def test_against_train_scores_against_the_training_split(plugins, tmp_path):
    cfg = RunConfig(generators=["counting"], dataset="blobs", out=tmp_path, metrics=["set_sizes"], progress=False,
                    n_generated=40, metric_options={"set_sizes": {"against": "train"}})
    run(cfg)
    ref, gen = result(tmp_path / "reference" / "seed-0"), result(tmp_path / "counting" / "seed-0")
    # the real row: its set (blobs: 20 validation images, drawn with the test split's class counts) and the 20
    # test images, against the 60 training images
    assert (ref["result"]["n_real"], ref["result"]["n_generated"]) == (60, 40)
    assert ref["result"]["details"] == {"real_is_train": True, "class_counts": {"narrow": 20, "wide": 20}}
    assert (gen["result"]["n_real"], gen["result"]["n_generated"]) == (60, 40)
    assert gen["result"]["details"]["real_is_train"] and gen["options"] == {"against": "train"}
    run(dataclasses.replace(cfg, metric_options={}))  # against the reference split: re-evaluated
    ref, gen = result(tmp_path / "reference" / "seed-0"), result(tmp_path / "counting" / "seed-0")
    assert (ref["result"]["n_real"], ref["result"]["n_generated"]) == (20, 20)
    assert (gen["result"]["n_real"], gen["result"]["n_generated"]) == (20, 40)
    assert not gen["result"]["details"]["real_is_train"] and gen["options"] == {"against": "reference"}


@pytest.fixture(scope="module")
def synth():
    """The synthetic dataset and context of test_learned_metrics.py (one BYOL encoder per test session)."""
    from radiobench_plugins.datasets.synthetic import SyntheticDataset

    ds = SyntheticDataset(resolution=32, n_train=256, n_valid=8, n_test=96)
    smoke = dataclasses.replace(get_preset("smoke"), n_bootstrap=20)
    train, test = ds.load("train"), ds.load("test")
    return train, test, MetricContext("synthetic", "synthetic-smoke-test", train, smoke, cache_dir=default_cache_dir())


def test_fid_of_training_images_is_zero_against_train_only(synth, tmp_path):
    """A generated set made of the training images: FID 0 against the training split, clearly not against the
    (disjoint) test split, through the public evaluate_row the runner and `evaluate` use."""
    train, test, ctx = synth
    inputs = {"samples_sha256": "x"}
    scores = {}
    for against in ("train", "reference"):
        metrics = build_metrics(["fid_byol", "kid_byol"], {m: {"against": against, "n_bootstrap": 7}
                                                           for m in ("fid_byol", "kid_byol")}, "smoke")
        summary = evaluate_row(tmp_path / against, train, test, metrics, ctx, inputs=inputs, supports=frozenset())
        assert sorted(summary.done) == [f"{tmp_path / against}:{m}" for m in ("fid_byol", "kid_byol")]
        scores[against] = {m: result(tmp_path / against, m) for m in ("fid_byol", "kid_byol")}
    fid_train, fid_test = (scores[a]["fid_byol"]["result"] for a in ("train", "reference"))
    assert abs(fid_train["value"]) < 1e-6 * max(1.0, fid_test["value"]) and fid_test["value"] > 1e-3
    assert fid_train["n_real"] == 256 and fid_test["n_real"] == 96 and fid_test["n_generated"] == 256
    assert fid_train["details"]["n_bootstrap"] == 7
    assert scores["train"]["kid_byol"]["result"]["value"] < scores["reference"]["kid_byol"]["result"]["value"]
    assert scores["train"]["fid_byol"]["options"] == {"n": None, "n_bootstrap": 7, "against": "train",
                                                      "evaluator_seed": 0}
    again = evaluate_row(tmp_path / "train", train, test, build_metrics(
        ["fid_byol"], {"fid_byol": {"against": "train", "n_bootstrap": 7}}, "smoke"), ctx, inputs=inputs)
    assert again.reused == [f"{tmp_path / 'train'}:fid_byol"]


def test_registered_fid_declares_the_protocol_options():
    assert {"against", "evaluator_seed", "n", "n_bootstrap"} <= set(registry.metric("fid_byol").OPTIONS)
    assert {"against", "evaluator_seed", "n", "n_bootstrap"} <= set(registry.metric("kid_byol").OPTIONS)


# -- the leaderboard shows and guards a column's protocol --------------------------------------------------
def test_the_leaderboard_shows_a_non_default_protocol_and_refuses_mixed_ones(plugins, tmp_path):
    from radiobench import InputError
    from radiobench.leaderboard import collect, render

    protocol = RunConfig(generators=["counting"], dataset="blobs", out=tmp_path / "protocol", metrics=["set_sizes"],
                         progress=False, n_generated=40, metric_options={"set_sizes": {"against": "train"}})
    run(protocol)
    md = render(collect([tmp_path / "protocol"]), "md")
    assert "| set_sizes ↓ (vs train, N_gen = 40) |" in md and "vs train: scored against the training split" in md
    assert "set\\_sizes $\\downarrow$ (vs train, N\\_gen = 40)" in render(collect([tmp_path / "protocol"]), "tex")
    csv = render(collect([tmp_path / "protocol"]), "csv").splitlines()
    assert csv[0].endswith(",protocol") and all(line.endswith("vs train; N_gen = 40") for line in csv[1:])
    default = dataclasses.replace(protocol, out=tmp_path / "default", n_generated=None, metric_options={})
    run(default)
    md = render(collect([tmp_path / "default"]), "md")
    assert "| set_sizes ↓ |" in md and "vs train" not in md and "protocol" not in render(
        collect([tmp_path / "default"]), "csv")
    with pytest.raises(InputError, match="set_sizes: cells of one column were computed under different"):
        collect([tmp_path / "protocol", tmp_path / "default"])
    run(dataclasses.replace(default, out=tmp_path / "n", n_generated=40))  # the same options, another N_gen
    with pytest.raises(InputError, match="N_gen = 40: counting"):
        collect([tmp_path / "default", tmp_path / "n"])
