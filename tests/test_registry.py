"""Plugin discovery through entry points: built-ins, an installed third-party package, a broken one."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from radiobench import Dataset, Generator, Metric
from radiobench.registry import UnknownPluginError, registry

ROOT = Path(__file__).resolve().parents[1]
BUILTINS = {
    "datasets": {"first", "mirabest", "synthetic", "folder"},
    "generators": {"replay", "pixel_floor", "edm", "cvae", "dcgan", "pggan"},
    "metrics": {"pixel_w1", "pixel_ks", "mean_w1", "mean_ks", "std_w1", "std_ks"},
}


def test_builtins_are_discovered_through_entry_points():
    for kind, names in BUILTINS.items():
        entries = registry.entries(kind)
        assert names <= set(entries), (kind, set(entries))
        for n in names:
            assert not entries[n].broken, entries[n].traceback
    assert issubclass(registry.dataset("first"), Dataset)
    assert issubclass(registry.generator("replay"), Generator)
    assert issubclass(registry.metric("pixel_w1"), Metric)


def test_unknown_name_suggests_close_ones():
    with pytest.raises(UnknownPluginError, match="did you mean 'replay'"):
        registry.generator("replai")
    with pytest.raises(UnknownPluginError, match="did you mean 'pixel_w1'"):
        registry.metric("pixel_w")
    with pytest.raises(UnknownPluginError, match="unknown dataset 'zzz'"):
        registry.dataset("zzz")


def _cli(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "radiobench.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    """pip-install the example third-party plugin into a private directory put on PYTHONPATH."""
    target = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                        "--target", str(target), str(ROOT / "examples" / "radiobench-example-plugin")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return target


def test_example_external_plugin_is_discovered_and_runs(installed_example, tmp_path):
    env = {"PYTHONPATH": str(installed_example), "RADIOBENCH_PROGRESS": "0"}
    listing = _cli("list", env=env)
    assert listing.returncode == 0, listing.stderr
    assert "class_mean" in listing.stdout and "centroid_w1" in listing.stdout
    assert "[radiobench-example-plugin]" in listing.stdout
    out = tmp_path / "run"
    r = _cli("run", "--generators", "class_mean", "--dataset", "synthetic", "--metrics", "centroid_w1,mean_w1",
             "--out", str(out), "-q", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    board = _cli("leaderboard", str(out), env=env)
    assert "class_mean" in board.stdout and "centroid_w1" in board.stdout


def test_broken_plugin_is_listed_and_the_rest_keep_working(tmp_path):
    site = tmp_path / "site"
    (site / "broken_rb_plugin").mkdir(parents=True)
    (site / "broken_rb_plugin" / "__init__.py").write_text("raise ImportError('needs libfoo 9')\n")
    dist = site / "broken_rb_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-rb-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""\
        [radiobench.generators]
        brokengen = broken_rb_plugin:Gen
        [radiobench.metrics]
        notametric = json:dumps
    """))
    env = {"PYTHONPATH": str(site)}
    listing = _cli("list", env=env)
    assert listing.returncode == 0
    assert "brokengen" in listing.stdout and "BROKEN" in listing.stdout and "needs libfoo 9" in listing.stdout
    assert "not a subclass of radiobench.Metric" in listing.stdout
    assert "replay" in listing.stdout and "pixel_w1" in listing.stdout
    r = _cli("run", "--generators", "brokengen", "--dataset", "synthetic", "--out", str(tmp_path / "r"), env=env)
    assert r.returncode == 2 and "failed to load" in r.stderr and "needs libfoo 9" in r.stderr
