"""Checks that generated structures are physically usable: finite, compact, no clashes, right bonds.

Positions are (n_structures, n_atoms, 3) arrays in Å (or the model's length unit).
A structure can fail several checks; :func:`structure_problems` lists every failure.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..chemistry.bonds import bond_graph
from ..chemistry.stereo import cis_trans, signed_volumes

# The names of what can be wrong with a generated structure: one vocabulary for sample()'s checks
# (SampleReport.problems, atoms.info["problems"]) and OpenMM seeding's rejections (Rejection.category).
NON_FINITE = "non-finite"
"""A NaN or infinite coordinate."""
EXPLODED = "exploded"
"""An atom far from the centroid (sample() only)."""
CLASH = "clash"
"""Atoms too close: closer than clash_distance (sample()), or atoms more than two bonds apart within
bonding distance (OpenMM checks)."""
BONDS = "bonds"
"""The bonds are not the template's: another covalent bond graph (sample()), or a bond length off the
template's by more than bond_tolerance (OpenMM checks)."""
CHIRALITY = "chirality"
"""A stereocentre with the other handedness than the template's."""
CIS_TRANS = "cis/trans"
"""A double bond with the other E/Z configuration than the template's (sample() only)."""
ENERGY = "energy"
"""An OpenMM energy above the seeding window (OpenMM seeding only)."""

#: The problems :func:`structure_problems` finds, in the order they are checked.
PROBLEMS = (NON_FINITE, EXPLODED, CLASH, BONDS, CHIRALITY, CIS_TRANS)



def structure_problems(
    positions: np.ndarray,
    *,
    clash_distance: float,
    max_radius: float,
    numbers: np.ndarray | None = None,
    reference_bonds: np.ndarray | None = None,
    stereocentres: list[tuple[int, tuple[int, int, int]]] | None = None,
    reference_handedness: np.ndarray | None = None,
    double_bonds: list[tuple[int, int, int, int]] | None = None,
    reference_cis_trans: np.ndarray | None = None,
) -> list[list[str]]:
    """The problems of each structure (an empty list when it passes every check).

    Problem names are the module's vocabulary (:data:`PROBLEMS`):

    - ``non-finite``: a NaN or infinite coordinate;
    - ``exploded``: an atom farther than ``max_radius`` from the structure's centroid;
    - ``clash``: two atoms closer than ``clash_distance``;
    - ``bonds``: the covalent bond graph differs from ``reference_bonds`` (N, N)
      (checked only when it and ``numbers`` are given);
    - ``chirality``: a stereocentre's handedness (sign of its signed volume, see
      :func:`ase_psm.chemistry.stereo.stereocentres`) differs from ``reference_handedness``
      (checked only when both are given);
    - ``cis/trans``: a double bond's E/Z configuration (see
      :func:`ase_psm.chemistry.stereo.stereo_double_bonds`) differs from ``reference_cis_trans``
      (checked only when both are given).
    """
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 3 or positions.shape[-1] != 3:
        raise ValueError(f"positions must have shape (n_structures, n_atoms, 3), got {positions.shape}")
    if clash_distance < 0 or max_radius <= 0:
        raise ValueError(f"need clash_distance >= 0 and max_radius > 0, got {clash_distance}, {max_radius}")
    finite = np.isfinite(positions).all(axis=(1, 2))
    safe = np.where(finite[:, None, None], positions, 0.0)
    radius = np.linalg.norm(safe - safe.mean(axis=1, keepdims=True), axis=-1).max(axis=1)
    distances = _distance_matrix(safe)
    n_atoms = positions.shape[1]
    distances[:, np.arange(n_atoms), np.arange(n_atoms)] = np.inf
    closest = distances.min(axis=(1, 2)) if n_atoms > 1 else np.full(len(positions), np.inf)
    wrong_bonds = np.zeros(len(positions), dtype=bool)
    if reference_bonds is not None and numbers is not None:
        wrong_bonds = (bond_graph(numbers, safe) != reference_bonds).any(axis=(1, 2))
    inverted = np.zeros(len(positions), dtype=bool)
    if stereocentres and reference_handedness is not None:
        inverted = (np.sign(signed_volumes(safe, stereocentres)) != reference_handedness).any(axis=1)
    flipped = np.zeros(len(positions), dtype=bool)
    if double_bonds and reference_cis_trans is not None:
        flipped = (cis_trans(safe, double_bonds) != reference_cis_trans).any(axis=1)
    problems = []
    for i in range(len(positions)):
        if not finite[i]:
            problems.append([NON_FINITE])
            continue
        found = []
        if radius[i] > max_radius:
            found.append(EXPLODED)
        if closest[i] < clash_distance:
            found.append(CLASH)
        if wrong_bonds[i]:
            found.append(BONDS)
        if inverted[i]:
            found.append(CHIRALITY)
        if flipped[i]:
            found.append(CIS_TRANS)
        problems.append(found)
    return problems


@dataclass
class SampleReport:
    """What happened to the structures of one :func:`ase_psm.sample` call."""

    requested: int
    generated: int = 0
    """Structures drawn from the sampler, including regenerated ones."""
    returned: int = 0
    invalid: int = 0
    """Generated structures that failed at least one check."""
    problems: Counter = field(default_factory=Counter)
    """How many generated structures had each problem (one structure may count for several)."""
    rounds: int = 0
    """Sampling rounds (1 + regeneration rounds)."""
    on_invalid: str = "regenerate"
    mirrored: int = 0
    """Generated structures that were the template's mirror image at every stereocentre and were
    reflected (``enantiomers="mirror"``); they count as valid when they pass the other checks."""
    renumbered: int = 0
    """Generated structures whose bond graph was the template's up to swapped equivalent atoms and
    that were renumbered into the template's atom order (``renumber=True``)."""

    def __str__(self) -> str:
        details = ", ".join(f"{count} {name}" for name, count in sorted(self.problems.items())) or "none"
        repaired = f", {self.mirrored} mirrored to the template's enantiomer" if self.mirrored else ""
        repaired += f", {self.renumbered} renumbered into the template's atom order" if self.renumbered else ""
        return (
            f"generated {self.generated} in {self.rounds} round(s){repaired}, {self.invalid} invalid ({details}); "
            f"returned {self.returned} of {self.requested} requested (on_invalid={self.on_invalid})"
        )


def _distance_matrix(positions: np.ndarray) -> np.ndarray:
    return np.linalg.norm(positions[..., :, None, :] - positions[..., None, :, :], axis=-1)
