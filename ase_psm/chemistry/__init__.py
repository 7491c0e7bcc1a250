"""Molecules as a chemist states them: covalent bond graphs, atom equivalence, stereochemistry and
(with RDKit) molecules from SMILES. Used by the model, sampling, the metrics and OpenMM alike.

- :mod:`~ase_psm.chemistry.bonds`: bond graphs from covalent radii or ``atoms.info["bonds"]``,
  equivalence classes, renumbering onto a template;
- :mod:`~ase_psm.chemistry.stereo`: stereocentres, double-bond E/Z, their signs in 3D;
- :mod:`~ase_psm.chemistry.molecules`: SMILES to conformers and back (needs RDKit).
"""
