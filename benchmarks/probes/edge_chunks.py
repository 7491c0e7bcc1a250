"""A/B timing of message passing in edge chunks (``ModelConfig.edge_chunk``) against the whole batch.

    python benchmarks/probes/edge_chunks.py --out /tmp/edge-chunks --plot docs/performance_edge_chunks.png

One process, one checkpoint (default: the shipped ``ala2`` model, 22 atoms), one flat batch of
``--n`` structures. For each mode (chunks of ``--chunk`` edges, and the whole batch) it times
``--calls`` consecutive network evaluations that walk down the checkpoint's noise schedule like a
sampler does (template + Gaussian noise of the call's sigma), then one ``sample()`` run of
``--sample-steps`` ``pc`` levels. Modes alternate for ``--rounds`` rounds, so a drift of the
machine's load hits both. Writes results.json, a table (stdout) and, with ``--plot``, the seconds
of every call against its index for each mode.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import ase.io
import numpy as np
import torch

from ase_psm import sample
from ase_psm.checkpoint import load_checkpoint, load_model, save_checkpoint
from ase_psm.pretrained import resolve_checkpoint

WARM_UP_CALLS = 3


def noised_batches(template: np.ndarray, sigmas: np.ndarray, n: int, seed: int) -> list[torch.Tensor]:
    """One (n, N, 3) batch per sigma: the template plus Gaussian noise of that width (Å)."""
    rng = np.random.default_rng(seed)
    return [torch.as_tensor(template + sigma * rng.standard_normal((n, *template.shape)), dtype=torch.float32)
            for sigma in sigmas]


def with_edge_chunk(checkpoint: str, chunk: int | None, path: Path) -> str:
    """A copy of ``checkpoint`` at ``path`` whose network sums messages in chunks of ``chunk`` edges."""
    payload = load_checkpoint(checkpoint)
    payload["model_config"] = {**payload["model_config"], "edge_chunk": chunk}
    save_checkpoint(path, payload)
    return str(path)


def time_calls(model, numbers: torch.Tensor, batches: list[torch.Tensor], sigmas: np.ndarray) -> list[float]:
    """Seconds of each network evaluation, in order."""
    seconds = []
    with torch.inference_mode():
        for positions, sigma in zip(batches, sigmas, strict=True):
            started = time.perf_counter()
            model.pseudo_forces(numbers, positions, float(sigma))
            seconds.append(time.perf_counter() - started)
    return seconds


def time_sampling(checkpoint: str, template: ase.Atoms, n: int, steps: int) -> float:
    started = time.perf_counter()
    with warnings.catch_warnings():  # failed structures are irrelevant to the timing
        warnings.simplefilter("ignore")
        sample(checkpoint, template, n=n, sampler="pc", steps=steps, seed=0, batch_size=n, max_rounds=1,
               on_invalid="keep", check_bonds=False, progress=False)
    return time.perf_counter() - started


def summarise(calls: list[list[float]], sampling: list[float]) -> dict:
    flat_steady = [s for run in calls for s in run[WARM_UP_CALLS:]]
    return {"first_call_s": [run[0] for run in calls],
            "steady_median_s": float(np.median(flat_steady)),
            "steady_quartiles_s": [float(q) for q in np.percentile(flat_steady, [25, 75])],
            "mean_all_calls_s": float(np.mean([s for run in calls for s in run])),
            "sample_s": sampling}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.5, 3.5))
    for (mode, summary), colour in zip(results["modes"].items(), ["tab:blue", "tab:orange"], strict=True):
        for round_index, run in enumerate(summary["calls_s"]):
            axis.plot(run, color=colour, alpha=0.8, label=mode if round_index == 0 else None)
    axis.set_xlabel("call (sigma from sigma_max down to sigma_min)")
    axis.set_ylabel("seconds per network evaluation")
    axis.set_title(f"{results['n']} x {results['atoms']} atoms, {results['threads']} torch threads")
    axis.set_ylim(bottom=0)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="ala2", help="checkpoint file or shipped model name")
    parser.add_argument("--template", help="structure file (default: the shipped ala2.pdb)")
    parser.add_argument("--n", type=int, default=256, help="structures per batch")
    parser.add_argument("--calls", type=int, default=40, help="network evaluations per mode and round")
    parser.add_argument("--sample-steps", type=int, default=10, help="pc levels of the sampling run (0: skip)")
    parser.add_argument("--chunk", type=int, default=4096, help="edges per chunk")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    if min(args.n, args.calls, args.chunk, args.rounds, args.threads) < 1 or args.calls <= WARM_UP_CALLS:
        parser.error(f"--n, --chunk, --rounds and --threads must be positive and --calls above {WARM_UP_CALLS}")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    checkpoint = str(resolve_checkpoint(args.checkpoint))
    template = ase.io.read(args.template or Path(resolve_checkpoint("ala2")).with_name("ala2.pdb"))
    schedule = load_checkpoint(checkpoint)["schedule"]
    sigmas = np.geomspace(schedule["sigma_max"], schedule["sigma_min"], args.calls)
    numbers = torch.as_tensor(template.numbers)
    batches = noised_batches(template.positions, sigmas, args.n, seed=0)
    modes = {f"chunks of {args.chunk} edges": args.chunk, "whole batch": None}
    calls: dict[str, list[list[float]]] = {mode: [] for mode in modes}
    sampling: dict[str, list[float]] = {mode: [] for mode in modes}
    files = {mode: with_edge_chunk(checkpoint, chunk, args.out / f"chunk_{chunk or 0}.pt") for mode, chunk in modes.items()}
    for _ in range(args.rounds):
        for mode in modes:
            model, _ = load_model(files[mode], device="cpu")
            calls[mode].append(time_calls(model, numbers, batches, sigmas))
            if args.sample_steps:
                sampling[mode].append(time_sampling(files[mode], template, args.n, args.sample_steps))

    results = {"checkpoint": args.checkpoint, "n": args.n, "atoms": len(template),
               "edges": args.n * len(template) * (len(template) - 1), "calls": args.calls,
               "sample_steps": args.sample_steps, "rounds": args.rounds, "threads": args.threads,
               "sigmas": [float(s) for s in sigmas], "torch": torch.__version__, "cpu": platform.processor(),
               "modes": {mode: {**summarise(calls[mode], sampling[mode]), "calls_s": calls[mode]} for mode in modes},
               "wall_s": time.perf_counter() - started}
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"{args.n} x {len(template)} atoms ({results['edges']} edges), {args.threads} threads, "
          f"{args.rounds} rounds, wall {results['wall_s']:.0f} s")
    print("| mode | first call (s) | steady median (s) [quartiles] | mean of all calls (s) | "
          f"sample pc {args.sample_steps} (s) |")
    print("|---|---|---|---|---|")
    for mode, summary in results["modes"].items():
        first = ", ".join(f"{s:.2f}" for s in summary["first_call_s"])
        q1, q3 = summary["steady_quartiles_s"]
        sample_s = ", ".join(f"{s:.1f}" for s in summary["sample_s"]) or "-"
        print(f"| {mode} | {first} | {summary['steady_median_s']:.3f} [{q1:.3f}, {q3:.3f}] | "
              f"{summary['mean_all_calls_s']:.3f} | {sample_s} |")
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
