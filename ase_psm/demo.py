"""The built-in LJ-13 example behind ``ase-psm demo``: DSM vs PSM against a Boltzmann reference.

Both models learned from the same biased data: the first 1000 Metropolis sweeps of a chain
started at an energy minimum (reduced units, kT = 1, the PSM paper's LJ-13 energy), too cold on
the scale of thermal vibrations. The demo loads the shipped checkpoints (or retrains them),
samples, and compares the interatomic-distance distributions with an independent reference.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import ase
import ase.io
import numpy as np

from .generate import sample
from .metrics import distance_tvd, hr_mae, plot_distance_histograms
from .systems import ARGON, lj_energy

if TYPE_CHECKING:
    from .train import TrainConfig

TRAINING_HEAD = "cold"
"""The shipped data the demo's models learned from: ``cold``, the first 1000 sweeps of a chain started
at an energy minimum (``make_lj_cold_head(13, seed=0)``, the ``cold`` protocol of ``ase-psm bench
lj13``), whose bias is local, on the scale of thermal vibrations, where PSM's force labels act. The
shipped ``biased`` head (after a burn-in) is biased in the cluster's overall shape instead, which
force labels cannot reach: there DSM and PSM are level (docs/lj13.md)."""
MODELS: dict[str, tuple[str, str]] = {"DSM": ("dsm", "dsm"), "PSM (piecewise-weighted)": ("psm", "piecewise-weighted")}
"""Display name -> (file stem, benchmark model). The shipped checkpoints are the ``ase-psm bench lj13
--size cpu --protocols cold`` models of seed 0 (the same data) with :data:`TRAINING_RECIPE`; ``ase-psm demo
--train-steps N`` retrains them with those settings for N steps."""
TRAINING_RECIPE: dict = dict(schedule=dict(kind="log-uniform", sigma_min=0.01, sigma_max=3.0), small_sigma_fraction=0.5)
"""Noise levels of the demo's models: log-uniform sigma and half of each batch below the force crossover,
not ``train()``'s default (log-normal, a quarter). On this cold head the force labels at small sigma are
what corrects the data, and this recipe sampled closer to Boltzmann (benchmark distance TVD 0.0260
against 0.0298 with the default; docs/benchmarks.md, "Noise levels")."""
SAMPLER = "pc"
"""Predictor-corrector: on these models it beats the ODE samplers at every NFE (docs/performance.md)."""
DEFAULT_SAMPLE_STEPS = 50
"""Noise levels (2 network calls each), half of the benchmark's 100, so the demo takes about a minute."""


def demo_asset(name: str) -> Path:
    """Path of a file shipped in ``ase_psm/examples_data``."""
    return Path(str(resources.files("ase_psm") / "examples_data" / name))


def load_lj13_data() -> dict[str, np.ndarray]:
    """The shipped LJ-13 data: ``biased`` and ``cold`` training frames (+ ``biased_forces``,
    ``cold_forces``) and a Boltzmann ``reference`` of 2000 structures."""
    with np.load(demo_asset("lj13.npz")) as data:
        return {key: data[key].astype(np.float64) for key in data.files}


def run_lj13_demo(
    out: Path, n_samples: int = 200, retrain_steps: int = 0, seed: int = 0, sample_steps: int = DEFAULT_SAMPLE_STEPS,
    progress: bool = True,
) -> list[dict]:
    """Sample both models (``pc`` with ``sample_steps`` noise levels), print a table and save
    ``lj13_distances.png``; returns the table rows. Every row scores ``n_samples`` structures: the
    training data's row is the mean over disjoint random subsets of that size, so no row gains from a
    larger sample. ``progress``: show training and sampling progress bars."""
    from .benchmarks.evaluate import disjoint_subsets

    out.mkdir(parents=True, exist_ok=True)
    data = load_lj13_data()
    reference = data["reference"]
    checkpoints = {name: demo_asset(f"lj13_{stem}.pt") for name, (stem, _) in MODELS.items()}
    if retrain_steps:
        checkpoints = {name: _retrain(data, stem, model, out, retrain_steps, seed, progress)
                       for name, (stem, model) in MODELS.items()}

    training = data[TRAINING_HEAD]
    subsets = disjoint_subsets(training, n_samples, seed)
    rows = [_row(f"training data ({len(subsets)} x {n_samples})", subsets, reference, None, 0)]
    named = {"training data": training}
    for name, checkpoint in checkpoints.items():
        started = time.perf_counter()
        structures = sample(checkpoint, ase.Atoms(numbers=[ARGON] * 13), n=n_samples, seed=seed, device="cpu",
                            sampler=SAMPLER, steps=sample_steps, progress=progress, on_invalid="keep")
        seconds = time.perf_counter() - started
        positions = np.stack([atoms.positions for atoms in structures])
        ase.io.write(out / f"samples_{MODELS[name][0]}.extxyz", structures)
        named[name] = positions
        rows.append(_row(name, [positions], reference, seconds, structures.report.invalid))

    print(f"\nLJ-13, kT = 1: {n_samples} structures per row ({SAMPLER}, {sample_steps} noise levels; invalid ones "
          f"kept and counted) against {len(reference)} reference structures")
    print(f"{'':30s} {'distance TVD':>12s} {'h(r) MAE':>9s} {'median E':>9s} {'invalid':>7s} {'time':>7s}")
    for row in rows:
        time_text = f"{row['seconds']:6.1f}s" if row["seconds"] is not None else ""
        print(f"{row['name']:30s} {row['distance_tvd']:12.4f} {row['hr_mae']:9.4f} {row['energy_median']:9.2f} "
              f"{row['invalid']:7d} {time_text:>7s}")
    floor = _row(f"reference, {n_samples} vs rest", [reference[:n_samples]], reference[n_samples:], None, 0)
    print(f"{floor['name']:30s} {floor['distance_tvd']:12.4f} {floor['hr_mae']:9.4f} {floor['energy_median']:9.2f}"
          "           (finite-sample floor)")
    plot = plot_distance_histograms(named, reference, out / "lj13_distances.png")
    print(f"\nplot: {plot}\nsamples: {out}/samples_*.extxyz")
    return rows


def _retrain(data: dict[str, np.ndarray], stem: str, model: str, out: Path, steps: int, seed: int,
             progress: bool) -> Path:
    """Train ``model`` (a benchmark model name) on the training head with :func:`demo_train_config`."""
    from .data import Frames
    from .train import train

    frames = Frames(np.full(13, ARGON), data[TRAINING_HEAD], forces=data[f"{TRAINING_HEAD}_forces"])
    return train(frames, out / f"lj13_{stem}.pt", config=demo_train_config(model, steps, seed), progress=progress)


def demo_train_config(model: str, steps: int, seed: int) -> TrainConfig:
    """The TrainConfig of a demo model (a benchmark model name): the benchmark's LJ-13 cpu settings and
    :data:`TRAINING_RECIPE`, ``steps`` steps."""
    from .benchmarks.config import MODELS as BENCH_MODELS
    from .benchmarks.config import SETTINGS

    return SETTINGS["lj13"]["cpu"].train_config(BENCH_MODELS[model], TRAINING_RECIPE, kT=1.0, steps=steps, seed=seed,
                                                device="cpu")


def _row(name: str, samples: list[np.ndarray], reference: np.ndarray, seconds: float | None, invalid: int) -> dict:
    """Metrics of each sample set against ``reference``, averaged over the sets."""
    return {
        "name": name,
        "distance_tvd": float(np.mean([distance_tvd(positions, reference) for positions in samples])),
        "hr_mae": float(np.mean([hr_mae(positions, reference) for positions in samples])),
        "energy_median": float(np.mean([np.median(lj_energy(positions)) for positions in samples])),
        "seconds": seconds,
        "invalid": invalid,
    }
