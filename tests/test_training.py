"""TrainingRun resumes only a state that holds everything it is asked to restore."""
from __future__ import annotations

import torch

from radiobench.training import TrainingRun


def _run(workdir) -> TrainingRun:
    return TrainingRun(workdir, steps=10, seed=0, device="cpu", progress=False)


def test_a_state_lacking_a_requested_network_is_set_aside_not_half_resumed(tmp_path):
    old = torch.nn.Linear(3, 2)
    run = _run(tmp_path)
    run.checkpoint(5, model=old)  # as an older version named its network
    new = torch.nn.Linear(3, 2)
    before = {k: v.clone() for k, v in new.state_dict().items()}
    assert _run(tmp_path).resume(denoiser=new) == 0  # from scratch, not step 5 with a fresh network
    assert all(torch.equal(v, before[k]) for k, v in new.state_dict().items())
    assert (tmp_path / "train_state.pt.discarded").exists() and not (tmp_path / "train_state.pt").exists()


def test_a_truncated_state_is_set_aside(tmp_path):
    run = _run(tmp_path)
    run.checkpoint(5, model=torch.nn.Linear(3, 2))
    path = tmp_path / "train_state.pt"
    path.write_bytes(path.read_bytes()[:100])
    assert _run(tmp_path).resume(model=torch.nn.Linear(3, 2)) == 0


def test_a_complete_state_resumes(tmp_path):
    net = torch.nn.Linear(3, 2)
    _run(tmp_path).checkpoint(5, model=net)
    other = torch.nn.Linear(3, 2)
    assert _run(tmp_path).resume(model=other) == 5
    assert torch.equal(other.weight, net.weight)


def test_bf16_on_a_cpu_without_it_is_warned_once(tmp_path, monkeypatch, caplog):
    from radiobench import training

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu sse2 avx2 fma\n")
    assert training.cpu_has_bf16(info) is False
    info.write_text("flags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert training.cpu_has_bf16(info) is True
    assert training.cpu_has_bf16(tmp_path / "missing") is None
    monkeypatch.setattr(training, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(training, "_warned_bf16", set())
    with caplog.at_level("WARNING", logger="radiobench"):
        for _ in range(2):
            training.warn_if_emulated_bf16("cpu", "fit edm")
        training.warn_if_emulated_bf16("cuda", "fit cvae")  # a GPU's bf16 is its own business
    assert [r.message.startswith("fit edm: bf16 on this CPU is emulated") for r in caplog.records] == [True]
    monkeypatch.setattr(training, "cpu_has_bf16", lambda: True)
    caplog.clear()
    training.warn_if_emulated_bf16("cpu", "fit cvae")
    assert not caplog.records
