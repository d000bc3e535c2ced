"""How a result was made: package versions, git commit, platform."""
from __future__ import annotations

import platform
import re
import subprocess
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path
from typing import Any

__all__ = ["environment", "git_commit", "packages"]


@lru_cache(maxsize=1)
def packages() -> tuple[str, ...]:
    """radiobench and its declared run-time dependencies (extras such as ``test`` left out), from the
    installed metadata, so the list follows pyproject.toml."""
    try:
        declared = requires("radiobench") or []
    except PackageNotFoundError:  # a source tree on sys.path without an install
        declared = []
    names = [re.split(r"[^A-Za-z0-9._-]", r, maxsplit=1)[0] for r in declared if "extra ==" not in r]
    return ("radiobench", *names)


@lru_cache(maxsize=1)
def git_commit() -> dict[str, Any]:
    """Commit of the radiobench source tree (and whether it had uncommitted changes), if it is a checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return {"commit": None}
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
        return {"commit": sha.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None}


def environment() -> dict[str, Any]:
    """Versions of radiobench and its dependencies (None for one that is not installed), git commit, platform."""
    versions: dict[str, str | None] = {}
    for pkg in packages():
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    import torch

    return {
        "versions": versions,
        "git": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cuda": torch.cuda.is_available(),
        "torch_threads": torch.get_num_threads(),
    }
