"""The reconstruction track in the harness: alma_sim fields, the truth ceiling and CLEAN, scored per field."""
from __future__ import annotations

import shutil

import pytest
from conftest import SHARED_DATA

from radiobench.runner import RunConfig, run
from radiobench.store import read_json
from radiobench.types import InputError

CFGS = SHARED_DATA / "antenna-configs"
SMALL = {"n_train": 4, "n_valid": 4, "n_test": 40}


@pytest.fixture
def antennas(monkeypatch):
    if not CFGS.is_dir():
        pytest.skip(f"antenna configurations not found at {CFGS}")
    monkeypatch.setenv("RADIOBENCH_ANTENNA_DIR", str(CFGS))
    return CFGS


def config(out, **kw) -> RunConfig:
    return RunConfig(**{"generators": ["truth", "clean"], "dataset": "alma_sim", "out": out,
                        "dataset_options": SMALL, "progress": False, **kw})


def test_truth_is_the_ceiling_and_clean_scores_below_it(antennas, tmp_path):
    summary = run(config(tmp_path))
    assert not summary.failed

    def value(row: str, metric: str) -> float:
        return read_json(tmp_path / row / "seed-0" / "metrics" / f"{metric}.json")["result"]["value"]

    assert value("truth", "recon_f1") > 0.95 and value("truth", "recon_purity") > 0.95
    assert value("truth", "recon_ssim") == pytest.approx(1.0)
    assert value("clean", "recon_f1") < value("truth", "recon_f1")
    assert value("clean", "recon_mse") > 0
    f1 = read_json(tmp_path / "clean" / "seed-0" / "metrics" / "recon_f1.json")["result"]["details"]
    assert sum(b["n"] for b in f1["completeness_vs_snr"]) == f1["counts"]["n_true"]
    assert not (tmp_path / "reference").exists()  # no real-vs-real row: the ceiling is the truth method
    # only the reconstruction task's metrics run on a reconstruction dataset
    assert not (tmp_path / "truth" / "seed-0" / "metrics" / "fid_byol.json").exists()
    from radiobench.report import write_report

    index = write_report(tmp_path)  # completeness against S/N (paper 002 Fig. 13) drawn from the F1 details
    assert (index.parent / "completeness_snr.png").stat().st_size > 1000
    assert "completeness against S/N" in index.read_text()


def test_tasks_do_not_mix(antennas, tmp_path):
    with pytest.raises(InputError, match="task"):
        run(config(tmp_path / "a", generators=["edm"]))
    with pytest.raises(InputError, match="task"):
        run(config(tmp_path / "b", metrics=["fid_byol"]))
    with pytest.raises(InputError, match="task"):
        run(RunConfig(generators=["clean"], dataset="synthetic", out=tmp_path / "c", progress=False))
    assert not any((tmp_path / d).exists() for d in "abc")


def test_antenna_configuration_is_checked(monkeypatch, tmp_path, antennas):
    bad = tmp_path / "cfgs"
    bad.mkdir()
    text = (antennas / "alma.cycle5.3.cfg").read_text().replace("A001", "A999")
    (bad / "alma.cycle5.3.cfg").write_text(text)
    monkeypatch.setenv("RADIOBENCH_ANTENNA_DIR", str(bad))
    with pytest.raises(InputError):
        run(config(tmp_path / "out"))
    shutil.rmtree(bad)
    with pytest.raises(InputError, match="does not exist"):
        run(config(tmp_path / "out2", data_dir=str(bad)))


def test_ddpm_recon_preprocessing_inverts_and_samples_follow_the_dirty_image(antennas, tmp_path):
    """Eqs. 1-5 round trip; a trained smoke model samples per field, conditioned on that field's dirty image."""
    import numpy as np

    from radiobench.registry import registry
    from radiobench.types import Conditions

    ds = registry.dataset("alma_sim")(resolution=32, n_train=8, n_valid=2, n_test=4)
    train, test = ds.load("train"), ds.load("test")
    gen = registry.generator("ddpm_recon")(preset="smoke", device="cpu", progress=False)
    gen.fit(train, seed=0, workdir=tmp_path / "work")
    x = gen.train_images(train.images)
    gamma = gen.opt["gamma"]
    assert np.allclose(x[:, :1] ** gamma, train.images, atol=1e-6)  # s_tr^γ = s/c (Eqs. 1, 5)
    assert np.allclose(x[:, 1:] * gen.train_info["dirty_scale"], train.extra["dirty"], rtol=1e-5, atol=1e-9)
    assert gen.supports == frozenset({"dirty", "scale", "noise_rms"})
    cond = Conditions(n=4, images={"dirty": test.extra["dirty"]})
    a = gen.sample(cond, seed=1, batch_size=2)
    b = gen.sample(cond, seed=1, batch_size=4)
    assert np.allclose(a.images, b.images, atol=1e-5) and a.images.shape == test.images.shape  # batch-invariant
    swapped = Conditions(n=4, images={"dirty": test.extra["dirty"][::-1].copy()})
    assert not np.allclose(gen.sample(swapped, seed=1).images[0], a.images[0], atol=1e-3)
    # detect-aggregate (Sect. 3.4.1): the median image and the merged catalogue of the draws
    gen.configure_sampling(aggregate="detect", reliability=0.5)
    full = Conditions(n=4, images={k: test.extra[k] for k in ("dirty", "scale", "noise_rms")})
    d = gen.sample(full, seed=1, batch_size=2)
    assert np.allclose(d.images, gen.sample(full, seed=1, batch_size=4).images, atol=1e-5)
    assert d.extra["catalogue"].shape[0] == 4 and d.extra["catalogue"].shape[2] == 3
    with pytest.raises(InputError, match="dirty"):
        registry.generator("ddpm_recon")(preset="smoke", device="cpu").fit(registry.dataset("synthetic")(
            n_train=4, n_valid=1, n_test=1).load("train"), seed=0)


def test_pybdsf_on_the_dirty_image_is_scored_by_its_own_catalogue(antennas, tmp_path, monkeypatch):
    """PyBDSF's source list is what the localisation metrics score (not photutils on its model image); it finds
    the brighter sources of the dirty image and leaves no files behind."""
    import numpy as np

    from radiobench.types import RadioImages

    monkeypatch.chdir(tmp_path)
    summary = run(config(tmp_path / "run", generators=["truth", "pybdsf_dirty"]))
    assert not summary.failed

    def record(row: str, metric: str) -> dict:
        return read_json(tmp_path / "run" / row / "seed-0" / "metrics" / f"{metric}.json")["result"]

    f1 = record("pybdsf_dirty", "recon_f1")
    assert f1["details"]["settings"]["sources"] == "the method's catalogue"
    assert record("truth", "recon_f1")["details"]["settings"]["sources"] == "photutils"
    assert 0.3 < f1["value"] < record("truth", "recon_f1")["value"]
    assert record("pybdsf_dirty", "recon_purity")["value"] > 0.7  # 5σ peaks in the dirty image are real
    done = RadioImages.load(tmp_path / "run" / "pybdsf_dirty" / "seed-0" / "samples.npz")
    cat = done.extra["catalogue"]
    assert cat.shape[:2] == (40, 40 * 40) and cat.shape[2] == 3 and np.isfinite(cat[..., 0]).sum() > 0
    assert done.extra["pybdsf_failed"].sum() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # PyBDSF's logs and FITS files are gone


def test_a_catalogue_of_the_true_sources_scores_one_and_a_shifted_one_zero():
    import numpy as np

    from radiobench.localisation import FOUND_DTYPE, catalogue_array, catalogue_tables
    from radiobench.reconstruction import localisation_scores

    rng = np.random.default_rng(0)
    true = []
    for k in (0, 3, 1, 5):
        t = np.zeros(k, [(n, "f8") for n in ("row", "col", "flux", "fwhm_maj", "fwhm_min", "pa", "snr")])
        t["row"], t["col"], t["flux"], t["snr"] = rng.uniform(0, 40, k), rng.uniform(0, 40, k), 1e-3, 5.0
        true.append(t)
    found = [np.array(list(zip(t["row"], t["col"], t["flux"])), FOUND_DTYPE) for t in true]
    back = catalogue_tables(catalogue_array(found, 8))
    assert [len(b) for b in back] == [0, 3, 1, 5]
    s = localisation_scores(true, back, 1.25, 1e-5, 20, rng)
    assert s["f1"]["value"] == s["completeness"]["value"] == s["flux_fraction"]["value"] == 1.0
    for b in back:
        b["row"] += 2.0  # beyond the radius
    assert localisation_scores(true, back, 1.25, 1e-5, 20, rng)["f1"]["value"] == 0.0
    with pytest.raises(InputError, match="does not fit"):
        catalogue_array(found, 4)
