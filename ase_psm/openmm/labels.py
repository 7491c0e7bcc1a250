"""Force and energy labels from an OpenMM System for frames that lack them (eV/Å, eV)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import ase
import numpy as np
from tqdm.auto import tqdm

from ..data import Frames
from .convert import (
    KJ_PER_MOL_NM_TO_EV_PER_ANGSTROM,
    KJ_PER_MOL_TO_EV,
    atomic_numbers,
    check_same_atoms,
    positions_to_openmm,
)


def warn_if_constrained(system) -> None:
    """Warn when `system` has constraints: its forces then lack the constraint forces.

    Along a constrained bond (e.g. ``constraints=HBonds``) the sampled distribution is a
    delta, and F/kT from the System is not its score there; PSM's force-label losses use
    F/kT at the smallest noise levels.
    """
    count = system.getNumConstraints()
    if count:
        warnings.warn(
            f"the OpenMM System has {count} constraints, and its forces leave out the constraint forces: "
            "along constrained bonds F/kT is not the score of the sampled distribution, which biases "
            "PSM's force labels at the smallest noise levels. For exact labels record an unconstrained "
            "run (createSystem(..., constraints=None), time step <= 1 fs), or train with loss='dsm'.",
            UserWarning,
            stacklevel=3,
        )


def make_context(system, platform: str = "Reference", threads: int = 1):
    """An OpenMM Context for single-point evaluations of `system` (a VerletIntegrator, unused)."""
    import openmm

    properties = {"Threads": str(threads)} if platform == "CPU" else {}
    integrator = openmm.VerletIntegrator(0.001)
    return openmm.Context(system, integrator, openmm.Platform.getPlatformByName(platform), properties)


def evaluate(context, positions: np.ndarray) -> tuple[float, np.ndarray]:
    """Potential energy (eV) and forces (n_atoms, 3; eV/Å) at `positions` (Å)."""
    context.setPositions(positions_to_openmm(positions))
    return energy_and_forces(context.getState(getEnergy=True, getForces=True))


def energy_and_forces(state) -> tuple[float, np.ndarray]:
    """Potential energy (eV) and forces (eV/Å) of an OpenMM State."""
    from openmm import unit

    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    return energy * KJ_PER_MOL_TO_EV, np.asarray(forces) * KJ_PER_MOL_NM_TO_EV_PER_ANGSTROM


def label_forces(
    frames: Frames | Sequence[ase.Atoms],
    system,
    *,
    topology=None,
    platform: str = "Reference",
    progress: bool = True,
) -> Frames:
    """Frames with forces (eV/Å) and energies (eV) evaluated by an OpenMM `system`.

    The frames' atom order must be the system's particle order; with `topology` (OpenMM or
    mdtraj) the elements are checked too. Positions are used as given (no constraints applied);
    periodic systems use the System's default box.
    Forces do not depend on temperature: train on the labelled frames with the temperature (K)
    of the trajectory they came from, e.g. ``train(labelled, temperature=300.0)``.
    A System with constraints gets a warning (see :func:`warn_if_constrained`).
    """
    if not isinstance(frames, Frames):
        frames = Frames.from_atoms(list(frames))
    if system.getNumParticles() != frames.n_atoms:
        raise ValueError(
            f"the frames have {frames.n_atoms} atoms but the OpenMM System has "
            f"{system.getNumParticles()} particles; use the System of the simulated system "
            f"(the same atoms in the same order, no extra virtual sites)."
        )
    if topology is not None:
        check_same_atoms(frames.numbers, atomic_numbers(topology), "the frames", "the topology")
    warn_if_constrained(system)
    context = make_context(system, platform)
    energies = np.empty(len(frames))
    forces = np.empty_like(frames.positions)
    for k in tqdm(range(len(frames)), desc="OpenMM labels", disable=not progress):
        energies[k], forces[k] = evaluate(context, frames.positions[k])
    return Frames(numbers=frames.numbers, positions=frames.positions, forces=forces, energies=energies)
