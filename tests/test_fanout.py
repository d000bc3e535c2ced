"""Fan-out over submitit's local executor, unit locks, Slurm parameters, and two processes on one run."""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from radiobench.fanout import ExecutorConfig, Unit, fan_out, unit_states, units_of
from radiobench.leaderboard import collect, render
from radiobench.runner import RunConfig, run
from radiobench.store import HELD_FILE, lock_holder, read_json, unit_lock

GENS = ["pixel_floor", "cvae"]
METRICS = ["mean_w1", "pixel_w1"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "RADIOBENCH_PROGRESS": "0"}


def config(out: Path, **kw) -> RunConfig:
    return RunConfig(**{"generators": GENS, "dataset": "synthetic", "out": out, "metrics": METRICS,
                        "progress": False, **kw})


def values(out: Path) -> dict[str, float]:
    paths = sorted(out.glob("*/seed-*/metrics/*.json"))
    return {str(p.relative_to(out)): read_json(p)["result"]["value"] for p in paths}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "radiobench.cli", *args]


RUN_ARGS = ["run", "--generators", ",".join(GENS), "--dataset", "synthetic", "--metrics", ",".join(METRICS), "-q"]


def table(out: Path) -> list[dict[str, str]]:
    """The leaderboard's rows without the measured times (train_minutes, sample_seconds_per_image)."""
    rows = csv.DictReader(io.StringIO(render(collect([out]), "csv")))
    return [{k: v for k, v in r.items() if not k.startswith(("train_minutes", "sample_seconds"))} for r in rows]


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("serial")
    run(config(out))
    return out


# -- locks -------------------------------------------------------------------------------------------
def test_unit_lock_excludes_others_and_dies_with_its_holder(tmp_path):
    code = (f"from radiobench.store import unit_lock; import time\n"
            f"with unit_lock({str(tmp_path)!r}):\n    print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert lock_holder(tmp_path)["pid"] == holder.pid
        with unit_lock(tmp_path, wait=False) as mine:
            assert not mine
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert lock_holder(tmp_path) is None  # the kernel released the flock with the process
    with unit_lock(tmp_path, wait=False) as mine:
        assert mine


def test_exclusive_lock_takes_over_stale_holders_only(tmp_path, monkeypatch):
    """Where flock is not available: a held file of a dead process, or not refreshed, is stale."""
    monkeypatch.setenv("RADIOBENCH_LOCK", "exclusive")
    gone = subprocess.Popen(["true"])
    gone.wait()
    held = tmp_path / HELD_FILE
    held.write_text(json.dumps({"host": socket.gethostname(), "pid": gone.pid, "started": time.time()}))
    with unit_lock(tmp_path, wait=False) as mine:
        assert mine and json.loads(held.read_text())["pid"] == os.getpid()
    assert not held.exists()
    held.write_text(json.dumps({"host": "elsewhere", "pid": 1, "started": time.time()}))  # live, another host
    with unit_lock(tmp_path, wait=False, stale_after=60) as mine:
        assert not mine
    assert lock_holder(tmp_path, stale_after=60)["host"] == "elsewhere"
    os.utime(held, (time.time() - 120, time.time() - 120))  # no heartbeat for 2 min
    with unit_lock(tmp_path, wait=False, stale_after=60) as mine:
        assert mine


# -- executors ---------------------------------------------------------------------------------------
def test_slurm_job_arrays_carry_the_requested_resources(tmp_path, monkeypatch):
    """The sbatch script submitit would submit (no scheduler here: an ``srun`` on PATH lets it build one)."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "bin" / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    ex = ExecutorConfig(kind="slurm", partition="gpu", gpus_per_job=2, time_min=90, array_parallelism=3,
                        cpus_per_job=8).checked().executor(tmp_path)
    params = ex._executor.parameters
    assert (params["partition"], params["gpus_per_node"], params["time"], params["array_parallelism"],
            params["cpus_per_task"]) == ("gpu", 2, 90, 3, 8)
    text = ex._executor._make_submission_file_text("python -m x", "uid")
    assert "#SBATCH --partition=gpu" in text and "#SBATCH --gpus-per-node=2" in text and "#SBATCH --time=90" in text
    cfg = tmp_path / "slurm.toml"
    cfg.write_text('[executor]\nkind = "slurm"\npartition = "a100"\ngpus_per_job = 1\n')
    assert ExecutorConfig.from_file(cfg, time_min=30).partition == "a100"
    assert ExecutorConfig.from_file(cfg, time_min=30).time_min == 30
    cfg.write_text('partition = "a100"\nbogus = 1\n')
    from radiobench.types import InputError
    with pytest.raises(InputError, match="bogus"):
        ExecutorConfig.from_file(cfg)


def test_units_of_a_run():
    stages = units_of(config(Path("x"), seeds=[0, 1]))
    assert [u.label for u in stages[0]] == ["reference", "fit:pixel_floor/seed-0", "fit:cvae/seed-0",
                                            "fit:pixel_floor/seed-1", "fit:cvae/seed-1"]
    assert Unit("fit", "cvae", 1).config(config(Path("x"))).metrics == []


def test_two_local_workers_give_the_serial_values_and_resubmission_skips(serial, tmp_path):
    summary = fan_out(config(tmp_path), ExecutorConfig(kind="local", jobs=2))
    assert not summary.failed and not summary.crashed and len(summary.submitted) == 5
    assert values(tmp_path) == values(serial) and len(values(serial)) == 6
    assert {r["state"] for r in unit_states(tmp_path)} == {"done"}
    again = fan_out(config(tmp_path), ExecutorConfig(kind="local", jobs=2))
    assert again.submitted == [] and len(again.skipped) == 5


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (the driver starts submitit's controller, which starts the workers)."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [pid]
    while todo:
        kids = [p for p, pp in parent.items() if pp == todo[-1]]
        todo.pop()
        found += kids
        todo += kids
    return found


def test_a_killed_submission_is_finished_by_resubmitting_without_redoing_finished_units(tmp_path):
    """SIGKILL the driver and its workers while one trains the slow unit (a node dying): re-submitting the same
    command resumes that unit from its training checkpoint and leaves finished units' files untouched."""
    opts = ["--generator-option", "cvae.steps=4000", "--generator-option", "cvae.checkpoint_every=200"]
    driver = subprocess.Popen(cli(*RUN_ARGS, "--out", str(tmp_path), "--executor", "local", "--jobs", "2", *opts),
                              env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    claim = tmp_path / ".fanout" / "claims" / "fit_cvae_seed-0"
    done = [tmp_path / "pixel_floor/seed-0/samples.json", tmp_path / "reference/seed-0/metrics/pixel_w1.json",
            tmp_path / "cvae/seed-0/train/train_state.pt"]
    deadline = time.time() + 400
    while time.time() < deadline and not ((holder := lock_holder(claim)) and all(p.exists() for p in done)):
        time.sleep(0.2)
    workers = descendants(driver.pid)
    assert holder and holder["pid"] in workers, "the cvae unit never started"
    for pid in [driver.pid, *workers]:
        os.kill(pid, signal.SIGKILL)
    driver.wait()
    assert not (tmp_path / "cvae/seed-0/checkpoint/fit.json").exists()  # killed mid-unit
    states = {r["unit"]: r["state"] for r in unit_states(tmp_path)}
    assert states["fit:pixel_floor/seed-0"] == states["reference"] == "done"
    assert states["fit:cvae/seed-0"] == "failed" and states["evaluate:cvae/seed-0"] == "pending"
    finished = {p: p.stat().st_mtime_ns for d in ("pixel_floor/seed-0/checkpoint", "reference") for p in
                (tmp_path / d).rglob("*.*") if p.is_file() and not p.name.startswith(".")}
    cfg = config(tmp_path, generator_options={"cvae": {"steps": 4000, "checkpoint_every": 200}})
    again = fan_out(cfg, ExecutorConfig(kind="local", jobs=2))
    assert not again.failed and not again.crashed
    assert {"fit:pixel_floor/seed-0", "reference"} <= set(again.skipped) and "fit:cvae/seed-0" in again.submitted
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # nothing finished was redone
    assert {r["state"] for r in unit_states(tmp_path)} == {"done"}
    info = read_json(tmp_path / "cvae/seed-0/checkpoint/config.json")["train_info"]
    assert info["start_step"] > 0 and info["steps_done"] == 4000  # resumed, not restarted


def test_two_runs_started_at_once_share_the_directory(serial, tmp_path):
    procs = [subprocess.Popen(cli(*RUN_ARGS, "--out", str(tmp_path)), env=ENV, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    logs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    trained = [line for text in logs for line in text.splitlines() if ": training (preset" in line]
    assert sorted(trained) == sorted(f"radiobench: {g}/seed-0: training (preset smoke)" for g in GENS), trained
    assert table(tmp_path) == table(serial)
    assert values(tmp_path) == values(serial)


# -- multi-process training through accelerate -------------------------------------------------------
FIT = '''
import sys, numpy as np, torch
from radiobench.registry import registry
from safetensors.numpy import save_file
out, crash_at = sys.argv[1], int(sys.argv[2])
rank = int(__import__("os").environ.get("RANK", "0"))
budget = {"minutes": None, "rank1-late": 1e-9 if rank == 1 else 60.0}[sys.argv[3]]  # rank 1 out of time at once
ds = registry.dataset("synthetic")(resolution=32)
train = ds.load(ds.train_split).subset(np.arange(64))
gen = registry.generator("cvae")(preset="smoke", device="cpu", steps=20, batch_size=16, checkpoint_every=5,
                                  max_minutes=budget)
if crash_at >= 0:
    step_once = gen.train_step
    def train_step(step, *args):
        if step == crash_at:
            raise KeyboardInterrupt
        return step_once(step, *args)
    gen.train_step = train_step
gen.fit(train, seed=3, workdir=out + "-work")
run = gen.run
net = next(iter(gen.train_nets.values()))
info = f"{run.rank} {run.world_size} {type(net).__name__} {gen.train_info['start_step']} {gen.train_info['steps_done']}"
state = {f"{k}.{n}": p.detach().numpy() for k, m in gen.nets.items() for n, p in m.state_dict().items()}
save_file(state, f"{out}-rank{run.rank}.safetensors", metadata={"info": info})
if run.world_size > 1:  # leave together: a rank exiting while the other still talks to it aborts gloo
    run.accelerator.wait_for_everyone()
    torch.distributed.destroy_process_group()
'''


def test_shards_partition_each_batch():
    from radiobench.training import batch_indices, shard_indices
    from radiobench.types import InputError

    for step in range(5):
        whole = batch_indices(64, 16, 3, step)
        shards = [shard_indices(64, 16, 3, step, r, 2) for r in range(2)]
        assert [len(x) for x in shards] == [8, 8]
        assert sorted(np.concatenate(shards)) == sorted(whole)  # the two shards are the batch, nothing twice
    np.testing.assert_array_equal(shard_indices(64, 16, 3, 0, 0, 1), batch_indices(64, 16, 3, 0))
    with pytest.raises(InputError, match="divisible by 3"):
        shard_indices(64, 16, 3, 0, 0, 3)


def test_two_gloo_processes_share_each_batch_and_resume_bit_identically(tmp_path):
    """torchrun (the launcher ``accelerate launch`` uses) with 2 CPU processes: accelerate wraps the networks in
    DistributedDataParallel over gloo, each rank trains on its half of every batch with its own noise, and the
    all-reduced gradients keep the ranks' weights equal. A fit killed after its step-15 checkpoint and started
    again ends with the weights of the uninterrupted one (each rank's noise stream is in the checkpoint); a
    single process trains the same configuration to a similar loss."""
    from safetensors import safe_open

    script = tmp_path / "fit.py"
    script.write_text(FIT)
    port = 29500 + os.getpid() % 1000

    def torchrun(name: str, crash_at: int = -1, nproc: int = 2, port: int = port,
                 budget: str = "minutes") -> subprocess.Popen:
        launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port",
                  str(port)] if nproc > 1 else [sys.executable]
        return subprocess.Popen([*launch, str(script), str(tmp_path / name), str(crash_at), budget], env=ENV,
                                stderr=subprocess.PIPE, text=True)

    procs = [torchrun("multi"), torchrun("single", nproc=1), torchrun("killed", crash_at=17, port=port + 1),
             torchrun("late", port=port + 3, budget="rank1-late")]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode == 0 for p in procs] == [True, True, False, True], errs
    assert "KeyboardInterrupt" in errs[2]
    again = torchrun("killed", port=port + 2)  # a fresh port: the killed launch may still hold its own
    assert again.wait(timeout=600) == 0, again.communicate()[1]

    def weights(name):
        with safe_open(str(tmp_path / f"{name}.safetensors"), "np") as fh:
            return fh.metadata()["info"], {k: fh.get_tensor(k) for k in fh.keys()}

    runs = {n: weights(n) for n in ("multi-rank0", "multi-rank1", "single-rank0", "killed-rank0", "killed-rank1")}
    assert [runs[n][0] for n in runs] == ["0 2 DistributedDataParallel 0 20", "1 2 DistributedDataParallel 0 20",
                                          "0 1 CVAENet 0 20", "0 2 DistributedDataParallel 15 20",
                                          "1 2 DistributedDataParallel 15 20"]
    # one process out of its wall-clock budget stops both after the same (first) step: none waits for the other
    assert [weights(f"late-rank{r}")[0] for r in (0, 1)] == [f"{r} 2 DistributedDataParallel 0 1" for r in (0, 1)]
    w0, w1, w, k0, k1 = (runs[n][1] for n in runs)
    assert w.keys() == w0.keys() == w1.keys() and len(w) > 4
    for k in w:
        assert np.abs(w0[k] - w1[k]).max() <= 1e-6, k  # the all-reduce keeps the ranks in step
        assert np.abs(k0[k] - w0[k]).max() <= 1e-6 and np.abs(k1[k] - w0[k]).max() <= 1e-6, k
    assert max(np.abs(w0[k] - w[k]).max() for k in w) > 1e-4  # other batches per process than one process's
    losses = {n: [float(r["loss"]) for r in csv.DictReader(open(tmp_path / f"{n}-work" / "losses.csv"))]
              for n in ("multi", "single")}
    assert len(losses["multi"]) == len(losses["single"]) == 20
    assert 0.5 < np.mean(losses["multi"][-5:]) / np.mean(losses["single"][-5:]) < 2.0


def test_cli_status_and_fan_out_flags(serial, tmp_path, capsys):
    from radiobench.cli import main

    assert main(["status", str(serial)]) == 0
    out = capsys.readouterr().out
    assert "fit:cvae/seed-0              done" in out and out.strip().endswith("5 done, 0 running, 0 failed, 0 pending")
    assert main([*RUN_ARGS, "--out", str(tmp_path / "r"), "--jobs", "2"]) == 2
    assert "needs --executor" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_radiobench_run_launched_as_two_processes(tmp_path):
    """``radiobench run`` under torchrun (as ``accelerate launch`` starts it) with 2 CPU processes: they train the
    unit together (one data-parallel fit), leave the process group together, and the main process samples and
    scores alone. A second launch reuses everything; a single-process run reuses the checkpoint too."""
    out = tmp_path / "launched"
    port = 29500 + (os.getpid() + 7) % 1000

    def launch(port: int) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                               str(port), "-m", "radiobench.cli", "run", "--generators", "cvae", "--dataset",
                               "synthetic", "--metrics", "mean_w1", "--no-reference", "--generator-option",
                               "cvae.steps=12", "--out", str(out), "-q"], env=ENV, capture_output=True, text=True,
                              timeout=600)

    first = launch(port)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("run directory:") == 1  # the main process reports; the other left after training
    assert "done 3, reused 0" in first.stdout  # fit, samples, mean_w1
    gdir = out / "cvae" / "seed-0"
    train_info = read_json(gdir / "checkpoint" / "config.json")["train_info"]
    assert train_info["processes"] == 2 and train_info["steps_done"] == 12
    assert len(list(csv.DictReader(open(gdir / "train" / "losses.csv")))) == 12
    assert read_json(gdir / "metrics" / "mean_w1.json")["status"] == "ok"
    fit = (gdir / "checkpoint" / "fit.json").read_bytes()
    again = launch(port + 1)
    assert again.returncode == 0 and "done 0, reused 3" in again.stdout, again.stderr
    alone = subprocess.run(cli("run", "--generators", "cvae", "--dataset", "synthetic", "--metrics", "mean_w1",
                               "--no-reference", "--generator-option", "cvae.steps=12", "--out", str(out), "-q"),
                           env=ENV, capture_output=True, text=True, timeout=600)
    assert alone.returncode == 0 and "done 0, reused 3" in alone.stdout, alone.stderr
    assert (gdir / "checkpoint" / "fit.json").read_bytes() == fit
