"""The runner: matched sets, resume after an interruption, crashes recorded, provenance written."""
import contextlib
import json

import numpy as np
import pytest
import torch

from radiobench import Conditions, Dataset, Generator, InputError, Metric, MetricResult, RadioImages, SurveyInfo
from radiobench.checkpoint import load_config, load_tensors, save_config, save_weights
from radiobench.evaluators.cache import KINDS, current_fingerprint
from radiobench.postprocess import SURVEY_THRESHOLD, survey_threshold
from radiobench.registry import PluginEntry, registry
from radiobench.runner import RunConfig, run


class Blobs(Dataset):
    name = "blobs"
    description = "test: one Gaussian blob per image, width by class"
    provides = frozenset({"labels"})

    def load(self, split):
        self.check_split(split)
        n = {"train": 60, "valid": 10, "test": 20}[split]
        rng = np.random.default_rng(["train", "valid", "test"].index(split))
        labels = np.arange(n) % 2
        yy, xx = np.mgrid[:16, :16]
        widths = np.where(labels == 0, 1.5, 3.5)[:, None, None] * rng.uniform(0.8, 1.2, (n, 1, 1))
        imgs = np.exp(-((yy - 7.5) ** 2 + (xx - 7.5) ** 2) / (2 * widths**2))
        return RadioImages(imgs[:, None].astype(np.float32), SurveyInfo("blobs"), labels, ("narrow", "wide"))


class Counting(Generator):
    """Blob generator that counts its fits (class-level counter) and can be told to crash."""

    name = "counting"
    description = "test generator"
    supports = frozenset({"class"})
    sampling_options = frozenset({"zero_below"})
    fits = 0
    defaults: dict = {}  # options "added to the plugin later", with their default values

    def config(self):
        return {"name": self.name, "preset": self.preset.name, **self.defaults, **self.options}

    def fit(self, train, *, seed, workdir=None):
        if self.options.get("crash"):
            raise RuntimeError("boom in fit")
        type(self).fits += 1
        self.remember_training_set(train)
        scale = self.options.get("width_scale", 1.0)  # a training option that changes the model
        self.width = {0: 1.5 * scale, 1: 3.5 * scale}

    def sample_batch(self, conditions: Conditions, seeds):
        if self.options.get("crash_sample"):
            raise RuntimeError("boom in sample")
        yy, xx = np.mgrid[:16, :16]
        out = []
        for c, s in zip(conditions.labels, seeds):
            w = self.width[int(c)] * np.random.default_rng(s).uniform(0.8, 1.2)
            out.append(np.exp(-((yy - 7.5) ** 2 + (xx - 7.5) ** 2) / (2 * w**2))[None])
        return np.stack(out)

    def save(self, directory):
        save_weights(directory, {"model": {"width": torch.tensor([self.width[0], self.width[1]])}})
        save_config(directory, {"train_info": self.train_info})

    def load(self, directory):
        self.train_info = load_config(directory)["train_info"]
        self.width = dict(enumerate(load_tensors(directory, "model")["width"].tolist()))


class Interrupting(Metric):
    name = "interrupting"
    description = "test metric that raises KeyboardInterrupt while armed"
    armed = True

    def compute(self, real, generated, context):
        if type(self).armed:
            raise KeyboardInterrupt
        return MetricResult(self.name, 1.0, 0.5, 1.5, "lower", len(real), len(generated))


class Crashing(Metric):
    name = "crashing"
    description = "test metric that always fails"

    def compute(self, real, generated, context):
        raise ValueError("metric bug")


class NeedsMasks(Metric):
    name = "needs_masks"
    description = "test metric that needs masks"
    requires = frozenset({"masks"})

    def compute(self, real, generated, context):
        raise AssertionError("must be skipped")


class ClassifierBased(Metric):
    """Test metric that records the classifier fingerprint it would use (without training it)."""

    name = "classifier_based"
    description = "test metric depending on the classifier evaluator"
    computed = 0

    def compute(self, real, generated, context):
        type(self).computed += 1
        fp = current_fingerprint("classifier", context)
        return MetricResult(self.name, 1.0, 0.5, 1.5, "higher", len(real), len(generated),
                            fingerprints={"classifier": fp, "dataset": context.dataset_fingerprint})


@contextlib.contextmanager
def registered(*added):
    """The plugins ``(kind, cls)`` registered for the duration of the block."""
    entries = [(kind, PluginEntry(kind, cls.name, "tests", None, cls)) for kind, cls in added]
    for kind, entry in entries:
        registry.listing(kind).append(entry)
    try:
        yield
    finally:
        for kind, entry in entries:
            registry.listing(kind).remove(entry)


@contextlib.contextmanager
def runner_plugins():
    """The test dataset, generator and metrics registered for the block, their counters reset."""
    Counting.fits = 0
    Counting.defaults = {}
    Interrupting.armed = True
    ClassifierBased.computed = 0
    with registered(("datasets", Blobs), ("generators", Counting), ("metrics", Interrupting), ("metrics", Crashing),
                    ("metrics", NeedsMasks), ("metrics", ClassifierBased)):
        yield


@pytest.fixture
def plugins():
    with runner_plugins():
        yield


def test_interrupted_run_resumes_without_redoing_finished_work(plugins, tmp_path):
    cfg = RunConfig(generators=["counting"], dataset="blobs", out=tmp_path, seeds=[0, 1],
                    metrics=["mean_w1", "interrupting"], progress=False)
    with pytest.raises(KeyboardInterrupt):
        run(cfg)
    assert (tmp_path / "reference" / "seed-0" / "metrics" / "mean_w1.json").exists()
    assert not (tmp_path / "reference" / "seed-0" / "metrics" / "interrupting.json").exists()
    Interrupting.armed = False
    summary = run(cfg)
    assert "reference/seed-0:mean_w1" in summary.reused
    assert "reference/seed-0:interrupting" in summary.done
    assert Counting.fits == 2  # once per seed, never redone
    summary = run(cfg)
    assert Counting.fits == 2 and not summary.done and "counting/seed-1:fit" in summary.reused
    assert not list(tmp_path.rglob("*.tmp")), "no temporary files left behind"


def test_results_of_a_replaced_evaluator_are_recomputed(plugins, tmp_path, monkeypatch):
    cfg = RunConfig(generators=["counting"], dataset="blobs", out=tmp_path, seeds=[0],
                    metrics=["classifier_based"], progress=False)
    run(cfg)
    assert ClassifierBased.computed == 2  # reference row and the generator's row
    path = tmp_path / "counting" / "seed-0" / "metrics" / "classifier_based.json"
    first = json.loads(path.read_text())["result"]["fingerprints"]["classifier"]
    summary = run(cfg)
    assert ClassifierBased.computed == 2 and "counting/seed-0:classifier_based" in summary.reused
    spec = KINDS["classifier"]
    monkeypatch.setitem(spec.configs, cfg.preset, spec.config(cfg.preset) | {"lr": 0.5})  # a new evaluator
    summary = run(cfg)
    assert ClassifierBased.computed == 4 and "counting/seed-0:classifier_based" in summary.done
    assert Counting.fits == 1  # only the metric is redone
    assert json.loads(path.read_text())["result"]["fingerprints"]["classifier"] not in ("", first)


def test_an_option_added_later_keeps_old_checkpoints(plugins, tmp_path):
    cfg = RunConfig(generators=["counting"], dataset="blobs", out=tmp_path, seeds=[0], metrics=["mean_w1"],
                    progress=False)
    run(cfg)
    Counting.defaults = {"new_option": 0}  # the plugin gained an option whose default is the old behaviour
    summary = run(cfg)
    assert Counting.fits == 1 and "counting/seed-0:fit" in summary.reused
    run(RunConfig(**{**cfg.__dict__, "generator_options": {"counting": {"new_option": 1}}}))
    assert Counting.fits == 2  # a value other than the default is another configuration


def test_a_sampling_option_resamples_without_retraining(plugins, tmp_path):
    cfg = RunConfig(generators=["counting"], dataset="blobs", out=tmp_path, metrics=["mean_w1"], progress=False,
                    reference=False)
    run(cfg)
    row = tmp_path / "counting" / "seed-0"
    before = RadioImages.load(row / "samples.npz").images
    assert ((before > 0) & (before < 0.3)).any()
    cfg.generator_options = {"counting": {"zero_below": 0.3}}
    summary = run(cfg)
    assert Counting.fits == 1 and "counting/seed-0:fit" in summary.reused
    assert {"counting/seed-0:samples", "counting/seed-0:mean_w1"} <= set(summary.done)
    after = RadioImages.load(row / "samples.npz").images
    np.testing.assert_array_equal(after, np.where(before < 0.3, 0, before))
    assert json.loads((row / "samples.json").read_text())["zero_level"] == 0.3
    assert "counting/seed-0:samples" in run(cfg).reused
    (row / "train" / "train_state.pt").write_bytes(b"state of the first configuration")
    cfg.generator_options = {"counting": {"zero_below": 0.3, "width": 2}}  # a training option re-trains
    run(cfg)
    assert Counting.fits == 2
    assert (row / "train-previous" / "train_state.pt").exists()  # moved aside, not resumed
    assert not (row / "train" / "train_state.pt").exists()


def test_a_sampling_option_added_later_resamples(plugins, tmp_path, monkeypatch):
    """Samples drawn before the plugin gained a sampling option are drawn again (identical when its value
    keeps the old behaviour); setting the option re-samples (``peak_normalise``: each image / its peak)."""
    cfg = RunConfig(generators=["counting"], dataset="blobs", out=tmp_path, metrics=["mean_w1"], progress=False,
                    reference=False, generator_options={"counting": {"zero_below": 0.3}})
    run(cfg)
    row = tmp_path / "counting" / "seed-0"
    before = RadioImages.load(row / "samples.npz").images
    monkeypatch.setattr(Counting, "sampling_options", frozenset({"zero_below", "peak_normalise"}))
    Counting.defaults = {"peak_normalise": False}
    summary = run(cfg)
    assert "counting/seed-0:fit" in summary.reused and "counting/seed-0:samples" in summary.done
    np.testing.assert_array_equal(RadioImages.load(row / "samples.npz").images, before)
    assert "counting/seed-0:samples" in run(cfg).reused
    cfg.generator_options = {"counting": {"zero_below": 0.3, "peak_normalise": True}}
    summary = run(cfg)
    assert Counting.fits == 1 and "counting/seed-0:samples" in summary.done
    after = RadioImages.load(row / "samples.npz").images
    np.testing.assert_allclose(after, before / before.max(axis=(1, 2, 3), keepdims=True), rtol=1e-6)
    assert json.loads((row / "samples.json").read_text())["peak_normalised"] is True
    (row / "samples.npz").unlink()  # a sample set deleted by hand: drawn again; the same set, so its metrics stand
    summary = run(cfg)
    assert "counting/seed-0:samples" in summary.done and "counting/seed-0:mean_w1" in summary.reused


def test_survey_threshold_applies_to_thresholded_training_sets():
    assert survey_threshold("auto", {"zero_fraction": 0.95}) == SURVEY_THRESHOLD
    assert survey_threshold("auto", {"zero_fraction": 0.1}) == 0.0  # noisy, un-thresholded images
    assert survey_threshold(0.05, {}) == 0.05 and survey_threshold(None, {}) == 0.0
    for bad in (1.5, -0.1, "high"):
        with pytest.raises(InputError, match="zero_below"):
            survey_threshold(bad, {})


def test_crashing_plugins_are_recorded_and_the_rest_survive(plugins, tmp_path):
    cfg = RunConfig(generators=["counting", "replay"], dataset="blobs", out=tmp_path,
                    metrics=["mean_w1", "crashing", "needs_masks"], progress=False,
                    generator_options={"counting": {"crash": True}})
    summary = run(cfg)
    err = json.loads((tmp_path / "counting" / "seed-0" / "error.json").read_text())
    assert "boom in fit" in err["error"] and "Traceback" in err["traceback"]
    rec = json.loads((tmp_path / "replay" / "seed-0" / "metrics" / "crashing.json").read_text())
    assert rec["status"] == "error" and "metric bug" in rec["error"]
    skipped = json.loads((tmp_path / "replay" / "seed-0" / "metrics" / "needs_masks.json").read_text())
    assert skipped["status"] == "skipped" and "masks" in skipped["reason"]
    ok = json.loads((tmp_path / "replay" / "seed-0" / "metrics" / "mean_w1.json").read_text())
    assert ok["status"] == "ok" and ok["provenance"]["preset"] == "smoke"
    assert "counting/seed-0" in summary.failed and "replay/seed-0:mean_w1" in summary.done


def test_matched_set_and_provenance(plugins, tmp_path):
    run(RunConfig(generators=["counting"], dataset="blobs", out=tmp_path, metrics=["mean_w1"], progress=False))
    generated = RadioImages.load(tmp_path / "counting" / "seed-0" / "samples.npz")
    assert len(generated) == 20 and generated.class_counts() == {"narrow": 10, "wide": 10}
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    prov = manifest["provenance"]
    assert prov["versions"]["torch"] and "commit" in prov["git"] and prov["dataset_fingerprint"]
    assert manifest["dataset"]["class_counts_reference"] == {"narrow": 10, "wide": 10}


def test_run_directory_of_another_dataset_is_refused(plugins, tmp_path):
    run(RunConfig(generators=[], dataset="blobs", out=tmp_path, metrics=["mean_w1"], progress=False))
    with pytest.raises(InputError, match="choose another --out"):
        run(RunConfig(generators=[], dataset="blobs", out=tmp_path, preset="cpu", metrics=["mean_w1"],
                      progress=False))


def test_samples_do_not_depend_on_batch_size(plugins):
    gen = Counting()
    gen.fit(Blobs().load("train"), seed=0)
    cond = Conditions(n=7, labels=np.array([0, 1, 0, 1, 1, 0, 1]))
    a = gen.sample(cond, seed=3, batch_size=2).images
    b = gen.sample(cond, seed=3, batch_size=7).images
    assert np.array_equal(a, b)
    with pytest.raises(InputError, match="cannot be conditioned on \\['flux'\\]"):
        gen.sample(Conditions(n=2, peak_flux=np.ones(2)), seed=0)


def test_leaderboard_keeps_configurations_apart(plugins, tmp_path):
    from radiobench.leaderboard import collect

    def one(out, seeds, **options):
        run(RunConfig(generators=["counting"], dataset="blobs", out=tmp_path / out, seeds=seeds, metrics=["mean_w1"],
                      progress=False, reference=False, generator_options={"counting": options}))
        return tmp_path / out

    same = collect([one("a", [0], width=1), one("b", [1], width=1.0)])[0]  # 1 and 1.0: one configuration
    assert [(r.name, sorted(r.seeds)) for r in same.rows] == [("counting", [0, 1])] and not same.notes
    (mixed,) = collect([tmp_path / "a", one("c", [2], width=2)])
    names = sorted(r.name for r in mixed.rows)
    assert names == ["counting [width=1]", "counting [width=2]"]  # named by the option that differs
    assert mixed.notes and "2 configurations" in mixed.notes[0]
