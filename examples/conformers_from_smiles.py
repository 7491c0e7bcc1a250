"""Conformers of a molecule from its SMILES with the shipped graph-conditioned model (``conformers``).

The model is a time-step-free generative pseudo-force field of small drug-like molecules (H, C, N,
O, F, S, Cl; up to 12 heavy atoms in training) that reads the molecular graph. Needs RDKit
(``pip install "ase-psm[molecules]"``). Three ways to use it:

1. ``sample``: a batch of conformers from Gaussian noise in a few network calls;
2. ASE: the same model as a calculator, relaxing one noised structure with PseudoForceDenoiser;
3. a check a chemist would make: each conformer's bonds perceived back from its coordinates (a valid
   molecule; the input's graph and stereo), and its heavy-atom RMSD to the MMFF94 minimum it relaxes into.

    python examples/conformers_from_smiles.py                          # aspirin, seconds
    python examples/conformers_from_smiles.py --smiles "CC(C)Cc1ccc(cc1)C(C)C(=O)O" --n 32
"""

from __future__ import annotations

import argparse

import ase.io
import numpy as np

from ase_psm import PseudoForceDenoiser, PSMCalculator, sample
from ase_psm.chemistry.molecules import match_smiles, molecule_template, perceive


def mmff_rmsd(smiles: str, atoms: ase.Atoms) -> float | None:
    """Heavy-atom RMSD (Å, after alignment) between a conformer and its MMFF94-relaxed self."""
    from rdkit import Chem
    from rdkit.Chem import rdForceFieldHelpers, rdMolAlign

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))  # the atom order of molecule_template
    conformer = Chem.Conformer(len(atoms))
    for index, xyz in enumerate(atoms.positions):
        conformer.SetAtomPosition(index, [float(v) for v in xyz])
    mol.AddConformer(conformer, assignId=True)
    relaxed = Chem.Mol(mol)
    if rdForceFieldHelpers.MMFFOptimizeMolecule(relaxed, maxIters=2000) == -1:
        return None  # no MMFF parameters for this molecule
    heavy = Chem.RemoveHs(mol)
    return rdMolAlign.GetBestRMS(Chem.RemoveHs(relaxed), heavy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smiles", default="CC(=O)Oc1ccccc1C(=O)O", help="the molecule (default: aspirin)")
    parser.add_argument("--checkpoint", default="conformers", help="a graph-conditioned molecule model")
    parser.add_argument("--n", type=int, default=16, help="conformers to generate")
    parser.add_argument("--sampler", default="direct", choices=("direct", "adaptive"))
    parser.add_argument("--steps", type=int, default=16, help="network calls per conformer (at most, for adaptive)")
    parser.add_argument("--relax-steps", type=int, default=100, help="PseudoForceDenoiser steps at most")
    parser.add_argument("--out", default="conformers.extxyz")
    args = parser.parse_args()

    template = molecule_template(args.smiles)  # bonds in info["bonds"], stereo from one ETKDG conformer
    print(f"{args.smiles}: {len(template)} atoms, {len(template.info['bonds'])} bonds")

    # 1. a batch from noise
    structures = sample(args.checkpoint, template, args.n, sampler=args.sampler, steps=args.steps,
                        on_invalid="keep", device="cpu", progress=False)
    print(f"sample ({args.sampler}, {args.steps} steps): {structures.report}")

    # 2. the ASE route: noise one conformer and relax it on the pseudo-PES
    atoms = template.copy()
    atoms.positions += np.random.default_rng(0).normal(scale=1.0, size=atoms.positions.shape)
    atoms.calc = PSMCalculator(args.checkpoint, device="cpu")
    denoiser = PseudoForceDenoiser(atoms, seed=0, logfile=None)
    converged = denoiser.run(fmax=0.02, steps=args.relax_steps)
    print(f"PseudoForceDenoiser from 1 Å noise: converged={converged} in {denoiser.nsteps} steps")
    structures.append(atoms)

    # 3. judge every structure
    reference = template.info["reference_smiles"]
    valid = same_graph = same_stereo = 0
    rmsds = []
    for structure in structures:
        graph, stereo = match_smiles(structure, reference)
        valid += perceive(structure)[0]
        same_graph += graph
        same_stereo += stereo
        rmsd = mmff_rmsd(args.smiles, structure) if graph else None
        if rmsd is not None:
            rmsds.append(rmsd)
    total = len(structures)
    print(f"valid {valid}/{total}, same molecule {same_graph}/{total}, same stereo {same_stereo}/{total}")
    if rmsds:
        print(f"heavy-atom RMSD to the MMFF94 minimum: median {np.median(rmsds):.2f} Å, max {max(rmsds):.2f} Å")
    for structure in structures:
        structure.calc = None
    ase.io.write(args.out, structures)
    print(f"wrote {total} structures to {args.out}")


if __name__ == "__main__":
    main()
