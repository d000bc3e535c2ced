"""Shared fixtures. The real data lives beside the checkout in ../shared/data (never copied in)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RADIOBENCH_SHARED_DATA", ROOT.parent / "shared" / "data"))

torch.set_num_threads(min(2, torch.get_num_threads()))
os.environ.setdefault("RADIOBENCH_PROGRESS", "0")


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory):
    """Every test session gets its own empty cache (tests must not see a user's cached evaluators);
    RADIOBENCH_TEST_CACHE names a persistent one instead, to speed up repeated local runs."""
    os.environ["RADIOBENCH_CACHE"] = os.environ.get("RADIOBENCH_TEST_CACHE") or str(
        tmp_path_factory.mktemp("radiobench-cache"))
    yield


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"real data not found at {SHARED_DATA} (set RADIOBENCH_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def first_dir(shared_data) -> Path:
    return shared_data / "first"
