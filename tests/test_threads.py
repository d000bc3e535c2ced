"""Torch intra-op threads are chosen once at CLI start: --threads, else RADIOBENCH_THREADS, else OMP_NUM_THREADS,
else 1 (benchmarks/README.md, "Threads"); the run's provenance records the count used."""
import pytest
import torch

from radiobench.cli import main, set_threads
from radiobench.provenance import environment


@pytest.fixture(autouse=True)
def _restore(monkeypatch):
    before = torch.get_num_threads()
    for var in ("RADIOBENCH_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(("flag", "env", "expected"), [
    (None, {}, 1), (None, {"OMP_NUM_THREADS": "2"}, 2), (None, {"RADIOBENCH_THREADS": "2", "OMP_NUM_THREADS": "1"}, 2),
    (3, {"RADIOBENCH_THREADS": "2"}, 3), (None, {"RADIOBENCH_THREADS": "many"}, 1)])
def test_thread_count_precedence(monkeypatch, flag, env, expected):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert set_threads(flag) == expected
    assert torch.get_num_threads() == expected and environment()["torch_threads"] == expected


def test_the_cli_applies_threads_before_the_command(capsys):
    torch.set_num_threads(2)
    assert main(["list", "datasets"]) == 0 and torch.get_num_threads() == 1  # the default: one per process
    assert main(["--threads", "2", "list", "datasets"]) == 0 and torch.get_num_threads() == 2
    with pytest.raises(SystemExit):
        main(["--threads", "0", "list"])
    assert "must be >= 1" in capsys.readouterr().err
