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
