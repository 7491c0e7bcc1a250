"""Cost of the default network against molecule size: capped alanine peptides and carbon nanotubes.

    python benchmarks/scaling.py --shrink-graph on --out /tmp/scaling --plot docs/performance_molecule_scaling.png
    python benchmarks/scaling.py --shrink-graph off --out /tmp/scaling_off --plot docs/performance_molecule_scaling_unshrunk.png
    python benchmarks/scaling.py --quick --out /tmp/scaling-quick   # seconds: the two smallest peptides

Structures come from ``ase_psm.systems``: Ac-(Ala)n-NHMe (10n + 12 atoms, RDKit + MMFF) and the
double-walled (5,5)@(10,10) nanotube (60 atoms per cell). Each gets the network ``ase_psm.train``
builds for frames of it (``default_model_config`` with the default TrainConfig at 300 K): for a
peptide a single-molecule, graph-conditioned network with the topology's bonds; for the all-carbon
tube (one element, so ``atom_types="auto"`` reads it as a cluster) an element network. Weights are
random (timing does not depend on them).

1. Sampling: time per structure of one network call (forward under ``torch.no_grad``) on a flat batch
   of about ``--sample-atoms`` atoms, at sigma = 0.05 Å (clean geometry) and at the training
   schedule's sigma_max (positions x + sigma_max * eps, zero centre of mass), with the cutoff graph's
   edges per atom (with ``shrink_graph`` the network cuts on positions shrunk by
   sqrt(1 + sigma^2 / length_scale^2); ``--shrink-graph`` sets it for every structure).
2. Training: time per structure of one step (loss, backward, gradient clipping, AdamW) on a batch of
   ``--train-batch`` structures at the same two noise levels; a batch of more than ``--max-train-edges``
   edges (about 15 KiB of memory each) is not run.
3. Peak memory: structures of at least ``--memory-atoms`` atoms run their tasks in a fresh process,
   which records the peak RSS of each task's first call (freed memory handed back to the OS and the
   high-water mark reset before it) and times a second call.
4. The fitted exponent a of time per structure ~ n^a, from 42 atoms up and from 42 to 372 atoms.

Writes results.json, tables.md and the structures (structures/*.npz) to --out; --plot the figure.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ase_psm.benchmarks.memory import reset_peak_rss, status_kib
from ase_psm.data import Frames
from ase_psm.data.dataset import TrainingBatch
from ase_psm.diffusion.noise import zero_com_noise
from ase_psm.model import PseudoForceNet
from ase_psm.model.graph import build_edges
from ase_psm.train.config import TrainConfig
from ase_psm.train.loop import batch_loss
from ase_psm.train.trainer import default_model_config, typical_max_sigma

SERIES = {"peptide": [1, 3, 10, 36], "nanotube": [1, 2, 6, 17]}
"""Residues of Ac-(Ala)n-NHMe and cells of the nanotube: 22, 42, 112, 372 and 60, 120, 360, 1020 atoms."""
QUICK_SERIES = {"peptide": [1, 3]}
SIGMA_CLEAN = 0.05
"""Å: small noise, the geometry of a clean structure."""
FIT_TO = 372
"""Atoms: largest structure of the second exponent fit (the first has no upper bound)."""
TRAIN_CONFIG = TrainConfig(temperature=300.0)


def build(series: str, size: int) -> dict:
    """numbers (n,), positions (n, 3) Å and bonds (n_bonds, 2) of one structure of a series."""
    from ase_psm.openmm.convert import atomic_numbers
    from ase_psm.systems.nanotube import double_walled_nanotube
    from ase_psm.systems.peptides import capped_alanine

    topology, positions = capped_alanine(size) if series == "peptide" else double_walled_nanotube(size)
    bonds = sorted(tuple(sorted((a.index, b.index))) for a, b in topology.bonds())
    return {"numbers": atomic_numbers(topology), "positions": np.asarray(positions), "bonds": np.array(bonds)}


def network(structure: dict, shrink_graph: str = "auto") -> PseudoForceNet:
    """The network ``ase_psm.train`` builds for frames of ``structure``, random weights, its topology's bonds;
    ``shrink_graph`` "on"/"off" overrides the ModelConfig field of that name ("auto": train()'s choice)."""
    model = {} if shrink_graph == "auto" else {"shrink_graph": shrink_graph == "on"}
    config = default_model_config(Frames(structure["numbers"], structure["positions"][None]),
                                  TrainConfig(temperature=TRAIN_CONFIG.temperature, model=model))
    if config.site_bonds is not None:
        config.site_bonds = structure["bonds"].tolist()
    torch.manual_seed(0)
    return PseudoForceNet(config)


def noised(structure: dict, batch: int, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean (batch, n, 3) and noised positions x + sigma * eps (Å), zero centre of mass."""
    clean = torch.as_tensor(structure["positions"], dtype=torch.float32)
    clean = (clean - clean.mean(0)).expand(batch, -1, -1)
    return clean, clean + sigma * zero_com_noise(tuple(clean.shape), torch.Generator().manual_seed(0))


def edges_per_atom(net: PseudoForceNet, x: torch.Tensor, sigma: float) -> float:
    """Mean directed edges per atom of the network's cutoff graph for noised positions x (B, n, 3) Å."""
    config = net.config
    batch = torch.arange(x.shape[0]).repeat_interleave(x.shape[1])
    shrink = math.sqrt(1.0 + (sigma / config.length_scale) ** 2) if config.shrink_graph else 1.0
    return len(build_edges(batch, x.reshape(-1, 3) / shrink, config.cutoff)[0]) / len(batch)


def sampling_call(net: PseudoForceNet, numbers: torch.Tensor, x: torch.Tensor, sigma: float) -> Callable[[], None]:
    """One network call on the batch x (B, n, 3) Å, as a sampler makes it."""

    def call() -> None:
        with torch.no_grad():
            net.pseudo_forces(numbers, x, sigma)

    return call


def training_step(net: PseudoForceNet, numbers: torch.Tensor, clean: torch.Tensor, x: torch.Tensor,
                  sigma: float) -> Callable[[], None]:
    """One optimizer step on the batch x (B, n, 3) Å: loss, backward, clipping, AdamW."""
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    count, n_atoms, _ = x.shape
    batch = TrainingBatch(numbers.repeat(count), x.reshape(-1, 3), torch.arange(count).repeat_interleave(n_atoms),
                          torch.full((count,), sigma), (clean - x).reshape(-1, 3))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        batch_loss(net, batch, TRAIN_CONFIG.resolved_loss_weighting, net.config).backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), TRAIN_CONFIG.grad_clip)
        optimizer.step()

    return step


def task(structure: dict, name: str, sigma: float, batch: int,
         shrink_graph: str) -> tuple[PseudoForceNet, torch.Tensor, Callable]:
    """The network, the noised batch (B, n, 3) Å and the call of one task ("sample" or "train")."""
    net = network(structure, shrink_graph)
    numbers = torch.as_tensor(structure["numbers"], dtype=torch.long)
    clean, x = noised(structure, batch, sigma)
    if name == "sample":
        return net.eval(), x, sampling_call(net, numbers, x, sigma)
    return net.train(), x, training_step(net, numbers, clean, x, sigma)


def wall_time(function: Callable[[], None]) -> float:
    """Wall time (s) of one call."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def best_of(function: Callable[[], None], repeats: int) -> float:
    """Shortest wall time (s) of ``repeats`` calls after one warm-up call."""
    function()
    return min(wall_time(function) for _ in range(repeats))


def timings(structure: dict, path: Path, label: str, args: argparse.Namespace) -> list[dict]:
    """Rows of sampling and training at sigma = SIGMA_CLEAN and at the schedule's sigma_max: time per
    structure (ms) and edges per atom. Structures of at least ``args.memory_atoms`` atoms run their tasks
    in a fresh process that also records each one's peak RSS; a training batch of more than
    ``args.max_train_edges`` edges is not run (ms_per_structure None)."""
    sigma_max = typical_max_sigma(TRAIN_CONFIG.resolved_schedule)
    n_atoms = len(structure["numbers"])
    rows, calls = [], []
    for name, batch in (("sample", max(1, args.sample_atoms // n_atoms)), ("train", args.train_batch)):
        for sigma in (SIGMA_CLEAN, sigma_max):
            net, x, call = task(structure, name, sigma, batch, args.shrink_graph)
            edges = edges_per_atom(net, x, sigma)
            rows.append({"structure": label, "atoms": n_atoms, "network": network_kind(net),
                         "shrink_graph": net.config.shrink_graph, "task": name,
                         "sigma": sigma, "batch": batch, "edges_per_atom": edges, "ms_per_structure": None})
            calls.append(call if name == "sample" or edges * n_atoms * batch <= args.max_train_edges else None)
    runs = [i for i, call in enumerate(calls) if call is not None]
    if n_atoms >= args.memory_atoms:
        tasks = [[rows[i]["task"], rows[i]["sigma"], rows[i]["batch"]] for i in runs]
        command = [sys.executable, __file__, "--child", json.dumps({"path": str(path), "tasks": tasks,
                                                                      "shrink_graph": args.shrink_graph})]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        for i, measured in zip(runs, json.loads(output.strip().splitlines()[-1])):
            rows[i].update(measured, ms_per_structure=1e3 * measured["wall_s"] / rows[i]["batch"])
    else:
        for i in runs:
            rows[i]["ms_per_structure"] = 1e3 * best_of(calls[i], args.repeats) / rows[i]["batch"]
    for row in rows:
        print(f"  {label:14s} {row['task']:6s} sigma {row['sigma']:4g} Å, batch {row['batch']:3d}: "
              f"{row['ms_per_structure'] or math.nan:9.1f} ms/structure, {row['edges_per_atom']:6.1f} edges/atom, "
              f"peak RSS {row.get('max_rss_MiB', math.nan):5.0f} MiB", flush=True)
    return rows


def network_kind(net: PseudoForceNet) -> str:
    return "graph-conditioned" if net.config.graph_conditioned else "element"


def fit_exponents(rows: list[dict], lower: int) -> list[dict]:
    """Slope a of log(time per structure) vs log(atoms) per series, task and sigma, from ``lower`` atoms up
    and from ``lower`` to FIT_TO atoms."""
    fits = []
    for key in sorted({(r["structure"].split()[0], r["task"], r["sigma"]) for r in rows}):
        selected = [r for r in rows if (r["structure"].split()[0], r["task"], r["sigma"]) == key
                    and r["ms_per_structure"] is not None]
        fit: dict = {"series": key[0], "task": key[1], "sigma": key[2]}
        for name, upper in (("all", math.inf), ("to_372", FIT_TO)):
            points = [r for r in selected if lower <= r["atoms"] <= upper]
            fit[name + "_atoms"] = [r["atoms"] for r in points]
            fit[name] = float(np.polyfit(np.log(fit[name + "_atoms"]),
                                         np.log([r["ms_per_structure"] for r in points]), 1)[0]) \
                if len(points) > 1 else None
        fits.append(fit)
    return fits


def release_memory() -> None:
    """Hand freed heap memory back to the OS (glibc's malloc_trim), so that RSS is near its baseline."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def memory_child(spec: dict) -> None:
    """Run each task of ``spec`` in turn in this fresh process; print a JSON list of each task's peak RSS
    over a first call and the wall time of a second (warm, as in :func:`best_of`).

    Before each first call freed memory goes back to the OS and the high-water mark is reset
    (``5 > /proc/self/clear_refs``, Linux), so the peak is that of the call on top of the imports.
    """
    torch.set_num_threads(1)
    structure = dict(np.load(spec["path"]))
    results = []
    for name, sigma, batch in spec["tasks"]:
        _, _, call = task(structure, name, sigma, batch, spec["shrink_graph"])
        release_memory()
        reset_peak_rss()
        before = status_kib("VmRSS")
        call()
        peak = status_kib("VmHWM")
        results.append({"wall_s": wall_time(call), "max_rss_MiB": peak / 1024, "rss_before_MiB": before / 1024})
    print(json.dumps(results))


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for axis, name in zip(axes, ("sample", "train")):
        for color, series in zip(("C0", "C1"), SERIES):
            for style, clean in (("o-", True), ("s--", False)):
                selected = [r for r in rows if r["task"] == name and r["structure"].startswith(series)
                            and (r["sigma"] == SIGMA_CLEAN) == clean and r["ms_per_structure"] is not None]
                if selected:
                    axis.loglog([r["atoms"] for r in selected], [r["ms_per_structure"] for r in selected], style,
                                color=color, label=f"{series}, σ = {selected[0]['sigma']:g} Å")
        atoms = np.array([20.0, 1100.0])
        axis.loglog(atoms, 0.3 * atoms, ":", color="gray", label="∝ n")
        axis.set_xlabel("atoms per structure")
        axis.set_title("sampling: one network call" if name == "sample" else "training: one step")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    axes[0].set_ylabel("time per structure (ms)")
    figure.suptitle("default network of each structure, 1 CPU thread", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def _cell(value: float | None, pattern: str) -> str:
    return "-" if value is None else format(value, pattern)


def tables(results: dict) -> str:
    lower = results["fit_from"]
    lines = [
        (f"Device: {results['device']}; torch {results['torch']}, 1 thread; sampling batches of about "
         f"{results['sample_atoms']} atoms, training batches of {results['train_batch']} structures; "
         f"wall time {results['wall_s']:.0f} s."),
        "",
        "| structure | network | task | σ (Å) | batch | edges / atom | ms / structure | peak RSS (MiB) |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results["timings"]:
        lines.append(f"| {r['structure']} | {r['network']} | {r['task']} | {r['sigma']:g} | {r['batch']} | "
                     f"{r['edges_per_atom']:.1f} | {_cell(r['ms_per_structure'], '.1f')} | "
                     f"{_cell(r.get('max_rss_MiB'), '.0f')} |")
    lines += ["", f"| series | task | σ (Å) | exponent a, n ≥ {lower} | exponent a, {lower} ≤ n ≤ {FIT_TO} |",
              "|---|---|---:|---:|---:|"]
    for f in results["exponents"]:
        cells = [f"{f[k]:.2f} ({f[k + '_atoms'][0]}–{f[k + '_atoms'][-1]} atoms)" if f[k] is not None else "-"
                 for k in ("all", "to_372")]
        lines.append(f"| {f['series']} | {f['task']} | {f['sigma']:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else the machine type."""
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("scaling-results"))
    parser.add_argument("--plot", type=Path, help="figure of time per structure against atoms (PNG)")
    parser.add_argument("--series", nargs="+", choices=list(SERIES), default=list(SERIES))
    parser.add_argument("--quick", action="store_true", help="the two smallest peptides, small batches (seconds)")
    parser.add_argument("--sample-atoms", type=int, default=1024, help="atoms per sampling batch (about)")
    parser.add_argument("--train-batch", type=int, default=4, help="structures per training step")
    parser.add_argument("--max-train-edges", type=int, default=1_000_000,
                        help="training batches with more cutoff-graph edges are not run (about 15 KiB each)")
    parser.add_argument("--memory-atoms", type=int, default=300,
                        help="structures this large run each task in a fresh process that records its peak RSS")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls after a warm-up (best kept)")
    parser.add_argument("--fit-from", type=int, default=42, help="atoms: smallest structure of the exponent fits")
    parser.add_argument("--device-label", default=f"{cpu_name()} CPU")
    parser.add_argument("--shrink-graph", choices=["auto", "on", "off"], default="auto",
                        help="the cutoff graph on shrunk noised positions (on), unshrunk (off) or as train() picks "
                             "(auto: off beyond 48 atoms)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        memory_child(json.loads(args.child))
        return
    torch.set_num_threads(1)
    if args.quick:
        args.sample_atoms, args.train_batch, args.memory_atoms, args.repeats, args.fit_from = 64, 2, 42, 1, 22
    series = QUICK_SERIES if args.quick else {name: SERIES[name] for name in args.series}
    (args.out / "structures").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict = {"device": args.device_label, "torch": torch.__version__, "shrink_graph": args.shrink_graph,
                     "sample_atoms": args.sample_atoms,
                     "train_batch": args.train_batch, "fit_from": args.fit_from, "timings": []}
    for name, sizes in series.items():
        for size in sizes:
            structure = build(name, size)
            label = f"{name} {len(structure['numbers'])}"
            path = args.out / "structures" / f"{label.replace(' ', '-')}.npz"
            np.savez(path, **structure)
            results["timings"] += timings(structure, path, label, args)
    results["exponents"] = fit_exponents(results["timings"], args.fit_from)
    results["wall_s"] = time.perf_counter() - started
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    (args.out / "tables.md").write_text(tables(results))
    if args.plot:
        plot(results["timings"], args.plot)
    print(tables(results))


if __name__ == "__main__":
    main()
