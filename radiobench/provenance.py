"""How a result was made: package versions, git commit, platform."""
from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = ["environment", "git_commit"]

PACKAGES = ("radiobench", "torch", "numpy", "scipy", "astropy", "scikit-image", "diffusers", "torchmetrics",
            "accelerate", "bdsf", "photutils", "safetensors", "pandas")


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
    versions = {}
    for pkg in PACKAGES:
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
