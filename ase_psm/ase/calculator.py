"""PSMCalculator: a trained network as an ASE calculator of pseudo-forces."""

from __future__ import annotations

import os
from collections.abc import Sequence

import ase
import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from ..checkpoint import load_model, resolve_dtype
from ..chemistry.bonds import molecule_bonds
from ..model import topology_classes
from ..model.segments import structure_mean
from ..validation import check_atoms

SIGMA_ITERATIONS = 6
SIGMA_LEVELS = 8
"""Geometric levels from sigma_max down at which the noise estimate starts (see ``_estimate_sigma``)."""


class PSMCalculator(Calculator):
    """Pseudo-forces of a PSM / GPFF checkpoint.

    ``forces`` (eV/Å) are the pseudo-forces f = D(x) - x on the quadratic pseudo
    potential-energy surface U = 1/2 k |x - x0|^2 with k = 1 eV/Å^2, so a force of
    1 eV/Å is a displacement of 1 Å towards the denoised structure x0 = D(x).
    ``energy`` (eV) is that surface's value U = 1/2 k |f|^2 at the predicted x0;
    the network predicts forces directly, so they are not its exact gradient.
    ``results["sigma"]`` is the noise estimate sigma_hat = RMS(f) (Å).

    sigma: noise level (Å) given to a sigma-conditioned network. ``None``
    estimates it self-consistently, sigma <- RMS(f(x, sigma)), from the highest
    schedule level at which the estimate is consistent (RMS(f) not above the level).
    Time-step-free (GPFF) networks ignore it.

    A graph-conditioned network reads the molecular graph from ``atoms.info["bonds"]``
    ((n_bonds, 2) atom indices, as :func:`ase_psm.chemistry.molecules.embed` writes it): noised
    coordinates do not tell it, so the calculator does not perceive it. A network trained on one
    molecule's frames carries that molecule's graph and needs no ``info["bonds"]``.
    """

    # ase's BaseCalculator declares this an instance attribute, so a ClassVar override fails mypy
    implemented_properties: list[str] = ["energy", "free_energy", "forces"]  # noqa: RUF012

    def __init__(
        self,
        checkpoint: str | os.PathLike,
        device: str = "auto",
        dtype: str = "float32",
        sigma: float | None = None,
        compile: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.model, self.checkpoint = load_model(checkpoint, device, dtype)
        if compile:
            self.model.compile(dynamic=True)
        self.device = next(self.model.parameters()).device
        self.dtype = resolve_dtype(dtype)
        if sigma is not None and sigma <= 0:
            raise ValueError(f"sigma must be a positive noise level in Å, got {sigma}")
        self.sigma = sigma

    def topology(self, atoms: ase.Atoms) -> torch.Tensor | None:
        """The molecule's topology classes for a graph-conditioned network (None for others, and for a
        single-molecule network, which carries its molecule's graph)."""
        if not self.model.needs_topology:
            return None
        if "bonds" not in atoms.info:
            raise ValueError(
                "this model is conditioned on the molecular graph: set atoms.info['bonds'] to the (n_bonds, 2) "
                "bonded atom pairs (e.g. ase_psm.chemistry.bonds.molecule_bonds(clean_atoms), or from RDKit)"
            )
        return topology_classes(len(atoms), molecule_bonds(atoms)).to(self.device)

    @torch.inference_mode()
    def pseudo_forces(
        self, numbers: np.ndarray, positions: np.ndarray, topology: torch.Tensor | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pseudo-forces (B, N, 3) in eV/Å and sigma_hat (B,) in Å for B structures of the same atoms.

        ``topology``: the molecule's (N * N,) topology classes, for a graph-conditioned network.
        """
        z = torch.as_tensor(np.asarray(numbers), dtype=torch.long, device=self.device)
        x = torch.as_tensor(np.asarray(positions), dtype=self.dtype, device=self.device)
        n_structures, n_atoms, _ = x.shape
        batch = torch.arange(n_structures, device=self.device).repeat_interleave(n_atoms)
        if topology is not None:
            topology = topology.repeat(n_structures)
        forces, sigma = self.pseudo_forces_flat(z.repeat(n_structures), x.reshape(-1, 3), batch, topology)
        return forces.reshape(x.shape).double().cpu().numpy(), sigma.double().cpu().numpy()

    @torch.inference_mode()
    def pseudo_forces_flat(
        self,
        numbers: torch.Tensor,
        positions: torch.Tensor,
        batch: torch.Tensor,
        topology: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pseudo-forces (N_total, 3) in eV/Å and sigma_hat (B,) in Å for a flat batch.

        numbers (N_total,), positions (N_total, 3) Å and batch (N_total,) structure index
        (contiguous, increasing) are tensors on the model's device; structures may differ in size.
        topology: the structures' topology classes concatenated, for a graph-conditioned network.
        """
        model = self.model
        num_structures = int(batch[-1]) + 1 if len(batch) else 0
        if not model.config.sigma_conditioned:
            forces = model.pseudo_forces_flat(numbers, positions, batch, None, topology)
        else:
            if self.sigma is not None:
                sigma = torch.full((num_structures,), self.sigma, dtype=self.dtype, device=self.device)
            else:
                sigma = self._estimate_sigma(numbers, positions, batch, topology, num_structures)
            forces = model.pseudo_forces_flat(numbers, positions, batch, sigma, topology)
        return forces, _rms(forces, batch, num_structures)

    def _estimate_sigma(
        self, numbers: torch.Tensor, positions: torch.Tensor, batch: torch.Tensor, topology: torch.Tensor | None,
        num_structures: int,
    ) -> torch.Tensor:
        """Noise level (B,) in Å at which RMS(f(x, sigma)) = sigma. A level far above a structure's noise
        can be outside what the network learned (a clean structure at sigma_max) and give any output,
        so the search starts at the highest of SIGMA_LEVELS geometric levels whose estimate RMS(f) is
        not above the level itself, then iterates sigma <- RMS(f(x, sigma))."""
        schedule = self.checkpoint["schedule"]
        low, high = schedule["sigma_min"], schedule["sigma_max"]
        sigma = torch.full((num_structures,), low, dtype=self.dtype, device=self.device)
        settled = torch.zeros(num_structures, dtype=torch.bool, device=self.device)
        for level in np.geomspace(high, low, SIGMA_LEVELS):
            trial = torch.where(settled, sigma, torch.full_like(sigma, level))
            rms = _rms(self.model.pseudo_forces_flat(numbers, positions, batch, trial, topology), batch, num_structures)
            newly = ~settled & (rms <= trial)
            sigma, settled = torch.where(newly, rms.clamp(low, high), sigma), settled | newly
            if bool(settled.all()):
                break
        for _ in range(SIGMA_ITERATIONS):
            forces = self.model.pseudo_forces_flat(numbers, positions, batch, sigma, topology)
            sigma = _rms(forces, batch, num_structures).clamp(low, high)
        return sigma

    def check_state(self, atoms: ase.Atoms, tol: float = 1e-15) -> list[str]:
        """ASE's changes since the last calculation, plus ``"bonds"`` when a graph-conditioned network's
        ``atoms.info["bonds"]`` changed (ASE compares positions, numbers and cell, not ``info``)."""
        changes = list(super().check_state(atoms, tol))
        if self.model.needs_topology and self.atoms is not None and not _same_bonds(self.atoms, atoms):
            changes.append("bonds")
        return changes

    def calculate(
        self,
        atoms: ase.Atoms | None = None,
        properties: Sequence[str] = ("forces",),
        system_changes: Sequence[str] = all_changes,
    ) -> None:
        super().calculate(atoms, properties, system_changes)
        check_atoms(self.atoms, self.model.config.species)
        forces, sigma = self.pseudo_forces(self.atoms.numbers, self.atoms.positions[None], self.topology(self.atoms))
        self.results = _results(forces[0], sigma[0])

    def calculate_batch(
        self, images: Sequence[ase.Atoms], batch_size: int = 256, max_atoms: int | None = None
    ) -> list[dict]:
        """Results (forces, energy, sigma) for many structures of any sizes and compositions.

        Structures go through the network in their given order, in flat batches of at most
        ``batch_size`` structures and (if given) ``max_atoms`` atoms.
        """
        for atoms in images:
            check_atoms(atoms, self.model.config.species)
        results: list[dict] = []
        for chunk in _chunks([len(atoms) for atoms in images], batch_size, max_atoms):
            selected = [images[i] for i in chunk]
            counts = torch.tensor([len(atoms) for atoms in selected], device=self.device)
            numbers = np.concatenate([atoms.numbers for atoms in selected])
            positions = np.concatenate([atoms.positions for atoms in selected])
            topologies = [topology for topology in map(self.topology, selected) if topology is not None]
            forces, sigma = self.pseudo_forces_flat(
                torch.as_tensor(numbers, dtype=torch.long, device=self.device),
                torch.as_tensor(positions, dtype=self.dtype, device=self.device),
                torch.repeat_interleave(torch.arange(len(selected), device=self.device), counts),
                torch.cat(topologies) if topologies else None,
            )
            per_structure = np.split(forces.double().cpu().numpy(), np.cumsum(counts.tolist())[:-1])
            results.extend(_results(f, s) for f, s in zip(per_structure, sigma.double().cpu().numpy()))
        return results


def _chunks(sizes: Sequence[int], batch_size: int, max_atoms: int | None) -> list[list[int]]:
    """Consecutive index groups of at most batch_size structures and max_atoms atoms (one at least)."""
    if batch_size < 1 or (max_atoms is not None and max_atoms < 1):
        raise ValueError(f"batch_size and max_atoms must be at least 1, got {batch_size} and {max_atoms}")
    chunks: list[list[int]] = []
    atoms_in_chunk = 0
    for index, size in enumerate(sizes):
        full = chunks and (
            len(chunks[-1]) == batch_size or (max_atoms is not None and atoms_in_chunk + size > max_atoms)
        )
        if not chunks or full:
            chunks.append([])
            atoms_in_chunk = 0
        chunks[-1].append(index)
        atoms_in_chunk += size
    return chunks


def _same_bonds(first: ase.Atoms, second: ase.Atoms) -> bool:
    """Whether two structures state the same ``info["bonds"]`` (or both none)."""
    return np.array_equal(np.asarray(first.info.get("bonds", [])), np.asarray(second.info.get("bonds", [])))


def _rms(forces: torch.Tensor, batch: torch.Tensor, num_structures: int) -> torch.Tensor:
    """Per-structure RMS (B,) of flat vectors (N_total, 3)."""
    return structure_mean(forces.square().mean(dim=1), batch, num_structures).sqrt()


def _results(forces: np.ndarray, sigma: float) -> dict:
    energy = 0.5 * float(np.sum(forces**2))
    return {"forces": forces, "energy": energy, "free_energy": energy, "sigma": float(sigma)}
