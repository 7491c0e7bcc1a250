"""Sample quality against the number of network evaluations (NFE) on LJ-13.

Samples the shipped LJ-13 models (DSM and PSM, trained on the same biased frames) with each
sampler at several step counts, counts the network calls with a forward hook, and reports the
interatomic-distance TVD and energy median against the shipped reference (docs/performance.md,
"Quality against NFE"). Writes <out>/lj13_nfe.json and, with --plot, a TVD-vs-NFE figure.

    python benchmarks/lj13_nfe.py --out /tmp/nfe --plot docs/lj13_nfe.png    # ~25 min on one core
    python benchmarks/lj13_nfe.py --out /tmp/nfe --n 32 --quick             # seconds
    python benchmarks/lj13_nfe.py --out /tmp/nfe400 --n 500 --settings pc:400 \
        --models runs/c/dsm-score.pt runs/d/psm-score-t0.05.pt              # one setting, any checkpoints
    python benchmarks/lj13_nfe.py --out /tmp/t2 --n 1000 --reference bench --cache bench/cache \
        --models bench/runs/lj13_table2_piecewise-weighted_seed0/model.pt --settings pc:50 heun:50:churn=40
        # a bench table2 model against the bench's reference (its training structures removed);
        # SAMPLER:STEPS[:OPTION=VALUE,...] passes sampler options (snr, churn, ...)
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
from ase_psm.metrics import distance_tvd, energy_w2, x_w2
from ase_psm.systems import lj_energy

Setting = tuple[str, int, dict]
"""Sampler, steps (noise levels) and sampler options."""
SETTINGS: list[Setting] = [
    ("pc", 25, {}), ("pc", 50, {}), ("pc", 100, {}),
    ("heun", 10, {}), ("heun", 20, {}), ("heun", 40, {}),
    ("euler", 40, {}), ("ancestral", 40, {}), ("adaptive", 100, {}),
]
QUICK: list[Setting] = [("pc", 3, {}), ("heun", 3, {}), ("adaptive", 5, {})]


def parse_setting(text: str) -> Setting:
    """SAMPLER:STEPS[:OPTION=VALUE,...], e.g. "heun:50:churn=40" (option values are numbers)."""
    sampler, steps, *rest = text.split(":")
    options = dict(item.split("=") for item in rest[0].split(",")) if rest else {}
    return sampler, int(steps), {key: float(value) for key, value in options.items()}


def load_reference(which: str, cache: Path) -> np.ndarray:
    """LJ-13 reference structures (r_m): the shipped demo file's, or the cpu bench's (its table2 training
    structures removed)."""
    if which == "shipped":
        return load_lj13_data()["reference"]
    from ase_psm.benchmarks.data import lj_data

    return lj_data(13, "cpu", cache).reference


def run(models: list[str], settings: list[Setting], n: int, seed: int, reference: np.ndarray) -> list[dict]:
    template = ase.Atoms(numbers=[18] * 13, positions=reference[0])
    floor = distance_tvd(reference[:n], reference[n:])
    rows = [{"model": "reference", "sampler": f"{n} vs rest", "nfe": 0,
             "distance_tvd": floor, "energy_median": float(np.median(lj_energy(reference)))}]
    counter = NFECounter()
    for name in models:
        for sampler, steps, options in settings:
            counter.count = 0
            started = time.perf_counter()
            structures = sample(name, template, n=n, sampler=sampler, steps=steps, seed=seed, device="cpu",
                                progress=False, batch_size=n, batch_atoms=n * len(template), on_invalid="keep",
                                **options)
            seconds = time.perf_counter() - started
            positions = np.stack([atoms.positions for atoms in structures])
            row = {"model": name, "sampler": sampler, "steps": steps, "options": options, "nfe": counter.count,
                   "seconds": seconds, "invalid_fraction": structures.report.invalid / structures.report.generated,
                   "distance_tvd": distance_tvd(positions, reference), "x_w2": x_w2(positions, reference),
                   "energy_w2": energy_w2(lj_energy(positions), lj_energy(reference)),
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
    parser.add_argument("--settings", nargs="+", metavar="SAMPLER:STEPS[:OPTION=VALUE,...]",
                        help="sampler settings to run instead of the default grid, e.g. pc:400 heun:20:churn=40")
    parser.add_argument("--reference", choices=["shipped", "bench"], default="shipped",
                        help="the shipped demo reference, or that of `ase-psm bench lj13 --size cpu` (table2 removed)")
    parser.add_argument("--cache", type=Path, default=Path("bench/cache"), help="--reference bench: its data cache")
    parser.add_argument("--plot", type=Path, help="write the TVD-vs-NFE figure here")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    settings = QUICK if args.quick else SETTINGS
    if args.settings:
        settings = [parse_setting(text) for text in args.settings]
    rows = run(args.models, settings, args.n, args.seed, load_reference(args.reference, args.cache))
    (args.out / "lj13_nfe.json").write_text(json.dumps(rows, indent=1))
    if args.plot:
        plot(rows, args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
