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
