"""One-file checkpoints: weights, model config, units, kT, schedule, loss and training settings.

Files are written atomically (temporary file + rename) with a SHA-256 of their tensors, and
read with ``torch.load(weights_only=True)``, which never runs code from the file.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import tempfile
from pathlib import Path

import torch

from ._version import __version__
from .model import ModelConfig, PseudoForceNet
from .pretrained import resolve_checkpoint

FORMAT_VERSION = 2
"""2: the MACE-style network of ase-psm 0.2 (format 1 held the earlier mean-aggregation network)."""


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` to ``path`` atomically: a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(handle)
    try:
        torch.save({"format_version": FORMAT_VERSION, **payload, "tensor_sha256": tensor_digest(payload)}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint safely (tensors and plain containers only) onto the CPU.

    ``path`` is a file or the name of a shipped model (:data:`ase_psm.pretrained.PRETRAINED`).
    """
    path = resolve_checkpoint(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(_refusal(path, str(error))) from error
    except Exception as error:  # torch.load raises many types on corrupt files
        raise ValueError(
            f"{path} is not a readable ase-psm checkpoint (corrupt, truncated or not a torch file: "
            f"{type(error).__name__}): retrain, or copy the file again"
        ) from error
    if not isinstance(checkpoint, dict) or "model_config" not in checkpoint:
        raise ValueError(
            f"{path} is a torch file but not an ase-psm checkpoint (no model_config): "
            "pass a file written by `ase-psm train`"
        )
    _check_version(path, checkpoint.get("format_version"))
    expected = checkpoint.get("tensor_sha256")
    if expected is not None and tensor_digest(checkpoint) != expected:
        raise ValueError(
            f"{path} is corrupt: its tensors do not match the checksum written with them "
            "(damaged on disk or in transfer): copy the file again or retrain"
        )
    return checkpoint


def tensor_digest(payload: dict) -> str:
    """SHA-256 over every tensor in ``payload`` (names, dtypes, shapes and bytes)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(_named_tensors(payload), key=lambda item: item[0]):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _named_tensors(value: object, name: str = ""):
    """(path, tensor) for every tensor nested in dicts, lists and tuples."""
    if isinstance(value, torch.Tensor):
        yield name, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _named_tensors(item, f"{name}/{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _named_tensors(item, f"{name}/{index}")


def _refusal(path: Path, message: str) -> str:
    """Why ``torch.load(weights_only=True)`` refused ``path``, in one line."""
    found = re.search(r"GLOBAL (\S+) was not an allowed global", message)
    if found:
        return (
            f"{path} was refused: loading it would import {found.group(1)}, which could run code; "
            "ase-psm checkpoints hold only tensors and plain data, so do not use this file"
        )
    return (
        f"{path} was refused: it is not a torch checkpoint of tensors and plain data (corrupt, or "
        "a crafted pickle that could run code): retrain, or copy the file again"
    )


def _check_version(path: Path, version: object) -> None:
    """The checkpoint format must be the one this ase-psm reads; name the fix otherwise."""
    if version == FORMAT_VERSION:
        return
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format {version}, newer than format {FORMAT_VERSION} that this "
            f"ase-psm {__version__} reads: upgrade ase-psm (pip install -U ase-psm)"
        )
    if version == 1:
        raise ValueError(
            f"{path} holds the network of ase-psm 0.1 (checkpoint format 1); this ase-psm {__version__} has a "
            "new network and reads format 2: retrain the model with this version (ase-psm train ...), or load "
            "it with ase-psm 0.1 (pip install 'ase-psm<0.2')"
        )
    raise ValueError(
        f"{path} has checkpoint format {version!r}, this ase-psm reads format {FORMAT_VERSION}: "
        "retrain the model with this version"
    )


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' picks CUDA when available, else the CPU; a device that is not here gets an error naming
    the devices that are and the fix."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu' or 'cuda' (cuda:N)") from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            build = f"built with CUDA {torch.version.cuda}, sees no GPU" if torch.version.cuda else "is a CPU build"
            raise ValueError(
                f"device {device!r} asked for, but this machine has no CUDA device (torch {torch.__version__} "
                f"{build}): use device='cpu' or 'auto' (CLI: --device cpu)"
            )
        if resolved.index is not None and resolved.index >= count:
            raise ValueError(
                f"device {device!r} asked for, but this machine has {count} CUDA device(s), "
                f"cuda:0 to cuda:{count - 1}: use one of them, or 'auto'"
            )
    elif resolved.type not in ("cpu", "mps"):
        raise ValueError(f"device {device!r} is not supported; use 'auto', 'cpu' or 'cuda' (cuda:N)")
    return resolved


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
    try:
        model = PseudoForceNet(ModelConfig.from_dict(checkpoint["model_config"]))
        model.load_state_dict(checkpoint["model_state"])
    except (KeyError, TypeError, RuntimeError) as error:
        reason = (str(error).splitlines() or [""])[0][:200]
        raise ValueError(
            f"the checkpoint's network cannot be rebuilt ({type(error).__name__}: {reason}): "
            "the file is damaged or from an incompatible ase-psm version; retrain"
        ) from error
    return model.to(device=resolve_device(device), dtype=resolve_dtype(dtype)).eval()


def load_model(
    path: str | os.PathLike, device: str | torch.device = "auto", dtype: str | torch.dtype = "float32"
) -> tuple[PseudoForceNet, dict]:
    """The network of a checkpoint file and the checkpoint itself."""
    checkpoint = load_checkpoint(path)
    try:
        return model_from_checkpoint(checkpoint, device, dtype), checkpoint
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
