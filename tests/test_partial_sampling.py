"""Interrupted sampling resumes from the batches already drawn (``radiobench.partial``): the resumed set is
bit-identical to an uninterrupted one and the finished batches are not drawn again."""
from __future__ import annotations

import numpy as np
import pytest
from test_edm import TINY, blobs
from test_runner import runner_plugins

from radiobench.runner import RunConfig, run
from radiobench.seeding import image_seeds
from radiobench.types import Conditions, RadioImages
from radiobench_plugins.generators.edm import EDM

FAST = {**TINY, "num_steps": 2, "omega": 0.0}  # a real EDM, sampled in few steps


@pytest.fixture(scope="module")
def model() -> EDM:
    g = EDM("smoke", **FAST, steps=4)
    g.fit(blobs(24), seed=0)
    return g


def interrupting(monkeypatch, after: int) -> list[list[int]]:
    """Patch ``EDM.sample_batch`` to record the seeds of each call and raise on call ``after`` + 1 (-1: never)."""
    calls: list[list[int]] = []
    real = EDM.sample_batch

    def sample_batch(self, conditions, seeds):
        if len(calls) == after:
            raise KeyboardInterrupt
        calls.append(list(seeds))
        return real(self, conditions, seeds)

    monkeypatch.setattr(EDM, "sample_batch", sample_batch)
    return calls


def test_interrupted_sampling_resumes_bit_identical(model, tmp_path, monkeypatch):
    cond = Conditions(n=14, labels=np.arange(14) % 3, class_names=("left", "right", "centre"))
    whole = model.sample(cond, seed=5, batch_size=4)  # uninterrupted, no partial directory
    calls = interrupting(monkeypatch, after=2)
    with pytest.raises(KeyboardInterrupt):
        model.sample(cond, seed=5, batch_size=4, partial=tmp_path / "p", checkpoint_sha256="abc")
    assert len(list((tmp_path / "p").glob("batch-*.npz"))) == 2
    done = [s for c in calls for s in c]
    monkeypatch.undo()
    calls2 = interrupting(monkeypatch, after=-1)
    resumed = model.sample(cond, seed=5, batch_size=4, partial=tmp_path / "p", checkpoint_sha256="abc")
    assert resumed.images.tobytes() == whole.images.tobytes()
    assert [len(c) for c in calls2] == [4, 2], "only the two unfinished batches are drawn"
    assert not set(done) & {s for c in calls2 for s in c}, "no finished image drawn again"
    assert not (tmp_path / "p").exists(), "the partial directory is removed once the set is whole"


@pytest.mark.parametrize("change", ["seed", "checkpoint", "conditions"])
def test_a_partial_set_of_another_key_is_not_reused(model, tmp_path, monkeypatch, change):
    cond = Conditions(n=8, labels=np.arange(8) % 3, class_names=("left", "right", "centre"))
    interrupting(monkeypatch, after=1)
    with pytest.raises(KeyboardInterrupt):
        model.sample(cond, seed=5, batch_size=4, partial=tmp_path / "p", checkpoint_sha256="abc")
    seed, sha = (6 if change == "seed" else 5), ("def" if change == "checkpoint" else "abc")
    monkeypatch.undo()
    if change == "conditions":
        cond = Conditions(n=8, labels=(np.arange(8) + 1) % 3, class_names=("left", "right", "centre"))
    calls = interrupting(monkeypatch, after=-1)
    again = model.sample(cond, seed=seed, batch_size=4, partial=tmp_path / "p", checkpoint_sha256=sha)
    assert [len(c) for c in calls] == [4, 4], "drawn from image 0"
    monkeypatch.undo()
    assert again.images.tobytes() == model.sample(cond, seed=seed, batch_size=4).images.tobytes()


def test_the_runner_resumes_an_interrupted_sample_set(tmp_path, monkeypatch):
    options = {"edm": {**FAST, "steps": 4}}
    with runner_plugins():
        def config(out):
            return RunConfig(generators=["edm"], dataset="blobs", out=out, metrics=[], progress=False,
                             reference=False, batch_size=8, generator_options=options)

        run(config(tmp_path / "whole"))
        calls = interrupting(monkeypatch, after=1)
        with pytest.raises(KeyboardInterrupt):
            run(config(tmp_path / "cut"))
        assert len(calls) == 1 and (tmp_path / "cut/edm/seed-0/samples.partial/batch-000000000.npz").exists()
        monkeypatch.undo()
        calls = interrupting(monkeypatch, after=-1)
        run(config(tmp_path / "cut"))
    assert [len(c) for c in calls] == [8, 4]  # the reference split holds 20 images: batches 2 and 3 only
    a, b = (RadioImages.load(tmp_path / d / "edm/seed-0/samples.npz") for d in ("whole", "cut"))
    assert a.images.tobytes() == b.images.tobytes()
    assert not (tmp_path / "cut/edm/seed-0/samples.partial").exists()


def test_further_arrays_of_a_sample_batch_resume_with_their_images(model, tmp_path, monkeypatch):
    """A ``SampleBatch``'s per-image arrays (a method's catalogue) are kept with the finished batches."""
    from radiobench.types import GeneratorOutputError, SampleBatch

    real = EDM.sample_batch

    def with_tags(self, conditions, seeds):
        return SampleBatch(real(self, conditions, seeds), {"tag": np.asarray(seeds, np.int64)[:, None]})

    monkeypatch.setattr(EDM, "sample_batch", with_tags)
    cond = Conditions(n=10, labels=np.arange(10) % 3, class_names=("left", "right", "centre"))
    whole = model.sample(cond, seed=2, batch_size=4)
    assert whole.extra["tag"].shape == (10, 1)
    calls = interrupting(monkeypatch, after=1)
    with pytest.raises(KeyboardInterrupt):
        model.sample(cond, seed=2, batch_size=4, partial=tmp_path / "p", checkpoint_sha256="abc")
    assert len(calls) == 1
    monkeypatch.setattr(EDM, "sample_batch", with_tags)
    resumed = model.sample(cond, seed=2, batch_size=4, partial=tmp_path / "p", checkpoint_sha256="abc")
    assert resumed.images.tobytes() == whole.images.tobytes()
    np.testing.assert_array_equal(resumed.extra["tag"], whole.extra["tag"])

    first = image_seeds(2, 0, 1)[0]

    def ragged(self, conditions, seeds):  # the first batch with an extra array, the next without
        out = real(self, conditions, seeds)
        return SampleBatch(out, {"tag": np.zeros((len(seeds), 1))}) if seeds[0] == first else out

    monkeypatch.setattr(EDM, "sample_batch", ragged)
    with pytest.raises(GeneratorOutputError, match="different extra arrays"):
        model.sample(cond, seed=2, batch_size=4)
