"""Reading ASE constraints as masks."""

from __future__ import annotations

import ase
import numpy as np
from ase.constraints import FixAtoms


def fixed_atom_mask(atoms: ase.Atoms) -> np.ndarray:
    """Boolean mask (n_atoms,) of atoms held by FixAtoms constraints."""
    fixed = np.zeros(len(atoms), dtype=bool)
    for constraint in atoms.constraints:
        if isinstance(constraint, FixAtoms):
            fixed[constraint.get_indices()] = True
    return fixed
