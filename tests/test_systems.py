"""The MD22-like systems: capped alanine peptides (amber14) and the double-walled nanotube force field."""

from __future__ import annotations

import numpy as np
import pytest

from ase_psm.benchmarks.data import ALA2_PDB, openmm_langevin

openmm = pytest.importorskip("openmm")
pytest.importorskip("rdkit")
mdtraj = pytest.importorskip("mdtraj")

from ase_psm.metrics import backbone_dihedrals
from ase_psm.openmm import atomic_numbers
from ase_psm.systems.nanotube import BOND_LENGTH, double_walled_nanotube, nanotube_system
from ase_psm.systems.peptides import capped_alanine, capped_alanine_smiles, peptide_system


def _ca_handedness(positions: np.ndarray, topology) -> list[float]:
    """Sign of (N - CA) x (C - CA) . (CB - CA) of every alanine: +1 for L in the shipped dipeptide."""
    signs = []
    for residue in topology.residues():
        if residue.name == "ALA":
            atom = {a.name: a.index for a in residue.atoms()}
            n, ca, c, cb = (positions[atom[name]] for name in ("N", "CA", "C", "CB"))
            signs.append(float(np.sign(np.dot(np.cross(n - ca, c - ca), cb - ca))))
    return signs


def test_capped_alanine_is_an_l_peptide_that_amber14_types():
    topology, positions = capped_alanine(3)
    assert topology.getNumAtoms() == positions.shape[0] == 42 and topology.getNumBonds() == 41
    assert [r.name for r in topology.residues()] == ["ACE", "ALA", "ALA", "ALA", "NME"]
    shipped = openmm.app.PDBFile(str(ALA2_PDB))
    reference = _ca_handedness(np.asarray(shipped.positions.value_in_unit(openmm.unit.angstrom)), shipped.topology)
    assert _ca_handedness(positions, topology) == reference * 3
    assert peptide_system(topology).getNumParticles() == 42  # every residue matched an amber14 template
    assert backbone_dihedrals(positions[None], topology).shape == (1, 3, 2)
    with pytest.raises(ValueError, match="at least one residue"):
        capped_alanine_smiles(0)


def test_nanotube_walls_keep_their_bonds_and_spacing_at_500_k():
    topology, positions = double_walled_nanotube(cells=2)
    assert len(positions) == 120 and set(atomic_numbers(topology)) == {6}
    degree = np.bincount(np.array([(a.index, b.index) for a, b in topology.bonds()]).ravel(), minlength=120)
    assert set(degree.tolist()) == {2, 3}  # open ends: two bonds; elsewhere three
    radii = [np.linalg.norm(positions[[a.index for a in r.atoms()], :2], axis=1).mean() for r in topology.residues()]
    assert radii[1] - radii[0] == pytest.approx(3.39, abs=0.05)  # graphite's spacing
    frames = openmm_langevin(topology, positions, nanotube_system(topology), 500.0, 5, 100, 0, seed=0, progress=False,
                             label="test")
    bonds = np.array([(a.index, b.index) for a, b in topology.bonds()])
    lengths = np.linalg.norm(frames.positions[:, bonds[:, 0]] - frames.positions[:, bonds[:, 1]], axis=-1)
    assert abs(lengths.mean() - BOND_LENGTH) < 0.02 and lengths.max() < 1.7
    with pytest.raises(ValueError, match="inner < outer"):
        double_walled_nanotube(cells=1, inner=10, outer=5)
