"""A double-walled carbon nanotube (MD22's largest system, 370 atoms there) with a bonded force field in OpenMM.

Geometry: armchair (5,5) inside (10,10) (wall spacing 3.39 Å, graphite's), open ends, from
``ase.build.nanotube``; 6 unit cells give 360 carbon atoms (MD22's tube has 370 atoms).

Force field: GAFF's aromatic carbon ("ca") terms with graphene's C-C length: harmonic bonds
(r0 1.42 Å, K 478.4 kcal/mol/Å²), angles (120°, K 67.18 kcal/mol/rad²), two-fold torsions that keep the
walls flat (3.625 kcal/mol) and Lennard-Jones between atoms more than two bonds apart (sigma 3.4 Å,
epsilon 0.086 kcal/mol, 1-4 pairs halved), which holds the walls apart. No charges, no cutoff. We chose it
over a reactive potential (Tersoff, REBO) because it runs at thousands of MD steps per second for 360 atoms
on one core in OpenMM, and at 500 K no bond breaks, so the reactive part would add nothing.
Units: positions in Å.
"""

from __future__ import annotations

import itertools

import numpy as np

BOND_LENGTH = 1.42  # Å, graphene
_KCAL = 4.184  # kJ / kcal
_BOND_K = 2 * 478.4 * _KCAL * 100  # kJ/mol/nm² (OpenMM's 1/2 k (r - r0)², GAFF's K (r - r0)²)
_ANGLE_K = 2 * 67.18 * _KCAL  # kJ/mol/rad²
_TORSION_K = 3.625 * _KCAL  # kJ/mol, n = 2, phase 180°
_LJ_SIGMA = 0.34  # nm
_LJ_EPSILON = 0.086 * _KCAL  # kJ/mol


def double_walled_nanotube(cells: int = 6, inner: int = 5, outer: int = 10):
    """An open (inner, inner) @ (outer, outer) armchair tube of ``cells`` unit cells (2.46 Å each): (OpenMM
    Topology with one residue per wall and the C-C bonds, positions in Å centred at 0)."""
    from openmm import app

    if cells < 1 or not 0 < inner < outer:
        raise ValueError(f"need cells >= 1 and 0 < inner < outer, got cells={cells}, inner={inner}, outer={outer}")
    walls = [_wall(n, cells) for n in (inner, outer)]
    positions = np.concatenate(walls)
    positions -= positions.mean(axis=0)
    topology = app.Topology()
    chain = topology.addChain()
    atoms = []
    for n, wall in zip((inner, outer), walls):
        residue = topology.addResidue(f"W{n}", chain)
        atoms += [topology.addAtom("C", app.Element.getBySymbol("C"), residue) for _ in wall]
    for i, j in _close_pairs(positions, 1.2 * BOND_LENGTH):
        topology.addBond(atoms[i], atoms[j])
    return topology, positions


def _wall(n: int, cells: int) -> np.ndarray:
    """Positions (Å) of an open (n, n) tube of ``cells`` cells: ase wraps part of the first ring of atoms to the
    far end of its periodic cell (leaving atoms of one bond); they go back to the first ring."""
    from ase.build import nanotube

    tube = nanotube(n, n, length=cells, bond=BOND_LENGTH)
    positions = tube.positions.copy()
    wrapped = positions[:, 2] > tube.cell[2, 2] - 0.1
    positions[wrapped, 2] -= tube.cell[2, 2]
    return positions


def _close_pairs(positions: np.ndarray, cutoff: float) -> list[tuple[int, int]]:
    """Pairs (i < j) closer than ``cutoff`` (Å)."""
    distances = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    i, j = np.nonzero(np.triu(distances < cutoff, k=1))
    return list(zip(i.tolist(), j.tolist()))


def nanotube_system(topology):
    """The bonded force field of the module docstring for a topology of carbon atoms and their bonds."""
    import openmm

    n_atoms = topology.getNumAtoms()
    bonds = [(a.index, b.index) for a, b in topology.bonds()]
    neighbours = [[] for _ in range(n_atoms)]
    for i, j in bonds:
        neighbours[i].append(j)
        neighbours[j].append(i)
    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    bond_force = openmm.HarmonicBondForce()
    for i, j in bonds:
        bond_force.addBond(i, j, BOND_LENGTH / 10, _BOND_K)
    angle_force = openmm.HarmonicAngleForce()
    for centre in range(n_atoms):
        for i, k in itertools.combinations(neighbours[centre], 2):
            angle_force.addAngle(i, centre, k, np.radians(120.0), _ANGLE_K)
    torsion_force = openmm.PeriodicTorsionForce()
    for j, k in bonds:
        for i in neighbours[j]:
            for m in neighbours[k]:
                if i != k and m != j and i != m:
                    torsion_force.addTorsion(i, j, k, m, 2, np.pi, _TORSION_K)
    nonbonded = openmm.NonbondedForce()
    nonbonded.setNonbondedMethod(openmm.NonbondedForce.NoCutoff)
    for _ in range(n_atoms):
        nonbonded.addParticle(0.0, _LJ_SIGMA, _LJ_EPSILON)
    nonbonded.createExceptionsFromBonds(bonds, 0.0, 0.5)
    for force in (bond_force, angle_force, torsion_force, nonbonded):
        system.addForce(force)
    return system
