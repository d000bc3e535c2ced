"""Progress bars (tqdm), quiet when not attached to a terminal unless forced."""
from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm

__all__ = ["progress_bar"]


def progress_bar(total: int | None = None, desc: str = "", unit: str = "it", disable: bool = False, **kw) -> tqdm:
    """A tqdm bar; RADIOBENCH_PROGRESS=0 silences every bar, =1 forces them on."""
    env = os.environ.get("RADIOBENCH_PROGRESS")
    if env == "0":
        disable = True
    elif env == "1":
        disable = False
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr, dynamic_ncols=True, **kw)
