"""Checks and reads of user input at the public API boundary, with errors that name the problem and
the fix.

Called by the calculator, the denoiser, ``sample()`` and the CLI before any tensor work, so
bad input never surfaces as a traceback from deep inside torch. Units: Å.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path

import ase
import ase.data
import ase.io
import numpy as np
from ase.constraints import FixAtoms

MAX_COORDINATE = 1e4
"""Largest accepted |coordinate| (Å); beyond it a structure is taken as corrupt or exploded."""


def check_positions(positions: np.ndarray, what: str = "positions") -> None:
    """Positions (..., 3) in Å must be finite and within ±MAX_COORDINATE."""
    positions = np.asarray(positions, dtype=np.float64)
    if not np.isfinite(positions).all():
        atoms = sorted({int(i) for i in np.argwhere(~np.isfinite(positions))[:, -2]})
        raise ValueError(
            f"{what} contain NaN or inf (atoms {atoms[:10]}): pass finite coordinates in Å "
            "(a NaN often comes from a crashed simulation or an unconverged optimizer)"
        )
    largest = float(np.abs(positions).max(initial=0.0))
    if largest > MAX_COORDINATE:
        raise ValueError(
            f"{what} reach |x| = {largest:.3g} Å, beyond {MAX_COORDINATE:g} Å: the structure looks "
            "corrupt or exploded, or is not in Å (convert nm or Bohr first)"
        )


def check_species(numbers: Iterable[int], species: Iterable[int], what: str = "structure") -> None:
    """Every element of ``numbers`` must be one the model was trained on."""
    unknown = sorted({int(z) for z in numbers} - {int(z) for z in species})
    if unknown:
        raise ValueError(
            f"the model does not know elements {_symbols(unknown)} of the {what}: it was trained on "
            f"{_symbols(species)}; use a model trained on this molecule"
        )


def check_composition(numbers: Iterable[int], species: Iterable[int], what: str = "template") -> None:
    """``numbers`` must hold exactly the elements of the training molecule (no extra, none missing)."""
    check_species(numbers, species, what)
    missing = sorted({int(z) for z in species} - {int(z) for z in numbers})
    if missing:
        raise ValueError(
            f"the {what} lacks elements {_symbols(missing)} of the molecule the model was trained on "
            f"({_symbols(species)}): use a structure of that molecule as the {what}"
        )


def check_non_periodic(pbc: Iterable[bool] | bool | None) -> None:
    """The models are for isolated molecules: periodic boundary conditions are refused."""
    if pbc is not None and np.any(np.asarray(pbc)):
        raise ValueError(
            f"the model is for non-periodic molecules, but the structure has pbc={np.asarray(pbc).tolist()}: "
            "set atoms.pbc = False (the cell is then ignored)"
        )


def check_structure(
    numbers: Iterable[int], positions: np.ndarray, pbc: Iterable[bool] | bool | None, species: Iterable[int]
) -> None:
    """One structure (or a batch sharing ``numbers``) fit for a model trained on ``species``."""
    check_non_periodic(pbc)
    check_species(numbers, species)
    check_positions(positions)


def check_atoms(atoms: ase.Atoms, species: Iterable[int]) -> None:
    """:func:`check_structure` for an ``ase.Atoms``."""
    if not isinstance(atoms, ase.Atoms):
        raise TypeError(f"expected an ase.Atoms structure, got {type(atoms).__name__}")
    if len(atoms) == 0:
        raise ValueError("the structure has no atoms")
    check_structure(atoms.numbers, atoms.positions, atoms.pbc, species)


def check_sigma_range(sigma_min: float, sigma_max: float) -> None:
    """Noise levels (Å) must satisfy 0 < sigma_min < sigma_max, both finite."""
    if not (math.isfinite(sigma_min) and math.isfinite(sigma_max) and 0 < sigma_min < sigma_max):
        raise ValueError(
            f"need 0 < sigma_min < sigma_max (Å), got sigma_min={sigma_min}, sigma_max={sigma_max}: "
            "swap them or leave them out to use the training schedule"
        )


def fixed_atom_mask(atoms: ase.Atoms) -> np.ndarray:
    """Boolean mask (n_atoms,) of atoms held by FixAtoms constraints."""
    fixed = np.zeros(len(atoms), dtype=bool)
    for constraint in atoms.constraints:
        if isinstance(constraint, FixAtoms):
            fixed[constraint.get_indices()] = True
    return fixed


def read_structure(path: str | os.PathLike) -> ase.Atoms:
    """The last structure in ``path`` (any format ASE reads), or a clear error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no structure file at {path}: check the path")
    try:
        atoms = ase.io.read(path)
    except Exception as error:  # ASE's parsers raise many types on malformed files
        raise ValueError(
            f"could not read a structure from {path} ({type(error).__name__}: {error}): "
            "give a complete file in a format ASE reads, e.g. .xyz or .extxyz"
        ) from error
    if not isinstance(atoms, ase.Atoms) or len(atoms) == 0:
        raise ValueError(f"{path} holds no atoms: give a structure file with at least one atom")
    return atoms


def _symbols(numbers: Iterable[int]) -> str:
    """Element symbols with atomic numbers, e.g. 'C (6), O (8)'."""
    symbols = ase.data.chemical_symbols
    return ", ".join(
        f"{symbols[z] if 0 <= z < len(symbols) else '?'} ({z})" for z in sorted({int(z) for z in numbers})
    )
