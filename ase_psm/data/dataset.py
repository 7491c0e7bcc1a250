"""The pseudo-PES training set, built on the fly: fresh noise levels and noise every batch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..diffusion.noise import NoiseSchedule, draw_with_small_fraction, zero_com, zero_com_noise
from ..diffusion.targets import FORCE_LOSSES, PIECEWISE_T, force_weight, pseudo_force_target
from .frames import Frames


class PseudoPESDataset:
    """Clean frames (+ force labels F/kT) that yield noised structures and their targets.

    Nothing is precomputed: each call to :meth:`batch` draws noise levels sigma
    (Å) from the schedule (a ``small_sigma_fraction`` of them below the force crossover
    ``crossover_t``), zero-centre-of-mass noise, and builds the target
    pseudo-forces f* (Å, equal to eV/Å on the k = 1 eV/Å^2 pseudo-PES).
    """

    def __init__(
        self,
        frames: Frames,
        loss: str,
        schedule: NoiseSchedule,
        kT: float | None,
        dtype: torch.dtype = torch.float32,
        crossover_t: float = PIECEWISE_T,
        small_sigma_fraction: float = 0.0,
    ) -> None:
        if len(frames) == 0:
            raise ValueError("no training frames: check the frame selection (first/stride/fraction)")
        if loss in FORCE_LOSSES and frames.forces is None:
            raise ValueError(
                f"loss {loss!r} needs force labels (eV/Å), but the frames have none: label them with "
                "ase_psm.openmm.label_forces (OpenMM), tblite's TBLite or any ASE calculator "
                "(atoms.calc = ...; atoms.get_forces(); ase.io.write('labelled.extxyz', frames)), "
                "or use loss='dsm' (CLI: --loss dsm)"
            )
        if loss in FORCE_LOSSES and (kT is None or kT <= 0):
            raise ValueError(f"loss {loss!r} needs a positive kT (pass temperature in K or kT)")
        self.loss = loss
        self.schedule = schedule
        self.crossover_t = crossover_t
        self.small_sigma_fraction = small_sigma_fraction
        self.numbers = torch.as_tensor(frames.numbers, dtype=torch.long)
        self.positions = zero_com(torch.as_tensor(frames.positions, dtype=dtype))
        self.scaled_forces = None
        if frames.forces is not None and kT:
            self.scaled_forces = torch.as_tensor(frames.forces / kT, dtype=dtype)

    def __len__(self) -> int:
        return len(self.positions)

    def batch(
        self, indices: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Noised structures (B, N, 3), their noise levels (B,) and target pseudo-forces (B, N, 3)."""
        clean = self.positions[indices]
        sigma = draw_with_small_fraction(
            self.schedule, len(indices), self.small_sigma_fraction, self.crossover_t, generator, clean.dtype
        )
        noised = clean + sigma[:, None, None] * zero_com_noise(clean.shape, generator, clean.dtype)
        weight = force_weight(self.loss, sigma, self.schedule, self.crossover_t)
        forces = None if self.scaled_forces is None else self.scaled_forces[indices]
        return noised, sigma, pseudo_force_target(clean, noised, sigma, weight, forces)


def thermal_length(frames: Frames, kT: float | None) -> float | None:
    """1 / RMS(F/kT) over atoms and xyz (Å): the length over which thermal forces act."""
    if frames.forces is None or not kT:
        return None
    forces = frames.forces - frames.forces.mean(axis=1, keepdims=True)
    return float(1.0 / np.sqrt(np.mean((forces / kT) ** 2)))


def nearest_neighbour_distance(frames: Frames) -> float:
    """Median nearest-neighbour distance (Å) over up to 100 frames."""
    positions = frames.positions[:: max(1, len(frames) // 100)]
    distances = np.linalg.norm(positions[:, :, None] - positions[:, None, :], axis=-1)
    distances[:, np.arange(frames.n_atoms), np.arange(frames.n_atoms)] = np.inf
    return float(np.median(distances.min(axis=-1)))


def max_pair_distance(frames: Frames) -> float:
    """Largest interatomic distance (Å) over up to 100 frames."""
    positions = frames.positions[:: max(1, len(frames) // 100)]
    return float(np.linalg.norm(positions[:, :, None] - positions[:, None, :], axis=-1).max())


def mean_neighbour_count(structures: Sequence[np.ndarray] | np.ndarray, cutoff: float) -> float:
    """Mean number of other atoms closer than ``cutoff`` (Å) to an atom, over up to 100 of the
    (n_atoms, 3) structures (Å), evenly spaced; at least 1."""
    counts = []
    for positions in structures[:: max(1, len(structures) // 100)]:
        distances = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
        counts.append(((distances < cutoff).sum(axis=1) - 1).mean())
    return float(max(np.mean(counts), 1.0))
