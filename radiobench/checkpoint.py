"""Generator and evaluator weights on disk: safetensors for tensors, JSON for configuration.
Nothing is ever unpickled."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .store import atomic_path, read_json, write_json

__all__ = ["save_weights", "load_weights", "load_tensors", "tensors_under", "save_config", "load_config"]


def save_weights(directory: Path, modules: Mapping[str, torch.nn.Module | Mapping[str, torch.Tensor]]) -> None:
    """Write ``{prefix.param: tensor}`` for every module into ``directory/weights.safetensors``."""
    tensors: dict[str, torch.Tensor] = {}
    for prefix, mod in modules.items():
        state = mod.state_dict() if isinstance(mod, torch.nn.Module) else mod
        for k, v in state.items():
            tensors[f"{prefix}.{k}"] = v.detach().cpu().contiguous()
    with atomic_path(Path(directory) / "weights.safetensors") as tmp:
        save_file(tensors, str(tmp))


def load_weights(directory: Path, modules: Mapping[str, torch.nn.Module], strict: bool = True) -> None:
    path = Path(directory) / "weights.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"no weights at {path}")
    tensors = load_file(str(path))
    for prefix, mod in modules.items():
        state = tensors_under(tensors, prefix)
        if not state and strict:
            raise KeyError(f"{path} holds no weights for {prefix!r}")
        mod.load_state_dict(state, strict=strict)


def load_tensors(directory: Path, prefix: str) -> dict[str, torch.Tensor]:
    """The raw tensors saved under ``prefix`` (for state that is not a module)."""
    return tensors_under(load_file(str(Path(directory) / "weights.safetensors")), prefix)


def tensors_under(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors saved as ``prefix.name``, by name."""
    return {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def save_config(directory: Path, config: Mapping[str, Any]) -> None:
    write_json(Path(directory) / "config.json", dict(config))


def load_config(directory: Path) -> dict[str, Any]:
    return read_json(Path(directory) / "config.json")
