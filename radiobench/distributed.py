"""Several processes of one ``radiobench run``, as ``accelerate launch`` and torchrun start them (data-parallel).

The processes train each generator × seed unit together (one DDP fit: each its share of every minibatch,
gradients all-reduced); the main process alone decides what to train and writes the checkpoints. Then the
processes ``leave`` together, and the main process samples and evaluates alone: from then on ``TrainingRun``
(an evaluator trained for a metric) runs single-process. Launchers set ``WORLD_SIZE`` and ``RANK``.
"""
from __future__ import annotations

import os
from typing import Any

__all__ = ["world_size", "is_main", "join", "share", "barrier", "leave", "has_left"]

_alone = False  # set by ``leave``: the process group is gone, this process goes on by itself


def world_size() -> int:
    """The number of processes launched together (1 for a plain process, or once they have left)."""
    return 1 if _alone else int(os.environ.get("WORLD_SIZE", "1"))


def has_left() -> bool:
    """True once this process has left its group (``accelerate`` would still see the launcher's processes)."""
    return _alone


def is_main() -> bool:
    """False on all but one of the launched processes (also after they left: rank 0 goes on, the others stop)."""
    return int(os.environ.get("WORLD_SIZE", "1")) == 1 or int(os.environ.get("RANK", "0")) == 0


def join(device: str) -> None:
    """Join the launched processes' group for training on ``device`` ("cpu": gloo; else nccl on the GPUs)."""
    if world_size() > 1:
        _state(cpu=device == "cpu")


def _state(cpu: bool | None = None):
    import torch
    from accelerate import PartialState

    # the first call fixes the group's kind (accelerate shares its state): on a machine without GPUs, gloo
    return PartialState(cpu=(not torch.cuda.is_available()) if cpu is None else cpu)


def share(value: Any) -> Any:
    """The main process's ``value``, on every process."""
    if world_size() == 1:
        return value
    from accelerate.utils import broadcast_object_list

    _state()
    return broadcast_object_list([value], from_process=0)[0]


def barrier() -> None:
    if world_size() > 1:
        _state().wait_for_everyone()


def leave() -> None:
    """All processes leave the group together (one exiting while another still talks to it aborts gloo)."""
    global _alone
    if world_size() == 1:
        return
    import torch.distributed as dist

    barrier()
    if dist.is_initialized():
        dist.destroy_process_group()
    _alone = True
