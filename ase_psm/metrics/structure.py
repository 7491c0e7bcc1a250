"""Per-structure metrics: bond stability (MDsim) and alanine-dipeptide backbone dihedrals.

Positions are (n_frames, n_atoms, 3) arrays in Å.
"""

from __future__ import annotations

import numpy as np
from ase.neighborlist import natural_cutoffs, neighbor_list

from ase_psm.metrics.distances import _check_frames

#: MDsim: a structure is unstable when a bond deviates more than this (Å) from its reference length.
STABILITY_TOLERANCE = 0.5

#: Ramachandran histogram: this many bins per angle over [-180, 180) degrees.
RAMACHANDRAN_BINS = 36


def reference_bonds(numbers: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bonds (n_bonds, 2) from ASE natural cutoffs on the reference's first frame, and their
    mean length (Å) over all reference frames."""
    import ase

    reference = _check_frames(reference, "reference")
    first = ase.Atoms(numbers=numbers, positions=reference[0])
    i, j = neighbor_list("ij", first, natural_cutoffs(first))
    bonds = np.unique(np.sort(np.stack([i, j], axis=1), axis=1), axis=0)
    if len(bonds) == 0:
        raise ValueError("the reference's first frame has no covalent bonds: stability needs a molecule")
    lengths = np.linalg.norm(reference[:, bonds[:, 0]] - reference[:, bonds[:, 1]], axis=-1).mean(axis=0)
    return bonds, lengths


def stability(
    samples: np.ndarray, reference: np.ndarray, numbers: np.ndarray, tolerance: float = STABILITY_TOLERANCE
) -> float:
    """Fraction of samples whose every reference bond is within ``tolerance`` Å of its mean
    reference length (MDsim stability)."""
    samples = _check_frames(samples, "samples")
    bonds, lengths = reference_bonds(np.asarray(numbers), reference)
    if samples.shape[1] != len(numbers):
        raise ValueError(f"samples have {samples.shape[1]} atoms, the reference {len(numbers)}")
    deviation = np.abs(np.linalg.norm(samples[:, bonds[:, 0]] - samples[:, bonds[:, 1]], axis=-1) - lengths)
    stable = np.isfinite(deviation).all(axis=1) & (np.nan_to_num(deviation, nan=np.inf).max(axis=1) <= tolerance)
    return float(stable.mean())


def backbone_dihedrals(positions: np.ndarray, topology) -> np.ndarray:
    """Backbone dihedrals (n_frames, n_residues, 2) phi, psi in degrees of every residue that has both.

    ``topology``: an mdtraj or OpenMM Topology (or a PDB path) with the atoms in the
    order of ``positions``.
    """
    import mdtraj

    positions = _check_frames(positions)
    if isinstance(topology, str):
        topology = mdtraj.load_topology(topology)
    elif not isinstance(topology, mdtraj.Topology):
        topology = mdtraj.Topology.from_openmm(topology)
    if topology.n_atoms != positions.shape[1]:
        raise ValueError(f"the topology has {topology.n_atoms} atoms, the positions {positions.shape[1]}")
    trajectory = mdtraj.Trajectory(positions / 10.0, topology)  # mdtraj works in nm
    phi_atoms, phi = mdtraj.compute_phi(trajectory)
    psi_atoms, psi = mdtraj.compute_psi(trajectory)
    phi_residues = [topology.atom(int(quartet[2])).residue.index for quartet in phi_atoms]  # C N CA C
    psi_residues = [topology.atom(int(quartet[1])).residue.index for quartet in psi_atoms]  # N CA C N
    if phi_residues != psi_residues or not phi_residues:
        raise ValueError(f"expected residues with both phi and psi; phi in residues {phi_residues}, "
                         f"psi in {psi_residues}")
    return np.degrees(np.stack([phi, psi], axis=-1))


def phi_psi(positions: np.ndarray, topology) -> np.ndarray:
    """Backbone dihedrals (n_frames, 2) phi, psi in degrees of a one-residue peptide (see
    :func:`backbone_dihedrals` for longer ones)."""
    angles = backbone_dihedrals(positions, topology)
    if angles.shape[1] != 1:
        raise ValueError(f"expected one phi and one psi (a dipeptide), found {angles.shape[1]} of each: "
                         "use backbone_dihedrals for longer peptides")
    return angles[:, 0]


def ramachandran_histogram(angles: np.ndarray, bins: int = RAMACHANDRAN_BINS) -> np.ndarray:
    """Normalised (bins, bins) histogram of (phi, psi) in degrees over [-180, 180)^2."""
    angles = np.asarray(angles, dtype=np.float64)
    if angles.ndim != 2 or angles.shape[1] != 2 or len(angles) == 0:
        raise ValueError(f"angles must have shape (n > 0, 2) (phi, psi in degrees), got {angles.shape}")
    edges = np.linspace(-180.0, 180.0, bins + 1)
    counts, _, _ = np.histogram2d(angles[:, 0], angles[:, 1], bins=[edges, edges])
    return counts / counts.sum()


def ramachandran_tvd(angles: np.ndarray, reference: np.ndarray, bins: int = RAMACHANDRAN_BINS) -> float:
    """TVD = 1/2 sum |p - q| between two Ramachandran histograms (phi, psi in degrees)."""
    return float(0.5 * np.abs(ramachandran_histogram(angles, bins) - ramachandran_histogram(reference, bins)).sum())


def residue_ramachandran_tvd(angles: np.ndarray, reference: np.ndarray, bins: int = RAMACHANDRAN_BINS) -> float:
    """Mean over residues of the Ramachandran TVD; angles (n, n_residues, 2) and reference (m, n_residues, 2)
    from :func:`backbone_dihedrals`."""
    if angles.ndim != 3 or angles.shape[1:] != reference.shape[1:]:
        raise ValueError(f"angles {angles.shape} and reference {reference.shape} must be (n, n_residues, 2) alike")
    return float(np.mean([ramachandran_tvd(angles[:, r], reference[:, r], bins) for r in range(angles.shape[1])]))
