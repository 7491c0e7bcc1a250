"""Conversions between OpenMM (nm, kJ/mol) and ASE / Frames (Å, eV), atom order kept.

OpenMM positions are in nm, energies in kJ/mol and forces in kJ/mol/nm; ase-psm uses Å, eV and
eV/Å. Atom i of an OpenMM Topology is atom i of the Atoms/Frames built from it, and back.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import ase
import numpy as np
from ase import units

from ..data import Frames

NM_TO_ANGSTROM = 10.0
KJ_PER_MOL_TO_EV = units.kJ / units.mol
KJ_PER_MOL_NM_TO_EV_PER_ANGSTROM = KJ_PER_MOL_TO_EV / NM_TO_ANGSTROM
STRUCTURE_SUFFIXES = frozenset({".dcd", ".h5", ".pdb"})


def atomic_numbers(topology) -> np.ndarray:
    """(n_atoms,) atomic numbers of an OpenMM or mdtraj Topology, in topology order.

    Raises ValueError for atoms without an element (virtual sites, extra particles), which
    the models cannot describe.
    """
    numbers = []
    atoms = topology.atoms() if callable(topology.atoms) else topology.atoms  # OpenMM vs mdtraj
    for atom in atoms:
        element = atom.element
        if element is None or element.atomic_number < 1:
            raise ValueError(
                f"atom {atom.index} ({atom.name} of residue {atom.residue.name}) has no chemical "
                f"element (virtual site or extra particle); remove it from the topology."
            )
        numbers.append(element.atomic_number)
    return np.array(numbers, dtype=np.int64)


def positions_to_angstrom(positions) -> np.ndarray:
    """OpenMM positions (a Quantity, or a plain array in nm) as a float64 (n_atoms, 3) array in Å."""
    from openmm import unit

    if unit.is_quantity(positions):
        return np.asarray(positions.value_in_unit(unit.angstrom), dtype=np.float64)
    return np.asarray(positions, dtype=np.float64) * NM_TO_ANGSTROM


def positions_to_openmm(positions: np.ndarray):
    """(n_atoms, 3) positions in Å as an OpenMM Quantity in nm."""
    from openmm import unit

    return unit.Quantity(np.asarray(positions, dtype=np.float64) / NM_TO_ANGSTROM, unit.nanometer)


def atoms_from_openmm(topology, positions) -> ase.Atoms:
    """ase.Atoms (Å) with the atoms of an OpenMM Topology and its positions (nm Quantity).

    The periodic box, if the topology has one, becomes the cell (Å) with pbc=True.
    """
    atoms = ase.Atoms(numbers=atomic_numbers(topology), positions=positions_to_angstrom(positions))
    box = topology.getPeriodicBoxVectors()
    if box is not None:
        atoms.set_cell(positions_to_angstrom(box))
        atoms.pbc = True
    return atoms


def atoms_to_openmm(atoms: ase.Atoms, topology=None):
    """OpenMM positions (nm Quantity) of `atoms`; checks the elements against `topology` if given."""
    if topology is not None:
        check_same_atoms(atoms.numbers, atomic_numbers(topology), "the Atoms", "the topology")
    return positions_to_openmm(atoms.positions)


def check_same_atoms(numbers: np.ndarray, expected: np.ndarray, name: str, expected_name: str) -> None:
    """Raise ValueError unless two atomic-number arrays agree atom by atom."""
    numbers, expected = np.asarray(numbers), np.asarray(expected)
    if numbers.shape != expected.shape:
        raise ValueError(
            f"{name} has {numbers.size} atoms but {expected_name} has {expected.size}; "
            f"use the topology of the system the structures were made for."
        )
    mismatch = np.flatnonzero(numbers != expected)
    if mismatch.size:
        i = int(mismatch[0])
        raise ValueError(
            f"atom {i} is element {numbers[i]} in {name} but {expected[i]} in {expected_name}; "
            f"the atom order must match the topology's."
        )


def mdtraj_topology(topology):
    """An mdtraj Topology from an OpenMM Topology, an mdtraj Topology or a structure file path."""
    import mdtraj

    if isinstance(topology, mdtraj.Topology):
        return topology
    if isinstance(topology, (str, os.PathLike)):
        if not Path(topology).is_file():
            raise FileNotFoundError(f"topology file not found: {topology}")
        return mdtraj.load_topology(str(topology))
    return mdtraj.Topology.from_openmm(topology)


def write_structures(path: str | os.PathLike, structures: Sequence[ase.Atoms] | Frames, topology) -> Path:
    """Write structures (Å) as a trajectory with `topology` via mdtraj: .dcd, .h5 or .pdb.

    `topology` is an OpenMM or mdtraj Topology or a structure file (e.g. the system's .pdb);
    its atoms must match the structures' atoms in order. Returns the path written.
    """
    import mdtraj

    path = Path(path)
    if path.suffix.lower() not in STRUCTURE_SUFFIXES:
        raise ValueError(
            f"write_structures writes {', '.join(sorted(STRUCTURE_SUFFIXES))} files, got {path.name!r}; "
            f"use ase.io.write or ase_psm.data.write_frames for extxyz."
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output directory does not exist: {path.parent}")
    frames = structures if isinstance(structures, Frames) else Frames.from_atoms(list(structures))
    top = mdtraj_topology(topology)
    check_same_atoms(frames.numbers, atomic_numbers(top), "the structures", "the topology")
    trajectory = mdtraj.Trajectory(frames.positions / NM_TO_ANGSTROM, top)
    trajectory.save(str(path))
    return path
