"""Data generation of the benchmark systems (no downloads): LJ-13/55 Metropolis, MD17-like
GFN2-xTB Langevin MD, alanine-dipeptide OpenMM MD.

Every data set is a :class:`BenchData`: training sets per protocol (positions, forces) and an
evaluation reference that shares no structure with them. Units: LJ in r_m / epsilon (kT = 1);
molecules in Å, eV/Å, K.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..data import Frames
from .cache import CachedArrays, load_or_generate
from .config import DATA, MD17_MOLECULES, MD22_MOLECULES, PEPTIDE_RESIDUES

ALA2_PDB = Path(__file__).resolve().parents[1] / "examples_data" / "ala2.pdb"
MD17_TEMPERATURE = 500.0  # K
MD17_TIMESTEP = 0.5  # fs
MD17_FRICTION = 0.01  # 1/fs, Langevin
# Protocol "early" trains on the first 1/MD17_EARLY_FRACTION of the biased run: at 500 K the first 5000
# steps (2.5 ps) already match the reference's h(r) about as well as 500 independent frames do; the
# first 1000 (500 fs) do not, so that is where force labels have a bias to remove (docs/benchmarks.md).
MD17_EARLY_FRACTION = 5
ALA2_TEMPERATURE = 300.0  # K
MD22_TEMPERATURE = 500.0  # K, as md17
ALA2_TIMESTEP = 0.001  # ps
# No constraints: along a constrained X-H bond the sampled distribution is a delta, so F/kT there is
# not its score and PSM's force labels would be biased (ase_psm.openmm.label_forces); 1 fs steps keep
# the free X-H vibrations stable.
ALA2_CONSTRAINTS = None
# One thread with deterministic force sums: the same seed gives the same trajectory on every run
# (OpenMM's CPU platform on two threads does not, even with DeterministicForces), and for 22 atoms
# one thread is also the fastest.
ALA2_PLATFORM_PROPERTIES = {"CPU": {"Threads": "1", "DeterministicForces": "true"}}


@dataclass
class BenchData:
    """One system's benchmark data."""

    name: str
    """e.g. "lj13", "md17-ethanol", "ala2"."""
    numbers: np.ndarray
    reference: np.ndarray
    """(n, n_atoms, 3) evaluation reference positions, disjoint from every training set."""
    training: dict[str, tuple[np.ndarray, np.ndarray]]
    """protocol -> (positions, forces) of its training set."""
    kT: float | None = None
    """kT in the force labels' energy unit (LJ: 1), or None when `temperature` is given."""
    temperature: float | None = None
    """K, for eV/Å force labels."""
    topology: str | None = None
    """PDB path for Ramachandran angles (ala2)."""
    cache: dict = field(default_factory=dict)
    """path, key, cached (bool) and seconds of the cache entry."""
    protocol_caches: dict[str, dict] = field(default_factory=dict)
    """protocol -> cache info of a training set kept in its own cache entry (LJ "cold")."""

    def cache_for(self, protocol: str) -> dict:
        """The cache info of the data set, with that of `protocol`'s own training entry under "training"."""
        own = self.protocol_caches.get(protocol)
        return {**self.cache, "training": own} if own else self.cache


def _cache_info(entry: CachedArrays) -> dict:
    return {"path": str(entry.path), "key": entry.key, "cached": entry.cached, "generation_s": entry.seconds}


def _without(reference: np.ndarray, subset: np.ndarray) -> np.ndarray:
    """Rows of reference that are not (bit-for-bit) rows of subset."""
    taken = {row.tobytes() for row in np.ascontiguousarray(subset)}
    keep = np.array([row.tobytes() not in taken for row in np.ascontiguousarray(reference)])
    return reference[keep]


def lj_data(n_atoms: int, size: str, cache_dir: str | Path, seed: int = 0, progress: bool = False) -> BenchData:
    """LJ-n at kT = 1: reference from many Metropolis chains; "biased" = the first sweeps of one chain,
    "table2" = a random 10 % of the reference (removed from the evaluation reference), "cold" = the first
    sweeps of one chain started at an energy minimum (a local bias; its own cache entry)."""
    from ..systems import ARGON, make_lj_cold_head, make_lj_dataset

    settings = dict(DATA[f"lj{n_atoms}"][size], n_atoms=n_atoms, seed=seed)
    entry = load_or_generate(cache_dir, f"lj{n_atoms}", settings,
                             lambda: make_lj_dataset(**settings, progress=progress))
    cold_settings = dict(n_atoms=n_atoms, n_frames=settings["n_biased"], seed=seed)
    cold_entry = load_or_generate(cache_dir, f"lj{n_atoms}-cold", cold_settings,
                                  lambda: make_lj_cold_head(**cold_settings))
    arrays, cold = entry.arrays, cold_entry.arrays
    return BenchData(
        name=f"lj{n_atoms}", numbers=np.full(n_atoms, ARGON), reference=_without(arrays["reference"], arrays["unbiased"]),
        training={"biased": (arrays["biased"], arrays["biased_forces"]),
                  "table2": (arrays["unbiased"], arrays["unbiased_forces"]),
                  "cold": (cold["cold"], cold["cold_forces"])},
        kT=1.0, cache=_cache_info(entry), protocol_caches={"cold": _cache_info(cold_entry)},
    )


def molecule_from_smiles(smiles: str, seed: int = 0):
    """An ase.Atoms with hydrogens, embedded by RDKit (ETKDG) and MMFF-relaxed (Å)."""
    try:
        from rdkit import Chem
        from rdkit.Chem import AllChem
    except ImportError as error:
        raise ImportError("the md17 benchmark needs RDKit and tblite: pip install 'ase-psm[bench]'") from error
    import ase

    molecule = Chem.AddHs(Chem.MolFromSmiles(smiles))
    if AllChem.EmbedMolecule(molecule, randomSeed=seed) != 0:  # type: ignore[attr-defined]
        raise ValueError(f"RDKit could not embed {smiles!r}")
    AllChem.MMFFOptimizeMolecule(molecule)  # type: ignore[attr-defined]
    numbers = [atom.GetAtomicNum() for atom in molecule.GetAtoms()]
    return ase.Atoms(numbers=numbers, positions=molecule.GetConformer().GetPositions())


def xtb_langevin(atoms, n_steps: int, record_every: int, seed: int, progress: bool = False,
                 label: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GFN2-xTB Langevin MD at 500 K, 0.5 fs: positions (Å), forces (eV/Å), energies (eV) of every
    `record_every`-th step, starting from `atoms` with Maxwell-Boltzmann velocities."""
    try:
        from tblite.ase import TBLite
    except ImportError as error:
        raise ImportError("the md17 benchmark needs tblite and RDKit: pip install 'ase-psm[bench]'") from error
    from ase import units
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    atoms = atoms.copy()
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=MD17_TEMPERATURE, rng=rng)
    atoms.set_constraint(FixCom())
    dynamics = Langevin(atoms, MD17_TIMESTEP * units.fs, temperature_K=MD17_TEMPERATURE,
                        friction=MD17_FRICTION / units.fs, rng=rng, fixcm=False)
    positions, forces, energies = [], [], []
    with _single_threaded():  # xTB on a few atoms: OpenMP threads cost more than they give (8x here)
        for step in tqdm(range(1, n_steps + 1), desc=f"xTB MD {label}", disable=not progress, leave=False):
            dynamics.run(1)
            if step % record_every == 0:
                positions.append(atoms.get_positions())
                forces.append(atoms.get_forces(apply_constraint=False))
                energies.append(atoms.get_potential_energy())
    return np.array(positions), np.array(forces), np.array(energies)


def _single_threaded():
    """Limit OpenMP/BLAS to one thread (threadpoolctl, if installed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


def _md17_arrays(molecule: str, settings: dict, seed: int, progress: bool) -> dict[str, np.ndarray]:
    atoms = molecule_from_smiles(MD17_MOLECULES[molecule], seed=seed)
    biased, biased_forces, biased_energies = xtb_langevin(atoms, settings["n_biased"], 1, seed, progress,
                                                          f"{molecule} biased")
    steps = settings["burn_in"] + settings["n_reference"] * settings["thinning"]
    reference, _, reference_energies = xtb_langevin(atoms, steps, settings["thinning"], seed + 1, progress,
                                                    f"{molecule} reference")
    skip = settings["burn_in"] // settings["thinning"]
    return dict(numbers=atoms.numbers, biased=biased, biased_forces=biased_forces, biased_energies=biased_energies,
                reference=reference[skip:], reference_energies=reference_energies[skip:])


def md17_data(size: str, cache_dir: str | Path, seed: int = 0, progress: bool = False,
              molecules: tuple[str, ...] | None = None) -> list[BenchData]:
    """MD17-like molecules: GFN2-xTB Langevin MD at 500 K; "biased" = the first n_biased steps of one
    run, "early" = the first fifth of those (1000 steps, 500 fs, at the cpu and paper sizes), reference
    = a second, independent run after burn-in, one frame every `thinning` steps.

    ``molecules``: which molecules of ``MD17_MOLECULES`` to run, at this size's settings (default: the
    size's own list); each has its own cache entry, whatever the selection."""
    settings = DATA["md17"][size]
    out = []
    for molecule in molecules or settings["molecules"]:
        generation = dict(molecule=molecule, smiles=MD17_MOLECULES[molecule], seed=seed,
                          temperature_K=MD17_TEMPERATURE, timestep_fs=MD17_TIMESTEP, friction_per_fs=MD17_FRICTION,
                          method="GFN2-xTB", **{k: v for k, v in settings.items() if k != "molecules"})
        entry = load_or_generate(cache_dir, f"md17-{molecule}", generation,
                                 functools.partial(_md17_arrays, molecule, settings, seed, progress))
        arrays = entry.arrays
        n_early = settings["n_biased"] // MD17_EARLY_FRACTION
        out.append(BenchData(
            name=f"md17-{molecule}", numbers=arrays["numbers"], reference=arrays["reference"],
            training={"biased": (arrays["biased"], arrays["biased_forces"]),
                      "early": (arrays["biased"][:n_early], arrays["biased_forces"][:n_early])},
            temperature=MD17_TEMPERATURE,
            cache=_cache_info(entry),
        ))
    return out


def ala2_system():
    """The benchmark's alanine dipeptide: (OpenMM PDBFile of ``ALA2_PDB``, amber14 vacuum System
    without cutoff and with ``ALA2_CONSTRAINTS``)."""
    try:
        from openmm import app
    except ImportError as error:
        raise ImportError("the ala2 benchmark needs OpenMM and mdtraj: pip install 'ase-psm[openmm]'") from error
    pdb = app.PDBFile(str(ALA2_PDB))
    system = app.ForceField("amber14-all.xml").createSystem(pdb.topology, nonbondedMethod=app.NoCutoff,
                                                            constraints=ALA2_CONSTRAINTS)
    return pdb, system


def _ala2_run(n_frames: int, interval: int, burn_in: int, seed: int, progress: bool, label: str):
    """One amber14 vacuum Langevin run at 300 K (1 fs, no constraints) from the minimized PDB:
    Frames of every `interval`-th step after `burn_in` steps."""
    pdb, system = ala2_system()  # first: it names the install command if OpenMM is missing
    from ..openmm.convert import positions_to_angstrom

    return openmm_langevin(pdb.topology, positions_to_angstrom(pdb.positions), system, ALA2_TEMPERATURE, n_frames,
                           interval, burn_in, seed, progress, label)


def openmm_langevin(topology, positions: np.ndarray, system, temperature: float, n_frames: int, interval: int,
                    burn_in: int, seed: int, progress: bool, label: str):
    """A Langevin run (1 fs steps, friction 1/ps, OpenMM CPU on one thread) from the energy-minimized
    `positions` (Å) with velocities at `temperature` (K): Frames of every `interval`-th step after `burn_in`."""
    import openmm
    from openmm import app, unit

    from ..openmm import FrameRecorder
    from ..openmm.convert import positions_to_openmm

    integrator = openmm.LangevinMiddleIntegrator(temperature * unit.kelvin, 1 / unit.picosecond,
                                                 ALA2_TIMESTEP * unit.picosecond)
    integrator.setRandomNumberSeed(seed + 1)  # 0 would mean "random" in OpenMM
    names = [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]
    platform = openmm.Platform.getPlatformByName("CPU" if "CPU" in names else "Reference")
    properties = ALA2_PLATFORM_PROPERTIES.get(platform.getName(), {})
    simulation = app.Simulation(topology, system, integrator, platform, properties)
    simulation.context.setPositions(positions_to_openmm(positions))
    simulation.minimizeEnergy()
    simulation.context.setVelocitiesToTemperature(temperature * unit.kelvin, seed + 1)
    if burn_in:
        simulation.step(burn_in)
    recorder = FrameRecorder(interval)
    simulation.reporters.append(recorder)
    chunk = interval * max(1, n_frames // 50)
    total = n_frames * interval
    with tqdm(total=total, desc=f"OpenMM {label}", disable=not progress, leave=False) as bar:
        done = 0
        while done < total:
            steps = min(chunk, total - done)
            simulation.step(steps)
            done += steps
            bar.update(steps)
    return recorder.frames()


def _biased_and_reference(run: Callable[..., Frames], settings: dict, seed: int, label: str) -> dict[str, np.ndarray]:
    """The arrays of an MD data set from ``run(n_frames, interval, burn_in, seed, label=...)``: "biased" = the
    first n_biased frames of one run, reference = a second run (seed + 1) after 10 reference intervals."""
    biased = run(settings["n_biased"], settings["biased_interval"], 0, seed, label=f"{label}biased")
    reference = run(settings["n_reference"], settings["reference_interval"], 10 * settings["reference_interval"],
                    seed + 1, label=f"{label}reference")
    assert biased.forces is not None  # FrameRecorder keeps every frame's forces
    return dict(numbers=biased.numbers, biased=biased.positions, biased_forces=biased.forces,
                reference=reference.positions)


def ala2_data(size: str, cache_dir: str | Path, seed: int = 0, progress: bool = False) -> BenchData:
    """Alanine dipeptide (amber14, vacuum, 300 K): "biased" = the first frames of one run from the
    minimized PDB; reference = a second run after a burn-in of 10 reference intervals."""
    settings = DATA["ala2"][size]

    def generate() -> dict[str, np.ndarray]:
        return _biased_and_reference(functools.partial(_ala2_run, progress=progress), settings, seed, "")

    generation = dict(settings, seed=seed, temperature_K=ALA2_TEMPERATURE, timestep_ps=ALA2_TIMESTEP,
                      forcefield="amber14-all", constraints=str(ALA2_CONSTRAINTS), pdb=ALA2_PDB.name,
                      platform_properties=ALA2_PLATFORM_PROPERTIES)
    entry = load_or_generate(cache_dir, "ala2", generation, generate)
    arrays = entry.arrays
    return BenchData(
        name="ala2", numbers=arrays["numbers"], reference=arrays["reference"],
        training={"biased": (arrays["biased"], arrays["biased_forces"])}, temperature=ALA2_TEMPERATURE,
        topology=str(ALA2_PDB), cache=_cache_info(entry),
    )


def md22_structure(molecule: str, size: str):
    """(OpenMM Topology, positions in Å, OpenMM System) of one md22 molecule at `size` (nanotube cells)."""
    try:
        from ..systems.nanotube import double_walled_nanotube, nanotube_system
        from ..systems.peptides import capped_alanine, peptide_system
        if molecule in PEPTIDE_RESIDUES:
            topology, positions = capped_alanine(PEPTIDE_RESIDUES[molecule])
            return topology, positions, peptide_system(topology)
        topology, positions = double_walled_nanotube(DATA["md22"][size]["nanotube_cells"])
        return topology, positions, nanotube_system(topology)
    except ImportError as error:
        raise ImportError("the md22 benchmark needs OpenMM, mdtraj and RDKit: pip install 'ase-psm[openmm,bench]'") from error


def md22_data(size: str, cache_dir: str | Path, seed: int = 0, progress: bool = False,
              molecules: tuple[str, ...] | None = None) -> list[BenchData]:
    """MD22-like systems (OpenMM Langevin at 500 K, 1 fs): "biased" = the first n_biased frames of one
    run from the minimized structure; reference = a second run after a burn-in of 10 reference intervals.
    Peptides carry a PDB (written next to the cache entry) for their Ramachandran angles."""
    settings = DATA["md22"][size]
    out = []
    for molecule in molecules or settings["molecules"]:
        topology, positions, system = md22_structure(molecule, size)

        run = functools.partial(openmm_langevin, topology, positions, system, MD22_TEMPERATURE, progress=progress)
        generate = functools.partial(_biased_and_reference, run, settings, seed, f"{molecule} ")
        generation = dict({k: v for k, v in settings.items() if k != "molecules"}, molecule=molecule,
                          description=MD22_MOLECULES[molecule], seed=seed, temperature_K=MD22_TEMPERATURE,
                          timestep_ps=ALA2_TIMESTEP, platform_properties=ALA2_PLATFORM_PROPERTIES)
        entry = load_or_generate(cache_dir, f"md22-{molecule}", generation, generate)
        out.append(BenchData(
            name=f"md22-{molecule}", numbers=entry.arrays["numbers"], reference=entry.arrays["reference"],
            training={"biased": (entry.arrays["biased"], entry.arrays["biased_forces"])},
            temperature=MD22_TEMPERATURE, topology=_peptide_pdb(topology, positions, entry.path),
            cache=_cache_info(entry),
        ))
    return out


def _peptide_pdb(topology, positions: np.ndarray, cache_entry: Path) -> str | None:
    """The PDB of a peptide's topology next to its cache entry (for phi/psi); None for other molecules."""
    from openmm import app

    from ..openmm.convert import positions_to_openmm

    if not any(residue.name == "ALA" for residue in topology.residues()):
        return None
    path = cache_entry.with_suffix(".pdb")
    with open(path, "w") as handle:
        app.PDBFile.writeFile(topology, positions_to_openmm(positions), handle)
    return str(path)


def load_system(system: str, size: str, cache_dir: str | Path, progress: bool = False,
                molecules: tuple[str, ...] | None = None) -> list[BenchData]:
    """The data sets of one benchmark system (md17, md22: one per molecule, or the given ``molecules``),
    generated or from the cache."""
    if system in ("lj13", "lj55"):
        return [lj_data(int(system[2:]), size, cache_dir, progress=progress)]
    if system == "md17":
        return md17_data(size, cache_dir, progress=progress, molecules=molecules)
    if system == "ala2":
        return [ala2_data(size, cache_dir, progress=progress)]
    if system == "md22":
        return md22_data(size, cache_dir, progress=progress, molecules=molecules)
    raise ValueError(f"unknown benchmark system {system!r}; choose from lj13, lj55, md17, ala2, md22")
