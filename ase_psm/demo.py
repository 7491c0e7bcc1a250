"""The built-in LJ-13 example behind ``ase-psm demo``: DSM vs PSM against a Boltzmann reference.

Both models learned from the same biased data, the first 1000 Metropolis sweeps
of one chain (reduced units, kT = 1, the PSM paper's LJ-13 energy). The demo
loads the shipped checkpoints (or retrains them), samples, and compares the
interatomic-distance distributions with an independent reference.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from typing import Any

import ase
import ase.io
import numpy as np

from .generate import sample
from .metrics import distance_tvd, hr_mae, plot_distance_histograms
from .systems import ARGON, lj_energy

MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "DSM": ("dsm", dict(loss="dsm")),
    "PSM (piecewise-weighted)": ("psm", dict(loss="piecewise-weighted", force_crossover_t="thermal")),
}
"""Display name -> (file stem, loss settings); the shipped checkpoints were trained with these
and DEMO_TRAINING for 2000 steps (``ase-psm demo --train-steps 2000`` retrains them; docs/lj13.md)."""
DEMO_TRAINING: dict[str, Any] = dict(
    kT=1.0, batch_size=64, schedule=dict(sigma_min=0.01, sigma_max=3.0), loss_weighting="score",
    model=dict(hidden_irreps="32x0e + 16x1e", sh_lmax=1, num_layers=3, num_radial=96), device="cpu",
)
SAMPLER = "pc"
"""Predictor-corrector: on these models it beats the ODE samplers at every NFE (docs/performance.md)."""
DEFAULT_SAMPLE_STEPS = 50
"""Noise levels (2 network calls each): TVD 0.049 (DSM) / 0.052 (PSM) at 50 against 0.043 / 0.046
at 100 levels, in half the time (benchmarks/lj13_nfe.py, 512 samples)."""


def demo_asset(name: str) -> Path:
    """Path of a file shipped in ``ase_psm/examples_data``."""
    return Path(str(resources.files("ase_psm") / "examples_data" / name))


def load_lj13_data() -> dict[str, np.ndarray]:
    """The shipped LJ-13 data: ``biased`` (+ ``biased_forces``) training frames and a ``reference``."""
    with np.load(demo_asset("lj13.npz")) as data:
        return {key: data[key].astype(np.float64) for key in data.files}


def run_lj13_demo(
    out: Path, n_samples: int = 200, retrain_steps: int = 0, seed: int = 0, sample_steps: int = DEFAULT_SAMPLE_STEPS,
    progress: bool = True,
) -> list[dict]:
    """Sample both models (``pc`` with ``sample_steps`` noise levels), print a table and save
    ``lj13_distances.png``; returns the table rows. ``progress``: show training and sampling progress bars."""
    out.mkdir(parents=True, exist_ok=True)
    data = load_lj13_data()
    reference = data["reference"]
    checkpoints = {name: demo_asset(f"lj13_{stem}.pt") for name, (stem, _) in MODELS.items()}
    if retrain_steps:
        from .data import Frames
        from .train import train

        frames = Frames(np.full(13, ARGON), data["biased"], forces=data["biased_forces"])
        for name, (stem, settings) in MODELS.items():
            checkpoints[name] = train(frames, out / f"lj13_{stem}.pt", steps=retrain_steps, seed=seed,
                                      progress=progress, **settings, **DEMO_TRAINING)

    rows = [_row("training data (biased)", data["biased"], reference, None)]
    named = {"training data": data["biased"]}
    for name, checkpoint in checkpoints.items():
        started = time.perf_counter()
        structures = sample(checkpoint, ase.Atoms(numbers=[ARGON] * 13), n=n_samples, seed=seed, device="cpu",
                            sampler=SAMPLER, steps=sample_steps, progress=progress)
        seconds = time.perf_counter() - started
        positions = np.stack([atoms.positions for atoms in structures])
        ase.io.write(out / f"samples_{MODELS[name][0]}.extxyz", structures)
        named[name] = positions
        rows.append(_row(name, positions, reference, seconds))

    print(f"\nLJ-13, kT = 1: {n_samples} samples per model ({SAMPLER}, {sample_steps} noise levels) "
          f"vs {len(reference)} reference structures")
    print(f"{'':28s} {'distance TVD':>12s} {'h(r) MAE':>9s} {'median E':>9s} {'time':>7s}")
    for row in rows:
        time_text = f"{row['seconds']:6.1f}s" if row["seconds"] is not None else ""
        print(f"{row['name']:28s} {row['distance_tvd']:12.4f} {row['hr_mae']:9.4f} {row['energy_median']:9.2f} {time_text:>7s}")
    floor = _row(f"reference, {n_samples} vs rest", reference[:n_samples], reference[n_samples:], None)
    print(f"{floor['name']:28s} {floor['distance_tvd']:12.4f} {floor['hr_mae']:9.4f} {floor['energy_median']:9.2f}"
          "   (finite-sample floor)")
    plot = plot_distance_histograms(named, reference, out / "lj13_distances.png")
    print(f"\nplot: {plot}\nsamples: {out}/samples_*.extxyz")
    return rows


def _row(name: str, positions: np.ndarray, reference: np.ndarray, seconds: float | None) -> dict:
    return {
        "name": name,
        "distance_tvd": distance_tvd(positions, reference),
        "hr_mae": hr_mae(positions, reference),
        "energy_median": float(np.median(lj_energy(positions))),
        "seconds": seconds,
    }
