"""The ``ase-psm`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..diffusion.samplers import SAMPLERS
from ..diffusion.targets import LOSSES


def _train(args: argparse.Namespace) -> None:
    from ..train import train

    schedule = None
    if args.sigma_min is not None or args.sigma_max is not None:
        schedule = dict(sigma_min=args.sigma_min or 0.01, sigma_max=args.sigma_max or 5.0)
    read_options = {k: v for k, v in dict(topology=args.topology, energy_unit=args.energy_unit).items() if v}
    path = train(
        args.data, args.out, loss=args.loss, temperature=args.temperature, kT=args.kT, steps=args.steps,
        batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed, first=args.first,
        stride=args.stride, fraction=args.fraction, val_fraction=args.val_fraction, device=args.device,
        sigma_conditioned=False if args.time_step_free else None, schedule=schedule,
        resume=args.resume, read_options=read_options, loss_weighting=args.loss_weighting,
        force_crossover_t=args.force_crossover,
    )
    print(f"best checkpoint: {path}")


def _sample(args: argparse.Namespace) -> None:
    import ase.io

    from ..generate import sample

    template = ase.io.read(args.template)
    structures = sample(
        args.checkpoint, template, n=args.n, sampler=args.sampler, steps=args.steps, seed=args.seed,
        prior=args.prior, sigma_max=args.sigma_max, batch_size=args.batch_size, device=args.device,
    )
    ase.io.write(args.out, structures)
    print(f"wrote {len(structures)} structures to {args.out}")


def _denoise(args: argparse.Namespace) -> None:
    import ase.io

    from ..ase import PseudoForceDenoiser

    atoms = ase.io.read(args.structure)
    denoiser = PseudoForceDenoiser(
        atoms, args.checkpoint, kappa=args.kappa, seed=args.seed, trajectory=args.trajectory, device=args.device
    )
    converged = denoiser.run(fmax=args.fmax, steps=args.steps)
    ase.io.write(args.out, atoms)
    print(f"{'converged' if converged else 'not converged'} after {denoiser.nsteps} steps; wrote {args.out}")


def _evaluate(args: argparse.Namespace) -> None:
    import numpy as np

    from ..data import read_frames
    from ..metrics import distance_tvd, hr_mae, plot_distance_histograms

    reference = read_frames(args.reference).positions
    print(f"{'samples':40s} {'n':>6s} {'dist TVD':>9s} {'h(r) MAE':>9s}")
    named = {}
    for path in args.samples:
        positions = read_frames(path).positions
        named[Path(path).name] = positions
        print(f"{Path(path).name:40s} {len(positions):6d} {distance_tvd(positions, reference):9.4f} "
              f"{hr_mae(positions, reference):9.4f}")
    if args.plot:
        plot_distance_histograms(named, np.asarray(reference), args.plot)
        print(f"plot: {args.plot}")


def _demo(args: argparse.Namespace) -> None:
    from ..demo import run_lj13_demo

    run_lj13_demo(out=Path(args.out), n_samples=args.n, retrain_steps=args.train_steps, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ase-psm", description="Potential score matching / generative pseudo-force fields")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model on MD frames")
    train.add_argument("data", help="frames: extxyz, .traj, NPZ (MD17 style), DCD/XTC/HDF5 (mdtraj)")
    train.add_argument("--out", default="model.pt")
    train.add_argument("--loss", choices=LOSSES, default="piecewise-weighted")
    train.add_argument("--loss-weighting", choices=["epsilon", "score", "gpff"],
                       help="default: epsilon (paper), gpff for the gpff loss")
    train.add_argument("--force-crossover", default="0.05",
                       help="diffusion time t where force labels hand over to noise targets, or 'thermal'")
    train.add_argument("--temperature", type=float, help="K, converts eV/Å force labels to F/kT")
    train.add_argument("--kT", type=float, help="kT in the force labels' energy unit (instead of --temperature)")
    train.add_argument("--steps", type=int, default=3000)
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--first", type=int, help="keep the first N frames (biased head of one run)")
    train.add_argument("--stride", type=int, default=1)
    train.add_argument("--fraction", type=float, help="keep a random fraction of the frames")
    train.add_argument("--val-fraction", type=float, default=0.1)
    train.add_argument("--sigma-min", type=float)
    train.add_argument("--sigma-max", type=float)
    train.add_argument("--time-step-free", action="store_true", help="no noise-level input (GPFF)")
    train.add_argument("--topology", help="topology file for DCD/XTC frames")
    train.add_argument("--energy-unit", help="energy unit of NPZ files, e.g. kcal/mol")
    train.add_argument("--device", default="auto")
    train.add_argument("--resume", action="store_true", help="continue from <out>.last.pt")
    train.set_defaults(run=_train)

    sample = commands.add_parser("sample", help="generate structures")
    sample.add_argument("checkpoint")
    sample.add_argument("--template", required=True, help="a structure with the atoms to generate (FixAtoms kept)")
    sample.add_argument("--n", type=int, default=100)
    sample.add_argument("--sampler", choices=list(SAMPLERS), default="pc")
    sample.add_argument("--steps", type=int, default=100)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--prior", choices=["gaussian", "structure"], default="gaussian")
    sample.add_argument("--sigma-max", type=float)
    sample.add_argument("--batch-size", type=int, default=256)
    sample.add_argument("--device", default="auto")
    sample.add_argument("--out", default="samples.extxyz")
    sample.set_defaults(run=_sample)

    denoise = commands.add_parser("denoise", help="denoise / relax one structure on the pseudo-PES")
    denoise.add_argument("checkpoint")
    denoise.add_argument("structure")
    denoise.add_argument("--fmax", type=float, default=0.05)
    denoise.add_argument("--steps", type=int, default=500)
    denoise.add_argument("--kappa", type=float, default=0.7)
    denoise.add_argument("--seed", type=int, default=0)
    denoise.add_argument("--trajectory")
    denoise.add_argument("--device", default="auto")
    denoise.add_argument("--out", default="denoised.extxyz")
    denoise.set_defaults(run=_denoise)

    evaluate = commands.add_parser("evaluate", help="distance TVD and h(r) MAE of samples against a reference")
    evaluate.add_argument("samples", nargs="+")
    evaluate.add_argument("--reference", required=True)
    evaluate.add_argument("--plot", help="save a distance-distribution plot (PNG)")
    evaluate.set_defaults(run=_evaluate)

    demo = commands.add_parser("demo", help="LJ-13: DSM vs PSM samples against a Boltzmann reference")
    demo.add_argument("--out", default="psm-demo")
    demo.add_argument("--n", type=int, default=256, help="samples per model")
    demo.add_argument("--train-steps", type=int, default=0, help="retrain both models for this many steps "
                      "instead of loading the shipped checkpoints")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (ValueError, FileNotFoundError, TypeError) as error:
        print(f"ase-psm {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
