"""Diagnostics of md17 benchmark samples: X–H bond spread and bond-graph validity.

1. Does a model thermalise its training data's bonds?

The md17 training sets are the start of one 500 K xTB run (protocol `biased`: its first 2.5 ps;
`early`: its first 500 fs). The early frames have bonds narrower than at equilibrium: the run starts
from the MMFF minimum and its bond vibrations have not yet heated up.
For each molecule this prints the spread of the X–H bond lengths (each hydrogen's distance to its
nearest heavy atom, pooled per heavy element X, the hydrogen's partner in the reference; robust
std = interquartile range / 1.349, Å, averaged over the X present) of the reference, the training
set and each model's seed-0 samples, and writes a bar plot. Hydrogens are matched by distance, not
by index, so samples whose symmetry-equivalent atoms swapped places (malonaldehyde's two halves)
count like the others.

2. Bond-graph validity: the fraction of samples whose covalent bond graph is the reference's in
atom order, as the samples were written, and after renumbering swapped equivalent atoms
(what `sample(renumber=True)` does; the suite's runs before that option kept the raw order).

3. Where does a model break? One-step denoising validity against the noise level: reference frames
are noised with sigma (Å per coordinate), denoised once with the seed-0 model (the estimate
x + F(x, sigma) of the clean structure), and the fraction whose bond graph is the reference's
(after renumbering) is printed per sigma. A sampler cannot do better than its model's one-step
estimates along the way: a model valid only below sigma ~ 0.3 Å fails from a Gaussian prior
whatever the sampler.

4. Where is the h(r) error? The h(r) MAE of the training set and of each model's samples, split by
distance range (X–H bonds, heavy-atom bonds, bond angles, longer distances set by torsions and the
overall shape), printed and drawn as stacked bars. Force labels act at the thermal scale: they can
remove the bond and angle parts of the training set's error, not the torsional part.

Usage (after `ase-psm bench md17 --size cpu --out runs/bench_md17_cpu`):
    python benchmarks/probes/md17_diagnostics.py runs/bench_md17_cpu --protocol early
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ase_psm.benchmarks.config import DATA, PROTOCOLS
from ase_psm.benchmarks.data import md17_data
from ase_psm.checkpoint import load_model
from ase_psm.chemistry.bonds import bond_graph, match_to_template
from ase_psm.diffusion.noise import zero_com, zero_com_noise
from ase_psm.generate import make_denoiser
from ase_psm.metrics import hr_mae_by_range, plot_grouped_bars

#: Distance ranges (Å) of part 4 and their names.
HR_RANGES = (0.0, 1.3, 1.8, 2.7, 10.0)
HR_RANGE_NAMES = ("X–H bonds (< 1.3 Å)", "heavy-atom bonds (1.3–1.8 Å)", "angles (1.8–2.7 Å)",
                  "torsions, shape (> 2.7 Å)")


def xh_bond_spread(numbers: np.ndarray, positions: np.ndarray, template: np.ndarray) -> float:
    """Robust std (IQR / 1.349, Å) of X–H bond lengths pooled per heavy element X, mean over the X present.

    A bond length is a hydrogen's distance to its nearest heavy atom; X is that hydrogen's partner in
    `template` (one structure), so a broken sample counts as an outlier of its hydrogen's own pool.
    """
    hydrogens, heavy = np.flatnonzero(numbers == 1), np.flatnonzero(numbers != 1)
    partner = numbers[heavy][np.linalg.norm(template[hydrogens, None] - template[None, heavy], axis=-1).argmin(-1)]
    lengths = np.linalg.norm(positions[:, hydrogens, None] - positions[:, None, heavy], axis=-1).min(axis=-1)
    spreads = []
    for element in np.unique(partner):
        low, high = np.percentile(lengths[:, partner == element], [25, 75])
        spreads.append((high - low) / 1.349)
    return float(np.mean(spreads))


def valid_fractions(numbers: np.ndarray, positions: np.ndarray, reference_bonds: np.ndarray) -> tuple[float, float]:
    """Fractions of structures with the reference's bond graph: in atom order, and after renumbering."""
    graphs = bond_graph(numbers, positions)
    as_written = (graphs == reference_bonds).all(axis=(1, 2))
    renumbered = [ok or match_to_template(numbers, g, reference_bonds) is not None for ok, g in zip(as_written, graphs)]
    return float(np.mean(as_written)), float(np.mean(renumbered))


DENOISING_SIGMAS = (0.1, 0.3, 0.5, 0.8, 1.2)


def denoising_validity(checkpoint: Path, numbers: np.ndarray, frames: np.ndarray, reference_bonds: np.ndarray,
                       sigmas: tuple[float, ...] = DENOISING_SIGMAS, seed: int = 0) -> dict[float, float]:
    """Fraction of frames noised to each sigma (Å) whose one-step denoised estimate keeps the bond graph.

    frames: (n, N, 3) clean structures, Å. The estimate is x + F(x, sigma) of the checkpoint's model
    (float64, CPU); a graph counts as kept when it is `reference_bonds` up to renumbering.
    """
    model, _ = load_model(checkpoint, device="cpu", dtype="float64")
    denoise = make_denoiser(model, torch.as_tensor(numbers))
    clean = zero_com(torch.as_tensor(frames, dtype=torch.float64))
    generator = torch.Generator().manual_seed(seed)
    fractions = {}
    for sigma in sigmas:
        noisy = clean + sigma * zero_com_noise(clean.shape, generator, torch.float64)
        with torch.no_grad():
            estimate = denoise(noisy, sigma)
        fractions[sigma] = valid_fractions(numbers, estimate.numpy(), reference_bonds)[1]
    return fractions


def plot_hr_mae_by_range(parts: dict[str, dict[str, np.ndarray]], path: Path) -> Path:
    """Stacked bars: for each molecule one bar per series (training set, models), one segment per range."""
    from matplotlib.figure import Figure

    molecules = list(parts)
    series = list(dict.fromkeys(name for row in parts.values() for name in row))
    figure = Figure(figsize=(max(6.0, 1.3 * len(molecules)), 4.5), dpi=120)
    axes = figure.add_subplot()
    width = 0.8 / len(series)
    colours = ("tab:blue", "tab:orange", "tab:green", "tab:grey")
    hatches = ("", "//", "..", "xx")
    for k, name in enumerate(series):
        x = np.arange(len(molecules)) + (k - (len(series) - 1) / 2) * width
        stacked = np.array([parts[m].get(name, np.full(len(HR_RANGE_NAMES), np.nan)) for m in molecules])
        bottom = np.zeros(len(molecules))
        for j, range_name in enumerate(HR_RANGE_NAMES):
            axes.bar(x, stacked[:, j], width, bottom=bottom, color=colours[j], hatch=hatches[k % len(hatches)],
                     edgecolor="white", label=range_name if k == 0 else None)
            bottom += stacked[:, j]
    axes.set_xticks(np.arange(len(molecules)), molecules, rotation=30, ha="right")
    axes.set(ylabel="h(r) MAE (×10)", title="bars per molecule: " + ", ".join(
        f"{name} ({hatches[k % len(hatches)] or 'plain'})" for k, name in enumerate(series)))
    axes.title.set_fontsize(8)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the --out directory of `ase-psm bench md17`")
    parser.add_argument("--size", default="cpu")
    parser.add_argument("--protocol", default="biased", choices=PROTOCOLS["md17"], help="whose runs and training set")
    parser.add_argument("--cache", type=Path, help="the run's data cache (default: <out>/cache); data missing "
                        "there is generated, which takes minutes per molecule")
    args = parser.parse_args()
    spreads: dict[str, dict[str, float]] = {}
    validity: dict[str, dict[str, tuple[float, float]]] = {}
    denoising: dict[str, dict[str, dict[float, float]]] = {}
    hr_parts: dict[str, dict[str, np.ndarray]] = {}
    molecules = DATA["md17"][args.size]["molecules"]
    for data in md17_data(args.size, args.cache or args.out / "cache"):  # from the cache: the run's exact data
        runs = sorted(args.out.glob(f"runs/{data.name}_{args.protocol}_*_seed0/samples.npy"))
        if not runs:
            continue
        molecule, template = data.name.removeprefix("md17-"), data.reference[0]
        training = data.training[args.protocol][0]
        reference_bonds = bond_graph(data.numbers, template)
        spreads[molecule] = {"reference": xh_bond_spread(data.numbers, data.reference, template),
                             "training set": xh_bond_spread(data.numbers, training, template)}
        validity[molecule], denoising[molecule] = {}, {}
        hr_parts[molecule] = {"training set": hr_mae_by_range(training, data.reference, HR_RANGES)}
        for path in runs:
            model = path.parent.name.removeprefix(f"{data.name}_{args.protocol}_").removesuffix("_seed0")
            samples = np.load(path)
            samples = samples[np.isfinite(samples).all(axis=(1, 2))]
            spreads[molecule][model] = xh_bond_spread(data.numbers, samples, template)
            validity[molecule][model] = valid_fractions(data.numbers, samples, reference_bonds)
            hr_parts[molecule][model] = hr_mae_by_range(samples, data.reference, HR_RANGES)
            denoising[molecule][model] = denoising_validity(path.parent / "model.pt", data.numbers,
                                                            data.reference[:: max(1, len(data.reference) // 40)],
                                                            reference_bonds)
    if not spreads:
        raise SystemExit(f"no md17 {args.protocol} samples under {args.out}/runs (molecules of size {args.size}: "
                         f"{molecules}); --protocol names the runs' protocol")
    names = list(dict.fromkeys(k for row in spreads.values() for k in row))
    print("X-H bond-length spread (Å): robust std, pooled per heavy element X, mean over X")
    print(f"{'molecule':16s}" + "".join(f"{n:>20s}" for n in names))
    for molecule, row in spreads.items():
        print(f"{molecule:16s}" + "".join(f"{row.get(n, float('nan')):20.4f}" for n in names))
    (args.out / "plots").mkdir(parents=True, exist_ok=True)
    path = plot_grouped_bars(spreads, args.out / "plots" / "md17_xh_bond_spread.png", ylabel="X–H bond-length spread (Å)")
    print(f"wrote {path}")
    print("\nbond graph of the reference: fraction of samples as written -> after renumbering")
    for molecule, models in validity.items():
        print(f"{molecule:16s}" + "".join(f"{model:>20s} {a:.3f} -> {b:.3f}" for model, (a, b) in models.items()))
    print("\none-step denoising of noised reference frames: fraction with the reference's bond graph")
    print(f"{'molecule':16s}{'model':>20s}" + "".join(f"{f'sigma={s}':>11s}" for s in DENOISING_SIGMAS))
    for molecule, models in denoising.items():
        for model, fractions in models.items():
            print(f"{molecule:16s}{model:>20s}" + "".join(f"{fractions[s]:11.2f}" for s in DENOISING_SIGMAS))
    print("\nh(r) MAE (x10) by distance range: " + ", ".join(HR_RANGE_NAMES) + ", total")
    for molecule, rows in hr_parts.items():
        for name, parts in rows.items():
            print(f"{molecule:16s}{name:>20s}" + "".join(f"{p:9.4f}" for p in parts) + f"{parts.sum():9.4f}")
    path = plot_hr_mae_by_range(hr_parts, args.out / "plots" / "md17_hr_mae_by_range.png")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
