"""Evaluate generated structures against a reference, with plots.

Samples the two shipped LJ-13 models (``lj13`` = PSM and ``lj13-dsm``), writes them as extxyz
with their Lennard-Jones energies, then compares them with the shipped Boltzmann reference:
interatomic-distance TVD, h(r) MAE, energy W2 and three plots (distances, h(r), energies).
The same numbers and plots come from ``ase-psm evaluate samples.extxyz --reference ref.extxyz --plot p.png``.

    python examples/evaluate_lj13.py --n 256            # about a minute on 2 CPU cores
"""

from __future__ import annotations

import argparse
from pathlib import Path

import ase
import numpy as np

from ase_psm import sample
from ase_psm.data import Frames, write_frames
from ase_psm.demo import TRAINING_HEAD, load_lj13_data
from ase_psm.metrics import distance_tvd, hr_mae, plot_distance_histograms, plot_energy_histograms, plot_hr
from ase_psm.systems import ARGON, lj_energy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=256, help="samples per model")
    parser.add_argument("--steps", type=int, default=100, help="noise levels of the pc sampler")
    parser.add_argument("--out", type=Path, default=Path("evaluate-lj13"))
    args = parser.parse_args()
    args.out.mkdir(exist_ok=True)

    data = load_lj13_data()
    reference = data["reference"]
    template = ase.Atoms(numbers=[ARGON] * 13, positions=reference[0])
    positions, energies = {}, {}
    for name in ("lj13", "lj13-dsm"):
        structures = sample(name, template, n=args.n, sampler="pc", steps=args.steps, seed=0, device="cpu")
        positions[name] = np.stack([atoms.positions for atoms in structures])
        energies[name] = lj_energy(positions[name])
        write_frames(args.out / f"{name}.extxyz", Frames(template.numbers, positions[name], energies=energies[name]))

    print(f"{'':10s} {'dist TVD':>9s} {'h(r) MAE':>9s} {'median E':>9s}")
    training = data[TRAINING_HEAD]  # the shipped models' training data
    print(f"{'training':10s} {distance_tvd(training, reference):9.4f} {hr_mae(training, reference):9.4f} "
          f"{np.median(lj_energy(training)):9.2f}")
    for name, generated in positions.items():
        print(f"{name:10s} {distance_tvd(generated, reference):9.4f} "
              f"{hr_mae(generated, reference):9.4f} {np.median(energies[name]):9.2f}")
    plots = [
        plot_distance_histograms(positions, reference, args.out / "distances.png"),
        plot_hr(positions, reference, args.out / "hr.png"),
        plot_energy_histograms(energies, lj_energy(reference), args.out / "energies.png", unit="ε"),
    ]
    print("plots: " + ", ".join(str(path) for path in plots))


if __name__ == "__main__":
    main()
