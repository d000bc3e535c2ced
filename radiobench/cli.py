"""Command line: ``radiobench list | run | status | leaderboard | report | data fetch | evaluators``."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import distributed
from .registry import Kind, registry
from .types import InputError

__all__ = ["main"]


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _distinct(items: list[Any], text: str) -> list[Any]:
    twice = sorted({i for i in items if items.count(i) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"{', '.join(map(str, twice))} given twice in {text!r}")
    return items


def _names(text: str) -> list[str]:
    """Comma-separated distinct names (argparse type)."""
    return _distinct(_csv_list(text), text)


def _seeds(text: str) -> list[int]:
    """Comma-separated distinct integers >= 0 (argparse type)."""
    try:
        seeds = [int(t) for t in _csv_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be comma-separated integers, not {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed, e.g. --seeds 0,1,2")
    if min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"seeds must be >= 0; got {min(seeds)}")
    return _distinct(seeds, text)


def int_at_least(low: int):
    """An argparse type: a whole number >= ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {low}, not {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}; got {value}")
        return value

    return parse


_positive_int = int_at_least(1)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def key_value_options(pairs: Sequence[str], scoped: bool = False, owner: str = "generator",
             example: str = "edm.steps=100") -> dict[str, Any]:
    """'k=v' pairs (or 'owner.k=v' when scoped) into dicts; values parsed as JSON when they parse."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise InputError(f"option {pair!r} must look like {owner + '.key' if scoped else 'key'}=value")
        key, val = pair.split("=", 1)
        if scoped:
            if "." not in key:
                raise InputError(f"{owner} option {pair!r} must look like {owner}.key=value (e.g. {example})")
            gen, key = key.split(".", 1)
            out.setdefault(gen, {})[key] = _value(val)
        else:
            out[key] = _value(val)
    return out


def metric_options(pairs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--metric-option metric.key=value`` pairs, by metric (checked against each metric's table by the runner)."""
    return key_value_options(pairs, scoped=True, owner="metric", example="fid_byol.against=train")


def dataset_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``--dataset-option`` pairs; the data folder has its own flag."""
    opts = key_value_options(pairs)
    if "data_dir" in opts:
        raise InputError("give the data folder as --data-dir, not as --dataset-option data_dir=...")
    return opts


def cmd_list(args: argparse.Namespace) -> int:
    kinds: list[Kind] = [args.kind] if args.kind else ["datasets", "generators", "metrics"]
    for kind in kinds:
        print(f"{kind}:")
        for entry in registry.listing(kind):
            src = f" [{entry.distribution}]" if entry.distribution and entry.distribution != "radiobench" else ""
            if entry.broken:
                state = "REFUSED" if entry.refused else "BROKEN"
                print(f"  {entry.name:<22} {state} ({entry.target}){src}: {entry.error}")
                continue
            s = entry.summary or {}
            extra = []
            if kind == "datasets" and s.get("provides"):
                extra.append("provides " + ",".join(s["provides"]))
            if kind == "generators":
                extra.append("conditions: " + (",".join(s.get("supports", ())) or "none"))
            if kind == "metrics":
                extra.append(("lower" if s.get("direction") == "lower" else "higher") + " is better")
                if s.get("requires"):
                    extra.append("needs " + ",".join(s["requires"]))
            print(f"  {entry.name:<22} {s.get('description', '')}" + (f" ({'; '.join(extra)})" if extra else "") + src)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .runner import RunConfig, run

    if args.quiet:
        os.environ["RADIOBENCH_PROGRESS"] = "0"  # silences the bars inside plugins too
    out = Path(args.out) if args.out else Path("runs") / f"{args.dataset}-{args.preset}"
    args.out = str(out)  # main() reports OS errors on the default like on a given --out
    config = RunConfig(
        generators=args.generators,
        dataset=args.dataset,
        out=out,
        metrics=args.metrics or None,
        preset=args.preset,
        seeds=args.seeds,
        data_dir=args.data_dir,
        dataset_options=dataset_options(args.dataset_option),
        generator_options=key_value_options(args.generator_option, scoped=True),
        metric_options=metric_options(args.metric_option),
        n_generated=args.n_generated,
        device=args.device,
        batch_size=args.batch_size,
        reference=not args.no_reference,
        progress=not args.quiet,
    )
    fan_flags = [f for f in ("jobs", "executor_config", "slurm_partition", "slurm_gpus", "slurm_cpus", "slurm_time",
                             "slurm_parallelism", "slurm_account", "jobs_folder") if getattr(args, f) is not None]
    if fan_flags and not args.executor:
        raise InputError(f"--{fan_flags[0].replace('_', '-')} needs --executor local or --executor slurm")
    if args.executor:
        return _fan_out(config, args)
    summary = run(config)
    if not distributed.is_main():  # one of several launched processes: it trained, the main one reports
        return 0
    return _report(summary)


def _report(summary) -> int:
    """What ``run`` and ``evaluate`` print at the end; exit status 1 when something failed."""
    print(f"run directory: {summary.out}")
    print(f"  done {len(summary.done)}, reused {len(summary.reused)}, skipped {len(summary.skipped)}, "
          f"failed {len(summary.failed)}")
    for label in summary.failed:
        print(f"  FAILED {label}: see {summary.record_of(label)}")
    print(f"next: radiobench leaderboard {summary.out}")
    return 1 if summary.failed else 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .external import ExternalConfig, evaluate

    config = ExternalConfig(
        samples=Path(args.samples), dataset=args.dataset, out=Path(args.out), name=args.name, seed=args.seed,
        preset=args.preset, metrics=args.metrics or None, metric_options=metric_options(args.metric_option),
        data_dir=args.data_dir, dataset_options=dataset_options(args.dataset_option), device=args.device,
        scale=args.scale, resize=args.resize, reference=not args.no_reference, n_generated=args.n_generated,
    )
    summary = evaluate(config)
    return _report(summary)


def add_evaluate_parser(sub) -> None:
    s = sub.add_parser("evaluate", help="score samples made elsewhere (folder of FITS/PNG/NPY, .npz, .npy) as a row")
    s.add_argument("samples", help="folder of FITS/PNG/NPY images (optional labels.csv: file,label), .npz or .npy")
    s.add_argument("--dataset", required=True)
    s.add_argument("--out", required=True, help="run directory (may be one `radiobench run` wrote)")
    s.add_argument("--name", help="the row's name (default: the samples' file or folder name)")
    s.add_argument("--seed", type=int_at_least(0), default=0, help="the row's seed (default 0)")
    s.add_argument("--preset", default="smoke", help="smoke | cpu | paper (default smoke)")
    s.add_argument("--metrics", type=_names, help="comma-separated metric names (default: all that apply)")
    s.add_argument("--metric-option", action="append", default=[], metavar="METRIC.KEY=VALUE")
    s.add_argument("--data-dir", help="local copy of the dataset's raw files")
    s.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    s.add_argument("--scale", default="none", choices=["none", "peak"],
                   help="none: pixels must lie in [0, 1]; peak: divide each image by its maximum")
    s.add_argument("--resize", action="store_true", help="mean-bin larger images by an integer factor")
    s.add_argument("--n-generated", type=int_at_least(2), default=None, metavar="N",
                   help="images scored (default: the run directory's generated-set size); larger sets are subsampled")
    s.add_argument("--no-reference", action="store_true", help="skip the real-vs-real reference row")
    s.set_defaults(func=cmd_evaluate)


def _fan_out(config, args: argparse.Namespace) -> int:
    """``run --executor local|slurm``: the run's units as submitit job arrays (radiobench.fanout)."""
    from .fanout import ExecutorConfig, fan_out

    flags = {"kind": args.executor, "jobs": args.jobs, "partition": args.slurm_partition,
             "gpus_per_job": args.slurm_gpus, "time_min": args.slurm_time, "array_parallelism": args.slurm_parallelism,
             "cpus_per_job": args.slurm_cpus, "account": args.slurm_account, "folder": args.jobs_folder}
    executor = ExecutorConfig.from_file(args.executor_config, **flags) if args.executor_config else \
        ExecutorConfig(**{k: v for k, v in flags.items() if v is not None}).checked()
    summary = fan_out(config, executor)
    print(f"run directory: {summary.out}")
    print(f"  submitted {len(summary.submitted)} unit(s), already finished {len(summary.skipped)}, "
          f"failed {len(summary.failed)}, jobs died {len(summary.crashed)}")
    for label in summary.failed:
        print(f"  FAILED {label}")
    for path in summary.crashed:
        print(f"  job died: see {path}")
    print(f"next: radiobench status {summary.out}; radiobench leaderboard {summary.out}")
    return 1 if summary.failed or summary.crashed else 0


def cmd_status(args: argparse.Namespace) -> int:
    from .fanout import unit_states

    rows = unit_states(Path(args.run))
    width = max(len(r["unit"]) for r in rows) if rows else 4
    for r in rows:
        print(f"{r['unit']:<{width}}  {r['state']:<8} {r['detail']}".rstrip())
    counts = {s: sum(r["state"] == s for r in rows) for s in ("done", "running", "failed", "pending")}
    print(", ".join(f"{n} {s}" for s, n in counts.items()))
    return 1 if counts["failed"] else 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from .leaderboard import collect, render

    text = render(collect(args.runs), args.format)
    if args.output:
        from .store import atomic_path

        with atomic_path(args.output) as tmp:
            tmp.write_text(text)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from .leaderboard import publish

    copied = publish(args.run, args.to)
    print(f"copied {len(copied)} result files to {args.to}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    path = write_report(args.run, Path(args.output) if args.output else None)
    print(f"wrote {path}")
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    cls = registry.dataset(args.name)
    where = cls(data_dir=args.data_dir).fetch()
    print(f"{args.name}: " + (f"data ready in {where}" if where else "nothing to fetch (generated locally)"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="radiobench", description="Benchmark generative models of radio-galaxy images.")
    p.add_argument("--version", action="version", version=f"radiobench {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="torch intra-op threads per process (default: RADIOBENCH_THREADS, OMP_NUM_THREADS, else 1)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("list", help="list datasets, generators and metrics")
    s.add_argument("kind", nargs="?", choices=["datasets", "generators", "metrics"])
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("run", help="train/sample generators and evaluate metrics")
    s.add_argument("--generators", type=_names, required=True, help="comma-separated generator names")
    s.add_argument("--dataset", required=True)
    s.add_argument("--metrics", type=_names, help="comma-separated metric names (default: all that apply)")
    s.add_argument("--preset", default="smoke", help="smoke | cpu | paper (default smoke)")
    s.add_argument("--seeds", type=_seeds, default=[0], help="comma-separated seeds (default 0)")
    s.add_argument("--out", help="run directory (default runs/DATASET-PRESET); re-running resumes it")
    s.add_argument("--data-dir", help="local copy of the dataset's raw files")
    s.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--generator-option", action="append", default=[], metavar="GEN.KEY=VALUE")
    s.add_argument("--metric-option", action="append", default=[], metavar="METRIC.KEY=VALUE",
                   help="a metric's option, e.g. fid_byol.against=train or fid_byol.n_bootstrap=1000 (repeatable)")
    s.add_argument("--n-generated", type=int_at_least(2), default=None, metavar="N",
                   help="images per generated set, in the reference split's class proportions "
                        "(default: the reference split's size)")
    s.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    s.add_argument("--batch-size", type=_positive_int, default=64,
                   help="sampling batch size (samples do not depend on it)")
    s.add_argument("--no-reference", action="store_true", help="skip the real-vs-real reference row")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    x = s.add_argument_group("fan-out (submitit): units run as job arrays; re-submitting skips finished units")
    x.add_argument("--executor", choices=["local", "slurm"], help="local worker processes or Slurm job arrays "
                   "(default: this process, serially)")
    x.add_argument("--jobs", type=_positive_int, help="local worker processes (default 2)")
    x.add_argument("--executor-config", metavar="FILE", help="TOML/JSON with the keys of fanout.ExecutorConfig "
                   "(partition, gpus_per_job, time_min, array_parallelism, ...); flags override it")
    x.add_argument("--slurm-partition")
    x.add_argument("--slurm-gpus", type=int_at_least(0), help="GPUs per array task (default 0)")
    x.add_argument("--slurm-cpus", type=_positive_int, help="CPUs per array task")
    x.add_argument("--slurm-time", type=_positive_int, metavar="MINUTES", help="time limit per task (default 1440)")
    x.add_argument("--slurm-parallelism", type=_positive_int, help="array tasks running at once (default 32)")
    x.add_argument("--slurm-account")
    x.add_argument("--jobs-folder", help="submitit logs and pickles (default RUN/.fanout/jobs; Slurm: a shared FS)")
    s.set_defaults(func=cmd_run)

    add_evaluate_parser(sub)


    s = sub.add_parser("status", help="each unit of a run: done, running, failed (with its error file), pending")
    s.add_argument("run")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("leaderboard", help="tables from run directories")
    s.add_argument("runs", nargs="+")
    s.add_argument("--format", default="md", choices=["md", "csv", "tex", "html"])
    s.add_argument("--output", "-o", help="write to a file instead of stdout")
    s.set_defaults(func=cmd_leaderboard)

    s = sub.add_parser("publish", help="copy a run's result files (no weights or images) for the leaderboard/ folder")
    s.add_argument("run")
    s.add_argument("--to", required=True, help="destination, e.g. leaderboard/runs/first-cpu")
    s.set_defaults(func=cmd_publish)

    s = sub.add_parser("report", help="plots (histograms, sample grids, loss curves) and an HTML page for a run")
    s.add_argument("run")
    s.add_argument("--output", "-o", help="report directory (default RUN/report)")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("data", help="dataset files")
    dsub = s.add_subparsers(dest="data_command", required=True)
    f = dsub.add_parser("fetch", help="download (or unpack a local copy), verify the checksum, cache")
    f.add_argument("name")
    f.add_argument("--data-dir", help="local folder holding the raw files")
    f.set_defaults(func=cmd_data_fetch)

    try:
        from .evaluators.cli import add_subparser
    except ImportError:
        pass
    else:
        add_subparser(sub)
    return p


# arguments that name files or folders (of every subcommand): OS errors on these are the user's to fix
PATH_ARGS = ("out", "runs", "run", "to", "output", "data_dir", "archive", "cache_dir", "samples", "executor_config",
             "jobs_folder")


def _user_path(exc: OSError, args: argparse.Namespace) -> str | None:
    """The path of ``exc`` when it is (inside, or a folder above) a path given on the command line."""
    values = [getattr(args, a, None) for a in PATH_ARGS]
    given = [Path(p).absolute() for v in values for p in (v if isinstance(v, list) else [v]) if isinstance(p, str)]
    for name in (exc.filename, exc.filename2):
        if isinstance(name, (str, Path)):
            path = Path(name).absolute()
            if any(path == g or g in path.parents or path in g.parents for g in given):
                return str(name)
    return None


def set_threads(threads: int | None) -> int:
    """Torch's intra-op threads: ``threads``, else RADIOBENCH_THREADS, else OMP_NUM_THREADS, else 1. One
    thread per process: on a shared or loaded machine torch's default (one per core) ran EDM sampling ~20x
    slower (benchmarks/README.md, "Threads"); use more with --threads when the cores are yours."""
    env = os.environ.get("RADIOBENCH_THREADS") or os.environ.get("OMP_NUM_THREADS") or "1"
    n = threads or (int(env) if env.isdigit() and int(env) > 0 else 1)
    os.environ["OMP_NUM_THREADS"] = str(n)  # read when torch is imported (not yet, for most commands)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return n


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="radiobench: %(message)s")
    set_threads(args.threads)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # inside the try: a reader gone (``radiobench list | head``) is a BrokenPipeError here
        return code
    except BrokenPipeError:  # as Python's signal docs advise: no traceback, nor a second error at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except InputError as exc:
        print(f"radiobench: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a bad path on the command line (missing, a file, unwritable): not a bug
        path = _user_path(exc, args)
        if path is None:
            raise
        logging.getLogger("radiobench").debug("traceback", exc_info=True)
        print(f"radiobench: error: {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("radiobench: interrupted; finished work is kept, re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
