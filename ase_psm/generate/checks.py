"""What every generated structure is checked against: the template's size, bonds and stereo (Å), and
the exact repairs made before the checks (renumbering swapped equivalent atoms, reflecting mirror images)."""

from __future__ import annotations

from dataclasses import dataclass, field

import ase
import numpy as np

from ..chemistry.bonds import bond_graph, is_molecule, match_to_template, molecule_bonds
from ..chemistry.stereo import cis_trans, signed_volumes, stereo_double_bonds, stereocentres
from ..metrics.validity import SampleReport, structure_problems
from ..model import ModelConfig
from ..validation import fixed_atom_mask
from .config import SampleConfig


@dataclass
class TemplateChecks:
    """The template's properties that :func:`~ase_psm.metrics.validity.structure_problems` compares each
    structure with, and which repairs come first."""

    clash_distance: float
    """Two atoms closer than this (Å) clash."""
    max_radius: float
    """An atom farther than this (Å) from the centroid has exploded."""
    numbers: np.ndarray | None = None
    """Atomic numbers (N,), given with ``reference_bonds``."""
    reference_bonds: np.ndarray | None = None
    """The template's covalent bond graph (N, N); None: bonds are not checked."""
    stereocentres: list[tuple[int, tuple[int, int, int]]] = field(default_factory=list)
    """Stereocentres whose handedness is checked (see :func:`~ase_psm.chemistry.stereo.stereocentres`)."""
    reference_handedness: np.ndarray | None = None
    """The template's sign of each stereocentre's signed volume."""
    double_bonds: list[tuple[int, int, int, int]] = field(default_factory=list)
    """Double bonds whose E/Z is checked (see :func:`~ase_psm.chemistry.stereo.stereo_double_bonds`)."""
    reference_cis_trans: np.ndarray | None = None
    """The template's configuration (+1 cis, -1 trans) of each double bond."""
    mirror: bool = False
    """Reflect structures that are the template's mirror image at every stereocentre."""
    renumber: bool = False
    """Renumber structures whose bond graph is the template's up to swapped equivalent atoms."""

    def repair(self, positions: np.ndarray, report: SampleReport) -> None:
        """Renumber, then mirror (in place) the structures (n, N, 3) that need it; counted in ``report``."""
        if self.renumber and self.numbers is not None and self.reference_bonds is not None:
            report.renumbered += renumber_onto_template(positions, self.numbers, self.reference_bonds)
        if self.mirror and self.reference_handedness is not None:
            report.mirrored += mirror_enantiomers(positions, self.stereocentres, self.reference_handedness)

    def problems(self, positions: np.ndarray) -> list[list[str]]:
        """The problems of each structure (n, N, 3); an empty list for a valid one."""
        return structure_problems(
            positions, clash_distance=self.clash_distance, max_radius=self.max_radius, numbers=self.numbers,
            reference_bonds=self.reference_bonds, stereocentres=self.stereocentres,
            reference_handedness=self.reference_handedness, double_bonds=self.double_bonds,
            reference_cis_trans=self.reference_cis_trans,
        )


def template_checks(template: ase.Atoms, model_config: ModelConfig, config: SampleConfig) -> TemplateChecks:
    """The checks of structures like ``template`` from a model with ``model_config``: clashes below
    ``config.clash_distance`` (default half the model's length scale), atoms beyond the model's cutoff
    radius (or 1.5 template diameters), and for a molecule (``config.check_bonds``) its bond graph and,
    unless ``config.enantiomers`` is keep, its stereocentres and E/Z double bonds. Repairs are off when
    the template has fixed atoms."""
    positions = template.positions
    diameter = float(np.ptp(positions, axis=0).max()) if len(template) > 1 else 0.0
    checks = TemplateChecks(
        clash_distance=0.5 * model_config.length_scale if config.clash_distance is None else float(config.clash_distance),
        max_radius=max(model_config.cutoff, 1.5 * diameter),
    )
    if config.check_bonds is False or (config.check_bonds == "auto" and not is_molecule(template.numbers, positions)):
        return checks
    checks.numbers, checks.reference_bonds = template.numbers, bond_graph(template.numbers, positions)
    free = not fixed_atom_mask(template).any()
    checks.renumber = config.renumber and free
    if config.enantiomers == "keep":
        return checks
    checks.stereocentres = stereocentres(template.numbers, np.argwhere(np.triu(checks.reference_bonds)))
    if checks.stereocentres:
        checks.reference_handedness = np.sign(signed_volumes(positions, checks.stereocentres))
        checks.mirror = config.enantiomers == "mirror" and free
    if "bond_orders" in template.info:
        checks.double_bonds = stereo_double_bonds(template.numbers, molecule_bonds(template), template.info["bond_orders"])
        checks.reference_cis_trans = cis_trans(positions, checks.double_bonds) if checks.double_bonds else None
    return checks


def renumber_onto_template(positions: np.ndarray, numbers: np.ndarray, reference_bonds: np.ndarray) -> int:
    """Renumber (in place) the structures (n, N, 3) whose bond graph is the template's up to a
    permutation of atoms of one element; returns how many were renumbered."""
    renumbered = 0
    for i, bonds in enumerate(bond_graph(numbers, positions)):
        if not (bonds == reference_bonds).all():
            order = match_to_template(numbers, bonds, reference_bonds)
            if order is not None:
                positions[i] = positions[i][order]
                renumbered += 1
    return renumbered


def mirror_enantiomers(positions: np.ndarray, centres: list, handedness: np.ndarray) -> int:
    """Reflect (x -> -x, in place) the structures inverted at every stereocentre; returns how many."""
    inverted = (np.sign(signed_volumes(positions, centres)) == -handedness).all(axis=1)
    positions[inverted, :, 0] *= -1.0
    return int(inverted.sum())
