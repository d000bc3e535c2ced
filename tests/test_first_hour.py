"""What a new user meets in the first hour (issue 19): a CLI that exits quietly into a closed pipe, names
the file holding a failure, reports plugins it leaves out, and a README and ``list`` that agree with it."""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from radiobench.cli import build_parser, main
from radiobench.registry import registry

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_list_into_a_closed_pipe_exits_quietly():
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line is written, as `radiobench list | head -0`
    try:
        r = subprocess.run([sys.executable, "-m", "radiobench.cli", "list"], stdout=write, stderr=subprocess.PIPE,
                           text=True, timeout=120)
    finally:
        os.close(write)
    assert r.stderr == "" and r.returncode == 1


def _fails(*args, **kwargs):
    raise RuntimeError("diverged on purpose")


def test_run_names_the_error_json_of_a_failed_generator(tmp_path, monkeypatch, capsys):
    from radiobench_plugins.generators.replay import Replay

    monkeypatch.setattr(Replay, "fit", _fails)
    out = tmp_path / "run"
    assert main(["run", "--generators", "replay", "--dataset", "synthetic", "--metrics", "mean_w1", "--out", str(out),
                 "--no-reference", "-q"]) == 1
    error = out / "replay" / "seed-0" / "error.json"
    assert f"  FAILED replay/seed-0: see {error}\n" in capsys.readouterr().out
    assert "diverged on purpose" in error.read_text()


@pytest.fixture
def broken_metric(monkeypatch):
    """The installed metrics: mean_w1 and a plugin whose module does not import."""
    import radiobench.registry as reg

    real = reg.entry_points

    def fake(group):
        if group != "radiobench.metrics":
            return real(group=group)
        return [*(e for e in real(group=group) if e.name == "mean_w1"),
                EntryPoint("centroid_x", "radiobench_no_such_module:Metric", group)]

    monkeypatch.setattr(reg, "entry_points", fake)
    registry.refresh()
    yield
    registry.refresh()


def test_run_reports_an_installed_metric_that_does_not_import(broken_metric, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="radiobench"):
        assert main(["run", "--generators", "replay", "--dataset", "synthetic", "--out", str(tmp_path / "run"),
                     "--no-reference", "-q"]) == 0
    warned = [r.getMessage() for r in caplog.records if "centroid_x" in r.getMessage()]
    assert len(warned) == 1 and "failed to import" in warned[0]
    assert "ModuleNotFoundError: No module named 'radiobench_no_such_module'" in warned[0]
    assert [p.name for p in (tmp_path / "run" / "replay" / "seed-0" / "metrics").iterdir()] == ["mean_w1.json"]


def test_every_command_is_in_the_readme_usage_table():
    table = README.split("## Usage", 1)[1].split("\n\n", 2)[1]
    documented = set(re.findall(r"^\| `radiobench (\w+)", table, flags=re.M))
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert set(commands) == documented


def test_the_cvae_description_names_the_likelihood_of_every_preset():
    from radiobench_plugins.generators.cvae import CVAE

    likelihood = {p: CVAE(preset=p, device="cpu").opt["likelihood"] for p in ("smoke", "cpu", "paper")}
    assert likelihood == {"smoke": "bernoulli", "cpu": "gaussian", "paper": "bernoulli"}  # as the description says
    description = registry.generator("cvae").summary()["description"]
    assert "Bernoulli ELBO (paper, smoke)" in description and "Gaussian (σ = 0.1) with KL warm-up (cpu)" in description
    assert "the `cpu` preset warms the KL weight up" in README and "Gaussian likelihood\n  (σ = 0.1)" in README
