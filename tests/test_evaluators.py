"""Evaluator networks: ResNet18, augmentations, FID/KID maths, the fingerprinted cache (resume,
export/import with verification) and the ``radiobench evaluators`` command line."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tarfile

import numpy as np
import pytest
import torch
from scipy import linalg

from radiobench import MetricContext, get_preset
from radiobench.evaluators import (
    KINDS,
    embed,
    export_evaluators,
    fingerprint_payload,
    get_evaluator,
    import_evaluators,
    list_evaluators,
    load_entry,
)
from radiobench.evaluators.augment import Augment, gaussian_blur, random_flip_rot90
from radiobench.evaluators.base import epoch_scheduler, total_steps
from radiobench.evaluators.cache import train_evaluator
from radiobench.evaluators.classifier import ResNetClassifier
from radiobench.evaluators.frechet import (
    fid_bootstrap,
    fid_from_features,
    frechet_distance,
    kid_bootstrap,
    kid_from_features,
    trace_sqrt_product,
)
from radiobench.evaluators.resnet import ResNet18
from radiobench.interfaces import default_cache_dir
from radiobench.store import stable_hash
from radiobench.training import TrainingRun
from radiobench.types import InputError

torch.set_num_threads(1)
SMOKE = dataclasses.replace(get_preset("smoke"), n_bootstrap=20)  # fewer resamples: tests stay fast


@pytest.fixture(scope="session")
def synth_ctx():
    """The same data and cache (RADIOBENCH_CACHE) as test_learned_metrics.py: evaluators train once per session."""
    cache = default_cache_dir()
    from radiobench_plugins.datasets.synthetic import SyntheticDataset

    ds = SyntheticDataset(resolution=32, n_train=256, n_valid=8, n_test=96)
    train = ds.load("train")
    return MetricContext("synthetic", "synthetic-smoke-test", train, SMOKE, cache_dir=cache), ds


# -- networks ----------------------------------------------------------------------------------
def test_resnet18_shapes_and_no_torchvision():
    net = ResNet18(width=1.0)
    assert net.feature_dim == 512
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(11.17e6, rel=0.01)  # ResNet18 minus fc, 1 channel
    x = torch.rand(3, 1, 40, 40)
    assert net(x).shape == (3, 512)
    small = ResNet18(width=0.125, stem="small")
    assert small(torch.rand(2, 1, 80, 80)).shape == (2, 64)
    clf = ResNetClassifier(4, width=0.125).eval()
    assert clf(torch.rand(2, 1, 40, 40)).shape == (2, 4)
    assert not [m for m in sys.modules if m.startswith("torchvision")]


def test_dihedral_test_time_augmentation_is_orientation_invariant():
    """With ``tta`` the classifier's eval-mode logits are the mean over the 8 flips and 90° rotations, so a
    rotated or flipped image gets the same logits; the plain network's differ, and training ignores tta."""
    torch.manual_seed(0)
    clf = ResNetClassifier(4, width=0.125, tta=True).eval()
    x = torch.rand(2, 1, 40, 40)
    out = clf(x)
    for view in (torch.rot90(x, 1, (-2, -1)), x.flip(-1), torch.rot90(x.flip(-2), 3, (-2, -1))):
        assert torch.allclose(clf(view), out, atol=1e-5)
    clf.tta = False
    assert not torch.allclose(clf(torch.rot90(x, 1, (-2, -1))), clf(x), atol=1e-5)


def test_epoch_scheduler_cosine_and_plateau():
    """cosine: lr_t = lr_min + (lr - lr_min)(1 + cos(pi t / epochs)) / 2 after epoch t; plateau is the default."""
    import math

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=1e-3)
    sched = epoch_scheduler(opt, dict(lr_schedule="cosine", epochs=10, lr_min=1e-5))
    lrs = []
    for _ in range(10):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    expected = [1e-5 + (1e-3 - 1e-5) * (1 + math.cos(math.pi * t / 10)) / 2 for t in range(1, 11)]
    assert np.allclose(lrs, expected, rtol=1e-6)
    plateau = epoch_scheduler(opt, dict(lr_factor=0.1, lr_patience=2, lr_min=1e-6))
    assert isinstance(plateau, torch.optim.lr_scheduler.ReduceLROnPlateau)
    with pytest.raises(InputError, match="lr_schedule"):
        epoch_scheduler(opt, dict(lr_schedule="step", epochs=10, lr_min=0.0))
    with pytest.raises(InputError, match="spans 'epochs'"):  # a step-limited run would never finish the cosine
        epoch_scheduler(opt, dict(lr_schedule="cosine", epochs=10, steps=60, lr_min=0.0))


def test_augmentations():
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    x = torch.rand(16, 1, 12, 12)
    y = random_flip_rot90(x, g())
    # dihedral transforms permute pixels exactly
    torch.testing.assert_close(torch.sort(y.flatten(1)).values, torch.sort(x.flatten(1)).values)
    torch.testing.assert_close(random_flip_rot90(x, g()), y)  # reproducible from the generator
    # a constant image stays constant under normalised blur
    torch.testing.assert_close(gaussian_blur(torch.ones(2, 1, 8, 8), torch.tensor([0.3, 1.0])), torch.ones(2, 1, 8, 8))
    # geometry is shared by image and mask channels; blur/noise touch the image only
    img = torch.zeros(8, 1, 16, 16)
    img[:, :, 3:6, 9:13] = 1.0
    aug = Augment(crop=(0.7, 1.0), max_angle=180, blur_sigma=(0.5, 1), noise_std=(0.01, 0.02),
                  geometric_only_channels=1)
    out = aug(torch.cat([img, img], 1), g())
    plain = Augment(crop=(0.7, 1.0), max_angle=180)(torch.cat([img, img], 1), g())
    torch.testing.assert_close(out[:, 1], plain[:, 1])
    torch.testing.assert_close(plain[:, 0], plain[:, 1])
    assert not torch.allclose(out[:, 0], out[:, 1])


# -- FID / KID -----------------------------------------------------------------------------------
def fid_eig(a: np.ndarray, b: np.ndarray) -> float:
    """Independent reference: ||mu1-mu2||^2 + Tr S1 + Tr S2 - 2 sum sqrt(eig(S1^1/2 S2 S1^1/2)), by eigh."""
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s1)
    r = v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T
    lam = np.linalg.eigvalsh(r @ s2 @ r)
    return float(np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(np.clip(lam, 0, None))))


@pytest.mark.parametrize("n,d", [(300, 16), (60, 64)])  # full-rank and rank-deficient covariances
def test_fid_matches_independent_computation(n, d):
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    a = np.maximum(rng.normal(size=(n, d)) @ mix, 0)
    b = np.maximum(rng.normal(size=(n, d)) @ mix + 0.3, 0) * 1.2
    ref = fid_eig(a, b)
    assert fid_from_features(a, b) == pytest.approx(ref, rel=1e-6, abs=1e-8)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    assert trace_sqrt_product(a, b) == pytest.approx(np.trace(np.real(linalg.sqrtm(s1 @ s2))), rel=1e-6)
    assert abs(fid_from_features(a, a)) < 1e-8 * np.trace(s1) + 1e-10  # identical sets: ~0
    iv = fid_bootstrap(a, b, 50, np.random.default_rng(1))
    assert iv.value == pytest.approx(ref, rel=1e-6) and iv.low <= iv.value <= iv.high
    # 1-d check against the closed form (mu1-mu2)^2 + (s1 - s2)^2
    one_d = frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[1.0]]))
    assert one_d == pytest.approx(4 + 1)
    # singular product: the eps retry keeps the result finite
    z = np.zeros((3, 3))
    assert np.isfinite(frechet_distance(np.zeros(3), z, np.ones(3), z))


def test_kid_matches_loop_definition():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(12, 5)), rng.normal(0.5, 1, size=(10, 5))
    k = lambda u, v: (u @ v / 5 + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(12) for j in range(12) if i != j) / (12 * 11)
    yy = sum(k(y[i], y[j]) for i in range(10) for j in range(10) if i != j) / (10 * 9)
    xy = sum(k(x[i], y[j]) for i in range(12) for j in range(10)) / 120
    assert kid_from_features(x, y) == pytest.approx(xx + yy - 2 * xy)


# -- cache ---------------------------------------------------------------------------------------
def test_fingerprint_covers_data_config_seed(synth_ctx):
    ctx, ds = synth_ctx
    base = stable_hash(fingerprint_payload("radio_cnn", ctx), 16)
    assert base == stable_hash(fingerprint_payload("radio_cnn", ctx), 16)
    cfg = KINDS["radio_cnn"].config("smoke") | {"lr": 1e-2}
    assert stable_hash(fingerprint_payload("radio_cnn", ctx, config=cfg), 16) != base
    assert stable_hash(fingerprint_payload("radio_cnn", ctx, seed=1), 16) != base
    other = MetricContext("synthetic", "synthetic-smoke-test", ctx.train.subset(range(200)), ctx.preset,
                          cache_dir=ctx.cache_dir)
    assert stable_hash(fingerprint_payload("radio_cnn", other), 16) != base
    no_masks = MetricContext("x", "y", ds.load("test").subset(range(8)), ctx.preset, cache_dir=ctx.cache_dir)
    no_masks.train.masks = None
    with pytest.raises(InputError):
        fingerprint_payload("segmenter", no_masks)


def test_builtin_evaluator_fingerprints_unchanged():
    """Guards published results: each metric result records its evaluator's fingerprint, and
    ``stale_evaluators`` compares it with the current one. These are the four built-in fingerprints (cpu
    preset, synthetic 32x32, 64 train images) as computed before evaluator kinds became entry points (issue
    17); a change here must be deliberate (a spec's ``version`` bump or a new config), never a side effect of a
    refactor. classifier: the cpu referee of 2026-12-03 (90 epochs, cosine, label smoothing, weight decay, test-time
    augmentation; 36e9a38604977979 before)."""
    from radiobench.evaluators import current_fingerprint
    from radiobench_plugins.datasets.synthetic import SyntheticDataset

    ds = SyntheticDataset(resolution=32, n_train=64, n_valid=8, n_test=8)
    ctx = MetricContext("synthetic", ds.fingerprint(), ds.load("train"), get_preset("cpu"))
    assert ds.fingerprint() == "4d36dcd44a2cf6bf"  # the data itself (else the fingerprints below move with it)
    assert {kind: current_fingerprint(kind, ctx) for kind in KINDS} == {
        "byol": "4175789422565ebb", "classifier": "787fda560a87cdd9", "radio_cnn": "2e41dd6804192506",
        "segmenter": "8fe681c6373f0837"}


def test_evaluator_kinds_register_through_entry_points(synth_ctx, monkeypatch, capsys):
    """Built-in kinds come from the ``radiobench.evaluators`` entry points like a third party's; a broken
    one is reported (spec_for, ``radiobench evaluators list``) while the others keep working."""
    from importlib.metadata import EntryPoint, entry_points
    from types import ModuleType

    from radiobench import registry as registry_module
    from radiobench.evaluators.cache import spec_for
    from radiobench.evaluators.cli import cmd_list

    group = "radiobench.evaluators"
    assert {ep.name: ep.value for ep in entry_points(group=group)} == {
        k: f"radiobench.evaluators.{k}:SPEC" for k in ("byol", "classifier", "radio_cnn", "segmenter")}
    ctx, _ = synth_ctx
    plugin = ModuleType("third_party_kinds")
    plugin.SPEC = dataclasses.replace(KINDS["radio_cnn"], kind="tiny_cnn")
    plugin.WRONG = KINDS["radio_cnn"]  # registered under another name than its kind
    monkeypatch.setitem(sys.modules, "third_party_kinds", plugin)
    extra = [EntryPoint("tiny_cnn", "third_party_kinds:SPEC", group), EntryPoint("gone", "no_such_module:SPEC", group),
             EntryPoint("wrong", "third_party_kinds:WRONG", group)]
    kinds_group = group
    monkeypatch.setattr(registry_module, "entry_points",
                        lambda group: [*entry_points(group=group), *(extra if group == kinds_group else [])])
    KINDS.refresh()
    try:
        assert list(KINDS) == ["byol", "classifier", "radio_cnn", "segmenter", "tiny_cnn"]
        assert fingerprint_payload("tiny_cnn", ctx)["kind"] == "tiny_cnn"
        assert sorted(KINDS.broken) == ["gone", "wrong"]
        with pytest.raises(InputError, match="'gone' \\(no_such_module:SPEC\\) failed to load: ModuleNotFoundError"):
            spec_for("gone")
        with pytest.raises(InputError, match="not an EvaluatorSpec with kind 'wrong'"):
            get_evaluator("wrong", ctx, train=False)
        cmd_list(argparse.Namespace(cache_dir=str(ctx.cache_dir), json=True))
        err = capsys.readouterr().err
        assert "evaluator kind 'gone' (no_such_module:SPEC) failed to load" in err and "'wrong'" in err
    finally:
        monkeypatch.undo()
        KINDS.refresh()
    assert list(KINDS) == ["byol", "classifier", "radio_cnn", "segmenter"] and not KINDS.broken


def test_cache_trains_once_and_reloads(synth_ctx):
    ctx, _ = synth_ctx
    ev = get_evaluator("radio_cnn", ctx)
    assert (ev.path / "weights.safetensors").exists() and (ev.path / "metadata.json").exists()
    assert ev.metadata["payload"]["dataset_fingerprint"] == "synthetic-smoke-test"
    fresh = MetricContext(ctx.dataset, ctx.dataset_fingerprint, ctx.train, ctx.preset, cache_dir=ctx.cache_dir)
    again = get_evaluator("radio_cnn", fresh, train=False)  # from disk: training is not allowed here
    assert again.fingerprint == ev.fingerprint and again.metadata["created"] == ev.metadata["created"]
    x = ctx.train.images[:16]
    np.testing.assert_allclose(embed(again.module, x), embed(ev.module, x), rtol=1e-6)
    with pytest.raises(InputError):
        get_evaluator("radio_cnn", fresh, seed=99, train=False)
    assert any(r["fingerprint"] == ev.fingerprint for r in list_evaluators(ctx.cache_dir))


def test_training_resumes_after_interruption(synth_ctx, tmp_path):
    """A run stopped after a few steps and resumed from train_state.pt ends with the same weights."""
    ctx, _ = synth_ctx
    spec = KINDS["radio_cnn"]
    cfg = spec.config("smoke") | {"steps": 12}
    info = {"resolution": ctx.train.resolution, "n_classes": 4}
    data = ctx.train.subset(range(64))

    def train(workdir, max_seconds=None):
        run = TrainingRun(workdir, steps=total_steps(cfg, len(data)), seed=5, max_seconds=max_seconds, progress=False)
        model = spec.build(cfg, info)
        spec.fit(model, data, cfg, run)
        return run, model

    _, straight = train(tmp_path / "a")
    run, _ = train(tmp_path / "b", max_seconds=0.0)  # out of time after the first step
    assert run.stopped_early and (tmp_path / "b" / "train_state.pt").exists()
    run, resumed = train(tmp_path / "b")
    assert run.start_step == 1
    for p, q in zip(straight.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(p, q)


def test_trained_entry_follows_the_umask(synth_ctx, tmp_path):
    """A new cache entry is 0777 & ~umask like its files (mkdtemp makes 0700): a shared cache's group can read it."""
    ctx, _ = synth_ctx
    payload = fingerprint_payload("radio_cnn", ctx, config=KINDS["radio_cnn"].config("smoke") | {"steps": 2})
    umask = os.umask(0o022)
    try:
        ev = train_evaluator(payload, ctx.train, tmp_path, progress=False)
    finally:
        os.umask(umask)
    assert ev.path.parent == tmp_path / "evaluators"
    assert ev.path.stat().st_mode & 0o777 == 0o755
    assert (ev.path / "weights.safetensors").stat().st_mode & 0o777 == 0o644


def test_export_import_roundtrip_and_verification(synth_ctx, tmp_path):
    ctx, _ = synth_ctx
    ev = get_evaluator("radio_cnn", ctx)
    archive = tmp_path / "share.tar"
    assert export_evaluators(ctx.cache_dir, archive, kinds=["radio_cnn"]) == [ev.path.name]
    other = tmp_path / "lab2"
    assert import_evaluators(archive, other) == [ev.path.name]
    loaded = load_entry(other / "evaluators" / ev.path.name)
    assert loaded.fingerprint == ev.fingerprint
    lab2 = MetricContext(ctx.dataset, ctx.dataset_fingerprint, ctx.train, ctx.preset, cache_dir=other)
    assert get_evaluator("radio_cnn", lab2, train=False).fingerprint == ev.fingerprint

    def tampered(name: str, edit) -> tarfile.TarFile:
        path = tmp_path / name
        with tarfile.open(archive) as src, tarfile.open(path, "w") as dst:
            for m in src.getmembers():
                data = src.extractfile(m).read()
                m2, data = edit(m, data)
                m2.size = len(data)
                import io

                dst.addfile(m2, io.BytesIO(data))
        return path

    def flip_weights(m, data):
        if m.name.endswith("weights.safetensors"):
            data = data[:-4] + bytes(4)
        return m, data

    def change_payload(m, data):
        if m.name.endswith("metadata.json"):
            meta = json.loads(data)
            meta["payload"]["seed"] = 7
            data = json.dumps(meta).encode()
        return m, data

    def escape(m, data):
        m.name = "../" + m.name
        return m, data

    for name, edit in (("w.tar", flip_weights), ("p.tar", change_payload), ("e.tar", escape)):
        with pytest.raises(InputError):
            import_evaluators(tampered(name, edit), tmp_path / f"bad-{name}")
        assert not list((tmp_path / f"bad-{name}" / "evaluators").glob("radio_cnn-*"))


def test_cli(synth_ctx, tmp_path, capsys):
    from radiobench.evaluators.cli import add_subparser

    ctx, _ = synth_ctx
    ev = get_evaluator("radio_cnn", ctx)
    parser = argparse.ArgumentParser()
    add_subparser(parser.add_subparsers(dest="command"))

    def call(*argv):
        args = parser.parse_args(["evaluators", *argv])
        return args.func(args)

    assert call("list", "--cache-dir", str(ctx.cache_dir)) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if ev.fingerprint in line)
    assert ev.weights_sha256[:16] in row.split() and "weights" in out.splitlines()[0].split()
    assert call("export", str(tmp_path / "x.tar"), "--fingerprint", ev.fingerprint,
                "--cache-dir", str(ctx.cache_dir)) == 0
    assert f"{ev.path.name}  weights sha256 {ev.weights_sha256}" in capsys.readouterr().out
    with tarfile.open(tmp_path / "x.tar") as tar:  # the archive carries the weights hash it is verified against
        meta = json.load(tar.extractfile(f"{ev.path.name}/metadata.json"))
    assert meta["weights_sha256"] == ev.weights_sha256
    assert call("import", str(tmp_path / "x.tar"), "--cache-dir", str(tmp_path / "c2")) == 0
    assert f"{ev.path.name}  weights sha256 {ev.weights_sha256}" in capsys.readouterr().out
    assert call("list", "--json", "--cache-dir", str(tmp_path / "c2")) == 0
    out = capsys.readouterr().out
    rows = json.loads(out[out.index("["):])
    assert [(r["fingerprint"], r["weights_sha256"]) for r in rows] == [(ev.fingerprint, ev.weights_sha256)]
    args = parser.parse_args(["evaluators", "train", "--dataset", "synthetic", "--kinds", "radio_cnn",
                              "--preset", "smoke", "--dataset-option", "n_train=16", "--dataset-option", "n_test=4",
                              "--dataset-option", "n_valid=4", "--dataset-option", "resolution=16",
                              "--cache-dir", str(tmp_path / "c3"), "-q"])
    assert args.func(args) == 0
    assert "radio_cnn:" in capsys.readouterr().out
    assert len(list_evaluators(tmp_path / "c3")) == 1


def test_half_sample_intervals_match_the_sampling_spread():
    """The FID / KID intervals have the width of the statistic's own sampling spread, measured here by
    drawing independent set pairs, with fewer images than feature dimensions as in practice (N = 200,
    d = 512). A bootstrap with replacement fails this: duplicated images double both widths."""
    rng = np.random.default_rng(3)
    n, d = 100, 300
    draw = lambda: rng.normal(size=(n, d)) * np.linspace(0.5, 2, d)  # noqa: E731
    for stat, boot in ((fid_from_features, fid_bootstrap), (kid_from_features, kid_bootstrap)):
        true_sd = np.std([stat(draw(), draw() + 0.3) for _ in range(60)])
        iv = boot(draw(), draw() + 0.3, 300, np.random.default_rng(4))
        half_width_sd = (iv.high - iv.low) / (2 * 1.96)
        assert 0.6 * true_sd < half_width_sd < 1.6 * true_sd, (stat.__name__, true_sd, half_width_sd)
        assert iv.low <= iv.value <= iv.high


def test_two_runs_needing_one_evaluator_train_it_once(synth_ctx, tmp_path, monkeypatch):
    """Two runs sharing the cache (threads here: the lock is per open file, as across processes) that both miss
    the same evaluator: one trains it, the other waits and loads what it wrote."""
    import threading
    import time

    from radiobench.evaluators import cache

    trained: list[str] = []

    def train(payload, train, cache_dir, **kw):
        trained.append(payload["kind"])
        time.sleep(0.5)  # long enough for the other to arrive while this one trains
        entry = cache.evaluator_root(cache_dir) / f"{payload['kind']}-{cache.stable_hash(payload, 16)}"
        entry.mkdir(parents=True)
        return "trained"

    monkeypatch.setattr(cache, "train_evaluator", train)
    monkeypatch.setattr(cache, "load_entry", lambda entry: "loaded")
    base, _ = synth_ctx
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(
        cache.get_evaluator("byol", dataclasses.replace(base, cache_dir=tmp_path, memo={})))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert trained == ["byol"] and sorted(got) == ["loaded", "trained"]
