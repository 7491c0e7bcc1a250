"""Langevin steps at sigma_min on finished LJ benchmark runs: sample quality against the step count.

Takes the ``samples.npy`` and ``model.pt`` of ``ase-psm bench`` runs (``<out>/runs/<run>/``), runs
the pc sampler's corrector step (``ase_psm.diffusion.langevin_step``, SNR rule) at the checkpoint's
smallest noise level, and scores the denoised structures against the system's reference every few
steps. This is what ``final_corrector_steps=K`` does at the end of ``pc`` sampling, as a curve over K
from one set of samples (docs/benchmarks.md, "Langevin steps at σ_min"). It starts from the returned,
denoised samples rather than from the last noisy state, so its k = 0 row is the returned samples
denoised once more: on LJ-13 that alone moves the distance TVD by about 0.001.

    python benchmarks/probes/final_corrector.py runs/lj55_table2/runs/lj55_table2_dsm_seed0 \
        --system lj55 --cache runs/bench_lj55_cpu/cache --n 64 --steps 200 --out /tmp/fc.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ase_psm.benchmarks.data import load_system
from ase_psm.benchmarks.evaluate import evaluate
from ase_psm.checkpoint import load_model
from ase_psm.diffusion import langevin_step
from ase_psm.generate import make_denoiser

METRICS = ("distance_tvd", "energy_median", "energy_w2", "x_w2")


def corrector_curve(
    run: Path, data, n: int, steps: int, marks: set[int], snr: float, seed: int, samples: dict | None = None
) -> list[dict]:
    """Metrics of the run's first n samples after k Langevin steps at sigma_min, for k in marks.

    ``samples``, if given, receives the denoised structures (n, atoms, 3) at each mark under
    ``"<run>/<k>"``.
    """
    model, checkpoint = load_model(run / "model.pt", "cpu")
    denoise = make_denoiser(model, torch.as_tensor(data.numbers, dtype=torch.long))
    sigma = torch.tensor(float(checkpoint["schedule"]["sigma_min"]))
    x = torch.as_tensor(np.load(run / "samples.npy")[:n], dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    rows, started = [], time.perf_counter()
    for k in range(steps + 1):
        if k in marks:
            with torch.no_grad():
                denoised = denoise(x, sigma)  # what pc returns after k final corrector steps
            if samples is not None:
                samples[f"{run.name}/{k}"] = denoised.numpy()
            values = evaluate(denoised.double().numpy(), data).as_dict()["values"]
            rows.append({"run": run.name, "steps": k, "seconds": time.perf_counter() - started,
                         **{name: values[name] for name in METRICS}})
            print(json.dumps(rows[-1]), flush=True)
        if k < steps:
            x = langevin_step(denoise, x, sigma, snr, generator, None)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="bench run folders with model.pt and samples.npy")
    parser.add_argument("--system", choices=["lj13", "lj55"], required=True)
    parser.add_argument("--size", default="cpu", help="bench size of the runs (the reference to score against)")
    parser.add_argument("--cache", type=Path, required=True, help="the bench data cache of the runs")
    parser.add_argument("--n", type=int, default=64, help="samples taken from each run")
    parser.add_argument("--steps", type=int, default=400, help="Langevin steps at sigma_min")
    parser.add_argument("--marks", default="0,25,50,100,200,400", help="step counts to score")
    parser.add_argument("--snr", type=float, default=0.16, help="the corrector's signal-to-noise ratio")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, required=True, help="JSON file of the rows")
    parser.add_argument("--save-samples", type=Path, help="NPZ file of the denoised samples at every mark")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_system(args.system, args.size, args.cache)[0]
    marks = {int(mark) for mark in args.marks.split(",")}
    samples: dict | None = {} if args.save_samples else None
    rows = [row for run in args.runs
            for row in corrector_curve(run, data, args.n, args.steps, marks, args.snr, args.seed, samples)]
    args.out.write_text(json.dumps(rows, indent=1))
    if args.save_samples:
        np.savez_compressed(args.save_samples, **samples)


if __name__ == "__main__":
    main()
