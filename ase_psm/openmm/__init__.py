"""OpenMM and mdtraj integration: unit conversions, force labels, a frame recorder, structure
checks and seeding of simulations from generated structures.

OpenMM works in nm, kJ/mol and kJ/mol/nm; everything here takes and returns Å, eV and eV/Å
(OpenMM Quantities are converted on the way in and out). Needs ``pip install ase-psm[openmm]``.
"""

from .checks import (
    CheckSettings,
    StructureChecker,
    signed_volumes,
    stereocentres,
    topology_bonds,
)
from .convert import (
    atomic_numbers,
    atoms_from_openmm,
    atoms_to_openmm,
    write_structures,
)
from .labels import label_forces
from .recorder import FrameRecorder
from .seeding import Rejection, SeedReport, SeedSettings, seed_simulations

__all__ = [
    "CheckSettings",
    "FrameRecorder",
    "Rejection",
    "SeedReport",
    "SeedSettings",
    "StructureChecker",
    "atomic_numbers",
    "atoms_from_openmm",
    "atoms_to_openmm",
    "label_forces",
    "seed_simulations",
    "signed_volumes",
    "stereocentres",
    "topology_bonds",
    "write_structures",
]
