"""Is the LJ-13 biased head biased locally (first shell) or globally (cluster shape)?

PSM's force targets act only at small noise levels, so they can correct a training set's
distribution only on the scale of thermal vibrations. This prints, for the reference, the biased
training set and each model's seed-0 samples of `ase-psm bench lj13 --protocols biased` (or
`--protocol cold`: the head of a chain started at an energy minimum): the
fraction of pairs in the first shell (distance < 1.35), the shell's median and robust width
(interquartile range / 1.349) and the mean pair distance (reduced units).

Usage (after `ase-psm bench lj13 --size cpu --protocols biased --out runs/bench_lj13_cpu`):
    python benchmarks/probes/lj13_local_bias.py runs/bench_lj13_cpu [--protocol cold] [--seed 1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ase_psm.benchmarks.data import lj_data
from ase_psm.benchmarks.report import seed_samples

FIRST_SHELL = 1.35


def shell_statistics(positions: np.ndarray) -> dict[str, float]:
    """First-shell fraction, median and robust width, and the mean of all pair distances."""
    i, j = np.triu_indices(positions.shape[1], 1)
    distances = np.linalg.norm(positions[:, i] - positions[:, j], axis=-1)
    shell = distances[distances < FIRST_SHELL]
    low, median, high = np.percentile(shell, [25, 50, 75])
    return {"first-shell fraction": shell.size / distances.size, "shell median": float(median),
            "shell width": float((high - low) / 1.349), "mean distance": float(distances.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the --out directory of `ase-psm bench lj13`")
    parser.add_argument("--size", default="cpu")
    parser.add_argument("--protocol", default="biased", choices=["biased", "cold", "table2"])
    parser.add_argument("--seed", type=int, default=0, help="whose samples (training/sampling seed)")
    args = parser.parse_args()
    data = lj_data(13, args.size, args.out / "cache")  # from the cache: the run's exact data
    rows = {"reference": data.reference, f"training set ({args.protocol})": data.training[args.protocol][0],
            **seed_samples(args.out, "lj13", args.protocol, args.seed)}
    names = list(shell_statistics(data.reference))
    print(f"{'':28s}" + "".join(f"{name:>22s}" for name in names))
    for label, positions in rows.items():
        print(f"{label:28s}" + "".join(f"{value:22.4f}" for value in shell_statistics(positions).values()))


if __name__ == "__main__":
    main()
