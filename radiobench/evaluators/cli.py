"""``radiobench evaluators train | list | export | import``: train the evaluator networks of a dataset
and preset ahead of a run, see what is cached (with each network's weights sha256, part of its
identity), and share trained sets between labs (a tar of safetensors + JSON; import verifies every
entry and the archive's size limits before anything enters the cache)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..cli import dataset_options, int_at_least

__all__ = ["add_subparser"]


def _cache_dir(args) -> Any:
    from ..interfaces import default_cache_dir
    from ..types import InputError

    path = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    if path.exists() and not path.is_dir():
        raise InputError(f"--cache-dir {path} is a file, not a folder")
    return path


def cmd_train(args) -> int:
    from ..interfaces import MetricContext, default_device
    from ..presets import get_preset
    from ..registry import registry
    from ..types import InputError
    from .cache import KINDS, get_evaluator, spec_for

    preset = get_preset(args.preset)
    opts = dataset_options(args.dataset_option)
    resolution = opts.pop("resolution", preset.resolution)
    dataset = registry.dataset(args.dataset)(resolution=resolution, data_dir=args.data_dir, **opts)
    train = dataset.load(dataset.train_split)
    ctx = MetricContext(args.dataset, dataset.fingerprint(), train, preset, seed=0,
                        device=args.device or default_device(), cache_dir=_cache_dir(args))
    kinds = args.kinds.split(",") if args.kinds else list(KINDS)
    for kind in kinds:
        missing = [r for r in sorted(spec_for(kind).requires) if getattr(train, r) is None]
        if missing:
            if args.kinds:
                raise InputError(f"dataset {args.dataset!r} has no {missing[0]}: cannot train {kind!r}")
            print(f"{kind}: skipped (dataset {args.dataset!r} has no {missing[0]})")
            continue
        ev = get_evaluator(kind, ctx, seed=args.seed, progress=not args.quiet)
        t = ev.metadata.get("training", {})
        print(f"{kind}: {ev.fingerprint}  weights {ev.weights_sha256[:16]}  {ev.metadata['parameters']:,} parameters  "
              f"{t.get('train_seconds', 0):.0f} s  {ev.path}")
    return 0


def cmd_list(args) -> int:
    from .cache import KINDS, list_evaluators

    for kind, why in KINDS.broken.items():
        print(f"evaluator kind {kind!r} {why}", file=sys.stderr)
    rows = list_evaluators(_cache_dir(args))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        if "error" in r:
            print(f"{r['path']}: {r['error']}", file=sys.stderr)
    rows = [dict(r, weights=(r["weights_sha256"] or "")[:16]) for r in rows if "error" not in r]
    if not rows:
        print(f"no cached evaluators in {_cache_dir(args)}")
        return 0
    cols = ["kind", "fingerprint", "weights", "dataset", "resolution", "preset", "seed", "parameters", "train_seconds",
            "created"]
    width = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.ljust(width[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(width[c]) for c in cols))
    return 0


def _print_entries(cache_dir: Path, names: list[str]) -> None:
    """One line per entry: its name and weights sha256 (from the cache's metadata)."""
    from .cache import list_evaluators

    weights = {Path(r["path"]).name: r.get("weights_sha256") for r in list_evaluators(cache_dir)}
    for name in names:
        print(f"  {name}  weights sha256 {weights.get(name)}")


def cmd_export(args) -> int:
    from .cache import export_evaluators

    names = export_evaluators(_cache_dir(args), args.output,
                              kinds=args.kinds.split(",") if args.kinds else None,
                              fingerprints=args.fingerprint or None)
    print(f"exported {len(names)} evaluator(s) to {args.output}:")
    _print_entries(_cache_dir(args), names)
    return 0


def cmd_import(args) -> int:
    from .cache import import_evaluators

    names = import_evaluators(args.archive, _cache_dir(args), overwrite=args.overwrite)
    print(f"imported {len(names)} verified evaluator(s):")
    _print_entries(_cache_dir(args), names)
    return 0


def add_subparser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``evaluators`` with its four sub-commands on the main CLI's subparsers."""
    p = subparsers.add_parser("evaluators", help="train, list, export and import evaluator networks")
    sub = p.add_subparsers(dest="evaluators_command", required=True)

    def common(s):
        s.add_argument("--cache-dir", help="cache root (default: RADIOBENCH_CACHE or the user cache dir)")
        return s

    s = common(sub.add_parser("train", help="train (or find cached) evaluators for a dataset and preset"))
    s.add_argument("--dataset", required=True)
    s.add_argument("--preset", default="smoke")
    s.add_argument("--kinds",
                   help="comma-separated, e.g. byol,classifier,radio_cnn,segmenter (default: all the dataset supports)")
    s.add_argument("--seed", type=int_at_least(0), default=0)
    s.add_argument("--data-dir")
    s.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--device")
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_train)

    s = common(sub.add_parser("list", help="list cached evaluators"))
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_list)

    s = common(sub.add_parser("export", help="write cached evaluators into a tar (safetensors + JSON)"))
    s.add_argument("output")
    s.add_argument("--kinds")
    s.add_argument("--fingerprint", action="append", help="only this fingerprint (repeatable)")
    s.set_defaults(func=cmd_export)

    s = common(sub.add_parser("import", help="verify and add evaluators from an exported tar (all or nothing; "
                                             "limits: 256 MiB of weights per evaluator, 2 GiB in all)"))
    s.add_argument("archive")
    s.add_argument("--overwrite", action="store_true", help="replace cached evaluators that hold other weights")
    s.set_defaults(func=cmd_import)
    return p
