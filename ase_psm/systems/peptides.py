"""Capped alanine peptides Ac-(Ala)n-NHMe, built from SMILES, for the amber14 force field in OpenMM.

Ac-Ala3-NHMe (n = 3, 42 atoms) is MD22's smallest molecule; Ac-Ala10-NHMe (112 atoms) a
100-150-atom peptide of the same chemistry. Atom names follow tleap (ACE: CH3, HH31-33, C, O;
ALA: N, H, CA, HA, CB, HB1-3, C, O; NME: N, H, CH3, HH31-33), so mdtraj finds every phi/psi.
Units: positions in Å.
"""

from __future__ import annotations

#: Heavy atoms of each residue in SMILES order: (name, element symbol, hydrogen names).
_ACE = [("CH3", "C", ["HH31", "HH32", "HH33"]), ("C", "C", []), ("O", "O", [])]
_ALA = [("N", "N", ["H"]), ("CA", "C", ["HA"]), ("CB", "C", ["HB1", "HB2", "HB3"]), ("C", "C", []), ("O", "O", [])]
_NME = [("N", "N", ["H"]), ("CH3", "C", ["HH31", "HH32", "HH33"])]


def capped_alanine_smiles(n_residues: int) -> str:
    """SMILES of Ac-(L-Ala)n-NHMe, heavy atoms in residue order."""
    if n_residues < 1:
        raise ValueError(f"a capped alanine peptide needs at least one residue, got n_residues={n_residues}")
    return "CC(=O)" + "N[C@@H](C)C(=O)" * n_residues + "NC"


def capped_alanine(n_residues: int, seed: int = 0):
    """Ac-(L-Ala)n-NHMe: (OpenMM Topology with named atoms, residues and bonds, positions in Å).

    Embedded by RDKit (ETKDG, ``seed``; from random coordinates when that fails, as it does for long
    chains such as n = 36) and MMFF-relaxed; atoms are ordered residue by residue, each heavy atom
    followed by its hydrogens.
    """
    from openmm import app
    from rdkit import Chem
    from rdkit.Chem import AllChem

    molecule = Chem.AddHs(Chem.MolFromSmiles(capped_alanine_smiles(n_residues)))
    if (AllChem.EmbedMolecule(molecule, randomSeed=seed) != 0  # type: ignore[attr-defined]
            and AllChem.EmbedMolecule(molecule, randomSeed=seed, useRandomCoords=True) != 0):  # type: ignore[attr-defined]
        raise ValueError(f"RDKit could not embed Ac-Ala{n_residues}-NHMe (seed {seed}); try another seed")
    AllChem.MMFFOptimizeMolecule(molecule, maxIters=2000)  # type: ignore[attr-defined]
    xyz = molecule.GetConformer().GetPositions()
    residues = [("ACE", _ACE)] + [("ALA", _ALA)] * n_residues + [("NME", _NME)]
    topology = app.Topology()
    chain = topology.addChain()
    order: list[int] = []  # RDKit index of each OpenMM atom
    heavy = iter(atom for atom in molecule.GetAtoms() if atom.GetAtomicNum() > 1)
    for residue_name, atoms in residues:
        residue = topology.addResidue(residue_name, chain)
        for name, symbol, hydrogen_names in atoms:
            atom = next(heavy)
            assert atom.GetSymbol() == symbol, (residue_name, name, atom.GetSymbol())
            topology.addAtom(name, app.Element.getBySymbol(symbol), residue)
            order.append(atom.GetIdx())
            hydrogens = [n.GetIdx() for n in atom.GetNeighbors() if n.GetAtomicNum() == 1]
            assert len(hydrogens) == len(hydrogen_names), (residue_name, name, len(hydrogens))
            for hydrogen, hydrogen_name in zip(hydrogens, hydrogen_names):
                topology.addAtom(hydrogen_name, app.Element.getBySymbol("H"), residue)
                order.append(hydrogen)
    position_of = {rdkit_index: i for i, rdkit_index in enumerate(order)}
    atoms_list = list(topology.atoms())
    for bond in molecule.GetBonds():
        topology.addBond(atoms_list[position_of[bond.GetBeginAtomIdx()]], atoms_list[position_of[bond.GetEndAtomIdx()]])
    return topology, xyz[order]


def peptide_system(topology, implicit_solvent: bool = False):
    """amber14 (ff14SB) OpenMM System without cutoff or constraints; with ``implicit_solvent`` GBn2."""
    from openmm import app

    files = ["amber14-all.xml"] + (["implicit/gbn2.xml"] if implicit_solvent else [])
    return app.ForceField(*files).createSystem(topology, nonbondedMethod=app.NoCutoff, constraints=None)

