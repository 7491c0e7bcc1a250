"""The ``ase-psm`` command.

Global options come before the command: ``ase-psm --quiet --log-file run.log train ...``.
Every command takes ``--config FILE.yaml`` whose keys mirror its flags (``batch-size`` or
``batch_size``); flags given on the command line override the file.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from ..diffusion.noise import NoiseSchedule
from ..generate.config import SampleConfig
from ..train.config import TrainConfig
from . import bench as bench_commands
from . import openmm as openmm_commands
from .flags import add_config_flags, config_from_flags


def _train(args: argparse.Namespace) -> None:
    from ..train import train

    read_options = {k: v for k, v in dict(topology=args.topology, energy_unit=args.energy_unit).items() if v}
    config = config_from_flags(TrainConfig, args)
    # only what was given changes the loss's default schedule
    schedule = {k: v for k, v in dict(sigma_min=args.sigma_min, sigma_max=args.sigma_max).items() if v is not None}
    if schedule and config.schedule is not None:
        config = dataclasses.replace(config, schedule=NoiseSchedule(**{**config.schedule.to_dict(), **schedule}))
    path = train(args.data, args.out, config=config, progress=not args.quiet, resume=args.resume,
                 read_options=read_options, ddp=args.ddp)
    if not args.ddp or os.environ.get("RANK", "0") == "0":
        from ..metrics import plot_loss_curve

        curve = plot_loss_curve(path.with_suffix(".csv"), path.with_name(path.stem + "_loss.png"))
        print(f"best checkpoint: {path}\nloss curve: {curve}")


def _checkpoint(args: argparse.Namespace) -> str:
    """The checkpoint given as the positional argument or as --checkpoint (not both)."""
    if args.checkpoint and args.checkpoint_option and args.checkpoint != args.checkpoint_option:
        raise ValueError(f"two checkpoints given ({args.checkpoint} and --checkpoint {args.checkpoint_option}); give one")
    checkpoint = args.checkpoint or args.checkpoint_option
    if not checkpoint:
        raise ValueError("no checkpoint: give a file from ase-psm train or a shipped model name (e.g. lj13, ala2)")
    return checkpoint


def _add_checkpoint_argument(parser: argparse.ArgumentParser) -> None:
    help_text = "a checkpoint written by ase-psm train, or a shipped model (lj13, ala2; see ase-psm models)"
    parser.add_argument("checkpoint", nargs="?", help=help_text)
    parser.add_argument("--checkpoint", dest="checkpoint_option", metavar="CHECKPOINT", help="the same, as an option")


def _sample(args: argparse.Namespace) -> None:
    import ase.io

    from ..generate import sample, sharded_sample
    from ..validation import read_structure

    if args.smiles:
        from ..chemistry.molecules import molecule_template

        template = molecule_template(args.smiles, seed=args.seed)
    else:
        template = read_structure(args.template)
    run = sharded_sample if args.ddp else sample
    structures = run(_checkpoint(args), template, args.n, config=config_from_flags(SampleConfig, args),
                     progress=not args.quiet)
    if structures is None:  # a rank other than 0 of a --ddp job: rank 0 writes
        return
    report = structures.report
    print(f"checks: {report}")
    if not structures:
        raise ValueError("every generated structure failed the checks; nothing was written "
                         "(train longer, use more --steps, or --on-invalid keep to inspect them)")
    ase.io.write(args.out, structures)
    print(f"wrote {len(structures)} structures to {args.out}")


def _denoise(args: argparse.Namespace) -> None:
    import ase.io

    from ..ase import PseudoForceDenoiser
    from ..validation import read_structure

    atoms = read_structure(args.structure)
    denoiser = PseudoForceDenoiser(
        atoms, _checkpoint(args), kappa=args.kappa, seed=args.seed, trajectory=args.trajectory, device=args.device,
        logfile=None if args.quiet else "-",
    )
    converged = denoiser.run(fmax=args.fmax, steps=args.steps)
    ase.io.write(args.out, atoms)
    print(f"{'converged' if converged else 'not converged'} after {denoiser.nsteps} steps; wrote {args.out}")


def _evaluate(args: argparse.Namespace) -> None:
    import numpy as np

    from ..data import read_frames
    from ..metrics import (
        distance_tvd,
        hr_mae,
        phi_psi,
        plot_distance_histograms,
        plot_energy_histograms,
        plot_hr,
        plot_ramachandran,
        ramachandran_tvd,
    )

    reference = read_frames(args.reference)
    named = {Path(path).name: read_frames(path) for path in args.samples}
    angles = {}
    if args.topology:
        reference_angles = phi_psi(reference.positions, args.topology)
        angles = {name: phi_psi(frames.positions, args.topology) for name, frames in named.items()}
    header = f"{'samples':40s} {'n':>6s} {'dist TVD':>9s} {'h(r) MAE':>9s}"
    print(header + (f" {'rama TVD':>9s}" if angles else ""))
    for name, frames in named.items():
        row = (f"{name:40s} {len(frames):6d} {distance_tvd(frames.positions, reference.positions):9.4f} "
               f"{hr_mae(frames.positions, reference.positions):9.4f}")
        print(row + (f" {ramachandran_tvd(angles[name], reference_angles):9.4f}" if angles else ""))
    if args.plot:
        plot = Path(args.plot)
        positions = {name: frames.positions for name, frames in named.items()}
        written = [plot_distance_histograms(positions, np.asarray(reference.positions), plot)]
        written.append(plot_hr(positions, reference.positions, plot.with_name(plot.stem + "_hr" + plot.suffix)))
        energies = {name: frames.energies for name, frames in named.items() if frames.energies is not None}
        if reference.energies is not None and len(energies) == len(named):
            written.append(plot_energy_histograms(
                energies, reference.energies, plot.with_name(plot.stem + "_energy" + plot.suffix)))
        if angles:
            written.append(plot_ramachandran(
                angles, reference_angles, plot.with_name(plot.stem + "_ramachandran" + plot.suffix)))
        print("plots: " + ", ".join(str(path) for path in written))


def _models(args: argparse.Namespace) -> None:
    from ..pretrained import PRETRAINED, model_card

    if args.name:
        print(model_card(args.name))
        return
    for name in PRETRAINED:
        title = model_card(name).splitlines()[0].lstrip("# ")
        print(f"{name:10s} {title}")


def _demo(args: argparse.Namespace) -> None:
    from ..demo import run_lj13_demo

    run_lj13_demo(out=Path(args.out), n_samples=args.n, retrain_steps=args.train_steps, seed=args.seed,
                  sample_steps=args.sample_steps, progress=not args.quiet)


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = argparse.ArgumentParser(
        prog="ase-psm", description="Potential score matching and generative pseudo-force fields: train on MD "
        "frames, sample structures, denoise, evaluate, seed OpenMM.",
        epilog="Every command takes --config FILE.yaml with keys that mirror its flags.",
    )
    parser.add_argument("--version", action="version", version=f"ase-psm {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or step logs")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the full traceback of an error")
    parser.add_argument("--log-file", help="also write everything printed (and errors) to this file")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a model on MD frames")
    train.add_argument("data", help="frames: extxyz, .traj, NPZ (MD17 style), DCD/XTC/HDF5 (mdtraj)")
    train.add_argument("--out", default="model.pt", help="best checkpoint; <out>.last.pt, .csv and _loss.png beside it")
    add_config_flags(train, TrainConfig, skip=("schedule",))
    train.add_argument("--sigma-min", type=float, help="smallest training noise level, Å (default 0.002; 0.05 for gpff)")
    train.add_argument("--sigma-max", type=float, help="largest training noise level, Å (default 5; 30 for gpff)")
    train.add_argument("--topology", help="topology file for DCD/XTC frames")
    train.add_argument("--energy-unit", help="energy unit of NPZ files, e.g. kcal/mol")
    train.add_argument("--resume", action="store_true", help="continue from <out>.last.pt")
    train.add_argument("--ddp", action="store_true",
                       help="data-parallel over a torchrun job (gloo on CPU, nccl on GPU); --batch-size is per process")
    train.set_defaults(run=_train)

    sample = commands.add_parser("sample", help="generate structures")
    _add_checkpoint_argument(sample)
    source = sample.add_mutually_exclusive_group(required=True)
    source.add_argument("--template", help="a structure with the atoms to generate (FixAtoms kept)")
    source.add_argument("--smiles", help="a molecule to generate conformers of (needs RDKit): the template is "
                                         "one ETKDG conformer, with its bond graph and stereo")
    sample.add_argument("-n", "--n", type=int, default=100, help="structures to generate")
    add_config_flags(sample, SampleConfig)
    sample.add_argument("--ddp", action="store_true",
                        help="shard over a torchrun job: rank r uses a seed from (seed, r); rank 0 writes in rank order")
    sample.add_argument("--out", default="samples.extxyz", help="output file, any format ASE writes")
    sample.set_defaults(run=_sample)

    denoise = commands.add_parser("denoise", help="denoise / relax one structure on the pseudo-PES")
    _add_checkpoint_argument(denoise)
    denoise.add_argument("structure", help="a noisy structure, any format ASE reads (FixAtoms kept)")
    denoise.add_argument("--fmax", type=float, default=0.05, help="stop when every pseudo-force is below this (eV/Å)")
    denoise.add_argument("--steps", type=int, default=500, help="maximum denoising steps")
    denoise.add_argument("--kappa", type=float, default=0.7, help="fraction of the noise estimate put back per step")
    denoise.add_argument("--seed", type=int, default=0, help="seed of the re-noising")
    denoise.add_argument("--trajectory", help="write every step to this ASE .traj file")
    denoise.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    denoise.add_argument("--out", default="denoised.extxyz", help="output structure file")
    denoise.set_defaults(run=_denoise)

    evaluate = commands.add_parser("evaluate", help="distance TVD and h(r) MAE of samples against a reference")
    evaluate.add_argument("samples", nargs="+", help="one or more files of generated structures")
    evaluate.add_argument("--reference", required=True, help="reference frames (e.g. a long MD run)")
    evaluate.add_argument("--topology", help="topology (PDB) of a dipeptide: adds the Ramachandran TVD and map")
    evaluate.add_argument("--plot", help="save plots (PNG or SVG): distances at this path, h(r), energies and "
                          "Ramachandran maps beside it (<name>_hr.png, ...)")
    evaluate.set_defaults(run=_evaluate)

    models = commands.add_parser("models", help="list the shipped models, or show one's model card")
    models.add_argument("name", nargs="?", help="a shipped model's name, e.g. lj13")
    models.set_defaults(run=_models)

    demo = commands.add_parser("demo", help="LJ-13: DSM vs PSM samples against a Boltzmann reference")
    demo.add_argument("--out", default="psm-demo", help="directory for the plot and retrained checkpoints")
    demo.add_argument("--n", type=int, default=200, help="samples per model")
    demo.add_argument("--train-steps", type=int, default=0, help="retrain both models for this many steps "
                      "instead of loading the shipped checkpoints")
    demo.add_argument("--sample-steps", type=int, default=50,
                      help="pc noise levels (2 network calls each); 100 gives slightly better samples in twice the time")
    demo.add_argument("--seed", type=int, default=0, help="sampling (and retraining) seed")
    demo.set_defaults(run=_demo)
    openmm_commands.register(commands)
    bench_commands.register(commands)
    for command in commands.choices.values():
        command.add_argument("--config", help="YAML file of this command's settings (keys mirror the flags)")
    return parser


def config_arguments(parser: argparse.ArgumentParser, command: str, path: str) -> list[str]:
    """Turn a YAML mapping of a command's settings into its command-line arguments.

    Keys are flag names (``batch-size`` or ``batch_size``) or positional names (``data``);
    ``true`` switches a flag on, mappings (``model``) become JSON, lists repeat values.
    """
    import yaml

    if not Path(path).is_file():
        raise FileNotFoundError(f"no config file at {path}: check the path")
    try:
        settings = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(settings, dict):
        raise TypeError(f"{path} must hold a mapping of settings (key: value), got {type(settings).__name__}")
    actions = _settings(_subparsers(parser).choices[command])
    positionals, options = [], []
    for key, value in settings.items():
        action = actions.get(str(key).replace("-", "_"))
        if action is None:
            known = sorted(name.replace("_", "-") for name in actions)
            raise ValueError(f"{path}: {key!r} is not a setting of `ase-psm {command}`; known: {', '.join(known)}")
        values = [json.dumps(value) if isinstance(value, dict) else str(v)
                  for v in (value if isinstance(value, list) else [value])]
        if not action.option_strings:
            positionals.extend(values)
        elif isinstance(action, argparse._StoreConstAction):  # a switch (store_true, --no-... flags)
            options.extend([action.option_strings[-1]] if value else [])
        elif value is not None:
            options.extend([action.option_strings[-1], *values])
    return positionals + options


def _settings(subparser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """A command's settings by name (underscores): its positionals, then its long flags (``no_bond_check``)."""
    settings = {action.dest: action for action in subparser._actions if not action.option_strings}
    for action in subparser._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag not in ("--help", "--config"):
                settings.setdefault(flag[2:].replace("-", "_"), action)
    return settings


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


@contextlib.contextmanager
def _tee(path: str | None) -> Iterator[None]:
    """Copy everything written to stdout and stderr into ``path`` as well."""
    if path is None:
        yield
        return
    with open(path, "a") as log:
        streams = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Tee(sys.stdout, log), _Tee(sys.stderr, log)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = streams


class _Tee:
    def __init__(self, stream: TextIO, log: TextIO) -> None:
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.log.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.log.flush()
        self.stream.flush()

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def with_config(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``argv`` with the settings of the command's ``--config`` file inserted after the command
    name, so that flags given on the command line come later and win."""
    commands = _subparsers(parser).choices
    position = next((i for i, token in enumerate(argv) if token in commands), None)
    if position is None:
        return argv
    config = None
    for i, token in enumerate(argv[position + 1 :], start=position + 1):
        if token == "--config" and i + 1 < len(argv):
            config = argv[i + 1]
        elif token.startswith("--config="):
            config = token.split("=", 1)[1]
    if config is None:
        return argv
    return argv[: position + 1] + config_arguments(parser, argv[position], config) + argv[position + 1 :]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        argv = with_config(parser, argv)
    except (ValueError, OSError, TypeError) as error:
        parser.error(" ".join(str(error).split()))
    args = parser.parse_args(argv)
    with _tee(args.log_file):
        try:
            args.run(args)
        except (ValueError, OSError, TypeError, ImportError) as error:
            if args.verbose:
                raise
            message = " ".join(str(error).split())  # one line
            print(f"ase-psm {args.command}: error: {message}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
