"""One-file checkpoints: weights, model config, units, kT, schedule, loss and training settings.

Files are written atomically (temporary file + rename) and read with
``torch.load(weights_only=True)``, which never runs code from the file.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path

import torch

from .model import ModelConfig, PseudoForceNet

FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` to ``path`` atomically: a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(handle)
    try:
        torch.save({"format_version": FORMAT_VERSION, **payload}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint safely (tensors and plain containers only) onto the CPU."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: train one with `ase-psm train` or check the path")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{path} holds objects other than tensors and plain data and was refused "
            f"(it could run code when loaded): {error}"
        ) from error
    except (RuntimeError, EOFError) as error:
        raise ValueError(f"{path} is not a readable ase-psm checkpoint (corrupt or truncated): {error}") from error
    if not isinstance(checkpoint, dict) or "model_config" not in checkpoint:
        raise ValueError(f"{path} is a torch file but not an ase-psm checkpoint (no model_config)")
    version = checkpoint.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format {version}, this ase-psm reads format {FORMAT_VERSION}: "
            "upgrade ase-psm or retrain"
        )
    return checkpoint


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' picks CUDA when available, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    dtypes = {"float32": torch.float32, "float64": torch.float64}
    if dtype not in dtypes:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return dtypes[dtype]


def model_from_checkpoint(
    checkpoint: dict, device: str | torch.device = "cpu", dtype: str | torch.dtype = "float32"
) -> PseudoForceNet:
    """Rebuild the (EMA) network stored in a checkpoint, in eval mode."""
    model = PseudoForceNet(ModelConfig.from_dict(checkpoint["model_config"]))
    model.load_state_dict(checkpoint["model_state"])
    return model.to(device=resolve_device(device), dtype=resolve_dtype(dtype)).eval()


def load_model(
    path: str | os.PathLike, device: str | torch.device = "auto", dtype: str | torch.dtype = "float32"
) -> tuple[PseudoForceNet, dict]:
    """The network of a checkpoint file and the checkpoint itself."""
    checkpoint = load_checkpoint(path)
    return model_from_checkpoint(checkpoint, device, dtype), checkpoint
