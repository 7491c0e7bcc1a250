"""Quick start on a system anyone can make: a 13-particle Lennard-Jones cluster (reduced units, kT = 1).

1. Metropolis frames of one chain (the biased head) with analytic forces, written as extxyz.
2. Train a PSM model on them (a short, CPU-sized run; raise --steps for quality).
3. Use it from ASE: pseudo-forces, adaptive denoising, and sampling; compare distances.

    python examples/quickstart_lj13.py --steps 300
"""

from __future__ import annotations

import argparse
from pathlib import Path

import ase
import ase.io
import numpy as np

from ase_psm import PseudoForceDenoiser, PSMCalculator, sample, train
from ase_psm.data import Frames, write_frames
from ase_psm.metrics import distance_tvd
from ase_psm.systems import ARGON, lj_forces, lj_initial_positions, metropolis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("quickstart-out"))
    args = parser.parse_args()
    args.out.mkdir(exist_ok=True)

    # 1. one Metropolis chain: 100 burn-in sweeps, then 1000 frames, one per sweep
    chain, acceptance = metropolis(lj_initial_positions(13, 1, seed=0), 1100, seed=0)
    positions = chain[0, 100:]
    frames = Frames(np.full(13, ARGON), positions, forces=lj_forces(positions))
    write_frames(args.out / "lj13.extxyz", frames)
    print(f"Metropolis acceptance {acceptance:.2f}; wrote {len(frames)} frames")

    # 2. PSM training from the file (kT = 1 in reduced units)
    checkpoint = train(args.out / "lj13.extxyz", out=args.out / "model.pt", loss="piecewise-weighted",
                       kT=1.0, steps=args.steps, schedule=dict(sigma_min=0.01, sigma_max=3.0),
                       loss_weighting="score", force_crossover_t="thermal", device="cpu")

    # 3a. pseudo-forces of a noised structure point back towards the data
    atoms = frames.to_atoms(0)
    atoms.calc = PSMCalculator(checkpoint, device="cpu")
    atoms.rattle(0.2, seed=1)
    atoms.get_forces()
    print(f"noise estimate of a structure rattled by 0.2: sigma_hat = {atoms.calc.results['sigma']:.3f}")

    # 3b. adaptive, time-step-free denoising as an ASE optimizer
    converged = PseudoForceDenoiser(atoms, seed=0).run(fmax=0.05, steps=100)
    print(f"denoiser converged: {converged}")

    # 3c. sampling; every structure is checked (finite, compact, no clashes), failures regenerated
    structures = sample(checkpoint, ase.Atoms(numbers=[ARGON] * 13), n=args.samples, sampler="pc",
                        steps=50, seed=0, device="cpu")
    print(f"checks: {structures.report}")
    if not structures:
        print("no structure passed the checks: train longer (--steps 300)")
        return
    ase.io.write(args.out / "samples.extxyz", structures)
    generated = np.stack([a.positions for a in structures])
    print(f"distance TVD of {len(structures)} samples to the training frames: {distance_tvd(generated, positions):.3f}")

if __name__ == "__main__":
    main()
