import numpy as np

from radiobench import MetricContext, get_preset
from radiobench_plugins.metrics.memorisation import Memorisation, align_principal_axis, max_ssim


def _ssim_direct(x, y, c1=1e-4, c2=9e-4):
    mx, my = x.mean(), y.mean()
    sxy = ((x - mx) * (y - my)).mean()
    return (2 * mx * my + c1) * (2 * sxy + c2) / ((mx**2 + my**2 + c1) * (x.var() + y.var() + c2))


def test_global_ssim_matches_direct_formula_and_finds_copies():
    rng = np.random.default_rng(0)
    lib = rng.random((30, 1, 12, 12)).astype(np.float32)
    q = rng.random((5, 1, 12, 12)).astype(np.float32)
    best, arg = max_ssim(q, lib)
    direct = [max(_ssim_direct(q[i, 0].astype(float), f.astype(float))
                  for im in lib[:, 0] for f in (im, im[::-1], im[:, ::-1], im[::-1, ::-1])) for i in range(5)]
    assert np.allclose(best, direct)
    best, arg = max_ssim(lib[[3, 7]], lib)
    assert np.allclose(best, 1) and list(arg) == [3, 7]


def test_alignment_makes_rotated_copies_match():
    yy, xx = np.mgrid[:32, :32]
    img = np.exp(-(((xx - 15.5) / 8) ** 2 + ((yy - 15.5) / 2) ** 2))  # elongated along x
    rot = np.rot90(img).copy()
    a = align_principal_axis(np.stack([img, rot])[:, None].astype(np.float32))
    assert _ssim_direct(a[0, 0], a[1, 0]) > 0.99 > _ssim_direct(img, rot)


def test_replay_is_flagged_and_held_out_images_are_not(first_dir):
    from radiobench_plugins.datasets.first import FirstDataset

    ds = FirstDataset(resolution=40, data_dir=first_dir)
    train, valid, test = ds.load("train"), ds.load("valid"), ds.load("test")
    ctx = MetricContext("first", "fp", train, get_preset("smoke"))
    metric = Memorisation()
    copies = train.subset(np.arange(200))
    assert metric.compute(test, copies, ctx).value == 1.0
    held_out = metric.compute(test, valid, ctx)
    assert held_out.value < 0.15 and held_out.ci_low <= 0.05 + 0.05
