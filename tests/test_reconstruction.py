"""Reconstruction track (paper 002): simulator, photutils localisation, scores, Högbom CLEAN."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import SHARED_DATA
from scipy.signal import fftconvolve

from radiobench.deconvolution import hogbom
from radiobench.interferometry import SOURCE_DTYPE, ArrayLayout, Observation, gaussian_sky, simulate
from radiobench.localisation import FOUND_DTYPE, Finder, detect_aggregate, match, scores
from radiobench.types import InputError

NOISE = 50e-6  # Jy/beam, paper 002 Sect. 4.5
RADIUS = 5e-5 * 3600 / 0.2  # paper's 5e-5 deg in 0.2" pixels


@pytest.fixture(scope="module")
def obs():
    cfg = SHARED_DATA / "antenna-configs" / "alma.cycle5.3.cfg"
    if not cfg.exists():
        pytest.skip(f"antenna configuration not found at {cfg}")
    layout = ArrayLayout.from_cfg(cfg)
    return Observation(layout, dec_deg=2.2058, freqs_hz=(230e9,), duration_s=1200, integration_s=60, npix=64,
                       pixel_arcsec=0.2)


@pytest.fixture(scope="module")
def obs2(obs):
    return Observation(obs.layout, obs.dec_deg, obs.freqs_hz, obs.duration_s, obs.integration_s, 2 * obs.npix,
                       obs.pixel_arcsec)


def sources(*rows) -> np.ndarray:
    out = np.zeros(len(rows), SOURCE_DTYPE)
    for i, r in enumerate(rows):
        out[i] = tuple(r) + (0.0,) * (len(SOURCE_DTYPE.names) - len(r))
    return out


def test_point_source_gives_the_psf_at_its_place(obs, obs2):
    sky = np.zeros((64, 64))
    sky[20, 41] = 2e-3
    dirty = obs.observe(sky, 0.0, np.random.default_rng(0))
    assert np.unravel_index(np.argmax(dirty), dirty.shape) == (20, 41)
    assert dirty[20, 41] == pytest.approx(2e-3, rel=1e-5)
    shifted = 2e-3 * obs2.psf[64 - 20:128 - 20, 64 - 41:128 - 41]
    assert np.max(np.abs(dirty - shifted)) < 1e-5 * 2e-3


def test_dirty_image_is_sky_convolved_with_psf(obs, obs2):
    sky = gaussian_sky(sources((30, 22, 1e-3, 3, 2, 0.4), (12, 50, 4e-4, 5, 4, 1.0)), 64)
    dirty = obs.observe(sky, 0.0, np.random.default_rng(0))
    reference = fftconvolve(sky, obs2.psf, mode="full")[64:128, 64:128]  # independent: direct convolution
    assert np.max(np.abs(dirty - reference)) < 1e-5 * np.max(np.abs(dirty))


def test_noise_and_beam_match_what_is_stated(obs):
    noise = obs.observe(np.zeros((64, 64)), NOISE, np.random.default_rng(1))
    assert np.std(noise) == pytest.approx(NOISE, rel=0.1)
    b_maj, b_min, _ = obs.beam  # paper 002 Sect. 4.4: 0.89" x 0.82" for C43-3 at 230 GHz
    assert 0.8 < b_maj * 0.2 < 0.95 and 0.75 < b_min * 0.2 < 0.92
    assert b_min >= 3  # the cpu size keeps >= 3 pixels per beam


def test_simulation_is_deterministic_and_covers_empty_fields(obs):
    a, b = simulate(12, obs, NOISE, seed=3), simulate(12, obs, NOISE, seed=3)
    assert np.array_equal(a.dirty, b.dirty) and np.array_equal(a.sky, b.sky)
    assert not np.array_equal(a.dirty, simulate(12, obs, NOISE, seed=4).dirty)
    counts = [len(s) for s in simulate(60, obs, NOISE, seed=0).sources]
    assert 0 in counts and max(counts) >= 3
    for sky, table in zip(a.sky, a.sources):
        assert sky.sum() == pytest.approx(table["flux"].sum(), rel=1e-3, abs=1e-12)


def test_perfect_empty_and_shifted_predictions():
    true = [sources((10, 10, 1e-3), (40, 30, 2e-3)), sources((20, 50, 5e-4))]
    found = [t[["row", "col", "flux"]].astype(FOUND_DTYPE) for t in true]
    perfect = scores(true, found, RADIUS, NOISE)
    assert perfect["purity"] == perfect["completeness"] == perfect["f1"] == perfect["flux_fraction"] == 1
    empty = scores(true, [np.zeros(0, FOUND_DTYPE)] * 2, RADIUS, NOISE)
    assert empty["completeness"] == 0 and empty["f1"] == 0
    shifted = [f.copy() for f in found]
    for f in shifted:
        f["col"] += 1.5 * RADIUS
    far = scores(true, shifted, RADIUS, NOISE)
    assert far["tp"] == 0 and far["purity"] == 0 and far["n_found"] == 3
    near = [f.copy() for f in found]
    for f in near:
        f["col"] += 0.5 * RADIUS
    assert scores(true, near, RADIUS, NOISE)["f1"] == 1
    wrong_flux = [f.copy() for f in found]
    wrong_flux[0]["flux"] += 2 * NOISE
    assert scores(true, wrong_flux, RADIUS, NOISE)["flux_fraction"] == pytest.approx(1 / 3)


def test_matching_is_one_to_one():
    true = sources((10, 10, 1.0))
    found = np.array([(10.1, 10, 1.0), (9.9, 10, 1.0)], FOUND_DTYPE)
    m = match(true, found, RADIUS)
    assert m.tp == 1 and m.n_found == 2  # the second detection of one source is a false positive


def test_finder_on_true_sky_is_near_perfect(obs):
    """Paper 002 Table 2's last row: photutils on the sky models, F1 0.994."""
    sim = simulate(40, obs, NOISE, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = [Finder(npixels=3, floor=1e-7)(s) for s in sim.sky]
    result = scores(sim.sources, found, RADIUS, NOISE)
    assert result["f1"] > 0.95 and result["purity"] > 0.95


def test_finder_rejects_bad_images():
    with pytest.raises(InputError):
        Finder()(np.full((8, 8), np.nan))


def test_hogbom_recovers_point_sources(obs, obs2):
    sky = np.zeros((64, 64))
    sky[20, 41], sky[45, 12] = 2e-3, 1e-3
    dirty = obs.observe(sky, 0.0, np.random.default_rng(0))
    clean = hogbom(dirty, obs2.psf, gain=0.2, threshold=1e-6, niter=2000)
    assert clean.model[20, 41] == pytest.approx(2e-3, rel=0.02) and clean.model[45, 12] == pytest.approx(1e-3, rel=0.02)
    assert clean.model.sum() == pytest.approx(3e-3, rel=0.02)
    assert np.max(clean.residual) < 1e-6 + 1e-9
    with pytest.raises(InputError):
        hogbom(dirty, obs.psf)


def test_detect_aggregate_reliability():
    a = np.array([(10, 10, 1.0), (30, 30, 1.0)], FOUND_DTYPE)
    b = np.array([(10.2, 10, 3.0)], FOUND_DTYPE)
    tables = [a, b, b.copy(), np.zeros(0, FOUND_DTYPE)]
    kept = detect_aggregate(tables, RADIUS, reliability=0.5)
    assert len(kept) == 1 and kept["flux"][0] == pytest.approx(7 / 3)
    assert len(detect_aggregate(tables, RADIUS, reliability=0.25)) == 2
    with pytest.raises(InputError):
        detect_aggregate(tables, RADIUS, reliability=1.5)


def test_image_scores_known_behaviour(obs):
    from radiobench.reconstruction import image_scores

    sim = simulate(10, obs, NOISE, seed=5)
    rng = np.random.default_rng(0)
    same = image_scores(sim.sky, sim.sky, 50, rng)
    assert same["mse"]["value"] == 0 and same["ssim"]["value"] == pytest.approx(1)
    noisy = sim.sky + rng.normal(0, 0.05 * sim.sky.max(), sim.sky.shape)
    noisier = sim.sky + rng.normal(0, 0.2 * sim.sky.max(), sim.sky.shape)
    a, b = image_scores(sim.sky, noisy, 50, rng), image_scores(sim.sky, noisier, 50, rng)
    assert a["ssim"]["value"] > b["ssim"]["value"] and a["psnr"]["value"] > b["psnr"]["value"]
    assert a["mse"]["low"] <= a["mse"]["value"] <= a["mse"]["high"]
    with pytest.raises(InputError):
        image_scores(sim.sky, sim.sky[:3], 10, rng)


def test_localisation_scores_intervals_and_snr_bins():
    from radiobench.reconstruction import localisation_scores

    true = [sources((10, 10, 1e-3, 0, 0, 0, 2.5), (40, 40, 1e-3, 0, 0, 0, 20.0)) for _ in range(20)]
    found = [t[1:][["row", "col", "flux"]].astype(FOUND_DTYPE) for t in true]  # the faint source missed
    out = localisation_scores(true, found, RADIUS, NOISE, 200, np.random.default_rng(0))
    assert out["completeness"]["value"] == 0.5 and out["purity"]["value"] == 1
    bins = {(b["snr_low"], b["snr_high"]): b["completeness"] for b in out["completeness_vs_snr"]}
    assert bins[(2.0, 3.0)] == 0 and bins[(10.0, 30.0)] == 1
