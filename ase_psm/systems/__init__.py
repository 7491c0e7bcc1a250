"""Reference physical systems (energies, forces, samplers, data sets)."""

from ase_psm.systems.lennard_jones import (
    ARGON,
    DEFAULT_STEP_SIZE,
    lj_energy,
    lj_forces,
    lj_initial_positions,
    lj_local_minimum,
    make_lj_cold_head,
    make_lj_dataset,
    metropolis,
)

__all__ = [
    "ARGON",
    "DEFAULT_STEP_SIZE",
    "lj_energy",
    "lj_forces",
    "lj_initial_positions",
    "lj_local_minimum",
    "make_lj_cold_head",
    "make_lj_dataset",
    "metropolis",
]
