"""Seed independent OpenMM simulations from generated structures.

generate (``ase_psm.sample``) -> check (finite, clashes, bonds, chirality) -> optional short
minimization -> OpenMM energy window -> Maxwell-Boltzmann velocities -> N runs in turn on one
Context, each written by an mdtraj reporter (DCD or HDF5). Failures are reported and dropped.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ase
import numpy as np
from tqdm.auto import tqdm

from ..metrics.validity import ENERGY
from .checks import CheckSettings, StructureChecker
from .convert import (
    KJ_PER_MOL_TO_EV,
    atomic_numbers,
    check_same_atoms,
    positions_to_angstrom,
    positions_to_openmm,
)

TRAJECTORY_FORMATS = ("dcd", "h5")


@dataclass
class SeedSettings:
    """How seeded simulations are prepared and run.

    Attributes:
        steps: MD steps per simulation.
        temperature: K, for velocities and the Langevin integrator; None: the checkpoint's
            training temperature (or the given Simulation's integrator temperature).
        timestep: ps (Langevin middle integrator; ignored when a Simulation is given).
        friction: 1/ps.
        report_interval: steps between trajectory frames.
        trajectory_format: "dcd" or "h5".
        minimize: minimize each accepted structure before the energy check.
        minimize_iterations: L-BFGS iterations of that minimization (0: until converged).
        check_after_minimization: run the structure checks on the structure after constraints and
            minimization instead of the raw sample (non-finite samples are still rejected first):
            stretched bonds and near-clashes that minimization repairs pass, while a wrong bond
            graph, a clash that survives and an inverted stereocentre are still rejected.
        energy_window: eV; a structure is rejected when its OpenMM energy (after the optional
            minimization) exceeds the template's minimized energy by more than this.
        checks: tolerances of the structure checks.
        platform: OpenMM platform name ("Reference", "CPU", "CUDA", ...).
        seed: random seed of sampling and velocities.
    """

    steps: int = 10000
    temperature: float | None = None
    timestep: float = 0.002
    friction: float = 1.0
    report_interval: int = 100
    trajectory_format: str = "dcd"
    minimize: bool = True
    minimize_iterations: int = 200
    check_after_minimization: bool = False
    energy_window: float = 2.0
    checks: CheckSettings = field(default_factory=CheckSettings)
    platform: str = "Reference"
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.checks, dict):
            self.checks = CheckSettings(**self.checks)
        if self.trajectory_format not in TRAJECTORY_FORMATS:
            raise ValueError(
                f"trajectory_format must be one of {', '.join(TRAJECTORY_FORMATS)}, got {self.trajectory_format!r}."
            )
        for name in ("steps", "report_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if self.minimize_iterations < 0:
            raise ValueError(f"minimize_iterations must be >= 0, got {self.minimize_iterations}.")
        for name in ("timestep", "friction", "energy_window"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}.")
        if self.temperature is not None and self.temperature <= 0:
            raise ValueError(f"temperature must be positive (K), got {self.temperature}.")


@dataclass
class Rejection:
    """A structure that was dropped: its index among the generated ones, category and reason."""

    index: int
    category: str
    reason: str


@dataclass
class SeedReport:
    """What :func:`seed_simulations` did.

    Attributes:
        generated: structures generated (or given).
        accepted: structures that passed every check and were simulated.
        rejected: the dropped structures with reasons.
        paths: one trajectory per accepted structure, ``run_<index>.dcd`` (index among the generated).
        energies: OpenMM potential energies (eV) of the accepted starting structures.
        template_energy: the template's minimized energy (eV).
        temperature: K.
        seconds: wall time.
    """

    generated: int
    accepted: int
    rejected: list[Rejection]
    paths: list[Path]
    energies: list[float]
    template_energy: float
    temperature: float
    seconds: float

    @property
    def rejection_counts(self) -> dict[str, int]:
        """Number of rejections per category (non-finite, clash, bonds, chirality, energy)."""
        return dict(Counter(r.category for r in self.rejected))

    def summary(self) -> str:
        """One line: counts and where the trajectories are."""
        counts = ", ".join(f"{k}: {v}" for k, v in self.rejection_counts.items()) or "none"
        where = f"trajectories in {self.paths[0].parent}" if self.paths else "nothing simulated"
        return (
            f"generated {self.generated}, accepted {self.accepted}, rejected {len(self.rejected)} "
            f"({counts}); {where} ({self.seconds:.1f} s)"
        )


def seed_simulations(
    checkpoint: str | os.PathLike | None,
    system=None,
    topology=None,
    positions=None,
    *,
    n: int = 8,
    out: str | os.PathLike = "runs",
    simulation=None,
    structures: Sequence[ase.Atoms] | None = None,
    settings: SeedSettings | None = None,
    sampler: str = "pc",
    sample_steps: int = 200,
    progress: bool = True,
    **sample_options,
) -> SeedReport:
    """Generate `n` structures, check them, and run one simulation from each accepted one.

    Args:
        checkpoint: model to sample from; None when `structures` are given.
        system, topology, positions: the OpenMM System, Topology and a valid template structure
            (nm Quantity, e.g. ``PDBFile.positions``), or instead
        simulation: an OpenMM Simulation (its system, topology, integrator, platform and current
            positions are used).
        n: number of structures to generate.
        out: directory for ``run_000.dcd`` ... (created).
        structures: seed structures (Å) to use instead of sampling (e.g. MD frames).
        settings: see :class:`SeedSettings`.
        sampler, sample_steps, sample_options: passed to :func:`ase_psm.sample`.
    Returns:
        a :class:`SeedReport`; rejected structures are listed there and never simulated.
    """
    start = time.perf_counter()
    settings = settings or SeedSettings()
    payload = None
    if checkpoint is not None:
        from ..checkpoint import load_checkpoint

        payload = load_checkpoint(checkpoint)  # once, for the temperature and the atom-type check
    simulation, temperature = _prepare_simulation(simulation, system, topology, positions, payload, settings)
    template = simulation.context.getState(getPositions=True).getPositions(asNumpy=True)
    template_atoms = ase.Atoms(numbers=atomic_numbers(simulation.topology), positions=positions_to_angstrom(template))
    if structures is None:
        if checkpoint is None or payload is None:
            raise ValueError("give a checkpoint to sample from, or the seed structures as structures=[...].")
        from ..generate import sample

        if payload["model_config"].get("site_types") is None:
            warnings.warn(
                "the model tells atoms apart by element only, so its samples rarely keep the topology's bond "
                "graph in atom order and most will be rejected; train it with atom_types='graph' "
                "(ase-psm train --atom-types graph) on frames in the topology's atom order",
                UserWarning,
                stacklevel=2,
            )
        sample_options.setdefault("on_invalid", "keep")  # our checks below report and drop failures
        structures = sample(
            checkpoint, template_atoms, n, sampler=sampler, steps=sample_steps, seed=settings.seed,
            progress=progress, **sample_options,
        )
    for k, atoms in enumerate(structures):
        check_same_atoms(atoms.numbers, template_atoms.numbers, f"structure {k}", "the topology")

    checker = StructureChecker.from_topology(template_atoms.positions, simulation.topology, settings.checks)
    template_energy = _minimized_energy(simulation, template_atoms.positions, 0)
    accepted, energies, rejected = _screen(structures, simulation, checker, template_energy, settings, progress)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        _run_one(simulation, start, out / f"run_{k:03d}.{settings.trajectory_format}", temperature, settings, k)
        for k, start in tqdm(accepted.items(), desc="seeded runs", disable=not progress)
    ]
    return SeedReport(
        generated=len(structures), accepted=len(accepted), rejected=rejected, paths=paths, energies=energies,
        template_energy=template_energy, temperature=temperature, seconds=time.perf_counter() - start,
    )


def _screen(structures, simulation, checker: StructureChecker, template_energy: float, settings: SeedSettings,
            progress: bool) -> tuple[dict, list[float], list[Rejection]]:
    """Check, minimize and energy-screen each structure: ({index: OpenMM start positions}, energies
    in eV, rejections)."""
    accepted, energies, rejected = {}, [], []
    iterations = settings.minimize_iterations if settings.minimize else None
    for k, atoms in enumerate(tqdm(structures, desc="checking seeds", disable=not progress)):
        if settings.check_after_minimization and np.isfinite(atoms.positions).all():
            energy = _minimized_energy(simulation, atoms.positions, iterations)
            state = simulation.context.getState(getPositions=True)
            problem = checker.check(positions_to_angstrom(state.getPositions(asNumpy=True)))
        else:
            problem = checker.check(atoms.positions)
            if problem is None:
                energy = _minimized_energy(simulation, atoms.positions, iterations)
        if problem is None and (not np.isfinite(energy) or energy - template_energy > settings.energy_window):
            problem = ENERGY, (
                f"OpenMM energy {energy:.3f} eV is more than {settings.energy_window} eV above the "
                f"template's {template_energy:.3f} eV"
            )
        if problem is not None:
            rejected.append(Rejection(k, *problem))
            continue
        accepted[k] = simulation.context.getState(getPositions=True).getPositions()
        energies.append(energy)
    return accepted, energies, rejected


def _prepare_simulation(simulation, system, topology, positions, payload: dict | None, settings: SeedSettings):
    """The Simulation to run on, at the template positions, and its temperature (K)."""
    import openmm
    from openmm import app, unit

    if simulation is not None:
        if system is not None or topology is not None:
            raise ValueError("give either simulation=... or system and topology, not both.")
        temperature = settings.temperature or _integrator_temperature(simulation.integrator)
        if positions is not None:
            simulation.context.setPositions(positions)
        return simulation, temperature or _checkpoint_temperature(payload)
    if system is None or topology is None or positions is None:
        raise ValueError(
            "seeding needs an OpenMM System, its Topology and template positions (e.g. from the "
            "system's PDB), or an OpenMM Simulation."
        )
    if system.getNumParticles() != topology.getNumAtoms():
        raise ValueError(
            f"the System has {system.getNumParticles()} particles but the Topology has "
            f"{topology.getNumAtoms()} atoms; load both for the same system."
        )
    temperature = settings.temperature or _checkpoint_temperature(payload)
    integrator = openmm.LangevinMiddleIntegrator(
        temperature * unit.kelvin, settings.friction / unit.picosecond, settings.timestep * unit.picosecond
    )
    integrator.setRandomNumberSeed(settings.seed + 1)
    platform = openmm.Platform.getPlatformByName(settings.platform)
    simulation = app.Simulation(topology, system, integrator, platform)
    simulation.context.setPositions(positions)
    return simulation, temperature


def _integrator_temperature(integrator) -> float | None:
    from openmm import unit

    getter = getattr(integrator, "getTemperature", None)
    return None if getter is None else getter().value_in_unit(unit.kelvin)


def _checkpoint_temperature(payload: dict | None) -> float:
    """The training temperature (K) stored in a loaded checkpoint."""
    if payload is not None and payload.get("temperature"):
        return float(payload["temperature"])
    raise ValueError(
        "no temperature: pass SeedSettings(temperature=...) in K (the checkpoint has none, or "
        "no checkpoint was given)."
    )


def _minimized_energy(simulation, positions: np.ndarray, iterations: int | None) -> float:
    """OpenMM energy (eV) at `positions` (Å) after constraints and, unless `iterations` is None,
    a minimization; the context keeps the resulting positions."""
    from openmm import unit

    context = simulation.context
    context.setPositions(positions_to_openmm(positions))
    context.applyConstraints(1e-6)
    if iterations is not None:
        simulation.minimizeEnergy(maxIterations=iterations)
    energy = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    return energy * KJ_PER_MOL_TO_EV


def _run_one(simulation, positions, path: Path, temperature: float, settings: SeedSettings, index: int) -> Path:
    """Run one simulation from `positions` with fresh velocities; write its trajectory to `path`."""
    import mdtraj.reporters
    from openmm import unit

    reporter_class = mdtraj.reporters.DCDReporter if settings.trajectory_format == "dcd" else mdtraj.reporters.HDF5Reporter
    context = simulation.context
    context.setPositions(positions)
    context.setVelocitiesToTemperature(temperature * unit.kelvin, settings.seed * 100003 + index + 1)
    simulation.currentStep = 0
    reporter = reporter_class(str(path), settings.report_interval)
    simulation.reporters.append(reporter)
    try:
        simulation.step(settings.steps)
    finally:
        simulation.reporters.remove(reporter)
        reporter.close()
    return path
