"""Result integrity in the runner: chain of custody (checkpoint → samples → metrics), one reference row
per run directory, a manifest safe under concurrent runs, corrupt stored files redone, the user's umask,
validation before any work, error stages, one sampling cost, real-side statistics shared across seeds."""
import json
import logging
import os
import threading
import time

import numpy as np
import pytest
import torch
from test_runner import Counting, registered, runner_plugins

from radiobench import InputError, Metric, MetricResult, RadioImages, SurveyInfo
from radiobench import runner as runner_module
from radiobench.checkpoint import save_weights
from radiobench.custody import checkpoint_sha256
from radiobench.leaderboard import collect
from radiobench.runner import RunConfig, run
from radiobench.store import sha256_file, write_json

ROW = "counting/seed-0"


@pytest.fixture
def plugins():
    with runner_plugins():
        yield


def config(tmp_path, **kw):
    base = dict(generators=["counting"], dataset="blobs", out=tmp_path, metrics=["mean_w1"], progress=False)
    return RunConfig(**{**base, **kw})


def read(path):
    return json.loads(path.read_text())


# -- chain of custody -----------------------------------------------------------------------------
def test_a_changed_training_option_redraws_samples_and_recomputes_metrics(plugins, tmp_path):
    run(config(tmp_path, reference=False))
    row = tmp_path / ROW
    before = RadioImages.load(row / "samples.npz").images
    first = read(row / "metrics" / "mean_w1.json")["result"]["value"]
    first_sha = checkpoint_sha256(row / "checkpoint")
    summary = run(config(tmp_path, reference=False, generator_options={"counting": {"width_scale": 1.6}}))
    assert Counting.fits == 2 and not summary.reused
    assert checkpoint_sha256(row / "checkpoint-previous") == first_sha  # the first model is kept, not overwritten
    assert {f"{ROW}:fit", f"{ROW}:samples", f"{ROW}:mean_w1"} <= set(summary.done)
    assert not np.array_equal(RadioImages.load(row / "samples.npz").images, before)
    info = read(row / "samples.json")
    assert info["checkpoint_sha256"] == checkpoint_sha256(row / "checkpoint")
    assert info["sha256"] == sha256_file(row / "samples.npz")
    record = read(row / "metrics" / "mean_w1.json")
    assert record["inputs"] == {"samples_sha256": info["sha256"], "checkpoint_sha256": info["checkpoint_sha256"]}
    assert record["result"]["value"] != first


def test_a_replaced_checkpoint_is_not_passed_off_as_the_fit(plugins, tmp_path):
    """Weights from elsewhere under a fit's fit.json: the fit is redone (kept aside: checkpoint-previous), and
    the row's numbers are those of the model the fit made."""
    cfg = config(tmp_path, reference=False)
    run(cfg)
    row = tmp_path / ROW
    before = read(row / "metrics" / "mean_w1.json")["result"]
    save_weights(row / "checkpoint", {"model": {"width": torch.tensor([3.0, 5.0])}})  # weights from elsewhere
    summary = run(cfg)
    assert f"{ROW}:fit" in summary.done and (row / "checkpoint-previous" / "weights.safetensors").exists()
    assert read(row / "metrics" / "mean_w1.json")["result"] == before
    assert set(run(cfg).reused) == {f"{ROW}:fit", f"{ROW}:samples", f"{ROW}:mean_w1"}


def test_a_checkpoint_of_another_configuration_under_fit_json_is_trained_again(plugins, tmp_path):
    """fit.json says one configuration, the checkpoint's config.json another: never reused as the first."""
    def dcgan(out, steps):
        return RunConfig(generators=["dcgan"], dataset="synthetic", out=out, metrics=["mean_w1"], progress=False,
                         reference=False, generator_options={"dcgan": {"steps": steps}})

    run(dcgan(tmp_path / "a", 2))
    cfg = dcgan(tmp_path / "b", 3)
    run(cfg)
    a, b = (tmp_path / d / "dcgan" / "seed-0" / "checkpoint" for d in "ab")
    fit = read(b / "fit.json")
    fit.pop("checkpoint_sha256")  # as written before fit.json recorded it
    write_json(b / "fit.json", fit)
    for name in ("weights.safetensors", "config.json"):
        (b / name).write_bytes((a / name).read_bytes())
    summary = run(cfg)
    assert "dcgan/seed-0:fit" in summary.done and read(b / "config.json") != read(a / "config.json")


def test_records_without_custody_fields_are_redone(plugins, tmp_path):
    cfg = config(tmp_path)
    run(cfg)
    row = tmp_path / ROW
    for path in (row / "samples.json", row / "metrics" / "mean_w1.json",
                 tmp_path / "reference" / "seed-0" / "metrics" / "mean_w1.json"):
        old = read(path)
        old.pop("inputs", None), old.pop("checkpoint_sha256", None)
        path.write_text(json.dumps(old))
    summary = run(cfg)
    assert {f"{ROW}:samples", f"{ROW}:mean_w1", "reference/seed-0:mean_w1"} <= set(summary.done)
    ref = read(tmp_path / "reference" / "seed-0" / "metrics" / "mean_w1.json")
    assert set(ref["inputs"]) == {"real_sha256", "reference_sha256"} and all(ref["inputs"].values())


# -- the reference row belongs to the run -----------------------------------------------------------
def test_seeds_run_one_at_a_time_give_the_results_of_one_run(plugins, tmp_path):
    run(config(tmp_path / "apart", seeds=[0]))
    run(config(tmp_path / "apart", seeds=[1]))
    run(config(tmp_path / "together", seeds=[0, 1]))

    def results(out):
        files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))
        records = {f: (r["status"], r["result"]["value"], r.get("inputs"), r["provenance"]["seed"])
                   for f in files if "/metrics/" in f for r in [read(out / f)]}
        table = [(r.name, sorted(r.seeds), {m: c.value for m, c in r.cells.items()}) for r in collect([out])[0].rows]
        return files, records, table, read(out / "manifest.json")["config"]["seeds"]

    apart, together = results(tmp_path / "apart"), results(tmp_path / "together")
    assert "reference/seed-0/metrics/mean_w1.json" in apart[0] and apart == together


# -- manifest.json under concurrent runs ----------------------------------------------------------------
def test_concurrent_runs_keep_each_others_seeds_and_generators(plugins, tmp_path, monkeypatch):
    run(config(tmp_path, generators=[], seeds=[0]))
    slow_read = runner_module.read_json

    def read_json(path):  # widen the window between reading and writing the manifest
        obj = slow_read(path)
        if os.path.basename(path) == "manifest.json":
            time.sleep(0.3)
        return obj

    monkeypatch.setattr(runner_module, "read_json", read_json)
    errors = []

    def one(gen, seed):
        try:
            run(config(tmp_path, generators=[gen], seeds=[seed]))
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=one, args=a) for a in (("counting", 1), ("replay", 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    manifest = read(tmp_path / "manifest.json")
    assert manifest["config"]["seeds"] == [0, 1, 2]
    assert sorted(manifest["config"]["generators"]) == ["counting", "replay"]


def test_a_corrupt_manifest_is_refused_naming_it_and_kept(plugins, tmp_path):
    run(config(tmp_path))
    path = tmp_path / "manifest.json"
    path.write_text(path.read_text()[:50])
    with pytest.raises(InputError, match=f"{path}.*corrupt"):
        run(config(tmp_path, seeds=[1]))
    assert len(path.read_text()) == 50 and not (tmp_path / "counting" / "seed-1").exists()


# -- corrupt stored files ------------------------------------------------------------------------------
def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garble(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2:] = b"\x00garbled" * ((len(data) - len(data) // 2) // 8 + 1)
    path.write_bytes(bytes(data[: len(path.read_bytes())]))


@pytest.mark.parametrize("name, spoil, redone", [
    ("samples.json", _truncate, "samples"),
    ("samples.npz", _truncate, "samples"),
    ("samples.npz", _garble, "samples"),
    ("metrics/mean_w1.json", _garble, "mean_w1"),
    ("checkpoint/fit.json", _truncate, "fit"),
    ("checkpoint/config.json", _garble, "fit"),
    ("checkpoint/weights.safetensors", _truncate, "fit"),
    ("checkpoint/weights.safetensors", _garble, "fit"),
    ("train/training_config.json", _truncate, None),  # read only when training: a retrain moves it aside
])
def test_a_corrupt_stored_file_is_named_and_redone(plugins, tmp_path, caplog, name, spoil, redone):
    cfg = config(tmp_path, reference=False)
    run(cfg)
    path = tmp_path / ROW / name
    spoil(path)
    if redone is None:  # a retrain (another training option) must not trip over the stamp
        cfg.generator_options = {"counting": {"width_scale": 1.2}}
    with caplog.at_level(logging.WARNING, logger="radiobench"):
        summary = run(cfg)
    assert str(path) in caplog.text or str(path.parent) in caplog.text
    assert f"{ROW}:{redone or 'fit'}" in summary.done and not summary.failed
    assert set(run(cfg).reused) == {f"{ROW}:fit", f"{ROW}:samples", f"{ROW}:mean_w1"}  # repaired for good


@pytest.mark.parametrize("spoil", [
    lambda r: r.pop("result"),
    lambda r: r["result"].pop("value"),
    lambda r: r["result"].update(value="0.1"),
    lambda r: r["result"].update(value=True),
    lambda r: r.update(result=None),
])
def test_a_malformed_ok_record_is_recomputed(plugins, tmp_path, caplog, spoil):
    cfg = config(tmp_path, reference=False)
    run(cfg)
    path = tmp_path / ROW / "metrics" / "mean_w1.json"
    record = read(path)
    spoil(record)
    path.write_text(json.dumps(record))
    with caplog.at_level(logging.WARNING, logger="radiobench"):
        assert f"{ROW}:mean_w1" in run(cfg).done
    assert str(path) in caplog.text
    assert isinstance(read(path)["result"]["value"], float)


# -- files follow the user's umask ------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_files_are_written_with_the_users_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        RadioImages(np.zeros((2, 1, 4, 4), np.float32), SurveyInfo("s")).save(tmp_path / "b.npz")
    finally:
        os.umask(old)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["a.json", "b.npz"]
    for f in tmp_path.iterdir():
        assert f.stat().st_mode & 0o777 == 0o666 & ~umask, f


# -- validation before any work ------------------------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    ({"seeds": [-1]}, "seeds must be non-negative integers"),
    ({"seeds": [True]}, "seeds must be non-negative integers"),
    ({"seeds": [0.5]}, "seeds must be non-negative integers"),
    ({"seeds": []}, "seeds must be non-negative integers"),
    ({"batch_size": 0}, "batch size must be a positive integer"),
    ({"batch_size": 2.5}, "batch size must be a positive integer"),
    ({"dataset_options": {"resolution": 0}}, "resolution must be a positive integer"),
    ({"dataset_options": {"resolution": "abc"}}, "resolution must be a positive integer"),
    ({"generators": ["counting", "dcgan"], "generator_options": {"dcgan": {"no_such_option": 1}}}, "no_such_option"),
    ({"generator_options": {"replay": {}}}, "not in --generators"),
])
def test_bad_values_fail_before_any_work(plugins, tmp_path, change, message):
    out = tmp_path / "run"
    with pytest.raises(InputError, match=message):
        run(config(out, **change))
    assert not out.exists() and Counting.fits == 0


def test_an_out_that_is_a_file_fails_before_any_work(plugins, tmp_path):
    (tmp_path / "file").write_text("mine")
    for out in (tmp_path / "file", tmp_path / "file" / "run"):
        with pytest.raises(InputError, match="is a file, not a directory"):
            run(config(out))
    assert (tmp_path / "file").read_text() == "mine" and Counting.fits == 0


# -- error stages, one sampling cost ----------------------------------------------------------------------------
def test_an_error_record_names_its_stage(plugins, tmp_path):
    run(config(tmp_path, reference=False, generator_options={"counting": {"crash": True}}))
    assert read(tmp_path / ROW / "error.json")["stage"] == "fit"
    run(config(tmp_path, reference=False, generator_options={"counting": {"crash_sample": True}}))
    error = read(tmp_path / ROW / "error.json")
    assert error["stage"] == "sample" and "boom in sample" in error["error"]


def test_every_cost_in_a_run_directory_agrees(plugins, tmp_path):
    def check():
        row = tmp_path / ROW
        fit, samples = read(row / "checkpoint" / "fit.json")["cost"], read(row / "samples.json")["cost"]
        assert set(samples) == {"sample_seconds_per_image", "nfe_per_sample"} and not set(fit) & set(samples)
        assert samples["sample_seconds_per_image"] > 0 and fit["train_seconds"] > 0
        records = [read(m) for m in (row / "metrics").glob("*.json")]
        assert records and all(r["provenance"]["cost"] == {**fit, **samples} for r in records)

    run(config(tmp_path, metrics=["mean_w1", "std_w1"]))
    check()
    run(config(tmp_path, metrics=["mean_w1", "std_w1"], generator_options={"counting": {"zero_below": 0.3}}))
    check()  # sampled again from the same checkpoint


# -- real-side statistics: computed once per run, not per seed --------------------------------------------
class RealStatistic(Metric):
    """Test metric whose real-side statistic is memoised in the context (counted)."""

    name = "real_statistic"
    description = "test: the mean pixel of each set, the real one memoised"
    computed = 0

    def compute(self, real, generated, context):
        def statistic():
            type(self).computed += 1
            return float(real.images.mean())

        gap = abs(context.remember("real_statistic:reference", statistic)
                  - float(generated.images.mean()))
        return MetricResult(self.name, gap, gap, gap, "lower", len(real), len(generated))


def test_real_side_statistics_are_computed_once_for_all_seeds(plugins, tmp_path):
    RealStatistic.computed = 0
    with registered(("metrics", RealStatistic)):
        summary = run(config(tmp_path, metrics=["real_statistic"], seeds=[0, 1, 2]))
    assert {f"counting/seed-{s}:real_statistic" for s in range(3)} | {"reference/seed-0:real_statistic"} <= set(
        summary.done)
    assert RealStatistic.computed == 1


def test_checkpoint_hash_is_the_model_not_how_its_fit_ran(tmp_path):
    """Equal weights from a resumed fit (another start_step, other times) hash alike; other weights do not."""
    import shutil

    a = tmp_path / "a"
    save_weights(a, {"G": torch.nn.Linear(2, 2)})
    write_json(a / "config.json", {"generator": "g", "options": {"steps": 20},
                                   "train_info": {"steps_done": 20, "start_step": 0},
                                   "cost": {"train_seconds": 1.94, "device": "cpu"}})
    resumed = tmp_path / "resumed"
    shutil.copytree(a, resumed)
    write_json(resumed / "config.json", {"generator": "g", "options": {"steps": 20},
                                         "train_info": {"steps_done": 20, "start_step": 10},
                                         "cost": {"train_seconds": 2.0, "device": "cuda"}})
    assert checkpoint_sha256(a) == checkpoint_sha256(resumed)
    other = tmp_path / "other"
    shutil.copytree(a, other)
    save_weights(other, {"G": torch.nn.Linear(2, 2)})
    assert checkpoint_sha256(other) != checkpoint_sha256(a)


def test_a_validation_split_lacking_a_class_falls_back_to_a_training_draw(tmp_path):
    opts = {"n_train": 40, "n_valid": 2, "n_test": 8}
    for reference in (True, False):
        out = tmp_path / f"ref-{reference}"
        summary = run(RunConfig(generators=["replay"], dataset="synthetic", out=out, metrics=["mean_w1"],
                                progress=False, reference=reference, dataset_options=opts))
        assert not summary.failed
        manifest = read(out / "manifest.json")
        assert manifest.get("reference_row", {}).get("source") == ("train" if reference else None)
