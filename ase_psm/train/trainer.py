"""Training on frames of one system: frame selection, the network's data-derived settings, the dataset."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ase

from ..checkpoint import resolve_device
from ..chemistry.bonds import graph_atom_types, is_molecule, molecule_bonds
from ..data import Frames, PseudoPESDataset, read_frames, select_frames, split_frames
from ..data.dataset import (
    check_labels,
    max_pair_distance,
    mean_neighbour_count,
    nearest_neighbour_distance,
    thermal_length,
)
from ..diffusion.noise import NoiseSchedule
from ..diffusion.targets import FORCE_LOSSES, PIECEWISE_T
from ..model import ModelConfig
from ..model.graph import DENSE_MAX_ATOMS
from .config import TrainConfig
from .loop import fit

CUTOFF_IN_NEIGHBOUR_DISTANCES = 4.5
"""Default cutoff of a sigma-conditioned network, in nearest-neighbour distances: about 5 Å for
molecules, 4.5 r_m for Lennard-Jones clusters."""


def as_frames(data: str | os.PathLike | Frames | Sequence[ase.Atoms], read_options: dict | None = None) -> Frames:
    """Frames from a file path, a Frames object or a list of Atoms."""
    if isinstance(data, Frames):
        return data
    if isinstance(data, (str, os.PathLike)):
        return read_frames(data, **(read_options or {}))
    if isinstance(data, Sequence) and not isinstance(data, str) and len(data) == 0:
        raise ValueError("no training frames: the list of structures is empty")
    if isinstance(data, Sequence) and not isinstance(data, str) and all(isinstance(a, ase.Atoms) for a in data):
        return Frames.from_atoms(data)
    raise TypeError(
        f"training data must be a file path, a Frames object or a list of ase.Atoms, got {type(data).__name__}"
    )


def default_model_config(frames: Frames, config: TrainConfig) -> ModelConfig:
    """Network settings derived from the data (length scales in Å), then the user's overrides."""
    length_scale = nearest_neighbour_distance(frames)
    sigma_data = thermal_length(frames, config.resolved_kT) or 0.1 * length_scale
    if config.sigma_conditioned:
        cutoff = CUTOFF_IN_NEIGHBOUR_DISTANCES * length_scale
    else:  # noised structures are not shrunk: reach across the widest of them
        cutoff = max_pair_distance(frames) + 4.0 * typical_max_sigma(config.resolved_schedule)
    cutoff = config.model.get("cutoff", cutoff)
    values: dict[str, Any] = dict(
        species=sorted({int(z) for z in frames.numbers}),
        sigma_conditioned=bool(config.sigma_conditioned),
        sigma_data=sigma_data,
        length_scale=length_scale,
        cutoff=cutoff,
        num_radial=radial_basis_size(cutoff, length_scale),
        avg_neighbours=mean_neighbour_count(frames.positions, cutoff),
        # beyond this size a shrunk noised structure packs every atom inside one cutoff at large sigma
        shrink_graph=frames.positions.shape[1] <= DENSE_MAX_ATOMS,
    )
    graph_types = resolved_atom_types(frames, config) == "graph"
    graph_conditioned = config.model.get("graph_conditioned", graph_types)
    if graph_conditioned and not graph_types:
        raise ValueError(
            "model graph_conditioned=True on frames of one molecule needs atom_types='graph', which reads "
            "the molecule's bonds from the first frame (for many molecules use ase_psm.train_molecules)"
        )
    if graph_types:
        values.update(site_numbers=frames.numbers.tolist(),
                      site_types=graph_atom_types(frames.numbers, frames.positions[0]),
                      graph_conditioned=graph_conditioned)
        if graph_conditioned:
            values.update(site_bonds=molecule_bonds(frames.to_atoms(0)).tolist())
    values.update(config.model)
    return ModelConfig(**values)


def resolved_atom_types(frames: Frames, config: TrainConfig) -> str:
    """``config.atom_types``, with ``"auto"`` read from the first frame: ``"graph"`` for one molecule."""
    if config.atom_types != "auto":
        return config.atom_types
    return "graph" if is_molecule(frames.numbers, frames.positions[0]) else "element"


def typical_max_sigma(schedule: NoiseSchedule) -> float:
    """The largest noise level (Å) training draws often: sigma_max, or two log-stds above a log-normal's mean."""
    if schedule.kind == "log-uniform":
        return schedule.sigma_max
    return min(schedule.sigma_max, math.exp(schedule.log_mean + 2 * schedule.log_std))


def radial_basis_size(cutoff: float, length_scale: float) -> int:
    """Bessel functions for a cutoff (Å): 8 up to the default cutoff, more for longer ones at the same resolution."""
    return max(8, round(8 * cutoff / (CUTOFF_IN_NEIGHBOUR_DISTANCES * length_scale)))


def force_crossover_time(frames: Frames, config: TrainConfig) -> float:
    """The configured crossover time t, resolving ``"thermal"`` from the frames' force labels (the paper's
    0.05 for a noise-target loss on frames without them)."""
    if config.force_crossover_t != "thermal":
        return float(config.force_crossover_t)
    sigma_data = thermal_length(frames, config.resolved_kT)
    if sigma_data is None:
        if config.loss in FORCE_LOSSES:
            raise ValueError("force_crossover_t='thermal' needs force labels and kT (or temperature)")
        return PIECEWISE_T  # noise targets only: the crossover just bounds small_sigma_fraction's range
    schedule = config.resolved_schedule
    t = math.log(sigma_data / schedule.sigma_min) / math.log(schedule.sigma_max / schedule.sigma_min)
    return min(max(t, 0.0), 1.0)


def train(
    data: str | os.PathLike | Frames | Sequence[ase.Atoms],
    out: str | os.PathLike = "model.pt",
    *,
    config: TrainConfig | None = None,
    resume: bool = False,
    progress: bool = True,
    ddp: bool = False,
    read_options: dict | None = None,
    **settings,
) -> Path:
    """Train a pseudo-force network on frames of one system and return the path of the best checkpoint.

    ``settings`` are :class:`TrainConfig` fields (loss, temperature, kT, steps, ...).
    Writes ``out`` (best EMA weights by validation loss), ``<out>.last.pt`` (the
    full training state, used by ``resume=True``) and ``<out>.csv`` (the log).
    ``ddp=True`` trains data-parallel across the processes of a torchrun job (see
    :mod:`ase_psm.train.distributed`; ``batch_size`` is per process, rank 0 writes the files).
    """
    config = _config(config, settings)
    resolve_device(config.device)  # a clear error before reading any data
    if config.pair_noise:
        raise ValueError("pair_noise re-pairs atoms of many molecules' conformers: use it with "
                         "ase_psm.train_molecules, not with frames of one system")
    frames = select_frames(
        as_frames(data, read_options), first=config.first, stride=config.stride,
        fraction=config.fraction, seed=config.seed,
    )
    train_frames, val_frames = (
        split_frames(frames, config.val_fraction, config.seed) if config.val_fraction > 0 else (frames, None)
    )
    check_labels(train_frames, config.loss, config.resolved_kT)
    crossover_t = force_crossover_time(train_frames, config)

    def dataset_of(part: Frames) -> PseudoPESDataset:
        return PseudoPESDataset(
            part, config.loss, config.resolved_schedule, config.resolved_kT, crossover_t=crossover_t,
            small_sigma_fraction=config.resolved_small_sigma_fraction,
        )

    return fit(
        default_model_config(train_frames, config), dataset_of(train_frames), config, Path(out),
        val_dataset=dataset_of(val_frames) if val_frames else None, payload={"force_crossover_t": crossover_t},
        resume=resume, progress=progress, ddp=ddp,
    )


def _config(config: TrainConfig | None, settings: dict) -> TrainConfig:
    """``config``, or one built from keyword settings (not both)."""
    if config is not None and settings:
        raise TypeError("pass either config or settings, not both")
    return config if config is not None else TrainConfig(**settings)
