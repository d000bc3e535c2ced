"""Shared training loop machinery for generators and evaluator networks.

``TrainingRun`` places modules on the device (through ``accelerate`` when it is installed, so the
same code runs on CPU, one GPU or several), autocasts to bf16 when asked, writes a resumable
checkpoint every few steps (``torch.save`` of tensors only, read back with ``weights_only=True``),
appends losses to ``losses.csv``, shows a progress bar and stops at a wall-clock budget.
"""
from __future__ import annotations

import contextlib
import copy
import csv
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import distributed
from .progress import progress_bar
from .store import atomic_path
from .types import InputError

log = logging.getLogger("radiobench")

__all__ = ["TrainingRun", "EMA", "batch_indices", "shard_indices", "warn_if_emulated_bf16"]


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """Minibatch indices for ``step``: a pure function of (seed, step), so a resumed run sees the same batches."""
    rng = np.random.default_rng([int(seed), int(step)])
    return rng.choice(n, size=batch_size, replace=n < batch_size)


def shard_indices(n: int, batch_size: int, seed: int, step: int, rank: int, world: int) -> np.ndarray:
    """Process ``rank``'s share of step ``step``'s minibatch among ``world`` data-parallel processes: every
    ``world``-th index of ``batch_indices`` from position ``rank``, so the shards partition the batch."""
    if batch_size % world:
        raise InputError(f"a batch of {batch_size} cannot be shared evenly by {world} processes: choose a "
                         f"batch_size divisible by {world}")
    return batch_indices(n, batch_size, seed, step)[rank::world]


_warned_bf16: set[str] = set()


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """Whether the CPU has bf16 instructions (avx512_bf16, amx_bf16); None where its flags cannot be read."""
    try:
        text = cpuinfo.read_text()
    except OSError:  # not Linux: unknown
        return None
    flags = {f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()}
    return bool(flags & {"avx512_bf16", "amx_bf16"}) if flags else None


def warn_if_emulated_bf16(device: torch.device | str, what: str) -> None:
    """Warn (once per ``what``) when bf16 is asked of a CPU without bf16 instructions (x86 lacking avx512_bf16 and
    amx_bf16): torch emulates it there, measured 12× (EDM) to 35× (CVAE) slower than float32 per training step
    on an AVX2-only AMD EPYC (benchmarks/README.md, "bf16 on CPUs without it")."""
    if torch.device(device).type != "cpu" or what in _warned_bf16:
        return
    _warned_bf16.add(what)  # the CPU's flags are read once per ``what``, whatever they say
    if cpu_has_bf16() is False:
        log.warning("%s: bf16 on this CPU is emulated (no avx512_bf16/amx_bf16) and many times slower than float32; "
                    "a wall-clock budget (max_minutes) may stop it early. Set its precision option to float32 "
                    "(e.g. mixed_precision=no) for speed, at the cost of another configuration", what)


class EMA:
    """Exponential moving average of a module's weights: theta_ema <- beta theta_ema + (1 - beta) theta."""

    def __init__(self, module: torch.nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        for p_ema, p in zip(self.module.parameters(), module.parameters()):
            p_ema.lerp_(p.detach().to(p_ema.dtype), 1.0 - self.decay)
        for b_ema, b in zip(self.module.buffers(), module.buffers()):
            b_ema.copy_(b)

    def state_dict(self) -> dict[str, Any]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state)


class TrainingRun:
    """One resumable training run.

    Usage::

        run = TrainingRun(workdir, steps=1000, seed=0, mixed_precision="bf16")
        model, opt = run.prepare(model, opt)
        start = run.resume(model=model, opt=opt, ema=ema)
        for step in run:                      # from ``start`` to ``steps``
            with run.autocast():
                loss = ...
            run.optimizer_step(opt, loss)
            run.log(step, loss=loss.item())
            run.maybe_checkpoint(step, model=model, opt=opt, ema=ema)
    """

    def __init__(
        self,
        workdir: Path | None,
        *,
        steps: int,
        seed: int,
        mixed_precision: str = "no",
        checkpoint_every: int = 500,
        max_seconds: float | None = None,
        desc: str = "train",
        device: str | None = None,
        progress: bool = True,
    ):
        self.workdir = Path(workdir) if workdir is not None else None
        self.total_steps = int(steps)
        self.seed = int(seed)
        self.mixed_precision = mixed_precision
        self.checkpoint_every = max(1, int(checkpoint_every))
        self.max_seconds = max_seconds
        self.desc = desc
        self.start_step = 0
        self.elapsed_before = 0.0  # training seconds spent before a resume
        self._t0 = time.perf_counter()
        self._log_rows: list[dict[str, Any]] = []
        self.stopped_early = False
        self.progress = progress
        self.accelerator = None
        if not distributed.has_left():  # after the launched processes left together, each trains by itself
            with contextlib.suppress(ImportError):  # accelerate is optional: plain single-device training
                from accelerate import Accelerator

                cpu = device == "cpu" or (device is None and not torch.cuda.is_available())
                self.accelerator = Accelerator(cpu=cpu, mixed_precision="no")
        self.device = self.accelerator.device if self.accelerator is not None else \
            torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if mixed_precision == "bf16":
            warn_if_emulated_bf16(self.device, desc)
        # data-parallel processes draw their own noise: rank 0 (and a single process) from the seed itself
        rank_seed = np.random.SeedSequence([self.seed, self.rank]).generate_state(1)[0] >> 1 if self.rank else self.seed
        torch.manual_seed(int(rank_seed))

    @property
    def rank(self) -> int:
        """This process's index among the data-parallel processes (0 when there is one)."""
        return 0 if self.accelerator is None else int(self.accelerator.process_index)

    @property
    def world_size(self) -> int:
        """The number of data-parallel processes (``accelerate launch``, torchrun; 1 otherwise)."""
        return 1 if self.accelerator is None else int(self.accelerator.num_processes)

    def batch(self, n: int, batch_size: int, step: int) -> np.ndarray:
        """This process's share of step ``step``'s minibatch of ``batch_size`` (``shard_indices``): several
        processes train on disjoint parts of one batch and average their gradients, as one process on it."""
        return shard_indices(n, batch_size, self.seed, step, self.rank, self.world_size)

    @property
    def is_main_process(self) -> bool:
        """False on all but one of several data-parallel processes (``accelerate launch``, torchrun)."""
        return self.accelerator is None or self.accelerator.is_main_process

    # -- devices and precision --------------------------------------------------------------
    def prepare(self, *objs):
        if self.accelerator is not None:
            return self.accelerator.prepare(*objs)
        moved = [o.to(self.device) if isinstance(o, torch.nn.Module) else o for o in objs]
        return moved[0] if len(moved) == 1 else tuple(moved)

    def unwrap(self, module: torch.nn.Module) -> torch.nn.Module:
        return self.accelerator.unwrap_model(module) if self.accelerator is not None else module

    def autocast(self):
        if self.mixed_precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        if self.accelerator is not None:
            self.accelerator.backward(loss)
        else:
            loss.backward()

    def optimizer_step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """One update: clear ``optimizer``'s gradients, backpropagate ``loss`` and step."""
        optimizer.zero_grad(set_to_none=True)
        self.backward(loss)
        optimizer.step()

    # -- checkpoints ----------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.workdir is None else self.workdir / "train_state.pt"

    def resume(self, **stateful: Any) -> int:
        """Load the last checkpoint (if any) into the given objects; return the step to start from."""
        path = self.checkpoint_path
        if path is None or not path.exists():
            return 0
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)  # load_state_dict places each part
        except Exception as err:  # truncated or garbled: start over rather than fail forever
            return self._discard(path, f"it does not read back ({type(err).__name__}: {err})")
        missing = sorted(set(stateful) - set(state))
        if missing:  # e.g. written by an older version that named a network otherwise
            return self._discard(path, f"it holds no {missing} (it has {sorted(state)})")
        for name, obj in stateful.items():
            target = self.unwrap(obj) if isinstance(obj, torch.nn.Module) else obj
            target.load_state_dict(state[name])
        self.start_step = int(state["step"])
        self.elapsed_before = float(state.get("elapsed", 0.0))
        ranks = state.get("rng_ranks")
        if ranks is not None and len(ranks) == self.world_size:  # several processes: each its own stream
            torch.set_rng_state(ranks[self.rank].clone())  # a copy: set_rng_state misreads a view (segfault)
        elif "rng" in state and self.world_size == 1:
            torch.set_rng_state(state["rng"].cpu())
        else:
            log.warning("%s was written by %s process(es), resumed by %d: the noise streams start afresh",
                        path, len(ranks) if ranks is not None else 1, self.world_size)
        if "cuda_rng" in state and torch.cuda.is_available() and self.world_size == 1:
            torch.cuda.set_rng_state_all([t.cpu() for t in state["cuda_rng"]])
        self._reload_log()
        return self.start_step

    def _discard(self, path: Path, why: str) -> int:
        """Set an unusable training state aside (``*.discarded``) and start from step 0."""
        log.warning("%s cannot be resumed: %s; training from step 0 (the old state is kept as %s.discarded)",
                    path, why, path.name)
        if self.is_main_process:  # the others of several processes find the same and start over with it
            os.replace(path, path.with_name(path.name + ".discarded"))
            if self.log_path is not None:
                self.log_path.unlink(missing_ok=True)
        return 0

    def checkpoint(self, step: int, **stateful: Any) -> None:
        """Write a checkpoint meaning "steps < step are done"."""
        path = self.checkpoint_path
        ranks = None
        if path is not None and self.world_size > 1:  # every process's noise stream (a collective call)
            from accelerate.utils import gather_object

            ranks = gather_object([torch.get_rng_state()])
        if path is None or not self.is_main_process:  # several processes (accelerate launch): one writes
            return
        state: dict[str, Any] = {"step": int(step), "elapsed": self.elapsed, "rng": torch.get_rng_state()}
        if ranks is not None:
            state["rng_ranks"] = torch.stack(ranks)
        if torch.cuda.is_available():  # the device's generators too: a resumed GPU fit continues their streams
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        for name, obj in stateful.items():
            target = self.unwrap(obj) if isinstance(obj, torch.nn.Module) else obj
            state[name] = target.state_dict()
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
        self._flush_log()

    def maybe_checkpoint(self, step: int, **stateful: Any) -> None:
        done = step + 1
        if done % self.checkpoint_every == 0 or done >= self.total_steps or self.out_of_time():
            self.checkpoint(done, **stateful)

    # -- loop -----------------------------------------------------------------------------
    @property
    def elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self._t0)

    def out_of_time(self) -> bool:
        """The wall-clock budget is spent; with several processes, on any of them (all stop at one step)."""
        late = self.max_seconds is not None and self.elapsed >= self.max_seconds
        if self.max_seconds is not None and self.world_size > 1:  # a collective call: every process, every step
            flag = torch.tensor([float(late)], device=self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            late = bool(flag.item())
        return late

    def __iter__(self) -> Iterator[int]:
        self._t0 = time.perf_counter()
        bar = progress_bar(
            total=self.total_steps, initial=self.start_step, desc=self.desc, unit="step", disable=not self.progress
        )
        step = self.start_step
        try:
            while step < self.total_steps:
                yield step
                bar.update(1)
                if self._log_rows:
                    last = self._log_rows[-1]
                    bar.set_postfix({k: f"{v:.4g}" for k, v in last.items() if k != "step" and isinstance(v, float)})
                step += 1
                if self.out_of_time():
                    self.stopped_early = step < self.total_steps
                    break
        finally:
            bar.close()
            self._flush_log()
        self.steps_done = step

    # -- loss log -------------------------------------------------------------------------
    def log(self, step: int, **values: float) -> None:
        self._log_rows.append({"step": int(step), **{k: float(v) for k, v in values.items()}})

    @property
    def log_path(self) -> Path | None:
        return None if self.workdir is None else self.workdir / "losses.csv"

    def history(self) -> list[dict[str, Any]]:
        return list(self._log_rows)

    def _flush_log(self) -> None:
        path = self.log_path
        if path is None or not self._log_rows or not self.is_main_process:
            return
        keys: list[str] = []
        for r in self._log_rows:
            keys.extend(k for k in r if k not in keys)
        with atomic_path(path) as tmp:
            with open(tmp, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=keys)
                w.writeheader()
                w.writerows(self._log_rows)

    def _reload_log(self) -> None:
        path = self.log_path
        if path is None or not path.exists():
            return
        with open(path, newline="") as fh:
            rows = [
                {k: (int(v) if k == "step" else float(v)) for k, v in r.items() if v not in ("", None)}
                for r in csv.DictReader(fh)
            ]
        self._log_rows = [r for r in rows if r["step"] < self.start_step]
