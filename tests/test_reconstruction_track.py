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
    assert gen.supports == frozenset({"dirty"})
    cond = Conditions(n=4, images={"dirty": test.extra["dirty"]})
    a = gen.sample(cond, seed=1, batch_size=2)
    b = gen.sample(cond, seed=1, batch_size=4)
    assert np.allclose(a.images, b.images, atol=1e-5) and a.images.shape == test.images.shape  # batch-invariant
    swapped = Conditions(n=4, images={"dirty": test.extra["dirty"][::-1].copy()})
    assert not np.allclose(gen.sample(swapped, seed=1).images[0], a.images[0], atol=1e-3)
    with pytest.raises(InputError, match="dirty"):
        registry.generator("ddpm_recon")(preset="smoke", device="cpu").fit(registry.dataset("synthetic")(
            n_train=4, n_valid=1, n_test=1).load("train"), seed=0)
