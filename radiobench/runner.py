"""``radiobench run``: fit each generator per seed (or reuse its checkpoint), sample a set matched to
the real reference split, evaluate every applicable metric, and write everything into a run
directory. Interrupt and re-run: finished work is reused; failures are recorded and the rest goes on.

Run directory::

    manifest.json                         config, preset, seeds, versions, git commit, dataset fingerprint
    reference/seed-0/metrics/M.json       the run's real-vs-real row (validation split, or a train draw, vs
                                          reference split), evaluated once at seed 0 whichever seeds are run
    G/seed-S/train/                       resumable training state, losses.csv, training_config.json
    G/seed-S/checkpoint/                  weights.safetensors + config.json + fit.json (training cost)
    G/seed-S/samples.npz                  the generated set (with its conditions): N = --n-generated images
                                          (default the reference split's size) in the reference's class proportions
    G/seed-S/samples.json                 the sampling options it was drawn with (others re-sample, not re-train),
                                          its size n, checkpoint_sha256, its own sha256, its sampling cost
    G/seed-S/metrics/M.json               {status: ok|skipped|error, result | reason | traceback, options, inputs,
                                          provenance}; options: the metric's (--metric-option), resolved
    G/seed-S/error.json                   when fit or sampling failed (stage "fit" or "sample")

Chain of custody: a sample set names the checkpoint it was drawn from and a metric record the sets it
scored (``inputs``) and the options it was computed with; whatever no longer matches its parent or this run's
request, lacks those fields, or does not read back (truncated, garbled: a warning names the file) is redone,
never reused.

Metrics whose option ``against`` is "train" score each row against the training split instead of the reference
split; their real row is then every held-out real image (the reference row's set and the reference split).
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import custody, distributed
from .conditioning import match_conditions
from .interfaces import Dataset, Generator, Metric, MetricContext, default_cache_dir, default_device
from .presets import Preset, get_preset
from .provenance import environment
from .registry import REFERENCE_ROW, registry
from .store import file_lock, jsonable, read_json, sha256_file, unit_lock, write_json
from .types import InputError, MetricResult, RadioImages

__all__ = ["RunConfig", "RunSummary", "run", "reference_set", "build_metrics", "evaluate_row", "held_out_set",
           "REFERENCE_ROW", "check_config", "check_out", "open_manifest", "update_manifest"]

log = logging.getLogger("radiobench")
REFERENCE_SEED = 0  # the seed the reference row is evaluated at (published runs: reference/seed-0)
SAMPLING_COST = ("sample_seconds_per_image", "nfe_per_sample")  # recorded in samples.json; the rest in fit.json


@dataclass
class RunConfig:
    generators: list[str]
    dataset: str
    out: Path
    metrics: list[str] | None = None  # None: every registered metric that applies
    preset: str = "smoke"
    seeds: list[int] = field(default_factory=lambda: [0])
    data_dir: str | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    generator_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    metric_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # {"fid_byol": {"against": "train"}}
    n_generated: int | None = None  # images per generated set (None: the reference split's size)
    device: str | None = None
    batch_size: int = 64
    reference: bool = True  # evaluate the real-vs-real row
    progress: bool = True

    def identity(self) -> dict[str, Any]:
        """What must agree for results to live in the same run directory."""
        return {"dataset": self.dataset, "dataset_options": self.dataset_options, "preset": self.preset}


@dataclass
class RunSummary:
    out: Path
    done: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def record_of(self, label: str) -> Path:
        """The file that holds a failure's error: ``G/seed-S/error.json`` (fit, sample) or the metric's record."""
        row, _, metric = label.partition(":")
        return self.out / row / (f"metrics/{metric}.json" if metric else "error.json")


def run(config: RunConfig) -> RunSummary:
    preset = get_preset(config.preset)
    if not config.generators and not config.reference:
        raise InputError("nothing to run: name at least one generator")
    device = config.device or default_device()
    gen_classes, metrics, dataset = check_config(config, preset, device)

    out = Path(config.out)
    summary = RunSummary(out=out)
    train = dataset.load(dataset.train_split)
    reference = dataset.load(dataset.reference_split)
    if len(reference) == 0 or len(train) == 0:
        raise InputError(f"dataset {config.dataset!r} has an empty train or reference split")
    if distributed.world_size() > 1:  # accelerate launch / torchrun: the processes train together, then
        _fit_together(config, gen_classes, train, device, summary)  # the main one samples and evaluates alone
        if not distributed.is_main():
            return summary
    fingerprint = dataset.fingerprint()
    # the real-vs-real row of the generation task; a reconstruction's ceiling is a method (``truth``)
    with_real_row = config.reference and dataset.task == "generation"
    real, real_source = reference_set(dataset, train, reference) if with_real_row else (None, "")
    reference_row = None if real is None else {"source": real_source, "n": len(real),
                                               "class_counts": real.class_counts()}
    manifest = open_manifest(out, config, dataset, fingerprint, train, reference, reference_row)

    memo: dict[str, Any] = {}  # real-side statistics, shared by every seed (a seed-dependent value's key names it)

    def context(seed: int) -> MetricContext:
        return MetricContext(dataset=config.dataset, dataset_fingerprint=fingerprint, train=train, preset=preset,
                             seed=seed, device=device, cache_dir=default_cache_dir(), memo=memo)

    if real is not None:  # one fixed real set: one row per run directory, whichever seeds this invocation names
        label = f"{REFERENCE_ROW}/seed-{REFERENCE_SEED}"
        inputs = {"real_sha256": custody.set_sha256(real), "reference_sha256": custody.set_sha256(reference)}
        provenance = {**manifest["provenance"], "seed": REFERENCE_SEED, "reference_source": real_source}
        held_out = held_out_set(real, real_source, reference, dataset.train_split) \
            if any(m.against == "train" for m in metrics.values()) else None
        with unit_lock(out / label):  # one process per unit (radiobench.fanout): the others wait, then reuse
            evaluate_row(out / label, real, reference, metrics, context(REFERENCE_SEED), supports=None,
                         provenance=provenance, inputs=inputs, summary=summary, label=label, held_out=held_out)
    for seed in config.seeds:
        seed_context = context(seed)
        provenance = {**manifest["provenance"], "seed": seed}
        for name, cls in gen_classes.items():
            gdir = out / name / f"seed-{seed}"
            label = f"{name}/seed-{seed}"
            with unit_lock(gdir):  # one process per unit (radiobench.fanout): the others wait, then reuse
                stage = "fit"
                try:
                    gen, fit_cost, checkpoint_sha = _fit_or_load(cls, name, config, train, seed, gdir, device, summary,
                                                                 label)
                    stage = "sample"
                    generated, inputs, sample_cost = _sample_or_load(gen, checkpoint_sha, reference, train, seed, gdir,
                                                                     config, summary, label)
                except KeyboardInterrupt:
                    raise
                except Exception as exc:
                    log.error("%s failed (%s): %s", label, stage, exc)
                    write_json(gdir / "error.json", {"stage": stage, "error": f"{type(exc).__name__}: {exc}",
                                                     "traceback": traceback.format_exc(), "provenance": provenance})
                    summary.failed.append(label)
                    continue
                (gdir / "error.json").unlink(missing_ok=True)
                gprov = {**provenance, "generator": name, "generator_config": gen.config(),
                         "cost": {**fit_cost, **sample_cost}, "n_generated": len(generated)}
                evaluate_row(gdir, generated, reference, metrics, seed_context, supports=gen.supports, provenance=gprov,
                             inputs=inputs, summary=summary, label=label)
    finished = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    update_manifest(out, lambda current: {**(current or manifest), "finished": finished})
    return summary


# -- validation: every name and value checked before any data is loaded or anything trained ------------
def check_config(config: RunConfig, preset: Preset, device: str) -> tuple[dict[str, type], dict[str, Metric], Dataset]:
    """The generator classes, the metrics (built with their options) and the dataset of ``config``; InputError
    for any bad name or value (each generator and metric is constructed once with its options, so a bad option
    fails now, not after hours of training)."""
    if not config.seeds or not all(_is_int(s) and s >= 0 for s in config.seeds):
        raise InputError(f"seeds must be non-negative integers (e.g. --seeds 0,1,2); got {config.seeds!r}")
    if not _is_int(config.batch_size) or config.batch_size <= 0:
        raise InputError(f"the batch size must be a positive integer; got {config.batch_size!r}")
    if config.n_generated is not None and (not _is_int(config.n_generated) or config.n_generated < 2):
        raise InputError(f"--n-generated must be an integer >= 2 (images per generated set); "
                         f"got {config.n_generated!r}")
    resolution = config.dataset_options.get("resolution", preset.resolution)
    if not _is_int(resolution) or resolution <= 0:
        raise InputError(f"resolution must be a positive integer (pixels per side); got {resolution!r}")
    check_out(Path(config.out))
    unknown = sorted(set(config.generator_options) - set(config.generators))
    if unknown:
        raise InputError(f"options given for generators not in --generators: {unknown}")
    dataset_cls = registry.dataset(config.dataset)
    gen_classes = {g: registry.generator(g) for g in config.generators}
    for name, cls in gen_classes.items():
        if cls.task != dataset_cls.task:
            raise InputError(f"generator {name!r} serves the {cls.task} task; dataset {config.dataset!r} the "
                             f"{dataset_cls.task} task (`radiobench list` shows which is which)")
        opts = config.generator_options.get(name, {})
        try:
            cls(preset=config.preset, device=device, **opts)
        except InputError:
            raise
        except (TypeError, ValueError) as err:  # an undeclared keyword, a value of the wrong kind
            raise InputError(f"generator {name!r} does not take the options {opts}: {err}") from None
    metric_names = config.metrics if config.metrics is not None else default_metrics(dataset_cls.task, preset.name)
    if config.metrics is None:  # every metric that applies: say which installed ones cannot be used
        for entry in registry.listing("metrics"):
            if entry.broken:
                log.warning("metric %r from %s is left out: it %s: %s (`radiobench list metrics` shows it)",
                            entry.name, entry.source, "is refused" if entry.refused else "failed to import",
                            entry.error)
    metrics = build_metrics(metric_names, config.metric_options, config.preset, dataset_cls.task)
    ds_opts = {k: v for k, v in config.dataset_options.items() if k != "resolution"}
    dataset = dataset_cls(resolution=resolution, data_dir=config.data_dir, **ds_opts)
    return gen_classes, metrics, dataset


def default_metrics(task: str = "generation", preset: str = "cpu") -> list[str]:
    """Every usable registered metric of ``task`` whose ``default_presets`` include ``preset`` (the others
    run when named)."""
    out = []
    for name in registry.names("metrics"):
        cls = registry.metric(name)
        if cls.task == task and (cls.default_presets is None or preset in cls.default_presets):
            out.append(name)
    return out


def build_metrics(names: list[str], options: Mapping[str, Mapping[str, Any]], preset: str,
                  task: str = "generation") -> dict[str, Metric]:
    """The metrics ``names`` (registered), each built with its ``options`` (``{metric: {option: value}}``)
    resolved at ``preset``; InputError for an unknown metric, one that scores another ``task`` than the
    dataset's, options for a metric not named, an option the metric does not declare, or a value of the wrong
    type or range."""
    if not isinstance(options, Mapping) or not all(isinstance(v, Mapping) for v in options.values()):
        raise InputError(f"metric options must map metric names to {{option: value}}; got {options!r}")
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise InputError(f"options given for metrics not evaluated here: {unknown} (metrics: {', '.join(names)})")
    metrics: dict[str, Metric] = {}
    for name in names:
        cls = registry.metric(name)
        if cls.task != task:
            raise InputError(f"metric {name!r} scores the {cls.task} task; the dataset the {task} task")
        opts = dict(options.get(name, {}))
        if cls.OPTIONS is not None:
            metrics[name] = cls(preset=preset, **opts)
            continue
        if opts and cls.__init__ is Metric.__init__:
            raise InputError(f"metric {name!r} declares no options; got {opts}")
        try:
            metrics[name] = cls(**opts)
        except InputError:
            raise
        except (TypeError, ValueError) as err:  # an undeclared keyword, a value of the wrong kind
            raise InputError(f"metric {name!r} does not take the options {opts}: {err}") from None
    return metrics


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_out(out: Path) -> None:
    """InputError unless ``out`` is (or can be made) a writable directory."""
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise InputError(f"--out {out}: {existing} is a file, not a directory; choose another --out")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"--out {out}: {existing} is not writable; choose another --out")


# -- steps --------------------------------------------------------------------------------------
def _fit_or_load(cls, name, config: RunConfig, train, seed, gdir: Path, device, summary,
                 label) -> tuple[Generator, dict[str, Any], str]:
    """The generator (trained now, or its checkpoint loaded), its training cost and its checkpoint's sha256."""
    gen = _generator(cls, name, config, device)
    reused = _reused_fit(gen, gdir, label)
    if reused is not None:
        if f"{label}:fit" not in summary.done:  # not trained by this run's launched processes just before
            summary.reused.append(f"{label}:fit")
        return gen, *reused
    gen = _generator(cls, name, config, device)  # a clean instance to train
    return gen, *_train(gen, train, seed, gdir, _training_workdir(gdir, gen, label), summary, label)


def _generator(cls, name: str, config: RunConfig, device: str) -> Generator:
    return cls(preset=config.preset, device=device, **config.generator_options.get(name, {}))


def _reused_fit(gen: Generator, gdir: Path, label: str) -> tuple[dict[str, Any], str] | None:
    """The training cost and checkpoint sha256 of ``gdir``'s checkpoint, loaded into ``gen``, when it is the
    model this configuration trains; None when it must be trained (an unusable one, or one of another
    configuration, is moved to ``checkpoint-previous``)."""
    ckpt = gdir / "checkpoint"
    fit_info = custody.record(ckpt / "fit.json", config=dict, cost=dict)
    if fit_info is None:
        return None
    requested = jsonable(gen.training_config())
    why: str | None = "checkpoint was made with another configuration"
    if jsonable(gen.training_config(fit_info["config"])) == requested:
        # load keeps this instance's sampling options (this run's), not those stored at fit time
        checkpoint_sha = custody.checkpoint_sha256(ckpt)
        why = _unusable_checkpoint(gen, ckpt, checkpoint_sha, requested, fit_info)
        if why is None:
            return _training_cost(fit_info["cost"]), checkpoint_sha
    log.warning("%s: %s; training again (the checkpoint is kept as checkpoint-previous)", label, why)
    shutil.rmtree(gdir / "checkpoint-previous", ignore_errors=True)
    ckpt.rename(gdir / "checkpoint-previous")
    return None


def _train(gen: Generator, train, seed: int, gdir: Path, workdir: Path, summary,
           label) -> tuple[dict[str, Any], str]:
    """Fit ``gen`` in ``workdir`` (resuming what is there); the main process saves the checkpoint and fit.json."""
    log.info("%s: training (preset %s)", label, gen.preset.name)
    t0 = time.perf_counter()
    gen.fit(train, seed=seed, workdir=workdir)
    if not distributed.is_main():  # one of several launched processes: the main one writes
        return {}, ""
    cost = gen.cost()
    if not cost.train_seconds:
        cost.train_seconds = time.perf_counter() - t0
    ckpt = gdir / "checkpoint"
    gen.save(ckpt)
    fit_cost = _training_cost(cost.to_dict())
    checkpoint_sha = custody.checkpoint_sha256(ckpt)
    write_json(ckpt / "fit.json", {"config": jsonable(gen.config()), "cost": fit_cost, "seed": seed,
                                   "checkpoint_sha256": checkpoint_sha})
    summary.done.append(f"{label}:fit")
    return fit_cost, checkpoint_sha


def _fit_together(config: RunConfig, gen_classes: dict[str, type], train, device: str, summary) -> None:
    """Launched as several processes (``radiobench.distributed``): train every unit the main process finds
    unfinished, all processes in one data-parallel fit; then leave the process group together."""
    distributed.join(device)
    for seed in config.seeds:
        for name, cls in gen_classes.items():
            gdir, label = Path(config.out) / name / f"seed-{seed}", f"{name}/seed-{seed}"
            with unit_lock(gdir) if distributed.is_main() else contextlib.nullcontext():
                todo = distributed.is_main() and _reused_fit(_generator(cls, name, config, device), gdir, label) is None
                if not distributed.share(todo):
                    continue
                gen = _generator(cls, name, config, device)
                workdir = _training_workdir(gdir, gen, label) if distributed.is_main() else gdir / "train"
                distributed.barrier()  # the main process has set the training directory up
                _train(gen, train, seed, gdir, workdir, summary, label)
                distributed.barrier()
    distributed.leave()


def _training_cost(cost: dict[str, Any]) -> dict[str, Any]:
    """A cost without the sampling part (recorded with the sample set; fit.json of old runs holds it too)."""
    return {k: v for k, v in cost.items() if k not in SAMPLING_COST}


def _unusable_checkpoint(gen: Generator, ckpt: Path, checkpoint_sha: str, requested: dict[str, Any],
                         fit_info: dict[str, Any]) -> str | None:
    """Why the checkpoint in ``ckpt`` is not the model fit.json describes (None: it is, and ``gen`` holds it):
    a file that does not read back, files changed since the fit (fit.json records their hash; older
    fit.json files do not), or a checkpoint of another training configuration."""
    recorded = fit_info.get("checkpoint_sha256")
    if recorded is not None and recorded != checkpoint_sha:
        return f"{ckpt} holds other files than the fit wrote (sha256 differs from fit.json's)"
    if not _load_checkpoint(gen, ckpt):
        return f"{ckpt} does not load"
    if jsonable(gen.training_config()) != requested:
        return f"{ckpt} holds a model of another configuration than fit.json records"
    return None


def _load_checkpoint(gen: Generator, ckpt: Path) -> bool:
    """Load ``ckpt`` into ``gen``; False (a warning names the file) when a file of it does not read back."""
    readers: dict[str, Callable[[Path], Any]] = {".json": read_json, ".safetensors": custody.safetensors_keys}
    for f in sorted(ckpt.iterdir()):
        if f.suffix in readers and not f.name.startswith(".") and custody.stored(f, readers[f.suffix]) is None:
            return False
    return custody.stored(ckpt, lambda p: gen.load(p) or True) is not None


def _training_workdir(gdir: Path, gen: Generator, label: str) -> Path:
    """``gdir/train``, where an interrupted fit resumes; a training state left by another configuration
    (or whose stamp does not read back) is moved to ``train-previous`` instead of being resumed."""
    workdir, stamp = gdir / "train", gdir / "train" / "training_config.json"
    training_config = jsonable(gen.training_config())
    if stamp.exists():
        stored = custody.stored(stamp, read_json)
        if not isinstance(stored, dict) or jsonable(gen.training_config(stored)) != training_config:
            log.warning("%s: %s holds a training state of another configuration; moved to train-previous",
                        label, workdir)
            shutil.rmtree(gdir / "train-previous", ignore_errors=True)
            workdir.rename(gdir / "train-previous")
    workdir.mkdir(parents=True, exist_ok=True)
    write_json(stamp, training_config)
    return workdir


def _sample_or_load(gen: Generator, checkpoint_sha: str, reference: RadioImages, train, seed, gdir: Path,
                    config: RunConfig, summary, label) -> tuple[RadioImages, dict[str, str], dict[str, Any]]:
    """The sample set drawn from this checkpoint with these sampling options (the stored one when it is
    that set, else drawn now), the ``inputs`` of the metrics that score it, and its sampling cost."""
    path, info_path = gdir / "samples.npz", gdir / "samples.json"
    sampling = jsonable(gen.sampling_config())
    info = custody.record(info_path) if path.exists() else None
    if info is not None:
        why = custody.resample_reason(info, sampling, checkpoint_sha, path, n=config.n_generated or len(reference))
        if why is None and (stored := custody.stored(path, RadioImages.load)) is not None:
            summary.reused.append(f"{label}:samples")
            return stored, custody.sample_inputs(info), info["cost"]
        if why is not None:
            log.warning("%s: %s: sampling again (metrics too)", label, why)
    conditions = match_conditions(reference, train, gen.supports, np.random.default_rng([seed, 1]),
                                  n=config.n_generated)
    log.info("%s: sampling %d images", label, conditions.n)
    generated = gen.sample(conditions, seed=seed, batch_size=config.batch_size, progress=config.progress,
                           partial=gdir / "samples.partial", checkpoint_sha256=checkpoint_sha)  # resumable
    generated.save(path)
    cost = {k: getattr(gen.cost(), k) for k in SAMPLING_COST}
    info = {"sampling": sampling, "zero_level": gen.zero_level(), "peak_normalised": gen.peak_normalised(),
            "n": len(generated), "seed": seed, "checkpoint_sha256": checkpoint_sha, "sha256": sha256_file(path),
            "cost": cost}
    write_json(info_path, info)
    inputs = custody.sample_inputs(info)
    custody.discard_other_inputs(gdir, inputs)
    summary.done.append(f"{label}:samples")
    return generated, inputs, cost


def evaluate_row(rowdir: Path, generated: RadioImages, reference: RadioImages, metrics: Mapping[str, Metric],
                 context: MetricContext, *, inputs: dict[str, str], supports: frozenset[str] | None = None,
                 provenance: dict[str, Any] | None = None, summary: RunSummary | None = None, label: str = "",
                 held_out: RadioImages | None = None) -> RunSummary:
    """Score one row: each metric (``build_metrics``) compares ``generated`` with ``reference`` (or with the
    training split ``context.train``, for a metric whose ``against`` is "train") in its own context
    (``Metric.in_context``), and ``rowdir/metrics/M.json`` records the result with the metric's options,
    ``inputs`` (the hashes of the scored sets: custody) and ``provenance``. A stored ok/skipped record of the same
    inputs, options and evaluator networks is reused (``custody.distrust``), anything else computed again.

    ``supports``: what the generator was conditioned on (None: a real row, conditioned exactly). ``held_out``:
    for a real row, the set scored by metrics against the training split (``held_out_set``; default
    ``generated``). What was done, reused, skipped or failed is appended to ``summary`` (labelled ``label:M``)."""
    summary = summary if summary is not None else RunSummary(out=rowdir)
    label = label or str(rowdir)
    for mname, metric in metrics.items():
        path = rowdir / "metrics" / f"{mname}.json"
        ctx = metric.in_context(context)
        options = jsonable(metric.options)
        old = custody.record(path, status=str)
        if old is not None and old["status"] in ("ok", "skipped"):
            why = stale_reason(old, mname, metric, inputs, context)
            if why is None:
                summary.reused.append(f"{label}:{mname}")
                continue
            log.warning("%s: re-evaluating %s: %s", label, path, why)
        record: dict[str, Any] = {"metric": mname, "options": options, "inputs": inputs,
                                  "provenance": provenance or {}}
        real, scored = reference, generated
        if metric.against == "train":
            real, scored = ctx.train, held_out if held_out is not None else generated
        try:
            reason = metric.applicable(real, supports)
            if reason is not None:
                record.update(status="skipped", reason=reason)
                summary.skipped.append(f"{label}:{mname}")
            else:
                t0 = time.perf_counter()
                result: MetricResult = metric.compute(real, scored, ctx)
                record.update(status="ok", result=result.to_dict(), seconds=time.perf_counter() - t0)
                summary.done.append(f"{label}:{mname}")
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            log.error("%s: metric %s failed: %s", label, mname, exc)
            record.update(status="error", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
            summary.failed.append(f"{label}:{mname}")
        write_json(path, record)
    return summary


def stale_reason(record: dict[str, Any], name: str, metric: Metric, inputs: dict[str, str],
                 context: MetricContext) -> str | None:
    """Why a stored ok/skipped record cannot stand for ``metric`` (with its options, in its context) scoring the
    sets ``inputs`` (None: it can): ``custody.distrust`` as ``evaluate_row`` and the fan-out apply it."""
    ctx = metric.in_context(context)
    return custody.distrust(record, name, inputs, ctx, options=jsonable(metric.options),
                            defaults=_defaults(metric, ctx))


def _defaults(metric: Metric, context: MetricContext) -> dict[str, Any]:
    """The metric's options at the context's preset: what a record written before options were recorded had."""
    return jsonable(metric.OPTIONS.defaults(context.preset.name)) if metric.OPTIONS is not None else {}


def held_out_set(real: RadioImages, real_source: str, reference: RadioImages, train_split: str) -> RadioImages:
    """Every held-out real image: the real row's set (``reference_set``) and the reference split pooled; the
    reference split alone when the real row's set is a draw from the training split."""
    if real_source == train_split:
        return reference
    both = (real, reference)
    common = lambda attr: None if any(getattr(s, attr) is None for s in both) else np.concatenate(  # noqa: E731
        [getattr(s, attr) for s in both])
    return RadioImages(images=np.concatenate([s.images for s in both]), survey=reference.survey,
                       labels=common("labels") if real.class_names == reference.class_names else None,
                       class_names=reference.class_names if real.class_names == reference.class_names else None,
                       peak_flux=common("peak_flux"), masks=common("masks"),
                       extra={k: np.concatenate([real.extra[k], v]) for k, v in reference.extra.items()
                              if k in real.extra})


def reference_set(dataset: Dataset, train: RadioImages, reference: RadioImages) -> tuple[RadioImages, str]:
    """Real images standing in for a perfect generator, with the reference split's class counts.

    The validation split when the dataset has one (held out from generator and evaluator training,
    so learned metrics are not flattered), else a draw from the training split."""
    source, pool = dataset.train_split, train
    if "valid" in dataset.splits and "valid" not in (dataset.train_split, dataset.reference_split):
        valid = dataset.load("valid")
        if len(valid):
            source, pool = "valid", valid
    if pool.class_counts() == reference.class_counts() and source != dataset.train_split:
        return pool, source
    needed: list[int] = [] if reference.labels is None else np.flatnonzero(np.bincount(reference.labels)).tolist()
    if pool.labels is not None and any(not np.any(pool.labels == c) for c in needed):
        source, pool = dataset.train_split, train  # the validation split lacks a class: a training draw
        names = reference.class_names or tuple(map(str, range(max(needed) + 1)))
        missing = [names[c] for c in needed if not np.any(train.labels == c)]
        if missing:
            raise InputError(f"dataset has no training images of class(es) {missing} that its "
                             f"{dataset.reference_split} split holds: no real reference row can be drawn")
    rng = np.random.default_rng(0)
    if pool.labels is None or reference.labels is None:
        idx = rng.choice(len(pool), size=len(reference), replace=len(pool) < len(reference))
    else:
        idx = np.concatenate([
            rng.choice(members := np.flatnonzero(pool.labels == c), size=k, replace=len(members) < k)
            for c, k in enumerate(np.bincount(reference.labels, minlength=len(reference.class_names or ())))
            if k
        ])
    return pool.subset(idx), source


def open_manifest(out: Path, config: RunConfig, dataset, fingerprint, train, reference,
                   reference_row: dict[str, Any] | None) -> dict[str, Any]:
    """Write this run's manifest, merged (seeds, generators) with the one already in ``out``; InputError
    when ``out`` holds a run of another dataset or preset."""
    identity = jsonable({**config.identity(), "dataset_fingerprint": fingerprint})

    def merge(current: dict[str, Any] | None) -> dict[str, Any]:
        seeds, gens = set(config.seeds), list(config.generators)
        if current is not None:
            if current.get("identity") != identity:
                raise InputError(
                    f"{out} holds a run with {current.get('identity')}, not {identity}; choose another --out")
            seeds |= set(current["config"]["seeds"])
            gens = list(dict.fromkeys(current["config"]["generators"] + gens))
        cfg = {**asdict(config), "out": str(config.out), "seeds": sorted(seeds), "generators": gens}
        return {
            "identity": identity,
            "config": jsonable(cfg),
            "preset": get_preset(config.preset).to_dict(),
            "dataset": {
                "name": config.dataset,
                "config": jsonable(dataset.config()),
                "fingerprint": fingerprint,
                "train_split": dataset.train_split,
                "reference_split": dataset.reference_split,
                "n_train": len(train),
                "n_reference": len(reference),
                "class_counts_reference": reference.class_counts(),
                "survey": reference.survey.to_dict(),
            },
            "provenance": {
                "preset": config.preset,
                "dataset": config.dataset,
                "dataset_fingerprint": fingerprint,
                **environment(),
            },
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        } | ({"reference_row": row} if (row := reference_row or (current or {}).get("reference_row")) else {})

    return update_manifest(out, merge)


def update_manifest(out: Path, update: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
    """Read ``out/manifest.json`` (None when there is none), ``update`` it and write it back, holding a lock
    on ``out/.manifest.lock``: runs sharing a directory wait for each other instead of dropping each
    other's seeds and generators. A manifest that does not read back is an InputError (never overwritten)."""
    path = out / "manifest.json"
    with file_lock(out / ".manifest.lock"):
        current = None
        if path.exists():
            try:
                current = read_json(path)
                if not isinstance(current, dict) or not {"seeds", "generators"} <= set(current["config"]):
                    raise ValueError("not a radiobench manifest")
            except (ValueError, KeyError, TypeError) as err:
                raise InputError(f"{path} is corrupt ({err}); it records this run directory's configuration: "
                                 "restore it from a backup, or choose another --out") from None
        manifest = update(current)
        write_json(path, manifest)
    return manifest
