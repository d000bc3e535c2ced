"""Fan a run out over local processes or a Slurm cluster with submitit, the run directory the single source
of truth.

A run is split into units, each an ordinary ``runner.run`` restricted to it (so idempotent and resumable
through the run store, and checked by the same chain of custody):

    reference            the real-vs-real row; trains (or loads) every evaluator network the metrics use
    fit:G/seed-S         fit + sample one generator at one seed (``metrics=[]``)
    evaluate:G/seed-S    every metric on that sample set (the checkpoint and samples are reused)

Stage 1 (``reference`` and the fits, independent of each other) and stage 2 (the evaluations, which need
both) are each one submitit job array. A unit whose records exist and custody accepts is not submitted
again; one that another process is working on is left to it (``.fanout/claims``: a unit lock per unit,
``store.unit_lock``), and the runner itself holds the unit lock of ``G/seed-S`` around its fit, sampling and
evaluation, so two processes on one directory never train the same unit twice.

Executors: ``local`` runs ``--jobs N`` workers as real subprocesses (submitit's LocalExecutor; its
DebugExecutor runs in-process and parallelises nothing), each taking the stage's units it can claim in turn
(worker i starts at unit i) and, once none is left, waiting on those others held so that a worker that died
has its unit finished by another. ``slurm`` submits one array task per unit (partition, GPUs per task,
time limit, array parallelism). Logs and pickles live in ``RUN/.fanout/jobs``.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from . import custody
from .interfaces import MetricContext, default_cache_dir, default_device
from .presets import get_preset
from .registry import REFERENCE_ROW, registry
from .runner import REFERENCE_SEED, RunConfig, reference_set, run, stale_reason
from .store import jsonable, lock_holder, read_json, unit_lock, write_json
from .types import InputError

__all__ = ["Unit", "ExecutorConfig", "units_of", "fan_out", "unit_states", "work"]

log = logging.getLogger("radiobench")
FANOUT_DIR = ".fanout"


@dataclass(frozen=True)
class Unit:
    kind: str  # "reference" | "fit" | "evaluate"
    generator: str = ""
    seed: int = REFERENCE_SEED

    @property
    def row(self) -> str:
        return f"{REFERENCE_ROW}/seed-{REFERENCE_SEED}" if self.kind == "reference" else \
            f"{self.generator}/seed-{self.seed}"

    @property
    def label(self) -> str:
        return self.kind if self.kind == "reference" else f"{self.kind}:{self.row}"

    @property
    def slug(self) -> str:
        return self.label.replace("/", "_").replace(":", "_")

    def config(self, base: RunConfig) -> RunConfig:
        """``base`` restricted to this unit."""
        if self.kind == "reference":
            return replace(base, generators=[], generator_options={}, reference=True)
        opts = {self.generator: base.generator_options[self.generator]} \
            if self.generator in base.generator_options else {}
        fit = self.kind == "fit"
        return replace(base, generators=[self.generator], seeds=[self.seed], generator_options=opts,
                       reference=False, metrics=[] if fit else base.metrics,
                       metric_options={} if fit else base.metric_options)


def units_of(config: RunConfig) -> list[list[Unit]]:
    """The two stages of ``config``: [reference?, fits], [evaluations]."""
    pairs = [(g, s) for s in config.seeds for g in config.generators]
    real_row = config.reference and registry.dataset(config.dataset).task == "generation"  # as runner.run
    first = ([Unit("reference")] if real_row else []) + [Unit("fit", g, s) for g, s in pairs]
    return [first, [Unit("evaluate", g, s) for g, s in pairs]]


@dataclass
class ExecutorConfig:
    """Where the units run: ``local`` (``jobs`` worker processes) or ``slurm`` (one array task per unit)."""
    kind: str = "local"
    jobs: int = 2
    partition: str | None = None
    gpus_per_job: int = 0
    cpus_per_job: int | None = None
    mem_gb: float | None = None
    time_min: int = 24 * 60
    array_parallelism: int = 32
    account: str | None = None
    qos: str | None = None
    folder: str | None = None  # submitit's logs and pickles (default RUN/.fanout/jobs; on Slurm a shared FS)

    @classmethod
    def from_file(cls, path: str | os.PathLike, **overrides: Any) -> ExecutorConfig:
        """Read the keys of this class from a TOML or JSON file (``overrides``, the flags given, win)."""
        path = Path(path)
        try:
            if path.suffix == ".toml":
                try:
                    import tomllib  # Python >= 3.11
                except ImportError:
                    raise InputError(f"executor config {path}: TOML needs Python 3.11; write it as JSON") from None
                data = tomllib.loads(path.read_text())
            else:
                data = read_json(path)
        except (OSError, ValueError) as err:
            raise InputError(f"executor config {path}: {err}") from None
        data = data.get("executor", data) if isinstance(data, dict) else data
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) - known:
            raise InputError(f"executor config {path}: unknown keys {sorted(set(data) - known)}; "
                             f"known: {sorted(known)}")
        return cls(**{**data, **{k: v for k, v in overrides.items() if v is not None}}).checked()

    def checked(self) -> ExecutorConfig:
        if self.kind not in ("local", "slurm"):
            raise InputError(f"--executor must be local or slurm, not {self.kind!r}")
        for name in ("jobs", "time_min", "array_parallelism"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InputError(f"{name} must be a whole number >= 1; got {getattr(self, name)!r}")
        if not isinstance(self.gpus_per_job, int) or self.gpus_per_job < 0:
            raise InputError(f"gpus_per_job must be a whole number >= 0; got {self.gpus_per_job!r}")
        return self

    def executor(self, folder: Path):
        """The submitit executor (AutoExecutor: LocalExecutor runs real subprocesses, one per job)."""
        import submitit

        ex = submitit.AutoExecutor(folder=folder / "%j", cluster=self.kind)
        params: dict[str, Any] = {"timeout_min": self.time_min, "name": "radiobench"}
        if self.kind == "slurm":
            params.update(gpus_per_node=self.gpus_per_job, slurm_array_parallelism=self.array_parallelism,
                          tasks_per_node=1, nodes=1)
            extra = {"partition": self.partition, "account": self.account, "qos": self.qos}
            params.update({f"slurm_{k}": v for k, v in extra.items() if v is not None})
            if self.cpus_per_job:
                params["cpus_per_task"] = self.cpus_per_job
            if self.mem_gb:
                params["mem_gb"] = self.mem_gb
        ex.update_parameters(**params)
        return ex


@dataclass
class FanoutSummary:
    out: Path
    submitted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # finished before this submission
    failed: list[str] = field(default_factory=list)
    crashed: list[str] = field(default_factory=list)  # jobs that died without a result (their logs)


# -- what is finished: records present and accepted by custody -------------------------------------
class _Custody:
    """Custody checks of a run's units, with the dataset loaded once."""

    def __init__(self, config: RunConfig):
        from .runner import check_config

        self.config = config
        self.device = config.device or default_device()
        self.preset = get_preset(config.preset)
        self.gen_classes, self.metrics, self.dataset = check_config(config, self.preset, self.device)
        self._loaded: dict[str, Any] = {}

    def _data(self) -> dict[str, Any]:
        if not self._loaded:
            ds = self.dataset
            train, reference = ds.load(ds.train_split), ds.load(ds.reference_split)
            fp = ds.fingerprint()
            self._loaded = {"train": train, "reference": reference, "context": MetricContext(
                dataset=self.config.dataset, dataset_fingerprint=fp, train=train, preset=self.preset,
                seed=REFERENCE_SEED, device=self.device, cache_dir=default_cache_dir(), memo={})}
        return self._loaded

    def finished(self, unit: Unit) -> bool:
        gdir = Path(self.config.out) / unit.row
        if unit.kind == "reference":
            d = self._data()
            real, _ = reference_set(self.dataset, d["train"], d["reference"])
            inputs = {"real_sha256": custody.set_sha256(real), "reference_sha256": custody.set_sha256(d["reference"])}
            return self._metrics_accepted(gdir, inputs)
        info = self._samples(unit, gdir)
        if info is None:
            return False
        return unit.kind == "fit" or self._metrics_accepted(gdir, custody.sample_inputs(info))

    def _samples(self, unit: Unit, gdir: Path) -> dict[str, Any] | None:
        """samples.json when the checkpoint and the sample set are the ones this run would use."""
        gen = self.gen_classes[unit.generator](preset=self.config.preset, device=self.device,
                                               **self.config.generator_options.get(unit.generator, {}))
        ckpt = gdir / "checkpoint"
        fit = custody.record(ckpt / "fit.json", config=dict, cost=dict)
        if fit is None or jsonable(gen.training_config(fit["config"])) != jsonable(gen.training_config()):
            return None
        sha = custody.checkpoint_sha256(ckpt)
        if fit.get("checkpoint_sha256") != sha or not (gdir / "samples.npz").exists():
            return None
        info = custody.record(gdir / "samples.json")
        if info is None or custody.resample_reason(info, jsonable(gen.sampling_config()), sha,
                                                   gdir / "samples.npz") is not None:
            return None
        return info

    def _metrics_accepted(self, rowdir: Path, inputs: dict[str, str]) -> bool:
        context = self._data()["context"]
        for name, metric in self.metrics.items():
            rec = custody.record(rowdir / "metrics" / f"{name}.json", status=str)
            if rec is None or rec["status"] not in ("ok", "skipped") or stale_reason(rec, name, metric, inputs,
                                                                                       context):
                return False
        return True

    def failure(self, unit: Unit) -> Path | None:
        """The record of this unit's failure (error.json, a metric's error record), if any."""
        gdir = Path(self.config.out) / unit.row
        if unit.kind == "fit":
            return gdir / "error.json" if (gdir / "error.json").exists() else None
        for name in self.metrics:
            rec = custody.record(gdir / "metrics" / f"{name}.json", status=str)
            if rec is not None and rec["status"] == "error":
                return gdir / "metrics" / f"{name}.json"
        return gdir / "error.json" if (gdir / "error.json").exists() else None


# -- the work of one job ------------------------------------------------------------------------
def _claims(out: Path) -> Path:
    return Path(out) / FANOUT_DIR / "claims"


def work(config: RunConfig, units: list[Unit]) -> dict[str, list[str]]:
    """Run ``units`` (one job's share) in turn: each one this job can claim now, then those that others
    held (waiting for them: done by then, reused; abandoned by a dead process, finished here)."""
    out = Path(config.out)
    done: list[str] = []
    failed: list[str] = []
    os.environ.setdefault("RADIOBENCH_PROGRESS", "0")

    def one(unit: Unit, wait: bool) -> bool:
        with unit_lock(_claims(out) / unit.slug, wait=wait) as mine:
            if not mine:
                return False
            _note(out, unit)
            summary = run(unit.config(config))
            (failed if summary.failed else done).append(unit.label)
            write_json(out / FANOUT_DIR / "units" / f"{unit.slug}.json",
                       {**_job(), "finished": time.time(), "failed": summary.failed})
        return True

    held = [u for u in units if not one(u, wait=False)]
    for unit in held:
        one(unit, wait=True)
    return {"done": done, "failed": failed}


def _job() -> dict[str, Any]:
    try:
        import submitit

        env = submitit.JobEnvironment()
        return {"job_id": env.job_id, "stderr": str(env.paths.stderr), "stdout": str(env.paths.stdout)}
    except RuntimeError:  # not inside a submitit job (a test calling work() directly)
        return {"job_id": None, "pid": os.getpid()}


def _note(out: Path, unit: Unit) -> None:
    write_json(out / FANOUT_DIR / "units" / f"{unit.slug}.json", {**_job(), "started": time.time()})


# -- the driver -----------------------------------------------------------------------------------
def fan_out(config: RunConfig, executor: ExecutorConfig) -> FanoutSummary:
    """Submit the units of ``config`` not yet finished, stage by stage, and wait for them."""
    executor.checked()
    checks = _Custody(config)  # every name and option checked before anything is submitted
    out = Path(config.out)
    summary = FanoutSummary(out=out)
    folder = Path(executor.folder) if executor.folder else out / FANOUT_DIR / "jobs"
    write_json(out / FANOUT_DIR / "config.json", {**asdict(config), "out": str(out)})  # what `status` lists
    for stage in units_of(config):
        finished = {u for u in stage if checks.finished(u)}
        summary.skipped += [u.label for u in stage if u in finished]
        pending = [u for u in stage if u not in finished]
        if not pending:
            continue
        ex = executor.executor(folder)
        if executor.kind == "local":
            n = min(executor.jobs, len(pending))
            shares = [pending[i::n] + [u for j, u in enumerate(pending) if j % n != i] for i in range(n)]
        else:
            shares = [[u] for u in pending]
        summary.submitted += [u.label for u in pending]
        jobs = ex.map_array(work, [config] * len(shares), shares)
        log.info("submitted %d unit(s) as %d %s job(s): %s", len(pending), len(jobs), executor.kind,
                 ", ".join(j.job_id for j in jobs))
        for job in jobs:
            try:
                result = job.result()
            except Exception as err:  # died (killed, out of memory, time limit): its unit is not finished
                log.error("job %s failed: %s (log %s)", job.job_id, str(err).splitlines()[0] if str(err) else err,
                          job.paths.stderr)
                summary.crashed.append(str(job.paths.stderr))
                continue
            summary.failed += result["failed"]
    summary.failed = sorted(set(summary.failed))
    _record_config(out, config)
    return summary


def _record_config(out: Path, config: RunConfig) -> None:
    """The manifest records the whole run's configuration (each unit wrote its restricted one)."""
    from .runner import update_manifest

    if not (out / "manifest.json").exists():
        return

    def full(current: dict[str, Any] | None) -> dict[str, Any]:
        assert current is not None
        cfg = current["config"]
        return {**current, "config": {**cfg, **jsonable({"metrics": config.metrics, "reference": config.reference,
                                                           "generator_options": config.generator_options})}}

    update_manifest(out, full)


# -- status ---------------------------------------------------------------------------------------
def unit_states(out: str | os.PathLike) -> list[dict[str, Any]]:
    """Each unit of the run in ``out``: {unit, state: done | running | failed | pending, detail}."""
    out = Path(out)
    path = next((p for p in (out / FANOUT_DIR / "config.json", out / "manifest.json") if p.exists()), None)
    if path is None:
        raise InputError(f"{out} is not a radiobench run directory (no manifest.json)")
    cfg = read_json(path)
    cfg = cfg.get("config", cfg)
    known = {f.name for f in fields(RunConfig)}
    config = RunConfig(**{k: v for k, v in cfg.items() if k in known and k != "out"}, out=out)
    config.metrics = _recorded_metrics(out, config)
    checks = _Custody(config)
    rows: list[dict[str, Any]] = []
    state_of: dict[str, str] = {}
    for unit in [u for stage in units_of(config) for u in stage]:
        holder = lock_holder(_claims(out) / unit.slug)
        if holder is None and (unit.kind != "evaluate" or state_of.get(f"fit:{unit.row}") == "done"):
            holder = lock_holder(out / unit.row)  # the runner's lock: a plain `radiobench run` works on it
        note_path = out / FANOUT_DIR / "units" / f"{unit.slug}.json"
        note = custody.record(note_path) or {}
        if checks.finished(unit):
            state, detail = "done", ""
        elif holder is not None:
            state, detail = "running", ", ".join(f"{k} {v}" for k, v in holder.items() if k != "started")
        elif (err := checks.failure(unit)) is not None:
            state, detail = "failed", str(err)
        elif note.get("started"):  # claimed once, neither finished nor held: its process died
            state, detail = "failed", f"interrupted; log {note.get('stderr') or 'pid ' + str(note.get('pid'))}"
        else:
            state, detail = "pending", ""
        state_of[unit.label] = state
        rows.append({"unit": unit.label, "state": state, "detail": detail})
    return rows


def _recorded_metrics(out: Path, config: RunConfig) -> list[str] | None:
    """The run's metrics: the manifest's, else (a fit-only manifest) those with records, else all."""
    if config.metrics:
        return config.metrics
    names = sorted({p.stem for p in out.glob("*/seed-*/metrics/*.json")})
    return [n for n in names if n in registry.names("metrics")] or None

