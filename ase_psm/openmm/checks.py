"""Topology and chirality checks of generated structures against a template (Å).

- Bonds come from the OpenMM/mdtraj topology; each must keep the template's length within
  ``bond_tolerance``.
- No extra bonds (clashes): atoms further apart than two bonds must stay further than
  ``clash_scale`` times the sum of their covalent radii.
- Chirality: a stereocentre is an atom with four bonded neighbours that are pairwise
  inequivalent (different extended-connectivity classes). Its handedness is the sign of the
  signed volume of its three highest-ranked neighbours (heavy atoms first); a structure passes
  when every sign equals the template's. No RDKit needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase.data import covalent_radii

from ..chemistry.stereo import signed_volumes, stereocentres
from ..metrics.validity import BONDS, CHIRALITY, CLASH, NON_FINITE


@dataclass
class CheckSettings:
    """Tolerances of the structure checks.

    Attributes:
        bond_tolerance: largest allowed change of a bond length from the template, Å.
        clash_scale: atoms more than two bonds apart clash when closer than this times the
            sum of their covalent radii (1.0: they would form a bond).
    """

    bond_tolerance: float = 0.3
    clash_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.bond_tolerance <= 0 or self.clash_scale <= 0:
            raise ValueError(
                f"bond_tolerance (Å) and clash_scale must be positive, got "
                f"{self.bond_tolerance} and {self.clash_scale}."
            )


def topology_bonds(topology) -> np.ndarray:
    """(n_bonds, 2) atom indices of the bonds of an OpenMM or mdtraj Topology."""
    bonds = topology.bonds() if callable(topology.bonds) else topology.bonds  # OpenMM vs mdtraj
    pairs = np.array([(bond[0].index, bond[1].index) for bond in bonds], dtype=np.int64)
    if pairs.size == 0:
        raise ValueError(
            "the topology has no bonds; load it from a PDB with standard residues or CONECT "
            "records (or call topology.createStandardBonds()) before checking structures."
        )
    return pairs


class StructureChecker:
    """Checks structures against a template: finite, no clashes, bond lengths, chirality.

    Args:
        template_positions: (n_atoms, 3) positions of a valid structure, Å.
        numbers: (n_atoms,) atomic numbers.
        bonds: (n_bonds, 2) bonded atom pairs (see :func:`topology_bonds`).
        settings: tolerances.
    """

    def __init__(
        self, template_positions: np.ndarray, numbers: np.ndarray, bonds: np.ndarray, settings: CheckSettings | None = None
    ) -> None:
        self.settings = settings or CheckSettings()
        self.numbers = np.asarray(numbers, dtype=np.int64)
        self.bonds = np.asarray(bonds, dtype=np.int64)
        template = np.asarray(template_positions, dtype=np.float64)
        self.template_lengths = _bond_lengths(template, self.bonds)
        self.centres = stereocentres(self.numbers, self.bonds)
        self.template_signs = np.sign(signed_volumes(template, self.centres))
        self._far_pairs, self._clash_distance = self._far_pairs_and_limits()
        problem = self.check(template)
        if problem is not None:
            raise ValueError(
                f"the template itself fails the checks ({problem[1]}); use a valid structure of "
                f"the system (e.g. its minimized PDB) as the template."
            )

    @classmethod
    def from_topology(cls, template_positions: np.ndarray, topology, settings: CheckSettings | None = None):
        """Checker with bonds and elements from an OpenMM or mdtraj Topology."""
        from .convert import atomic_numbers

        return cls(template_positions, atomic_numbers(topology), topology_bonds(topology), settings)

    def check(self, positions: np.ndarray) -> tuple[str, str] | None:
        """None if `positions` (Å) pass, else (category, message) of the first failure."""
        positions = np.asarray(positions, dtype=np.float64)
        if positions.shape != (len(self.numbers), 3):
            raise ValueError(f"positions must have shape ({len(self.numbers)}, 3), got {positions.shape}.")
        if not np.isfinite(positions).all():
            return NON_FINITE, "positions contain NaN or inf"
        i, j = self._far_pairs
        distances = np.linalg.norm(positions[i] - positions[j], axis=-1)
        clashing = np.flatnonzero(distances < self._clash_distance)
        if clashing.size:
            k = clashing[np.argmin(distances[clashing])]
            return CLASH, f"atoms {i[k]} and {j[k]} are {distances[k]:.2f} Å apart (not bonded)"
        lengths = _bond_lengths(positions, self.bonds)
        deviation = np.abs(lengths - self.template_lengths)
        if (deviation > self.settings.bond_tolerance).any():
            k = int(np.argmax(deviation))
            a, b = self.bonds[k]
            return BONDS, f"bond {a}-{b} is {lengths[k]:.2f} Å (template {self.template_lengths[k]:.2f} Å)"
        flipped = np.flatnonzero(np.sign(signed_volumes(positions, self.centres)) != self.template_signs)
        if flipped.size:
            centres = [self.centres[k][0] for k in flipped]
            return CHIRALITY, f"chirality inverted at atom(s) {centres}"
        return None

    def same_chirality(self, positions: np.ndarray) -> np.ndarray:
        """(n_structures,) bool: every stereocentre has the template's handedness."""
        signs = np.sign(signed_volumes(np.asarray(positions, dtype=np.float64), self.centres))
        return (signs == self.template_signs).all(axis=-1)

    def _far_pairs_and_limits(self) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        """Atom pairs more than two bonds apart and their clash distances (Å)."""
        n = len(self.numbers)
        adjacency = np.zeros((n, n), dtype=bool)
        adjacency[self.bonds[:, 0], self.bonds[:, 1]] = True
        adjacency |= adjacency.T
        within_two = adjacency | ((adjacency.astype(int) @ adjacency.astype(int)) > 0) | np.eye(n, dtype=bool)
        i, j = np.nonzero(np.triu(~within_two))
        radii = covalent_radii[self.numbers]
        return (i, j), self.settings.clash_scale * (radii[i] + radii[j])


def _bond_lengths(positions: np.ndarray, bonds: np.ndarray) -> np.ndarray:
    return np.linalg.norm(positions[..., bonds[:, 0], :] - positions[..., bonds[:, 1], :], axis=-1)
