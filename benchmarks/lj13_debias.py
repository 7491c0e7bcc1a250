"""LJ-13 debiasing benchmark: DSM vs PSM trained on the biased head of one Metropolis chain.

Usage (one loss per process, so two can train side by side on two cores):
    python benchmarks/lj13_debias.py --loss dsm --out runs/lj13
    python benchmarks/lj13_debias.py --loss piecewise-weighted --out runs/lj13
    python benchmarks/lj13_debias.py --report --out runs/lj13
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import ase
import numpy as np
import torch

from ase_psm.data import Frames
from ase_psm.generate import sample
from ase_psm.metrics import distance_tvd, hr_mae, plot_distance_histograms
from ase_psm.systems import lj_energy, make_lj_dataset
from ase_psm.train import train

ARGON = 18  # LJ particles need an element; reduced units throughout


def load_data(out: Path, seed: int) -> dict[str, np.ndarray]:
    path = out / f"lj13_data_seed{seed}.npz"
    if not path.exists():
        np.savez(path, **make_lj_dataset(13, seed=seed))
    return dict(np.load(path))


def run_one(args: argparse.Namespace, data: dict[str, np.ndarray]) -> dict:
    frames = Frames(np.full(13, ARGON), data["biased"], forces=data["biased_forces"])
    checkpoint = args.out / f"{args.name}.pt"
    started = time.perf_counter()
    if not (checkpoint.exists() and args.reuse):
        train(
            frames, checkpoint, loss=args.loss, kT=1.0, steps=args.steps, batch_size=args.batch_size,
            seed=args.seed, schedule=dict(sigma_min=args.sigma_min, sigma_max=args.sigma_max),
            model=dict(hidden_irreps=args.hidden_irreps, sh_lmax=args.sh_lmax, num_layers=args.num_layers,
                       num_radial=args.num_radial),
            device="cpu", val_every=args.val_every, loss_weighting=args.loss_weighting,
            force_crossover_t=args.crossover,
        )
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    structures = sample(
        checkpoint, ase.Atoms(numbers=[ARGON] * 13), n=args.n_samples, sampler=args.sampler,
        steps=args.sample_steps, seed=args.seed, device="cpu",
    )
    sample_seconds = time.perf_counter() - started
    positions = np.stack([a.positions for a in structures])
    np.save(args.out / f"{args.name}_samples.npy", positions)
    return summarize(args.name, positions, data) | {"train_s": train_seconds, "sample_s": sample_seconds}


def summarize(name: str, positions: np.ndarray, data: dict[str, np.ndarray]) -> dict:
    energies = lj_energy(positions)
    return {
        "name": name,
        "distance_tvd": distance_tvd(positions, data["reference"]),
        "hr_mae": hr_mae(positions, data["reference"]),
        "energy_median": float(np.median(energies)),
        "n": len(positions),
    }


def report(args: argparse.Namespace, data: dict[str, np.ndarray]) -> None:
    rows = [summarize("training set (biased head)", data["biased"], data)]
    named = {"training set": data["biased"]}
    for path in sorted(args.out.glob("*_samples.npy")):
        name = path.name.removesuffix("_samples.npy")
        named[name] = np.load(path)
        rows.append(json.loads((args.out / f"{name}.json").read_text()))
    rows.append(summarize("reference (floor, 1000 of it)", data["reference"][:1000], {"reference": data["reference"][1000:]}))
    reference_energy = float(np.median(lj_energy(data["reference"])))
    print(f"{'model':32s} {'dist TVD':>9s} {'h(r) MAE':>9s} {'E median':>9s}   (reference E median {reference_energy:.2f})")
    for row in rows:
        print(f"{row['name']:32s} {row['distance_tvd']:9.4f} {row['hr_mae']:9.4f} {row['energy_median']:9.2f}")
    plot_distance_histograms(named, data["reference"], args.out / "lj13_distances.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loss", default="piecewise-weighted")
    parser.add_argument("--name", help="run name (default: the loss)")
    parser.add_argument("--loss-weighting", default="epsilon", choices=["epsilon", "score", "gpff"])
    parser.add_argument("--crossover", default="0.05", help="force-label crossover time t, or 'thermal'")
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("runs/lj13"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--val-every", type=int, default=250)
    parser.add_argument("--sigma-min", type=float, default=0.01)
    parser.add_argument("--sigma-max", type=float, default=3.0)
    parser.add_argument("--hidden-irreps", default="32x0e + 16x1e")
    parser.add_argument("--sh-lmax", type=int, default=1)
    parser.add_argument("--num-layers", type=int, default=3)
    parser.add_argument("--num-radial", type=int, default=96)
    parser.add_argument("--sampler", default="pc")
    parser.add_argument("--sample-steps", type=int, default=100)
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="reuse an existing checkpoint")
    args = parser.parse_args()
    args.name = args.name or args.loss
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    data = load_data(args.out, args.seed)
    if args.report:
        report(args, data)
        return
    result = run_one(args, data)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
