"""Generate structures from a checkpoint: the prior, the sampler and the screening of every structure."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable

import ase
import numpy as np
import torch

from ..checkpoint import load_model, resolve_dtype
from ..chemistry.bonds import molecule_bonds
from ..diffusion.noise import zero_com_noise
from ..diffusion.samplers import SAMPLERS, noise_levels
from ..metrics.validity import SampleReport
from ..model import PseudoForceNet, topology_classes
from ..validation import check_atoms, check_composition, check_sigma_range, fixed_atom_mask
from .checks import TemplateChecks, template_checks
from .config import SampleConfig, sample_config


class Structures(list[ase.Atoms]):
    """The structures :func:`sample` returns: a list of ``ase.Atoms`` that carries the run's
    :class:`~ase_psm.metrics.validity.SampleReport` as ``.report``."""

    def __init__(self, structures: Iterable[ase.Atoms], report: SampleReport) -> None:
        super().__init__(structures)
        self.report = report


def sample(
    checkpoint: str | os.PathLike,
    template: ase.Atoms,
    n: int = 1,
    *,
    config: SampleConfig | None = None,
    progress: bool = True,
    **settings,
) -> Structures:
    """Generate ``n`` structures with the atoms of ``template``; settings are :class:`SampleConfig`'s.

    Pass ``config=SampleConfig(...)`` or its fields as keywords (``sampler="heun", steps=20``).
    A graph-conditioned model generates the template's molecule: its bonds are
    ``template.info["bonds"]`` ((n_bonds, 2) atom indices), or else those perceived from the
    template's coordinates. Atoms fixed by a FixAtoms constraint on the template keep their template
    positions (inpainting).

    Every structure is checked (:mod:`ase_psm.metrics.validity`): non-finite coordinates; an atom
    farther from the centroid than the model's cutoff (or 1.5 template diameters); a clash;
    and for a molecule template its bond graph, stereocentres and (with ``info["bond_orders"]``)
    double-bond E/Z. ``on_invalid`` decides what happens to failures (:class:`SampleConfig`). A
    warning is issued when fewer than ``n`` structures come back or invalid ones are kept; the
    returned list's ``.report`` counts what happened.
    """
    config = sample_config(config, settings)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    model, checkpoint_data = load_model(checkpoint, config.device, config.dtype)
    schedule = checkpoint_data["schedule"]
    sigma_max = float(config.sigma_max if config.sigma_max is not None else schedule["sigma_max"])
    sigma_min = float(config.sigma_min if config.sigma_min is not None else schedule["sigma_min"])
    check_atoms(template, model.config.species)  # clear errors before any work
    if not checkpoint_data.get("multi_system"):  # a model of many molecules takes any subset of its elements
        check_composition(template.numbers, model.config.species)
    check_sigma_range(sigma_min, sigma_max)
    draw = _drawer(model, template, config, sigma_min, sigma_max, progress)
    structures = _screen(draw, template_checks(template, model.config, config), template, n, config)
    if structures.report.returned < n or (config.on_invalid == "keep" and structures.report.invalid):
        warnings.warn(f"sample: {structures.report}", RuntimeWarning, stacklevel=2)
    return structures


def make_denoiser(model: PseudoForceNet, numbers: torch.Tensor, topology: torch.Tensor | None = None):
    """``denoise(x, sigma) -> x + f(x)`` over (B, N, 3) tensors for the samplers.

    ``topology``: the molecule's :func:`~ase_psm.model.topology_classes`, for a graph-conditioned model.
    """

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        return x + model.pseudo_forces(numbers, x, sigma if model.config.sigma_conditioned else None, topology)

    return denoise


def _drawer(
    model: PseudoForceNet, template: ase.Atoms, config: SampleConfig, sigma_min: float, sigma_max: float,
    progress: bool,
) -> Callable[[int], np.ndarray]:
    """``draw(size)``: ``size`` structures (size, N, 3) in Å, from the prior through the sampler."""
    device, dtype = next(model.parameters()).device, resolve_dtype(config.dtype)
    fixed = fixed_atom_mask(template)
    free = torch.as_tensor(~fixed, device=device) if fixed.any() else None
    reference = torch.as_tensor(template.positions, dtype=dtype, device=device)
    if free is None:
        reference = reference - reference.mean(dim=0)
    generator = torch.Generator().manual_seed(config.seed)
    topology = topology_classes(len(template), molecule_bonds(template)).to(device) if model.needs_topology else None
    denoise = make_denoiser(model, torch.as_tensor(template.numbers, dtype=torch.long, device=device), topology)
    sigmas = noise_levels(config.sampler, config.steps, sigma_min, sigma_max).to(device=device, dtype=dtype)
    sampler, options = SAMPLERS[config.sampler], config.sampler_options()
    from_template = config.prior == "structure" or free is not None

    def draw(size: int) -> np.ndarray:
        shape = (size, len(template), 3)
        noise = zero_com_noise(shape, generator, dtype, device, free)
        x = (reference.expand(shape) if from_template else reference.new_zeros(shape)) + sigma_max * noise
        x = sampler(denoise, x, sigmas, generator=generator, free=free, disable=not progress, **options)
        return x.cpu().double().numpy()

    return draw


def _screen(
    draw: Callable[[int], np.ndarray], checks: TemplateChecks, template: ase.Atoms, n: int, config: SampleConfig
) -> Structures:
    """Draw, repair and check structures in rounds until ``n`` pass (or ``config.max_rounds`` run out);
    failures are kept or left out as ``config.on_invalid`` says."""
    structures = Structures([], SampleReport(requested=n, on_invalid=config.on_invalid))
    report = structures.report
    batch_size = max(1, min(config.batch_size, config.batch_atoms // len(template)))
    while len(structures) < n and report.rounds < (config.max_rounds if config.on_invalid == "regenerate" else 1):
        report.rounds += 1
        missing = n - len(structures)
        for start in range(0, missing, batch_size):
            positions = draw(min(batch_size, missing - start))
            checks.repair(positions, report)
            for coordinates, problems in zip(positions, checks.problems(positions)):
                report.generated += 1
                report.invalid += bool(problems)
                report.problems.update(problems)
                if not problems or config.on_invalid == "keep":
                    structures.append(_structure(template, coordinates, problems))
    report.returned = len(structures)
    return structures


def _structure(template: ase.Atoms, positions: np.ndarray, problems: list[str]) -> ase.Atoms:
    """A copy of ``template`` (no calculator) at ``positions`` (Å), its problems in ``info["problems"]``."""
    atoms = template.copy()
    atoms.calc = None
    atoms.set_positions(positions, apply_constraint=False)
    if problems:
        atoms.info["problems"] = ",".join(problems)
    return atoms
