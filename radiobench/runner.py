"""``radiobench run``: fit each generator per seed (or reuse its checkpoint), sample a set matched to
the real reference split, evaluate every applicable metric, and write everything into a run
directory. Interrupt and re-run: finished work is reused; failures are recorded and the rest goes on.

Run directory::

    manifest.json                         config, preset, seeds, versions, git commit, dataset fingerprint
    reference/seed-S/metrics/M.json       real-vs-real row (validation split, or a train draw, vs reference split)
    G/seed-S/train/                       resumable training state, losses.csv, training_config.json
    G/seed-S/checkpoint/                  weights.safetensors + config.json + fit.json (cost)
    G/seed-S/samples.npz                  the generated set (with its conditions)
    G/seed-S/samples.json                 the sampling options it was drawn with (others re-sample, not re-train)
    G/seed-S/metrics/M.json               {status: ok|skipped|error, result | reason | traceback, provenance}
    G/seed-S/error.json                   when fit or sampling failed
"""
from __future__ import annotations

import logging
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .conditioning import match_conditions
from .evaluators.cache import KINDS, current_fingerprint
from .interfaces import Dataset, Generator, Metric, MetricContext, default_cache_dir, default_device
from .presets import get_preset
from .provenance import environment
from .registry import registry
from .store import read_json, write_json
from .types import InputError, MetricResult, RadioImages

__all__ = ["RunConfig", "run", "REFERENCE_ROW"]

log = logging.getLogger("radiobench")
REFERENCE_ROW = "reference"


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


def run(config: RunConfig) -> RunSummary:
    preset = get_preset(config.preset)
    if not config.generators and not config.reference:
        raise InputError("nothing to run: name at least one generator")
    # resolve every name first: a typo must fail before hours of training, not after
    gen_classes = {g: registry.generator(g) for g in config.generators}
    metric_names = config.metrics if config.metrics is not None else registry.names("metrics")
    metric_classes = {m: registry.metric(m) for m in metric_names}
    ds_cls = registry.dataset(config.dataset)
    resolution = config.dataset_options.get("resolution", preset.resolution)
    ds_opts = {k: v for k, v in config.dataset_options.items() if k != "resolution"}
    dataset: Dataset = ds_cls(resolution=resolution, data_dir=config.data_dir, **ds_opts)

    out = Path(config.out)
    summary = RunSummary(out=out)
    train = dataset.load(dataset.train_split)
    reference = dataset.load(dataset.reference_split)
    if len(reference) == 0 or len(train) == 0:
        raise InputError(f"dataset {config.dataset!r} has an empty train or reference split")
    fingerprint = dataset.fingerprint()
    manifest = _open_manifest(out, config, dataset, fingerprint, train, reference)
    device = config.device or default_device()

    real, real_source = _reference_set(dataset, train, reference)
    manifest["reference_row"] = {"source": real_source, "n": len(real), "class_counts": real.class_counts()}
    write_json(out / "manifest.json", manifest)
    for seed in config.seeds:
        context = MetricContext(
            dataset=config.dataset,
            dataset_fingerprint=fingerprint,
            train=train,
            preset=preset,
            seed=seed,
            device=device,
            cache_dir=default_cache_dir(),
        )
        provenance = {**manifest["provenance"], "seed": seed}
        if config.reference and seed == min(config.seeds):  # one fixed real set: evaluated once
            _evaluate(out / REFERENCE_ROW / f"seed-{seed}", real, reference, None, metric_classes, context,
                      {**provenance, "reference_source": real_source}, summary, label=f"{REFERENCE_ROW}/seed-{seed}")
        for name, cls in gen_classes.items():
            gdir = out / name / f"seed-{seed}"
            label = f"{name}/seed-{seed}"
            try:
                gen, cost = _fit_or_load(cls, name, config, train, seed, gdir, device, summary, label)
                generated = _sample_or_load(gen, reference, train, seed, gdir, config, summary, label)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                log.error("%s failed: %s", label, exc)
                write_json(gdir / "error.json", {"stage": "fit/sample", "error": f"{type(exc).__name__}: {exc}",
                                                 "traceback": traceback.format_exc(), "provenance": provenance})
                summary.failed.append(label)
                continue
            (gdir / "error.json").unlink(missing_ok=True)
            gprov = {**provenance, "generator": name, "generator_config": gen.config(), "cost": cost}
            _evaluate(gdir, generated, reference, gen.supports, metric_classes, context, gprov, summary, label)
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_json(out / "manifest.json", manifest)
    return summary


# -- steps --------------------------------------------------------------------------------------
def _fit_or_load(cls, name, config: RunConfig, train, seed, gdir: Path, device, summary, label):
    opts = config.generator_options.get(name, {})
    gen: Generator = cls(preset=config.preset, device=device, **opts)
    ckpt = gdir / "checkpoint"
    if (ckpt / "fit.json").exists():
        fit_info = read_json(ckpt / "fit.json")
        if _jsonable(gen.training_config(fit_info.get("config", {}))) == _jsonable(gen.training_config()):
            # sample with this run's sampling options (preset defaults included), not those stored at fit time
            gen = cls(preset=config.preset, device=device, **{**gen.sampling_config(), **opts})
            gen.load(ckpt)
            summary.reused.append(f"{label}:fit")
            return gen, fit_info["cost"]
        log.warning("%s: checkpoint was made with another configuration; training again", label)
    log.info("%s: training (preset %s)", label, config.preset)
    t0 = time.perf_counter()
    gen.fit(train, seed=seed, workdir=_training_workdir(gdir, gen, label))
    cost = gen.cost()
    if not cost.train_seconds:
        cost.train_seconds = time.perf_counter() - t0
    gen.save(ckpt)
    write_json(ckpt / "fit.json", {"config": _jsonable(gen.config()), "cost": cost.to_dict(), "seed": seed})
    summary.done.append(f"{label}:fit")
    return gen, cost.to_dict()


def _training_workdir(gdir: Path, gen: Generator, label: str) -> Path:
    """``gdir/train``, where an interrupted fit resumes; a training state left by another configuration
    is moved to ``train-previous`` instead of being resumed."""
    import shutil

    workdir, stamp = gdir / "train", gdir / "train" / "training_config.json"
    training_config = _jsonable(gen.training_config())
    if stamp.exists() and _jsonable(gen.training_config(read_json(stamp))) != training_config:
        log.warning("%s: %s holds a training state of another configuration; moved to train-previous", label, workdir)
        shutil.rmtree(gdir / "train-previous", ignore_errors=True)
        workdir.rename(gdir / "train-previous")
    workdir.mkdir(parents=True, exist_ok=True)
    write_json(stamp, training_config)
    return workdir


def _sample_or_load(gen: Generator, reference: RadioImages, train, seed, gdir: Path, config: RunConfig, summary, label):
    path, info_path = gdir / "samples.npz", gdir / "samples.json"
    sampling = _jsonable(gen.sampling_config())
    if path.exists():
        drawn_with = read_json(info_path).get("sampling", {}) if info_path.exists() else {}
        if drawn_with == sampling:
            summary.reused.append(f"{label}:samples")
            return RadioImages.load(path)
        log.warning("%s: samples were drawn with %s, now %s: sampling again (metrics too)", label, drawn_with, sampling)
    for old in (gdir / "metrics").glob("*.json"):  # results of any earlier sample set (also one deleted by hand)
        old.unlink()
    conditions = match_conditions(reference, train, gen.supports, np.random.default_rng([seed, 1]))
    log.info("%s: sampling %d images", label, conditions.n)
    generated = gen.sample(conditions, seed=seed, batch_size=config.batch_size, progress=config.progress)
    generated.save(path)
    write_json(info_path, {"sampling": sampling, "zero_level": gen.zero_level(),
                           "peak_normalised": gen.peak_normalised(), "n": len(generated), "seed": seed})
    fit_path = gdir / "checkpoint" / "fit.json"
    info = read_json(fit_path)
    info["cost"]["sample_seconds_per_image"] = gen.cost().sample_seconds_per_image
    info["cost"]["nfe_per_sample"] = gen.cost().nfe_per_sample
    write_json(fit_path, info)
    summary.done.append(f"{label}:samples")
    return generated


def _evaluate(rowdir: Path, generated, reference, supports, metric_classes, context, provenance, summary, label):
    for mname, mcls in metric_classes.items():
        path = rowdir / "metrics" / f"{mname}.json"
        if path.exists() and (old := read_json(path)).get("status") in ("ok", "skipped"):
            stale = _stale_fingerprints(old, context)
            if not stale:
                summary.reused.append(f"{label}:{mname}")
                continue
            log.warning("%s: re-evaluating %s: %s changed since it was computed", label, mname, ", ".join(stale))
        record: dict[str, Any] = {"metric": mname, "provenance": provenance}
        try:
            metric: Metric = mcls()
            reason = metric.applicable(reference, supports)
            if reason is not None:
                record.update(status="skipped", reason=reason)
                summary.skipped.append(f"{label}:{mname}")
            else:
                t0 = time.perf_counter()
                result: MetricResult = metric.compute(reference, generated, context)
                record.update(status="ok", result=result.to_dict(), seconds=time.perf_counter() - t0)
                summary.done.append(f"{label}:{mname}")
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            log.error("%s: metric %s failed: %s", label, mname, exc)
            record.update(status="error", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
            summary.failed.append(f"{label}:{mname}")
        write_json(path, record)


def _stale_fingerprints(record: dict[str, Any], context: MetricContext) -> list[str]:
    """Names of the data / evaluator networks a stored result was computed with that this run would
    replace (another dataset version, or a built-in evaluator whose training configuration changed)."""
    used = (record.get("result") or {}).get("fingerprints", {})
    stale = [k for k, fp in used.items() if k in KINDS and fp != current_fingerprint(k, context)]
    if "dataset" in used and used["dataset"] != context.dataset_fingerprint:
        stale.append("dataset")
    return stale


def _reference_set(dataset: Dataset, train: RadioImages, reference: RadioImages) -> tuple[RadioImages, str]:
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
    rng = np.random.default_rng(0)
    if pool.labels is None or reference.labels is None:
        idx = rng.choice(len(pool), size=len(reference), replace=len(pool) < len(reference))
    else:
        idx = np.concatenate([
            rng.choice(members := np.flatnonzero(pool.labels == c), size=k, replace=len(members) < k)
            for c, k in enumerate(np.bincount(reference.labels, minlength=len(reference.class_names)))
            if k
        ])
    return pool.subset(idx), source


def _open_manifest(out: Path, config: RunConfig, dataset, fingerprint, train, reference) -> dict[str, Any]:
    path = out / "manifest.json"
    identity = {**config.identity(), "dataset_fingerprint": fingerprint}
    if path.exists():
        manifest = read_json(path)
        if manifest.get("identity") != _jsonable(identity):
            raise InputError(
                f"{out} holds a run with {manifest.get('identity')}, not {identity}; choose another --out"
            )
        seeds = sorted(set(manifest["config"]["seeds"]) | set(config.seeds))
        gens = list(dict.fromkeys(manifest["config"]["generators"] + config.generators))
    else:
        seeds, gens = sorted(set(config.seeds)), list(config.generators)
    cfg = {**asdict(config), "out": str(config.out), "seeds": seeds, "generators": gens}
    manifest = {
        "identity": _jsonable(identity),
        "config": _jsonable(cfg),
        "preset": get_preset(config.preset).to_dict(),
        "dataset": {
            "name": config.dataset,
            "config": _jsonable(dataset.config()),
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
    }
    write_json(path, manifest)
    return manifest


def _jsonable(obj: Any) -> Any:
    import json

    from .store import _json_default

    return json.loads(json.dumps(obj, default=_json_default))
