"""Generate structures from a checkpoint: priors, sampler dispatch and batching."""

from __future__ import annotations

import inspect
import os
import warnings
from typing import Literal

import ase
import numpy as np
import torch

from .checkpoint import load_model, resolve_dtype
from .chemistry.bonds import bond_graph, match_to_template, molecule_bonds
from .chemistry.stereo import cis_trans, signed_volumes, stereo_double_bonds, stereocentres
from .diffusion.noise import geometric_sigmas, karras_sigmas, zero_com_noise
from .diffusion.samplers import SAMPLERS
from .metrics.validity import SampleReport, is_molecule, structure_problems
from .model import PseudoForceNet, topology_classes
from .validation import check_atoms, check_composition, check_sigma_range, fixed_atom_mask

ON_INVALID = ("regenerate", "drop", "keep")
ENANTIOMERS = ("mirror", "reject", "keep")
_SET_BY_SAMPLE = ("generator", "free", "disable", "max_steps", "steps")  # sampler arguments `sample` passes itself


def make_denoiser(model: PseudoForceNet, numbers: torch.Tensor, topology: torch.Tensor | None = None):
    """``denoise(x, sigma) -> x + f(x)`` over (B, N, 3) tensors for the samplers.

    ``topology``: the molecule's :func:`~ase_psm.model.topology_classes`, for a graph-conditioned model.
    """

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        return x + model.pseudo_forces(numbers, x, sigma if model.config.sigma_conditioned else None, topology)

    return denoise


def sample(
    checkpoint: str | os.PathLike,
    template: ase.Atoms,
    n: int = 1,
    *,
    sampler: str = "pc",
    steps: int = 100,
    seed: int = 0,
    prior: str = "gaussian",
    sigma_max: float | None = None,
    sigma_min: float | None = None,
    batch_size: int = 256,
    device: str = "auto",
    dtype: str = "float32",
    progress: bool = True,
    on_invalid: Literal["regenerate", "drop", "keep"] = "regenerate",
    max_rounds: int = 5,
    clash_distance: float | None = None,
    check_bonds: bool | Literal["auto"] = "auto",
    enantiomers: Literal["mirror", "reject", "keep"] = "mirror",
    renumber: bool = True,
    return_report: bool = False,
    **sampler_options,
) -> list[ase.Atoms] | tuple[list[ase.Atoms], SampleReport]:
    """Generate ``n`` structures with the atoms of ``template``.

    prior: ``"gaussian"`` starts from zero-centred noise of width sigma_max (Å);
    ``"structure"`` starts from the template's positions noised to sigma_max
    (a structural prior). A graph-conditioned model generates the template's molecule: its bonds
    are ``template.info["bonds"]`` ((n_bonds, 2) atom indices), or else those perceived from the
    template's coordinates. Atoms fixed by a FixAtoms constraint on the template
    keep their template positions (inpainting). ``steps`` is the number of noise
    levels (``pc``, ``euler``, ``heun``, ``ancestral``; geometric for ``pc``, Karras
    for the others), the maximum number of steps (``adaptive``) or the number of
    denoising steps (``direct``). sigma_min/sigma_max default to the training schedule.

    Every structure is checked (see :mod:`ase_psm.metrics.validity`): non-finite
    coordinates; an atom farther from the centroid than the model's radial range
    (or 1.5 template diameters); two atoms closer than ``clash_distance`` (Å; default
    half the training data's nearest-neighbour distance); and, when ``check_bonds``
    (``"auto"``: the template is a connected molecule of several elements), a
    covalent bond graph different from the template's. ``on_invalid`` chooses what
    happens to failures: ``"regenerate"`` draws replacements for up to ``max_rounds``
    rounds, ``"drop"`` returns the valid ones only, ``"keep"`` returns all with
    ``atoms.info["problems"]`` set. For a molecule template with stereocentres (the bond check
    applies and an atom has four inequivalent neighbours), ``enantiomers`` decides about
    handedness: ``"mirror"`` reflects a structure that is the template's mirror image at every
    stereocentre (exact: the potential energy, hence the Boltzmann distribution, is invariant under
    reflection) and flags a structure inverted at some but not all centres as ``chirality``;
    ``"reject"`` flags every inversion; ``"keep"`` does not look. A template with
    ``info["bond_orders"]`` (one per ``info["bonds"]`` pair, as :func:`ase_psm.chemistry.molecules.embed`
    writes them) also has its double bonds' E/Z checked (``cis/trans``) unless ``"keep"``. With ``renumber`` (and the bond
    check on), a structure whose bond graph is the template's up to a renumbering of atoms of one
    element (symmetry-equivalent atoms that swapped places, e.g. the two halves of a symmetric
    molecule) is renumbered into the template's atom order and counts as valid. Reflection and
    renumbering are skipped when the template has fixed atoms. A warning is issued when fewer than ``n``
    structures come back or invalid ones are kept; ``return_report=True`` also
    returns the :class:`~ase_psm.metrics.validity.SampleReport`.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if prior not in ("gaussian", "structure"):
        raise ValueError(f"prior must be 'gaussian' or 'structure', got {prior!r}")
    if n < 1 or steps < 1:
        raise ValueError(f"n and steps must be at least 1, got n={n}, steps={steps}")
    if on_invalid not in ON_INVALID:
        raise ValueError(f"on_invalid must be one of {', '.join(ON_INVALID)}, got {on_invalid!r}")
    if max_rounds < 1:
        raise ValueError(f"max_rounds must be at least 1, got {max_rounds}")
    if enantiomers not in ENANTIOMERS:
        raise ValueError(f"enantiomers must be one of {', '.join(ENANTIOMERS)}, got {enantiomers!r}")
    parameters = inspect.signature(SAMPLERS[sampler]).parameters
    options = [name for name, p in parameters.items() if p.kind is p.KEYWORD_ONLY and name not in _SET_BY_SAMPLE]
    unknown = sorted(set(sampler_options) - set(options))
    if unknown:
        raise ValueError(f"the {sampler} sampler has no option(s) {', '.join(unknown)}; "
                         f"its options: {', '.join(options) or 'none'}")
    model, checkpoint_data = load_model(checkpoint, device, dtype)
    schedule = checkpoint_data["schedule"]
    sigma_max = float(sigma_max if sigma_max is not None else schedule["sigma_max"])
    sigma_min = float(sigma_min if sigma_min is not None else schedule["sigma_min"])
    torch_device = next(model.parameters()).device
    torch_dtype = resolve_dtype(dtype)
    numbers = torch.as_tensor(template.numbers, dtype=torch.long, device=torch_device)
    check_atoms(template, model.config.species)  # clear errors before any work
    if not checkpoint_data.get("multi_system"):  # a model of many molecules takes any subset of its elements
        check_composition(template.numbers, model.config.species)
    check_sigma_range(sigma_min, sigma_max)
    fixed = fixed_atom_mask(template)
    free = torch.as_tensor(~fixed, device=torch_device) if fixed.any() else None
    reference = torch.as_tensor(template.positions, dtype=torch_dtype, device=torch_device)
    if free is None:
        reference = reference - reference.mean(dim=0)
    generator = torch.Generator().manual_seed(seed)
    topology = None
    if model.needs_topology:
        topology = topology_classes(len(template), molecule_bonds(template)).to(torch_device)
    denoise = make_denoiser(model, numbers, topology)
    if sampler == "pc":
        sigmas = geometric_sigmas(steps, sigma_min, sigma_max)
    else:
        sigmas = karras_sigmas(steps, sigma_min, sigma_max)
    sigmas = sigmas.to(device=torch_device, dtype=torch_dtype)

    def draw(size: int) -> np.ndarray:
        shape = (size, len(template), 3)
        noise = zero_com_noise(shape, generator, torch_dtype, torch_device, free)
        base = reference.expand(shape) if (prior == "structure" or free is not None) else reference.new_zeros(shape)
        x = base + sigma_max * noise
        common = dict(generator=generator, free=free, disable=not progress)
        if sampler == "adaptive":
            x = SAMPLERS[sampler](denoise, x, sigma_max, max_steps=steps, **common, **sampler_options)
        elif sampler == "direct":
            x = SAMPLERS[sampler](denoise, x, sigma_max, steps=steps, **common, **sampler_options)
        else:
            x = SAMPLERS[sampler](denoise, x, sigmas, **common, **sampler_options)
        return x.cpu().double().numpy()

    checks = _checks(model, template, clash_distance, check_bonds, enantiomers)
    mirror = enantiomers == "mirror" and bool(checks.get("stereocentres")) and free is None
    renumber = renumber and "reference_bonds" in checks and free is None
    report = SampleReport(requested=n, on_invalid=on_invalid)
    structures: list[ase.Atoms] = []
    while len(structures) < n and report.rounds < (max_rounds if on_invalid == "regenerate" else 1):
        report.rounds += 1
        missing = n - len(structures)
        for start in range(0, missing, batch_size):
            positions = draw(min(batch_size, missing - start))
            if renumber:
                report.renumbered += _renumber(positions, checks["numbers"], checks["reference_bonds"])
            if mirror:
                report.mirrored += _mirror_enantiomers(positions, checks["stereocentres"], checks["reference_handedness"])
            for coordinates, problems in zip(positions, structure_problems(positions, **checks)):
                report.generated += 1
                report.invalid += bool(problems)
                report.problems.update(problems)
                if problems and on_invalid != "keep":
                    continue
                atoms = template.copy()
                atoms.calc = None
                atoms.set_positions(coordinates, apply_constraint=False)
                if problems:
                    atoms.info["problems"] = ",".join(problems)
                structures.append(atoms)
    report.returned = len(structures)
    if report.returned < n or (on_invalid == "keep" and report.invalid):
        warnings.warn(f"sample: {report}", RuntimeWarning, stacklevel=2)
    return (structures, report) if return_report else structures


def _renumber(positions: np.ndarray, numbers: np.ndarray, reference_bonds: np.ndarray) -> int:
    """Renumber (in place) the structures whose bond graph is the template's up to a permutation of
    atoms of one element; returns how many were renumbered."""
    renumbered = 0
    for i, bonds in enumerate(bond_graph(numbers, positions)):
        if not (bonds == reference_bonds).all():
            order = match_to_template(numbers, bonds, reference_bonds)
            if order is not None:
                positions[i] = positions[i][order]
                renumbered += 1
    return renumbered


def _mirror_enantiomers(positions: np.ndarray, centres: list, handedness: np.ndarray) -> int:
    """Reflect (x -> -x, in place) the structures inverted at every stereocentre; returns how many."""
    inverted = (np.sign(signed_volumes(positions, centres)) == -handedness).all(axis=1)
    positions[inverted, :, 0] *= -1.0
    return int(inverted.sum())


def _checks(
    model: PseudoForceNet, template: ase.Atoms, clash_distance: float | None, check_bonds: bool | str,
    enantiomers: str,
) -> dict:
    """Keyword arguments of :func:`structure_problems` for structures like ``template``."""
    if check_bonds not in (True, False, "auto"):
        raise ValueError(f"check_bonds must be True, False or 'auto', got {check_bonds!r}")
    positions = template.positions
    diameter = float(np.ptp(positions, axis=0).max()) if len(template) > 1 else 0.0
    checks: dict = dict(
        clash_distance=0.5 * model.config.length_scale if clash_distance is None else float(clash_distance),
        max_radius=max(model.config.radial_max, 1.5 * diameter),
    )
    if check_bonds is True or (check_bonds == "auto" and is_molecule(template.numbers, positions)):
        bonds = bond_graph(template.numbers, positions)
        checks.update(numbers=template.numbers, reference_bonds=bonds)
        centres = stereocentres(template.numbers, np.argwhere(np.triu(bonds)))
        if centres and enantiomers != "keep":
            checks.update(stereocentres=centres, reference_handedness=np.sign(signed_volumes(positions, centres)))
        if "bond_orders" in template.info and enantiomers != "keep":
            double_bonds = stereo_double_bonds(template.numbers, molecule_bonds(template), template.info["bond_orders"])
            if double_bonds:
                checks.update(double_bonds=double_bonds, reference_cis_trans=cis_trans(positions, double_bonds))
    return checks
