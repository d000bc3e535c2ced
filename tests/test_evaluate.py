"""``radiobench evaluate``: samples made elsewhere scored as a leaderboard row. The replay generator's samples
of a smoke run, scored from the run's samples.npz and from a folder of NPY/FITS files, get the run's values;
a second evaluation into the run directory computes only the generated side; bad sets are refused first."""
import csv
import json

import numpy as np
import pytest

import radiobench.evaluators.features as features
from radiobench.cli import main
from radiobench.external import ExternalConfig, evaluate
from radiobench.leaderboard import collect, render
from radiobench.runner import RunConfig, run
from radiobench.store import sha256_bytes, sha256_file
from radiobench.types import InputError, RadioImages

DATA = {"n_train": 120, "n_valid": 16, "n_test": 48}
METRICS = ["pixel_w1", "std_ks", "fid_byol", "kid_byol", "precision_byol", "coverage_byol", "classifier_accuracy",
           "fid_byol_class"]


def _external(samples, out, name, **kw):
    return ExternalConfig(samples=samples, dataset="synthetic", out=out, name=name, dataset_options=DATA,
                          metrics=kw.pop("metrics", METRICS), **kw)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluate") / "run"
    summary = run(RunConfig(generators=["replay"], dataset="synthetic", out=out, metrics=METRICS,
                            dataset_options=DATA, progress=False))
    assert not summary.failed, summary.failed
    return out


def _folder(samples: RadioImages, folder):
    """The set as a folder: even images as .npy, odd ones as FITS, and labels.csv with class names."""
    from astropy.io import fits

    folder.mkdir()
    with open(folder / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "label"])
        for i, (img, lab) in enumerate(zip(samples.images[:, 0], samples.labels)):
            name = f"{i:04d}.npy" if i % 2 == 0 else f"{i:04d}.fits"
            np.save(folder / name, img) if i % 2 == 0 else fits.writeto(folder / name, img)
            w.writerow([name, samples.class_names[lab]])
    return folder


def _results(rowdir):
    return {p.stem: json.loads(p.read_text()) for p in sorted((rowdir / "metrics").glob("*.json"))}


def test_replay_samples_scored_from_npz_and_folder_match_the_run(smoke_run, tmp_path, monkeypatch):
    npz = smoke_run / "replay" / "seed-0" / "samples.npz"
    samples = RadioImages.load(npz)
    calls = []
    real_apply = features.apply

    def spy(module, images, *a, **k):
        calls.append(sha256_bytes(np.ascontiguousarray(images).tobytes())[:16])
        return real_apply(module, images, *a, **k)

    monkeypatch.setattr(features, "apply", spy)
    summary = evaluate(_external(npz, smoke_run, "replay-npz"))
    assert not summary.failed, summary.failed
    assert not (smoke_run / "statistics").exists() or any((smoke_run / "statistics").iterdir())
    reference_hashes = set(calls) - {sha256_bytes(samples.images.tobytes())[:16]}
    assert reference_hashes  # the first evaluation computed the real side (the runner's memo died with it)
    calls.clear()
    folder = _folder(samples, tmp_path / "replay-folder")
    summary = evaluate(_external(folder, smoke_run, "replay-folder"))
    assert not summary.failed, summary.failed
    # the second evaluation into the directory computed only the generated side (the real side read back)
    assert calls and set(calls) == {sha256_bytes(samples.images.tobytes())[:16]}, calls

    expected = _results(smoke_run / "replay" / "seed-0")
    assert set(expected) == set(METRICS)
    for name in ("replay-npz", "replay-folder"):
        got = _results(smoke_run / name / "seed-0")
        assert set(got) == set(expected)
        for m, rec in expected.items():
            assert got[m]["status"] == rec["status"], (name, m, got[m])
            if rec["status"] == "ok":
                for k in ("value", "ci_low", "ci_high", "n_real", "n_generated"):
                    assert got[m]["result"][k] == rec["result"][k], (name, m, k)
            prov = got[m]["provenance"]
            assert prov["external"] is True and prov["source_sha256"] == got[m]["inputs"]["source_sha256"]
            assert "/" not in prov["source"]  # the file's name, not where it lies on the user's disk
        info = json.loads((smoke_run / name / "seed-0" / "samples.json").read_text())
        assert info["external"] and info["checks"]["class_shares_match_reference"]
    assert json.loads((smoke_run / "replay-npz" / "seed-0" / "samples.json").read_text())["source_sha256"] \
        == sha256_file(npz)
    table = render(collect([smoke_run]), "md")
    assert "replay-npz (external)" in table and "replay-folder (external)" in table
    # re-running the same evaluation reuses everything
    again = evaluate(_external(npz, smoke_run, "replay-npz"))
    assert not again.done and len(again.reused) >= 2 * len(METRICS)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_bad_sets_are_refused_before_anything_is_written(tmp_path):
    rng = np.random.default_rng(0)
    out = tmp_path / "out"
    good = rng.uniform(0, 1, (6, 40, 40)).astype(np.float32)
    cases = {
        "images are 20x20": _npz(tmp_path / "small.npz", images=good[:, :20, :20]),
        "not an integer multiple": _npz(tmp_path / "odd.npz", images=np.zeros((6, 60, 60))),
        "NaN or infinite": _npz(tmp_path / "nan.npz", images=np.where(good > 0.99, np.nan, good)),
        "--scale peak": _npz(tmp_path / "range.npz", images=good * 3),
        "not among the reference's classes": _npz(tmp_path / "cls.npz", images=good, labels=np.array(["X"] * 6)),
        "labels must lie in": _npz(tmp_path / "lab.npz", images=good, labels=np.arange(6)),
        "needs an 'images' array": _npz(tmp_path / "none.npz", pictures=good),
        "at least 2": _npz(tmp_path / "one.npz", images=good[:1]),
    }
    for message, path in cases.items():
        resize = message == "not an integer multiple"
        with pytest.raises(InputError, match=message):
            evaluate(_external(path, out, "x", metrics=["pixel_w1"], resize=resize, n_generated=6))
        assert not out.exists()
    with pytest.raises(InputError, match="is a radiobench generator"):
        evaluate(_external(tmp_path / "small.npz", out, "replay", metrics=["pixel_w1"]))
    with pytest.raises(InputError, match="6 images; the run directory's rows score 48"):
        evaluate(_external(_npz(tmp_path / "six.npz", images=good), out, "x", metrics=["pixel_w1"]))
    with pytest.raises(InputError, match="no such file"):
        evaluate(_external(tmp_path / "missing.npz", out, "x", metrics=["pixel_w1"]))
    assert not out.exists()


def test_stated_transforms_and_cli(tmp_path, capsys):
    """An 80x80 set in physical units, with class names: mean-binned and peak-scaled on request, and said so;
    through the command line into a fresh directory, which gets its reference row; the leaderboard marks it."""
    rng = np.random.default_rng(1)
    imgs = rng.uniform(0, 0.02, (8, 80, 80))
    path = _npz(tmp_path / "mine.npz", images=imgs, labels=np.array(["FRI", "FRII", "Compact", "Bent"] * 2))
    out = tmp_path / "dir"
    base = ["evaluate", str(path), "--dataset", "synthetic", "--out", str(out), "--metrics", "pixel_w1,std_ks",
            *[f"--dataset-option={k}={v}" for k, v in DATA.items()]]
    assert main(base) == 2 and "80x80, the reference 40x40" in capsys.readouterr().err
    assert not out.exists()
    assert main([*base, "--resize", "--scale", "peak", "--seed", "3", "--n-generated", "8"]) == 0
    info = json.loads((out / "mine" / "seed-3" / "samples.json").read_text())
    assert any("mean-binned 2x2" in t for t in info["checks"]["transforms"])
    assert any("scale=peak" in t for t in info["checks"]["transforms"])
    assert info["checks"]["class_counts"] == {"FRI": 2, "FRII": 2, "Compact": 2, "Bent": 2}
    stored = RadioImages.load(out / "mine" / "seed-3" / "samples.npz")
    assert stored.resolution == (40, 40) and np.allclose(stored.images.max(axis=(1, 2, 3)), 1)
    assert (out / "reference" / "seed-0" / "metrics" / "pixel_w1.json").exists()
    assert main(["leaderboard", str(out)]) == 0
    assert "mine (external)" in capsys.readouterr().out


def test_npy_stack_and_png_folder(tmp_path):
    """A .npy stack is read as it is; 8-bit PNGs are divided by 255, and the record says so."""
    from PIL import Image

    rng = np.random.default_rng(2)
    stack = rng.uniform(0, 1, (5, 1, 40, 40)).astype(np.float32)
    np.save(tmp_path / "stack.npy", stack)
    out = tmp_path / "out"
    assert not evaluate(_external(tmp_path / "stack.npy", out, "stack", metrics=["pixel_w1"], n_generated=5)).failed
    assert np.array_equal(RadioImages.load(out / "stack" / "seed-0" / "samples.npz").images, stack)
    pngs = tmp_path / "pngs"
    pngs.mkdir()
    for i, img in enumerate((stack[:, 0] * 255).round().astype(np.uint8)):
        Image.fromarray(img, mode="L").save(pngs / f"{i}.png")
    assert not evaluate(_external(pngs, out, "pngs", metrics=["pixel_w1"])).failed  # 5: the directory's size
    info = json.loads((out / "pngs" / "seed-0" / "samples.json").read_text())
    assert any("PNG" in t for t in info["checks"]["transforms"]) and not info["checks"]["labelled"]
    got = RadioImages.load(out / "pngs" / "seed-0" / "samples.npz").images
    assert np.abs(got - stack).max() <= 0.5 / 255 + 1e-6


def test_disk_memo_keeps_real_outputs_of_these_weights_only(tmp_path):
    """Outputs persist for the kept (real) image hashes, named by the evaluator's weights: another process with
    the same weights reads them back; weights trained again (same fingerprint) or a damaged file recompute."""
    from types import SimpleNamespace

    from radiobench.external import DiskMemo

    def memo(weights):
        m = DiskMemo(tmp_path / "statistics", {"realhash"})
        m["evaluators/byol/fp1"] = SimpleNamespace(fingerprint="fp1", weights_sha256=weights)
        return m

    first = memo("w1")
    first["evaluators/byol_features/fp1/realhash"] = np.arange(6.0).reshape(2, 3)
    first["evaluators/byol_features/fp1/generated"] = np.ones((2, 3))  # not a kept set: memory only
    assert len(list((tmp_path / "statistics").iterdir())) == 1
    again = memo("w1")
    assert "evaluators/byol_features/fp1/realhash" in again and "evaluators/byol_features/fp1/generated" not in again
    assert np.array_equal(again["evaluators/byol_features/fp1/realhash"], np.arange(6.0).reshape(2, 3))
    assert again.loaded == ["evaluators/byol_features/fp1/realhash"]
    assert "evaluators/byol_features/fp1/realhash" not in memo("w2")  # other weights, same fingerprint
    (f,) = (tmp_path / "statistics").iterdir()
    f.write_bytes(b"garbage")
    assert "evaluators/byol_features/fp1/realhash" not in memo("w1")


def test_a_larger_set_is_subsampled_to_the_directory_size_and_said_so(tmp_path):
    rng = np.random.default_rng(3)
    path = _npz(tmp_path / "big.npz", images=rng.uniform(0, 1, (60, 40, 40)), labels=np.arange(60) % 4)
    out = tmp_path / "out"
    assert not evaluate(_external(path, out, "big", metrics=["pixel_w1"], reference=False)).failed
    info = json.loads((out / "big" / "seed-0" / "samples.json").read_text())
    assert info["n"] == 48 and info["checks"]["n_given"] == 60
    assert any("subsampled 60 -> 48" in t for t in info["checks"]["transforms"])
    assert sum(info["checks"]["class_counts"].values()) == 48
    rec = json.loads((out / "big" / "seed-0" / "metrics" / "pixel_w1.json").read_text())
    assert rec["result"]["n_generated"] == 48 and rec["provenance"]["n_generated"] == 48
