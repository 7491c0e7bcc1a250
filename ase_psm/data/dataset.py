"""The pseudo-PES training sets, built on the fly: fresh noise levels and noise every batch.

:class:`PseudoPESDataset` holds frames of one system (with force labels for PSM losses),
:class:`MoleculeDataset` clean conformers of many molecules (GPFF targets). Both yield
:class:`TrainingBatch` es, flat over the atoms of every structure, for the one training loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ase
import numpy as np
import torch

from ..diffusion.noise import (
    NoiseSchedule,
    draw_with_small_fraction,
    pair_noise_by_element,
    zero_com,
    zero_com_noise,
)
from ..diffusion.targets import FORCE_LOSSES, PIECEWISE_T, force_weight, pseudo_force_target
from .frames import Frames


@dataclass
class TrainingBatch:
    """Noised structures and their targets, flat over the atoms of B structures."""

    numbers: torch.Tensor
    """(N_total,) atomic numbers."""
    noised: torch.Tensor
    """(N_total, 3) noised positions, Å."""
    batch: torch.Tensor
    """(N_total,) structure index of each atom (contiguous, increasing)."""
    sigma: torch.Tensor
    """(B,) noise levels, Å."""
    target: torch.Tensor
    """(N_total, 3) target pseudo-forces, Å (= eV/Å on the k = 1 eV/Å² pseudo-PES)."""
    topology: torch.Tensor | None = None
    """The structures' topology classes concatenated, for a graph-conditioned network of many molecules."""

    def to(self, device: torch.device | str) -> TrainingBatch:
        """The same batch on ``device``."""
        topology = None if self.topology is None else self.topology.to(device)
        return TrainingBatch(self.numbers.to(device), self.noised.to(device), self.batch.to(device),
                             self.sigma.to(device), self.target.to(device), topology)


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
        check_labels(frames, loss, kT)
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

    def atom_count(self, indices: torch.Tensor) -> int:
        """Atoms in the frames at ``indices``."""
        return len(indices) * self.positions.shape[1]

    def batch(self, indices: torch.Tensor, generator: torch.Generator) -> TrainingBatch:
        """The frames at ``indices``, noised, with their noise levels and target pseudo-forces."""
        clean = self.positions[indices]
        sigma = draw_with_small_fraction(
            self.schedule, len(indices), self.small_sigma_fraction, self.crossover_t, generator, clean.dtype
        )
        noised = clean + sigma[:, None, None] * zero_com_noise(clean.shape, generator, clean.dtype)
        weight = force_weight(self.loss, sigma, self.schedule, self.crossover_t)
        forces = None if self.scaled_forces is None else self.scaled_forces[indices]
        target = pseudo_force_target(clean, noised, sigma, weight, forces)
        n_structures, n_atoms, _ = clean.shape
        return TrainingBatch(
            self.numbers.repeat(n_structures), noised.reshape(-1, 3),
            torch.arange(n_structures).repeat_interleave(n_atoms), sigma, target.reshape(-1, 3),
        )


class MoleculeDataset:
    """Clean conformers of many molecules (any sizes and compositions) that yield GPFF batches.

    Each batch draws one noise level per molecule from the schedule and zero-centre-of-mass noise;
    the target is x0 - x (Å). ``pair_noise`` re-pairs the noised atoms of each element with the
    clean ones by optimal assignment (SchNetPack's GPFF); ``topologies`` (each molecule's topology
    classes) are passed on for a graph-conditioned network.
    """

    def __init__(
        self,
        molecules: Sequence[ase.Atoms],
        schedule: NoiseSchedule,
        pair_noise: bool = False,
        topologies: Sequence[torch.Tensor] | None = None,
    ) -> None:
        if not molecules:
            raise ValueError("no training molecules")
        self.schedule = schedule
        self.pair_noise = pair_noise
        self.topologies = topologies
        self.sizes = torch.tensor([len(atoms) for atoms in molecules])
        self.offsets = torch.cumsum(self.sizes, 0) - self.sizes
        self.numbers = torch.as_tensor(np.concatenate([atoms.numbers for atoms in molecules]), dtype=torch.long)
        self.positions = torch.as_tensor(
            np.concatenate([atoms.positions - atoms.positions.mean(axis=0) for atoms in molecules]),
            dtype=torch.float32,
        )

    def __len__(self) -> int:
        return len(self.sizes)

    def atom_count(self, indices: torch.Tensor) -> int:
        """Atoms in the molecules at ``indices``."""
        return int(self.sizes[indices].sum())

    def batch(self, indices: torch.Tensor, generator: torch.Generator) -> TrainingBatch:
        """The molecules at ``indices``, noised, with their noise levels and targets x0 - x."""
        sizes = self.sizes[indices]
        atoms = torch.cat([torch.arange(int(o), int(o) + int(s)) for o, s in zip(self.offsets[indices], sizes)])
        batch = torch.arange(len(indices)).repeat_interleave(sizes)
        clean = self.positions[atoms]
        sigma = self.schedule.draw(len(indices), generator, clean.dtype)
        noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
        means = torch.zeros(len(indices), 3, dtype=clean.dtype).index_add_(0, batch, noise) / sizes[:, None]
        noised = clean + sigma[batch, None] * (noise - means[batch])
        if self.pair_noise:
            noised = pair_noise_by_element(clean, noised, self.numbers[atoms], batch)
        topology = None if self.topologies is None else torch.cat([self.topologies[int(i)] for i in indices])
        return TrainingBatch(self.numbers[atoms], noised, batch, sigma, clean - noised, topology)


def check_labels(frames: Frames, loss: str, kT: float | None) -> None:
    """Frames a loss can train on: some frames, and force labels with a positive kT for a force-label loss."""
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
