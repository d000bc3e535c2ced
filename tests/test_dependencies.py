"""Every declared run-time dependency is imported by radiobench/ or plugins/ (issue 17)."""
from __future__ import annotations

import re
from importlib.metadata import packages_distributions
from pathlib import Path

from radiobench.provenance import packages

ROOT = Path(__file__).resolve().parents[1]


def test_every_declared_dependency_is_imported():
    declared = packages()[1:]  # the installed metadata's run-time requirements (pip install -e . refreshes it)
    modules: dict[str, set[str]] = {}  # distribution (lower case) -> its top-level import names
    for module, dists in packages_distributions().items():
        for dist in dists:
            modules.setdefault(dist.lower(), set()).add(module)
    source = "\n".join(p.read_text() for d in ("radiobench", "plugins") for p in (ROOT / d).rglob("*.py"))
    imported = set(re.findall(r"^\s*(?:import|from)\s+([A-Za-z_]\w*)", source, re.M))
    unused = [d for d in declared if not modules.get(d.lower(), {d}) & imported]
    assert declared and not unused, f"declared in pyproject.toml but imported nowhere: {unused}"
