"""Throughput of ase-psm inference and training on one machine, side by side.

    python benchmarks/throughput.py --out /tmp/throughput --plot docs/performance_scaling.png

1. Batched vs one structure at a time: cost per network evaluation (NFE) of one 22-atom
   structure through ``atoms.get_forces()`` (PSMCalculator, fixed sigma: one NFE per call) against
   ``calculate_batch`` and ``ase_psm.sample`` with 256 structures per flat batch.
2. Scaling: structures per second per NFE against network size and atom count (all pairs: a cutoff
   beyond every distance, and the default 5 Å cutoff graph), with the fitted exponent of time ~ n^a.
3. Peak memory (max RSS of a fresh process) and wall time of training and sampling.

Networks have random weights (timing does not depend on them); structures are random clouds of
atoms at least 1 Å apart at about 0.1 atoms/Å^3. Writes results.json and tables.md to --out.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import ase
import numpy as np
import torch

from ase_psm import PSMCalculator, sample
from ase_psm.benchmarks.memory import reset_peak_rss, status_kib
from ase_psm.benchmarks.nfe import NFECounter
from ase_psm.checkpoint import save_checkpoint
from ase_psm.model import ModelConfig, PseudoForceNet

SPECIES = [1, 6, 7, 8]
NETWORKS = {
    "small": {"hidden_irreps": "16x0e + 8x1e", "sh_lmax": 1, "num_layers": 2, "num_radial": 32, "radial_hidden": 32},
    "medium (default)": {},
    "large": {"hidden_irreps": "64x0e + 32x1e + 16x2e", "num_layers": 4, "radial_hidden": 128},
}
BATCHED_NETWORKS = ["small", "medium (default)"]
ATOM_COUNTS = [10, 25, 50, 100, 200, 400]
CUTOFF = 5.0
ALL_PAIRS = 1000.0
"""Å: a cutoff beyond every distance in these clouds, so the graph connects every pair."""
DENSITY = 0.1
"""atoms / Å^3"""


def random_cloud(n_atoms: int, rng: np.random.Generator, min_distance: float = 1.0) -> np.ndarray:
    """n_atoms positions (Å) at about DENSITY atoms/Å^3, no two closer than min_distance."""
    side = (n_atoms / DENSITY) ** (1 / 3)
    points: list[np.ndarray] = []
    while len(points) < n_atoms:
        candidate = rng.uniform(0.0, side, 3)
        if not points or np.min(np.linalg.norm(np.array(points) - candidate, axis=1)) >= min_distance:
            points.append(candidate)
    return np.array(points)


def random_molecule(n_atoms: int, rng: np.random.Generator) -> ase.Atoms:
    return ase.Atoms(numbers=rng.choice(SPECIES, n_atoms), positions=random_cloud(n_atoms, rng))


def make_checkpoint(path: Path, cutoff: float = CUTOFF, **overrides) -> Path:
    torch.manual_seed(0)
    config = ModelConfig(species=SPECIES, cutoff=cutoff, **overrides)
    net = PseudoForceNet(config)
    save_checkpoint(path, {"model_config": config.to_dict(), "model_state": net.state_dict(),
                           "schedule": {"sigma_min": 0.01, "sigma_max": 5.0}})
    return path


def best_of(function, repeats: int) -> float:
    """Shortest wall time (s) of ``repeats`` calls after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def batched_vs_single(folder: Path, network: str, n_atoms: int = 22, batch: int = 256, steps: int = 2) -> dict:
    """Cost per structure per NFE (ms): one at a time through ASE vs flat batches."""
    checkpoint = make_checkpoint(folder / "bench.pt", **NETWORKS[network])
    rng = np.random.default_rng(0)
    images = [random_molecule(n_atoms, rng) for _ in range(batch)]
    calc = PSMCalculator(checkpoint, device="cpu", sigma=0.5)

    def one_at_a_time() -> None:
        for atoms in images[:16]:
            atoms.calc = calc
            atoms.get_forces()
            atoms.calc.reset()

    single = best_of(one_at_a_time, 2) / 16
    calculate_batch = best_of(lambda: calc.calculate_batch(images, batch_size=batch), 1) / batch
    counter = NFECounter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        options = {"n": batch, "sampler": "euler", "steps": steps, "batch_size": batch,
                   "batch_atoms": batch * n_atoms, "device": "cpu",
                   "progress": False, "on_invalid": "keep", "check_bonds": False}
        start = time.perf_counter()
        sample(checkpoint, images[0], **options)
        sampling = time.perf_counter() - start
    counter.close()
    per_nfe = sampling / (counter.count * batch)
    return {
        "network": network, "atoms": n_atoms, "batch": batch, "sample_steps": steps, "sample_nfe": counter.count,
        "single_ms": 1e3 * single, "calculate_batch_ms": 1e3 * calculate_batch, "sample_ms": 1e3 * per_nfe,
        "speedup_calculate_batch": single / calculate_batch, "speedup_sample": single / per_nfe,
    }


def scaling(folder: Path, atoms_per_batch: int = 512) -> list[dict]:
    """Time per structure per NFE for each network size and atom count: cutoff graph at every
    size, all pairs up to 50 atoms."""
    rows = []
    for name, overrides in NETWORKS.items():
        for cutoff in (ALL_PAIRS, CUTOFF):
            checkpoint = make_checkpoint(folder / "scaling.pt", cutoff=cutoff, **overrides)
            calc = PSMCalculator(checkpoint, device="cpu", sigma=0.1)
            for n_atoms in ATOM_COUNTS if cutoff == CUTOFF else [n for n in ATOM_COUNTS if n <= 50]:
                rng = np.random.default_rng(n_atoms)
                batch = max(1, atoms_per_batch // n_atoms)
                images = [random_molecule(n_atoms, rng) for _ in range(min(batch, 8))]
                images = [images[i % len(images)] for i in range(batch)]
                repeats = 1 if name == "large" else 2
                seconds = best_of(lambda c=calc, i=images, b=batch: c.calculate_batch(i, batch_size=b), repeats)
                rows.append({"network": name, "graph": "all pairs" if cutoff == ALL_PAIRS else f"cutoff {CUTOFF:g} Å",
                             "atoms": n_atoms, "batch": batch, "ms_per_structure": 1e3 * seconds / batch,
                             "structures_per_s": batch / seconds})
                print(f"  {name:17s} {rows[-1]['graph']:12s} {n_atoms:4d} atoms: "
                      f"{rows[-1]['ms_per_structure']:.3f} ms/structure", flush=True)
    return rows


def fit_exponents(rows: list[dict]) -> dict:
    """Slope a of log(time per structure) vs log(atoms) per network and graph (from 25 atoms up)."""
    exponents = {}
    for key in sorted({(r["network"], r["graph"]) for r in rows}):
        selected = [r for r in rows if (r["network"], r["graph"]) == key and r["atoms"] >= 25]
        slope = np.polyfit(np.log([r["atoms"] for r in selected]), np.log([r["ms_per_structure"] for r in selected]), 1)[0]
        exponents[" / ".join(key)] = float(slope)
    return exponents


def memory_child(task: str, folder: Path, edge_chunk: int | None) -> None:
    """Run one task in this fresh process and print its wall time and peak RSS as JSON.

    The high-water mark is reset after the imports (``5 > /proc/self/clear_refs``, Linux): a
    process started by a large parent can otherwise inherit the parent's max RSS.
    """
    torch.set_num_threads(1)
    reset_peak_rss()
    before = status_kib("VmRSS")
    start = time.perf_counter()
    if task == "train":
        from ase_psm.data import Frames
        from ase_psm.demo import load_lj13_data
        from ase_psm.train import train

        data = load_lj13_data()
        frames = Frames(np.full(13, 18), data["biased"], forces=data["biased_forces"])
        train(frames, folder / "train.pt", kT=1.0, steps=10, batch_size=64, val_every=10, device="cpu",
              progress=False, model={"edge_chunk": edge_chunk})
        label = "train LJ-13, default network, batch 64, 10 steps (+ validation)"
    else:
        rng = np.random.default_rng(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sample(make_checkpoint(folder / "default.pt", edge_chunk=edge_chunk), random_molecule(22, rng), n=256, sampler="euler",
                   steps=2, batch_size=256, device="cpu", progress=False, on_invalid="keep", check_bonds=False)
        label = "sample 256 x 22 atoms, default network, euler 2 steps, one batch"
    peak = status_kib("VmHWM")
    print(json.dumps({"task": label, "wall_s": time.perf_counter() - start,
                      "max_rss_MiB": peak / 1024, "rss_before_MiB": before / 1024}))


def memory(folder: Path, edge_chunk: int) -> list[dict]:
    results = []
    for task in ("train", "sample"):
        command = [sys.executable, __file__, "--child", task, "--out", str(folder), "--edge-chunk", str(edge_chunk)]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
    return results


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 4.4))
    for key in sorted({(r["network"], r["graph"]) for r in rows}):
        selected = [r for r in rows if (r["network"], r["graph"]) == key]
        axis.loglog([r["atoms"] for r in selected], [r["ms_per_structure"] for r in selected], "o-" if
                    key[1] == "all pairs" else "s--", label=" / ".join(key))
    axis.set_xlabel("atoms per structure")
    axis.set_ylabel("time per structure per NFE (ms)")
    axis.set_title("PseudoForceNet forward, flat batches of ~512 atoms, 1 CPU thread")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def tables(results: dict) -> str:
    lines = [
        (f"Device: {results['device']}; torch {results['torch']}, {results['threads']} thread(s); "
         f"edges per chunk on CPU {results['edge_chunk'] or 'all'}; wall time {results['wall_s']:.0f} s."),
        "",
        ("| network | atoms | one at a time, `get_forces()` (ms) | `calculate_batch` (ms) | speed-up "
         "| `sample` (ms) | speed-up |"),
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for b in results["batched_vs_single"]:
        lines.append(
            f"| {b['network']} | {b['atoms']} | {b['single_ms']:.3f} | {b['calculate_batch_ms']:.3f} | "
            f"{b['speedup_calculate_batch']:.1f}x | {b['sample_ms']:.3f} | {b['speedup_sample']:.1f}x |"
        )
    lines += [
        "",
        "| network | graph | " + " | ".join(f"{n} atoms" for n in ATOM_COUNTS) + " | exponent a (n ≥ 25) |",
        "|---|---|" + "---:|" * (len(ATOM_COUNTS) + 1),
    ]
    for key, exponent in results["exponents"].items():
        network, graph = key.split(" / ")
        measured = {r["atoms"]: r["structures_per_s"] for r in results["scaling"]
                    if (r["network"], r["graph"]) == (network, graph)}
        cells = [f"{measured[n]:.3g}" if n in measured else "-" for n in ATOM_COUNTS]
        lines.append(f"| {network} | {graph} | " + " | ".join(cells) + f" | {exponent:.2f} |")
    lines += ["", "| task | wall (s) | peak RSS (MiB) | RSS after imports (MiB) |", "|---|---:|---:|---:|"]
    for m in results["memory"]:
        lines.append(f"| {m['task']} | {m['wall_s']:.1f} | {m['max_rss_MiB']:.0f} | {m['rss_before_MiB']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("throughput-results"))
    parser.add_argument("--plot", type=Path, default=Path("docs/performance_scaling.png"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device-label", default=f"{platform.processor() or platform.machine()} CPU")
    parser.add_argument("--edge-chunk", type=int, default=0,
                        help="edges per chunk of a message-passing layer in the memory runs; 0: the whole batch at once")
    parser.add_argument("--child", choices=["train", "sample"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.child:
        memory_child(args.child, args.out, args.edge_chunk or None)
        return
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    print("batched vs one at a time", flush=True)
    results = {"device": args.device_label, "torch": torch.__version__, "threads": args.threads,
               "edge_chunk": args.edge_chunk,
               "batched_vs_single": [batched_vs_single(args.out, network) for network in BATCHED_NETWORKS]}
    print(json.dumps(results["batched_vs_single"], indent=1), flush=True)
    print("scaling", flush=True)
    results["scaling"] = scaling(args.out)
    results["exponents"] = fit_exponents(results["scaling"])
    print("memory", flush=True)
    results["memory"] = memory(args.out, args.edge_chunk)
    results["wall_s"] = time.perf_counter() - started
    plot(results["scaling"], args.plot)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    (args.out / "tables.md").write_text(tables(results))
    print(tables(results))


if __name__ == "__main__":
    main()
