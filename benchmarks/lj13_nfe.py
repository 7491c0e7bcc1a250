"""Sample quality against the number of network evaluations (NFE) on LJ-13.

Samples the shipped LJ-13 models (DSM and PSM, trained on the same biased frames) with each
sampler at several step counts, counts the network calls with a forward hook, and reports the
interatomic-distance TVD and energy median against the shipped reference (docs/performance.md,
"Quality against NFE"). Writes <out>/lj13_nfe.json and, with --plot, a TVD-vs-NFE figure.

    python benchmarks/lj13_nfe.py --out /tmp/nfe --plot docs/lj13_nfe.png    # ~25 min on one core
    python benchmarks/lj13_nfe.py --out /tmp/nfe --n 32 --quick             # seconds
    python benchmarks/lj13_nfe.py --out /tmp/nfe400 --n 500 --settings pc:400 \
        --models runs/c/dsm-score.pt runs/d/psm-score-t0.05.pt              # one setting, any checkpoints
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import ase
import numpy as np

from ase_psm import sample
from ase_psm.benchmarks.nfe import NFECounter
from ase_psm.demo import load_lj13_data
from ase_psm.metrics import distance_tvd
from ase_psm.systems import lj_energy

SETTINGS: list[tuple[str, int]] = [
    ("pc", 25), ("pc", 50), ("pc", 100),
    ("heun", 10), ("heun", 20), ("heun", 40),
    ("euler", 40), ("ancestral", 40), ("adaptive", 100),
]
QUICK: list[tuple[str, int]] = [("pc", 3), ("heun", 3), ("adaptive", 5)]


def run(models: list[str], settings: list[tuple[str, int]], n: int, seed: int) -> list[dict]:
    data = load_lj13_data()
    reference = data["reference"]
    template = ase.Atoms(numbers=[18] * 13, positions=reference[0])
    floor = distance_tvd(reference[:n], reference[n:])
    rows = [{"model": "reference", "sampler": f"{n} vs rest", "nfe": 0,
             "distance_tvd": floor, "energy_median": float(np.median(lj_energy(reference)))}]
    counter = NFECounter()
    for name in models:
        for sampler, steps in settings:
            counter.count = 0
            started = time.perf_counter()
            structures = sample(name, template, n=n, sampler=sampler, steps=steps, seed=seed, device="cpu",
                                progress=False, batch_size=n, on_invalid="keep")
            seconds = time.perf_counter() - started
            positions = np.stack([atoms.positions for atoms in structures])
            row = {"model": name, "sampler": sampler, "steps": steps, "nfe": counter.count, "seconds": seconds,
                   "invalid_fraction": structures.report.invalid / structures.report.generated,
                   "distance_tvd": distance_tvd(positions, reference),
                   "energy_median": float(np.median(lj_energy(positions)))}
            print(f"{name:9s} {sampler:9s} steps {steps:4d} NFE {row['nfe']:4d}  TVD {row['distance_tvd']:.4f}  "
                  f"E median {row['energy_median']:7.2f}  invalid {row['invalid_fraction']:5.1%}  {seconds:6.1f} s", flush=True)
            rows.append(row)
    print(f"floor ({n} reference structures vs the rest): TVD {floor:.4f}")
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for model, marker in (("lj13-dsm", "o"), ("lj13-psm", "s")):
        for sampler in dict.fromkeys(row["sampler"] for row in rows if row["model"] == model):
            points = sorted((r["nfe"], r["distance_tvd"]) for r in rows if r["model"] == model and r["sampler"] == sampler)
            ax.plot(*zip(*points), marker=marker, label=f"{model} {sampler}")
    ax.axhline(rows[0]["distance_tvd"], color="k", ls=":", label="finite-sample floor")
    ax.set_xscale("log")
    ax.set_xlabel("network evaluations (NFE)")
    ax.set_ylabel("interatomic-distance TVD")
    ax.set_title("LJ-13: sample quality against NFE")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    warnings.filterwarnings("ignore", message="sample: generated")  # invalid fractions are in the table
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n", type=int, default=512, help="samples per setting")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="+", default=["lj13-dsm", "lj13-psm"])
    parser.add_argument("--quick", action="store_true", help="three tiny settings (a smoke run)")
    parser.add_argument("--settings", nargs="+", metavar="SAMPLER:STEPS",
                        help="sampler settings to run instead of the default grid, e.g. pc:400 heun:20")
    parser.add_argument("--plot", type=Path, help="write the TVD-vs-NFE figure here")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    settings = QUICK if args.quick else SETTINGS
    if args.settings:
        settings = [(text.split(":")[0], int(text.split(":")[1])) for text in args.settings]
    rows = run(args.models, settings, args.n, args.seed)
    (args.out / "lj13_nfe.json").write_text(json.dumps(rows, indent=1))
    if args.plot:
        plot(rows, args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
