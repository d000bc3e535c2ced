import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.stats as ss

from radiobench.stats import (
    ClusterDistance,
    MeanError,
    bootstrap_ci,
    ks_statistic,
    seed_interval,
    wasserstein1,
    welch_p,
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_w1_and_ks_equal_scipy(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=257)
    b = rng.gamma(2.0, size=133)
    assert wasserstein1(a, b) == pytest.approx(ss.wasserstein_distance(a, b), rel=1e-12)
    assert ks_statistic(a, b) == pytest.approx(ss.ks_2samp(a, b).statistic, rel=1e-12)
    # with ties (discrete values, as FIRST's 8-bit pixels)
    a, b = rng.integers(0, 5, 300) / 4, rng.integers(0, 6, 200) / 5
    assert wasserstein1(a, b) == pytest.approx(ss.wasserstein_distance(a, b), rel=1e-12)
    assert ks_statistic(a, b) == pytest.approx(ss.ks_2samp(a, b).statistic, rel=1e-12)


def test_cluster_distance_point_estimate_is_exact_and_ci_covers_spread():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(150, 1)), rng.normal(0.5, 1, size=(120, 1))
    res = ClusterDistance(a, b).compute(300, rng)
    assert res["w1"].value == pytest.approx(ss.wasserstein_distance(a.ravel(), b.ravel()))
    assert res["ks"].value == pytest.approx(ss.ks_2samp(a.ravel(), b.ravel()).statistic)
    assert res["w1"].low < res["w1"].value < res["w1"].high


def test_quantised_grid_changes_w1_by_at_most_half_a_quantum():
    rng = np.random.default_rng(4)
    a, b = rng.random((50, 64)), rng.random((40, 64)) ** 2
    q = 2.0**-12
    exact = wasserstein1(a, b)
    assert abs(ClusterDistance(a, b, q).compute(0, rng)["w1"].value - exact) <= q / 2 + 1e-12


def test_identical_sets_give_zero():
    x = np.random.default_rng(5).random((30, 100))
    res = ClusterDistance(x, x.copy()).compute(50, np.random.default_rng(0))
    assert res["w1"].value == 0 and res["ks"].value == 0


def test_distances_grow_monotonically_with_blur(first_dir):
    from radiobench_plugins.datasets.first import FirstDataset

    test = FirstDataset(resolution=40, data_dir=first_dir).load("test").images[:, 0]
    rng = np.random.default_rng(0)
    previous = {"pixel": 0.0, "mean": 0.0, "std": 0.0}
    for sigma in (0.5, 1.0, 2.0, 4.0):
        blurred = ndi.gaussian_filter(test, sigma=(0, sigma, sigma))
        blurred /= blurred.reshape(len(blurred), -1).max(1)[:, None, None]  # re-normalise to peak 1, as the data
        values = {
            "pixel": (test.reshape(len(test), -1), blurred.reshape(len(test), -1)),
            "mean": (test.mean((1, 2))[:, None], blurred.mean((1, 2))[:, None]),
            "std": (test.std((1, 2))[:, None], blurred.std((1, 2))[:, None]),
        }
        for q, (a, b) in values.items():
            d = ClusterDistance(a, b, 2.0**-12 if q == "pixel" else None).compute(0, rng)["w1"].value
            assert d > previous[q], (q, sigma, d, previous[q])
            previous[q] = d


def test_bootstrap_ci_and_seed_interval():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=200), rng.normal(1.0, size=200)
    lo, hi, draws = bootstrap_ci(lambda i, j: b[j].mean() - a[i].mean(), 200, 200, 400, rng)
    assert lo < 1.0 < hi and len(draws) == 400
    m, lo, hi = seed_interval([1.0, 2.0, 3.0])
    assert m == 2.0 and lo == pytest.approx(2 - ss.t.ppf(0.975, 2) * 1 / np.sqrt(3))
    assert np.isnan(seed_interval([1.0])[1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_welch_p_over_seeds_equals_scipy(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, 3), rng.normal(1, 3, 5)
    assert welch_p(MeanError.of(a), MeanError.of(b)) == pytest.approx(
        ss.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-10)


def test_welch_p_with_a_single_seed_reads_its_interval_as_a_normal_error():
    z = ss.norm.ppf(0.975)
    one, other = MeanError.of([3.0], 1.0, 5.0), MeanError.of([6.0], 4.0, 10.0)
    assert (one.mean, one.var, one.df) == (3.0, pytest.approx((2 / z) ** 2), np.inf)
    # two single seeds: a z-test on the difference
    assert welch_p(one, other) == pytest.approx(2 * ss.norm.sf(3 / np.hypot(2 / z, 3 / z)), rel=1e-10)
    # seeds against one seed: as Welch's test against a sample so large that its df is infinite
    seeds = np.array([5.0, 7.5, 9.0])
    n = 1e12
    expected = ss.ttest_ind_from_stats(seeds.mean(), seeds.std(ddof=1), 3, 3.0, 2 / z * np.sqrt(n), n,
                                       equal_var=False).pvalue
    assert welch_p(MeanError.of(seeds), one) == pytest.approx(expected, rel=1e-6)


def test_welch_p_of_identical_far_apart_and_unknown_rows():
    a = MeanError.of([1.0, 2.0, 3.0])
    assert welch_p(a, a) == 1.0 and welch_p(MeanError.of([2.0], 1.0, 3.0), MeanError.of([2.0], 1.0, 3.0)) == 1.0
    assert welch_p(a, MeanError.of([101.0, 102.0, 103.0])) < 1e-5
    assert welch_p(MeanError.of([0.0], -0.1, 0.1), MeanError.of([50.0], 49.9, 50.1)) < 1e-100
    zero = MeanError.of([1.0, 1.0, 1.0])  # no spread on either side: equal or not, with certainty
    assert welch_p(zero, zero) == 1.0 and welch_p(zero, MeanError.of([2.0, 2.0])) == 0.0
    assert welch_p(zero, MeanError.of([2.0, 3.0])) == pytest.approx(
        ss.ttest_ind_from_stats(1.0, 0.0, 3, 2.5, np.sqrt(0.5), 2, equal_var=False).pvalue)
    assert np.isnan(welch_p(a, MeanError.of([2.0])))  # one seed without an interval: nothing to test
    assert np.isnan(welch_p(a, MeanError.of([2.0, np.nan])))
