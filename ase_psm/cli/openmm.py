"""``ase-psm seed-openmm``: seed OpenMM simulations from a checkpoint's samples."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..pretrained import resolve_checkpoint


def _seed_openmm(args: argparse.Namespace) -> None:
    for name in ("system", "pdb"):
        if not Path(getattr(args, name)).is_file():
            raise FileNotFoundError(f"--{name} file not found: {getattr(args, name)}")
    resolve_checkpoint(args.checkpoint)  # a file or a shipped model's name
    try:
        import openmm
        from openmm import app
    except ImportError as error:
        raise ImportError("seed-openmm needs OpenMM and mdtraj: pip install 'ase-psm[openmm]'") from error

    from ..openmm import CheckSettings, SeedSettings, seed_simulations

    try:
        system = openmm.XmlSerializer.deserialize(Path(args.system).read_text())
    except Exception as error:  # OpenMM raises plain Exceptions for malformed XML
        raise ValueError(f"{args.system} is not a serialized OpenMM System: {error}") from error
    if not isinstance(system, openmm.System):
        raise TypeError(f"{args.system} holds a serialized {type(system).__name__}, not an OpenMM System.")
    pdb = app.PDBFile(args.pdb)
    settings = SeedSettings(
        steps=args.steps, temperature=args.temperature, timestep=args.timestep, friction=args.friction,
        report_interval=args.report_interval, trajectory_format=args.format, minimize=not args.no_minimize,
        minimize_iterations=args.minimize_iterations, energy_window=args.energy_window,
        check_after_minimization=args.check_after_minimization, checks=CheckSettings(bond_tolerance=args.bond_tolerance, clash_scale=args.clash_scale),
        platform=args.platform, seed=args.seed,
    )
    report = seed_simulations(
        args.checkpoint, system, pdb.topology, pdb.positions, n=args.n, out=args.out, settings=settings,
        sampler=args.sampler, sample_steps=args.sample_steps, progress=not args.quiet,
    )
    for rejection in report.rejected:
        print(f"rejected structure {rejection.index}: {rejection.category}: {rejection.reason}")
    print(report.summary())


def register(commands) -> None:
    """Add the ``seed-openmm`` command to the ``ase-psm`` subparsers `commands`."""
    from ..diffusion.samplers import SAMPLERS

    seed = commands.add_parser(
        "seed-openmm", help="generate structures, check them and run one OpenMM simulation from each"
    )
    seed.add_argument("--system", required=True, help="serialized OpenMM System (XmlSerializer .xml)")
    seed.add_argument("--pdb", required=True, help="PDB of the system: topology, bonds and a valid template structure")
    seed.add_argument("--checkpoint", required=True, help="ase-psm model trained on this system's frames")
    seed.add_argument("--n", type=int, default=16, help="structures to generate")
    seed.add_argument("--steps", type=int, default=10000, help="MD steps per simulation")
    seed.add_argument("--out", default="runs", help="directory for run_000.dcd, ...")
    seed.add_argument("--format", choices=["dcd", "h5"], default="dcd", help="trajectory format (mdtraj reporter)")
    seed.add_argument("--temperature", type=float, help="K (default: the checkpoint's training temperature)")
    seed.add_argument("--timestep", type=float, default=0.002, help="ps")
    seed.add_argument("--friction", type=float, default=1.0, help="1/ps")
    seed.add_argument("--report-interval", type=int, default=100, help="steps between trajectory frames")
    seed.add_argument("--no-minimize", action="store_true", help="skip the short minimization before the energy check")
    seed.add_argument("--minimize-iterations", type=int, default=200, help="L-BFGS iterations of the minimization")
    seed.add_argument("--check-after-minimization", action="store_true",
                      help="check the minimized structures: repaired bond lengths pass; wrong bonds or chirality do not")
    seed.add_argument("--energy-window", type=float, default=2.0, help="eV above the template's minimized energy")
    seed.add_argument("--bond-tolerance", type=float, default=0.3, help="Å")
    seed.add_argument("--clash-scale", type=float, default=1.0, help="times the sum of covalent radii")
    seed.add_argument("--sampler", choices=list(SAMPLERS), default="pc", help="sampler of the structures")
    seed.add_argument("--sample-steps", type=int, default=200, help="noise levels of the sampler")
    seed.add_argument("--platform", default="Reference", help="OpenMM platform: Reference, CPU, CUDA, OpenCL")
    seed.add_argument("--seed", type=int, default=0, help="seed of sampling and velocities")
    seed.set_defaults(run=_seed_openmm)
