"""Plugin discovery through entry points: built-ins, an installed third-party package, a broken one."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from radiobench import Dataset, Generator, Metric
from radiobench.registry import BrokenPluginError, UnknownPluginError, registry
from radiobench.types import InputError

ROOT = Path(__file__).resolve().parents[1]
BUILTINS = {
    "datasets": {"first", "mirabest", "synthetic", "folder"},
    "generators": {"replay", "pixel_floor", "edm", "ddpm", "ldm", "cvae", "dcgan", "pggan"},
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


EXAMPLE = ROOT / "examples" / "radiobench-example-plugin"


def _tree(folder: Path) -> dict[str, int]:
    """Every file and folder below ``folder`` with its modification time (ns)."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    """pip-install a copy of the example third-party plugin (setuptools builds in the source tree: build/,
    *.egg-info) into a private directory put on PYTHONPATH; the checkout's files before and after."""
    import shutil

    before = _tree(EXAMPLE)
    source = tmp_path_factory.mktemp("example") / EXAMPLE.name
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                        "--target", str(target), str(source)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return SimpleNamespace(site=target, before=before, after=_tree(EXAMPLE))


def test_installing_the_example_leaves_examples_as_it_was(installed_example):
    assert installed_example.after == installed_example.before


def test_example_external_plugin_is_discovered_and_runs(installed_example, tmp_path):
    env = {"PYTHONPATH": str(installed_example.site), "RADIOBENCH_PROGRESS": "0"}
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


# -- names, conflicts and hostile plugins (in-process, with fake entry points) ------------------------------
PLUGIN_MODULE = '''
import pathlib
from radiobench_plugins.generators.replay import Replay
pathlib.Path(__file__).with_suffix(".imported").touch()  # marks that this module was imported

class Gen(Replay):
    description = "a third-party generator"
'''


@pytest.fixture
def fake_plugins(tmp_path, monkeypatch):
    """Add entry points ``(kind, name, "module:attr", distribution)`` to the real ones (fresh registry);
    modules are written into tmp_path from ``{name: source}``."""
    from importlib.metadata import EntryPoint

    import radiobench.registry as reg

    real = reg.entry_points
    monkeypatch.syspath_prepend(str(tmp_path))

    def install(entries, modules=None):
        for mod, src in (modules or {}).items():
            (tmp_path / f"{mod}.py").write_text(src)
        extra = [(f"radiobench.{k}", EntryPoint(n, v, f"radiobench.{k}")._for(SimpleNamespace(name=d)))
                 for k, n, v, d in entries]

        def fake(group):
            return [*real(group=group), *(e for g, e in extra if g == group)]

        monkeypatch.setattr(reg, "entry_points", fake)
        registry.refresh()
        return tmp_path

    yield install
    registry.refresh()  # the next use rediscovers the real entry points


def _entry(kind, name, distribution):
    return next(e for e in registry.listing(kind) if e.name == name and e.distribution == distribution)


@pytest.mark.parametrize("name, why", [
    ("../escape", "invalid generator name"), ("Upper", "invalid generator name"), ("a b", "invalid generator name"),
    ("reference", "reserved"), ("report", "reserved"),
])
def test_invalid_or_reserved_generator_names_are_refused(fake_plugins, name, why):
    site = fake_plugins([("generators", name, "rb_hostile:Gen", "hostile-plugin")], {"rb_hostile": PLUGIN_MODULE})
    with pytest.raises(BrokenPluginError, match=why):
        registry.generator(name)
    assert not (site / "rb_hostile.imported").exists()  # refused before its code ran
    entry = _entry("generators", name, "hostile-plugin")
    assert entry.broken and entry.refused and why in entry.error
    assert not registry.entries("generators")["replay"].broken


def test_every_builtin_name_is_valid():
    from radiobench.registry import check_name

    for kind, names in BUILTINS.items():
        for n in names:
            check_name(kind, n)
    with pytest.raises(InputError, match="invalid metric name"):
        check_name("metrics", "../m")


def test_hostile_name_cannot_write_outside_out(fake_plugins, tmp_path, capsys):
    from radiobench.cli import main

    fake_plugins([("generators", "../escape", "rb_hostile:Gen", "hostile-plugin"),
                  ("generators", "reference", "rb_hostile:Gen", "hostile-plugin")], {"rb_hostile": PLUGIN_MODULE})
    out = tmp_path / "runs" / "out"
    for name in ("../escape", "reference"):
        assert main(["run", "--generators", name, "--dataset", "synthetic", "--out", str(out), "-q"]) == 2
        assert "refused" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "escape").exists() and not (out / "reference").exists()


def test_third_party_plugin_shadowing_a_builtin_is_refused_and_listed(fake_plugins, capsys):
    from radiobench.cli import main
    from radiobench_plugins.generators.replay import Replay

    site = fake_plugins([("generators", "replay", "rb_shadow:Gen", "shadow-plugin")], {"rb_shadow": PLUGIN_MODULE})
    assert registry.generator("replay") is Replay
    shadow = _entry("generators", "replay", "shadow-plugin")
    assert shadow.broken and "shadow-plugin" in shadow.error and "radiobench" in shadow.error
    assert not (site / "rb_shadow.imported").exists()
    assert main(["list", "generators"]) == 0
    listing = capsys.readouterr().out
    line = next(ln for ln in listing.splitlines() if "shadow-plugin" in ln)
    assert "REFUSED" in line and "conflicts with the built-in 'replay'" in line
    assert any(ln.split()[0] == "replay" and "REFUSED" not in ln for ln in listing.splitlines() if ln.strip())


def test_two_third_party_plugins_with_one_name_are_both_refused(fake_plugins):
    fake_plugins([("metrics", "twin", "rb_twin_a:Gen", "twin-a"), ("metrics", "twin", "rb_twin_b:Gen", "twin-b")])
    with pytest.raises(BrokenPluginError, match="twin-a .* and by twin-b"):
        registry.metric("twin")
    for dist in ("twin-a", "twin-b"):
        e = _entry("metrics", "twin", dist)
        assert e.broken and "twin-a" in e.error and "twin-b" in e.error


@pytest.mark.parametrize("raise_", ["SystemExit(3)", "GeneratorExit()", "type('Custom', (BaseException,), {})()"])
def test_plugin_raising_a_base_exception_on_import_is_broken(fake_plugins, tmp_path, capsys, raise_):
    from radiobench.cli import main

    fake_plugins([("generators", "exiter", "rb_exiter:Gen", "exiter-plugin")], {"rb_exiter": f"raise {raise_}\n"})
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "exiter" in out and "BROKEN" in out and "replay" in out
    assert main(["run", "--generators", "exiter", "--dataset", "synthetic", "--out", str(tmp_path / "r"), "-q"]) == 2
    assert "failed to load" in capsys.readouterr().err
    assert main(["run", "--generators", "replay", "--dataset", "synthetic", "--metrics", "mean_w1",
                 "--out", str(tmp_path / "ok"), "-q"]) == 0
    # Ctrl-C while plugins import is the user's, not a broken plugin
    fake_plugins([("generators", "interrupter", "rb_interrupt:G", "x")], {"rb_interrupt": "raise KeyboardInterrupt\n"})
    with pytest.raises(KeyboardInterrupt):
        registry.entries("generators")


def test_plugin_whose_summary_fails_is_broken_not_a_crash_of_list(fake_plugins, capsys):
    from radiobench.cli import main

    fake_plugins([("metrics", "badsummary", "rb_badsummary:M", "bad-summary")], {"rb_badsummary": (
        "from radiobench_plugins.metrics.distributions import MeanW1\n"
        "class M(MeanW1):\n    @classmethod\n    def summary(cls):\n        raise RuntimeError('no summary')\n")})
    assert main(["list", "metrics"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "badsummary" in ln)
    assert "BROKEN" in line and "no summary" in line
