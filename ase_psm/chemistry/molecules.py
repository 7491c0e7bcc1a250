"""Drug-like molecules for conformer generation: SMILES -> ase.Atoms conformers, and bond perception.

Needs RDKit (``pip install "ase-psm[molecules]"``). Reference conformers come from ETKDG
(v3) embedding followed by an MMFF94 optimisation. Generated conformers are judged two ways:

- *valid* (:func:`perceive`): RDKit ``rdDetermineBonds`` assigns bonds and bond orders (total
  charge 0) to the bare coordinates, the molecule sanitizes, is one fragment and neutral;
- *the input's molecule* (:func:`match_smiles`): the bonds perceived from the coordinates (covalent
  radii) form the SMILES's graph, and, with the SMILES's own bond orders and charges, every stereo
  element the SMILES specifies has its configuration in 3D. Bond orders are never re-perceived here,
  so tautomers that perception prefers (guanidines, amidines) and charged groups (nitro,
  carboxylate) are judged as the SMILES gives them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import ase
import numpy as np

ORGANIC_ELEMENTS = ("H", "C", "N", "O", "F", "S", "Cl")
MAX_NEIGHBOURS = {1: 1, 6: 4, 7: 4, 8: 2, 9: 1, 16: 6, 17: 1}
"""Upper bounds on bonded neighbours (loose: bond-order assignment decides the rest); S: 6 as in sulfones."""


def _rdkit():
    try:
        from rdkit import Chem, RDLogger
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "this needs RDKit: pip install 'ase-psm[molecules]' (or pip install rdkit)"
        ) from error
    RDLogger.DisableLog("rdApp.*")
    return Chem


def nci_smiles_path() -> str:
    """Path of RDKit's bundled ``NCI/first_5K.smi`` (5000 NCI compounds, one SMILES a line)."""
    _rdkit()
    from rdkit import RDConfig

    return os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi")


def read_smiles(path: str | os.PathLike) -> list[str]:
    """The first column of a whitespace-separated SMILES file."""
    with open(path) as handle:
        return [line.split()[0] for line in handle if line.strip() and not line.startswith("#")]


def filter_smiles(
    smiles: Iterable[str],
    elements: Sequence[str] = ORGANIC_ELEMENTS,
    max_heavy_atoms: int = 15,
    min_heavy_atoms: int = 3,
) -> list[str]:
    """Neutral, single-fragment molecules of ``elements`` with min..max heavy atoms, no radicals.

    Returns canonical SMILES (with any stereo the input gives), without duplicates, in input order.
    """
    Chem = _rdkit()
    allowed = set(elements)
    kept: list[str] = []
    seen: set[str] = set()
    for text in smiles:
        mol = Chem.MolFromSmiles(text)
        if mol is None or "." in Chem.MolToSmiles(mol):
            continue
        if not min_heavy_atoms <= mol.GetNumHeavyAtoms() <= max_heavy_atoms:
            continue
        atoms = list(mol.GetAtoms())
        if any(a.GetSymbol() not in allowed or a.GetFormalCharge() or a.GetNumRadicalElectrons() for a in atoms):
            continue
        canonical = Chem.MolToSmiles(mol)
        if canonical not in seen:
            seen.add(canonical)
            kept.append(canonical)
    return kept


def embed(smiles: str, n_conformers: int = 1, seed: int = 0, mmff: bool = True) -> list[ase.Atoms]:
    """Conformers of ``smiles`` (explicit hydrogens) from ETKDG, MMFF-optimised.

    Each Atoms has ``info["smiles"]`` (the input), ``info["bonds"]`` ((n_bonds, 2) atom indices of
    the molecular graph, hydrogens included), ``info["bond_orders"]`` (1, 1.5, 2 or 3 per bond) and
    ``info["reference_smiles"]``: the input's canonical SMILES with every stereo element of that
    conformer (from 3D). Conformers that are not the input's molecule (:func:`match_smiles`: other
    bonds, or other stereo where the SMILES gives it) are dropped; an empty list when none embed.
    """
    Chem = _rdkit()
    from rdkit.Chem import rdDistGeom, rdForceFieldHelpers

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return []
    mol = Chem.AddHs(mol)
    params = rdDistGeom.ETKDGv3()
    params.randomSeed = int(seed)  # type: ignore[assignment]  # the stub types the property oddly
    conformer_ids = list(rdDistGeom.EmbedMultipleConfs(mol, numConfs=n_conformers, params=params))
    if not conformer_ids:
        return []
    if mmff and rdForceFieldHelpers.MMFFHasAllMoleculeParams(mol):
        rdForceFieldHelpers.MMFFOptimizeMoleculeConfs(mol, maxIters=2000)
    numbers = np.array([atom.GetAtomicNum() for atom in mol.GetAtoms()])
    bonds = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()], dtype=np.int64)
    orders = np.array([b.GetBondTypeAsDouble() for b in mol.GetBonds()])
    structures = []
    for conformer_id in conformer_ids:
        positions = mol.GetConformer(conformer_id).GetPositions()
        atoms = ase.Atoms(numbers=numbers, positions=positions - positions.mean(axis=0))
        if not match_smiles(atoms, smiles)[1]:
            continue
        stereo = Chem.MolToSmiles(Chem.RemoveHs(_with_stereo_from_3d(Chem, mol, positions)))
        atoms.info.update(smiles=smiles, bonds=bonds.copy(), bond_orders=orders.copy(), reference_smiles=stereo)
        structures.append(atoms)
    return structures


def match_smiles(atoms: ase.Atoms, smiles: str) -> tuple[bool, bool]:
    """(same graph, same graph and stereo): whether ``atoms`` (any atom order) is the molecule ``smiles``.

    Graph: the bonds perceived from the coordinates (covalent radii, RDKit ``DetermineConnectivity``)
    form the SMILES's molecular graph, hydrogens included, atoms matched by element. Stereo: read from
    3D with the SMILES's bond orders and charges, every stereocentre and double bond that the SMILES
    specifies has that configuration (unspecified ones may be either).
    """
    Chem = _rdkit()
    from rdkit.Chem import rdDetermineBonds

    reference = Chem.MolFromSmiles(smiles)
    if reference is None:
        raise ValueError(f"RDKit cannot read the SMILES {smiles!r}: check its syntax")
    reference = Chem.AddHs(reference)
    positions = np.asarray(atoms.positions, dtype=float)
    if len(atoms) != reference.GetNumAtoms() or not np.all(np.isfinite(positions)):
        return False, False
    found = _bare_molecule(Chem, atoms.numbers, positions)
    try:
        rdDetermineBonds.DetermineConnectivity(found)
    except Exception:  # noqa: BLE001 (RDKit raises ValueError, RuntimeError and its own types)
        return False, False
    if found.GetNumBonds() != reference.GetNumBonds():
        return False, False
    order = found.GetSubstructMatch(_skeleton(Chem, reference))  # same atom and bond counts: an isomorphism
    if not order:
        return False, False
    found_labels = _cip_labels(_with_stereo_from_3d(Chem, reference, positions[list(order)]))
    return True, all(found_labels.get(key) == label for key, label in _cip_labels(reference).items())


def _cip_labels(mol) -> dict[tuple[str, int], str]:
    """CIP labels (R/S of atoms, E/Z of double bonds) of ``mol``'s specified stereo elements, by index."""
    from rdkit.Chem import rdCIPLabeler

    rdCIPLabeler.AssignCIPLabels(mol)
    labels = {("atom", a.GetIdx()): a.GetProp("_CIPCode") for a in mol.GetAtoms() if a.HasProp("_CIPCode")}
    labels.update({("bond", b.GetIdx()): b.GetProp("_CIPCode") for b in mol.GetBonds() if b.HasProp("_CIPCode")})
    return labels


def _bare_molecule(Chem, numbers: np.ndarray, positions: np.ndarray):
    """An RDKit molecule of these atoms and coordinates (Å), without bonds."""
    mol = Chem.RWMol()
    conformer = Chem.Conformer(len(numbers))
    for index, (number, xyz) in enumerate(zip(numbers, positions)):
        mol.AddAtom(Chem.Atom(int(number)))
        conformer.SetAtomPosition(index, [float(v) for v in xyz])
    mol.AddConformer(conformer, assignId=True)
    return mol


def _skeleton(Chem, mol):
    """``mol`` with every bond single and no charges or aromaticity: its graph, to match perceived bonds."""
    skeleton = Chem.RWMol(mol)
    for bond in skeleton.GetBonds():
        bond.SetBondType(Chem.BondType.SINGLE)
        bond.SetIsAromatic(False)
    for atom in skeleton.GetAtoms():
        atom.SetFormalCharge(0)
        atom.SetIsAromatic(False)
        atom.SetNoImplicit(True)
        atom.SetNumExplicitHs(0)
    skeleton.UpdatePropertyCache(strict=False)
    return skeleton


def _with_stereo_from_3d(Chem, mol, positions: np.ndarray):
    """A copy of ``mol`` (hydrogens explicit) at ``positions`` (its atom order, Å), stereo assigned from 3D."""
    placed = Chem.Mol(mol)
    placed.RemoveAllConformers()
    conformer = Chem.Conformer(placed.GetNumAtoms())
    for index, xyz in enumerate(positions):
        conformer.SetAtomPosition(index, [float(v) for v in xyz])
    placed.AddConformer(conformer, assignId=True)
    Chem.AssignStereochemistryFrom3D(placed)
    return placed


def graph_smiles(smiles: str | None) -> str | None:
    """Canonical SMILES of the bare molecular graph (stereo dropped); None for None or unreadable input."""
    if smiles is None:
        return None
    Chem = _rdkit()
    return _graph_smiles(Chem, Chem.MolFromSmiles(smiles))


def molecule_template(smiles: str, seed: int = 0) -> ase.Atoms:
    """A template to generate conformers of ``smiles`` from: one ETKDG + MMFF conformer (:func:`embed`).

    Its ``info["bonds"]`` is the molecular graph a graph-conditioned model reads; its coordinates set
    the stereo that :func:`ase_psm.sample` keeps (mirror images of it are reflected) and the bonds it
    checks. Raises ValueError for SMILES that RDKit cannot read or embed.
    """
    Chem = _rdkit()
    if Chem.MolFromSmiles(smiles) is None:
        raise ValueError(f"RDKit cannot read the SMILES {smiles!r}: check its syntax")
    conformers = embed(smiles, 1, seed=seed)
    if not conformers:
        raise ValueError(
            f"RDKit could not embed {smiles!r} in 3D with the same bond graph; give a template structure "
            "file instead (with atoms.info['bonds'] for a graph-conditioned model)"
        )
    return conformers[0]


def _graph_smiles(Chem, mol) -> str | None:
    """Canonical SMILES without stereo (the bare molecular graph)."""
    return None if mol is None else Chem.MolToSmiles(mol, isomericSmiles=False)


def perceive(atoms: ase.Atoms, charge: int = 0) -> tuple[bool, str | None]:
    """Bonds from coordinates: (valid, canonical SMILES with stereo from 3D, or None).

    Valid means RDKit ``DetermineBonds`` (connectivity from covalent radii, then bond orders
    for total ``charge``) succeeds, the molecule sanitizes and it is one connected fragment.
    An invalid structure that still gets bonds returns its (disconnected) SMILES.
    """
    Chem = _rdkit()
    from rdkit.Chem import rdDetermineBonds

    positions = np.asarray(atoms.positions, dtype=float)
    if not np.all(np.isfinite(positions)):
        return False, None
    mol = _bare_molecule(Chem, atoms.numbers, positions)
    try:
        rdDetermineBonds.DetermineConnectivity(mol)
        if len(Chem.GetMolFrags(mol)) != 1:
            return False, Chem.MolToSmiles(mol)
        if any(atom.GetDegree() > MAX_NEIGHBOURS.get(atom.GetAtomicNum(), 6) for atom in mol.GetAtoms()):
            return False, Chem.MolToSmiles(mol)  # over-coordinated: no neutral bond orders (and slow to try)
        rdDetermineBonds.DetermineBondOrders(mol, charge=charge)
        Chem.SanitizeMol(mol)
        Chem.AssignStereochemistryFrom3D(mol)
        smiles = Chem.MolToSmiles(Chem.RemoveHs(mol))
    except Exception:  # noqa: BLE001 (RDKit raises ValueError, RuntimeError and its own types)
        return False, None
    if any(atom.GetFormalCharge() for atom in mol.GetAtoms()):
        # a neutral input must come back as a neutral molecule: charge separation is a failed perception
        return False, smiles
    return True, smiles
