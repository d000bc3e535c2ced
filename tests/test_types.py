import numpy as np
import pytest

from radiobench import Conditions, InputError, MetricResult, RadioImages, SurveyInfo


def _imgs(n=4, h=8):
    return np.random.default_rng(0).random((n, 1, h, h), dtype=np.float32)


def test_nan_images_rejected_with_count():
    x = _imgs()
    x[1, 0, 2, 2] = np.nan
    with pytest.raises(InputError, match="1 of 4 images contain NaN"):
        RadioImages(x, SurveyInfo("t"))


@pytest.mark.parametrize("shape", [(4, 8, 8), (4, 3, 8, 8)])
def test_wrong_shape_rejected(shape):
    with pytest.raises(InputError, match=r"\(N, 1, H, W\)"):
        RadioImages(np.zeros(shape, np.float32), SurveyInfo("t"))


def test_range_and_labels_checked():
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        RadioImages(_imgs() * 3, SurveyInfo("t"))
    with pytest.raises(InputError, match="labels must lie"):
        RadioImages(_imgs(), SurveyInfo("t"), labels=np.array([0, 1, 2, 5]), class_names=("a", "b", "c"))


def test_save_load_round_trip(tmp_path):
    x = RadioImages(_imgs(), SurveyInfo("t", 1.8, (5.4, 5.4, 0.0)), labels=np.array([0, 1, 1, 0]),
                    class_names=("a", "b"), peak_flux=np.array([1.0, 2, 3, 4]), extra={"bg": _imgs()})
    x.save(tmp_path / "s.npz")
    y = RadioImages.load(tmp_path / "s.npz")
    assert np.array_equal(x.images, y.images) and np.array_equal(x.labels, y.labels)
    assert y.survey == x.survey and y.class_names == ("a", "b") and np.array_equal(y.extra["bg"], x.extra["bg"])
    assert y.subset([0, 2]).class_counts() == {"a": 1, "b": 1}


def test_conditions_and_metric_result():
    c = Conditions(n=3, labels=[0, 1, 0])
    assert c.kinds() == {"class"} and c.slice(1, 3).n == 2
    with pytest.raises(InputError):
        Conditions(n=2, labels=[0, 1, 0])
    r = MetricResult("m", float("nan"), 0, 1, "lower", 3, 3)
    assert MetricResult.from_dict(r.to_dict()).ci_high == 1
    with pytest.raises(ValueError):
        MetricResult("m", 0, 0, 0, "sideways", 1, 1)


class Fake:
    """Generators that draw whatever ``make(n, seeds)`` returns, trained on 40×40 images."""

    @staticmethod
    def make_generator(make, **options):
        from radiobench import Generator

        class FakeGenerator(Generator):
            name = "fake"

            def fit(self, train, *, seed, workdir=None):
                self.remember_training_set(train)

            def sample_batch(self, conditions, seeds):
                return make(len(seeds))

            def save(self, directory):
                pass

            def load(self, directory):
                pass

        gen = FakeGenerator(device="cpu", **options)
        gen.fit(RadioImages(_imgs(4, 40), SurveyInfo("toy")), seed=0)
        return gen


@pytest.mark.parametrize("make,match", [
    (lambda n: np.zeros((n, 1, 20, 20)), r"shape \(3, 1, 20, 20\); asked for \(3, 1, 40, 40\)"),  # too small
    (lambda n: np.zeros((n + 1, 1, 40, 40)), r"shape \(4, 1, 40, 40\); asked for \(3, 1, 40, 40\)"),  # count
    (lambda n: np.zeros((n, 3, 40, 40)), r"shape \(3, 3, 40, 40\)"),  # channels
    (lambda n: np.zeros((n, 40, 40)), r"shape \(3, 40, 40\)"),
    (lambda n: np.full((n, 1, 40, 40), np.nan), "4800 NaN or infinite pixels"),
    (lambda n: np.full((n, 1, 40, 40), 1.5), r"'fake' produced pixels in \[1.5, 1.5\]; images must lie in \[0, 1\]"),
    (lambda n: np.full((n, 1, 40, 40), -0.2), r"pixels in \[-0.2, -0.2\]"),
])
def test_sample_refuses_sets_that_are_not_what_was_asked(make, match):
    from radiobench.types import GeneratorOutputError

    with pytest.raises(GeneratorOutputError, match=match):
        Fake.make_generator(make).sample(Conditions(n=3), seed=0)


def test_sample_tolerates_float_error_only_and_post_processes_after_the_check():
    """Overshoot by float error (1e-7) is clipped, 1e-5 is refused; the post-processing (zero_below) is applied
    after the check, to every batch."""
    from radiobench.types import GeneratorOutputError

    rng = np.random.default_rng(1)

    def make(n, over=1e-7):
        x = rng.uniform(0, 1, (n, 1, 40, 40))
        x[:, :, 0, 0], x[:, :, 0, 1] = 1 + over, -over
        return x

    drawn = Fake.make_generator(make, zero_below=0.5).sample(Conditions(n=5), seed=0, batch_size=2).images
    assert drawn.shape == (5, 1, 40, 40) and drawn.dtype == np.float32
    assert drawn.max() == 1.0 and drawn.min() == 0.0 and not np.any((drawn > 0) & (drawn < 0.5))
    with pytest.raises(GeneratorOutputError, match=r"pixels in \[-1e-05, 1.00001\]"):
        Fake.make_generator(lambda n: make(n, 1e-5), zero_below=0.5).sample(Conditions(n=5), seed=0)
    from radiobench.postprocess import postprocess

    x = np.array([[[[0.01, 0.5], [0.03, 0.25]]]], np.float32)
    np.testing.assert_allclose(postprocess(x, 0.02, False), [[[[0, 0.5], [0.03, 0.25]]]])
    np.testing.assert_allclose(postprocess(x, 0.02, True), [[[[0, 1.0], [0.06, 0.5]]]])
