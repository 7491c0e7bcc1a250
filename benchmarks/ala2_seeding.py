"""Alanine dipeptide (amber14, vacuum, 300 K): does seeding MD from PSM samples save MD steps?

One short MD run (the biased training data) trains a PSM model. For the same total number of MD
steps we compare (A) continuing that single run, (B) N parallel runs seeded from random
training frames and (C) N parallel runs seeded from PSM samples (checked, briefly minimized),
by the total variation distance (TVD) of the phi/psi histogram to a long reference run.
Stages are cached in --out, so a rerun only redoes what is missing.

    python benchmarks/ala2_seeding.py --out bench-ala2            # full (see docs/openmm.md)
    python benchmarks/ala2_seeding.py --out /tmp/ala2-quick --quick
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ase_psm import sample, train
from ase_psm.data import read_frames
from ase_psm.metrics import phi_psi
from ase_psm.openmm import (
    FrameRecorder,
    SeedSettings,
    StructureChecker,
    atoms_from_openmm,
    seed_simulations,
)

PDB = Path(__file__).resolve().parents[1] / "ase_psm" / "examples_data" / "ala2.pdb"
TEMPERATURE = 300.0  # K
TIMESTEP = 0.002  # ps
BINS = 24  # per dihedral: 15 degree bins
THRESHOLDS = (0.1, 0.15, 0.2, 0.3)
PRIMARY_THRESHOLD = 0.15


@dataclass
class Budget:
    """MD steps and training settings of one benchmark size."""

    biased_steps: int = 50_000  # training run (100 ps)
    record_interval: int = 50  # steps between training frames
    reference_steps: int = 5_000_000  # 10 ns
    continue_steps: int = 2_500_000  # (A)
    n_runs: int = 32  # (B), (C)
    run_steps: int = 15_000  # per parallel run
    report_interval: int = 100  # steps between analysed frames
    train_steps: int = 1500
    batch_size: int = 32
    hidden_irreps: str = "32x0e + 16x1e"
    sample_steps: int = 100  # pc noise levels


QUICK = Budget(
    biased_steps=2_000, record_interval=20, reference_steps=20_000, continue_steps=20_000, n_runs=4,
    run_steps=2_000, report_interval=50, train_steps=20, batch_size=16, hidden_irreps="8x0e + 4x1e", sample_steps=10,
)


def make_system():
    """amber14 ala2 in vacuum with H-bond constraints: (pdb, system)."""
    from openmm import app

    pdb = app.PDBFile(str(PDB))
    system = app.ForceField("amber14-all.xml").createSystem(pdb.topology, nonbondedMethod=app.NoCutoff, constraints=app.HBonds)
    return pdb, system


def make_simulation(pdb, system, seed: int):
    import openmm
    from openmm import app, unit

    integrator = openmm.LangevinMiddleIntegrator(TEMPERATURE * unit.kelvin, 1 / unit.picosecond, TIMESTEP * unit.picosecond)
    integrator.setRandomNumberSeed(seed)
    simulation = app.Simulation(pdb.topology, system, integrator, openmm.Platform.getPlatformByName("Reference"))
    simulation.context.setPositions(pdb.positions)
    simulation.minimizeEnergy()
    simulation.context.setVelocitiesToTemperature(TEMPERATURE * unit.kelvin, seed)
    return simulation


def run_md(pdb, system, steps: int, path: Path, interval: int, seed: int, recorder: FrameRecorder | None = None):
    """One MD run from the minimized PDB, written to `path` (DCD); returns the Simulation."""
    import mdtraj.reporters

    simulation = make_simulation(pdb, system, seed)
    reporter = mdtraj.reporters.DCDReporter(str(path), interval)
    simulation.reporters.append(reporter)
    if recorder is not None:
        simulation.reporters.append(recorder)
    simulation.step(steps)
    reporter.close()
    return simulation


def dihedrals(path: Path) -> np.ndarray:
    """(n_frames, 2) phi, psi (radians) of a trajectory file."""
    import mdtraj

    trajectory = mdtraj.load(str(path), top=str(PDB)) if path.suffix != ".h5" else mdtraj.load(str(path))
    return np.concatenate([mdtraj.compute_phi(trajectory)[1], mdtraj.compute_psi(trajectory)[1]], axis=1)


def histogram(angles: np.ndarray) -> np.ndarray:
    counts, _, _ = np.histogram2d(angles[:, 0], angles[:, 1], bins=BINS, range=[[-np.pi, np.pi]] * 2)
    return counts / counts.sum()


def tvd(angles: np.ndarray, reference: np.ndarray) -> float:
    return 0.5 * float(np.abs(histogram(angles) - reference).sum())


def single_run_curve(angles: np.ndarray, reference: np.ndarray, interval: int, points: int = 25):
    """TVD of the first k frames of one run, against total MD steps k * interval."""
    counts = np.unique(np.geomspace(2, len(angles), points).astype(int))
    return counts * interval, np.array([tvd(angles[:k], reference) for k in counts])


def parallel_curve(runs: list[np.ndarray], reference: np.ndarray, interval: int, points: int = 15):
    """TVD of the first k frames of every run pooled, against total MD steps n_runs * k * interval."""
    if not runs:
        return np.array([]), np.array([])
    length = min(len(r) for r in runs)
    counts = np.unique(np.geomspace(1, length, points).astype(int))
    values = [tvd(np.concatenate([r[:k] for r in runs]), reference) for k in counts]
    return counts * interval * len(runs), np.array(values)


def independent_curve(reference_angles: np.ndarray, reference: np.ndarray, interval: int, seed: int, points: int = 20):
    """TVD of k frames drawn at random from the reference run (mean of 10 draws), against k * interval
    steps: what perfectly decorrelated Boltzmann frames would give, a floor for any seeding scheme."""
    rng = np.random.default_rng(seed)
    counts = np.unique(np.geomspace(10, min(len(reference_angles) // 10, 20_000), points).astype(int))
    values = [np.mean([tvd(reference_angles[rng.choice(len(reference_angles), k, replace=False)], reference)
                       for _ in range(10)]) for k in counts]
    return counts * interval, np.array(values)


def steps_to_reach(steps: np.ndarray, values: np.ndarray, threshold: float) -> float | None:
    """Fewest total MD steps from which the TVD stays at or below `threshold` (None: never)."""
    above = np.flatnonzero(values > threshold)
    first = 0 if above.size == 0 else above[-1] + 1
    return None if first >= len(steps) else float(steps[first])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench-ala2")
    parser.add_argument("--quick", action="store_true", help="tiny budget (about a minute), numbers meaningless")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", help="sample this trained model (a path or a shipped name such as 'ala2') "
                        "instead of training one on the biased run; it must come from the same training data")
    parser.add_argument("--check-after-minimization", action="store_true",
                        help="check seeds after the 200-step minimization (SeedSettings.check_after_minimization)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    budget = QUICK if args.quick else Budget()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    timings_file = out / "timings.json"
    timings: dict[str, float] = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    pdb, system = make_system()

    def stage(name: str, done: bool, action) -> None:
        if done:
            print(f"[{name}] cached")
            return
        start = time.perf_counter()
        action()
        timings[name] = time.perf_counter() - start
        timings_file.write_text(json.dumps(timings, indent=1))
        print(f"[{name}] {timings[name]:.0f} s", flush=True)

    training = out / "biased.extxyz"

    def biased_run() -> None:
        recorder = FrameRecorder(budget.record_interval)
        simulation = run_md(pdb, system, budget.biased_steps, out / "biased.dcd", budget.report_interval, args.seed + 1, recorder)
        recorder.save(training)
        # (A) continues this very run: same state, velocities and integrator.
        import mdtraj.reporters

        simulation.reporters = [mdtraj.reporters.DCDReporter(str(out / "continued.dcd"), budget.report_interval)]
        simulation.step(budget.continue_steps)
        simulation.reporters[0].close()

    stage("biased run + (A) continuation", (out / "continued.dcd").exists(), biased_run)
    stage("reference run", (out / "reference.dcd").exists(),
          lambda: run_md(pdb, system, budget.reference_steps, out / "reference.dcd", budget.report_interval, args.seed + 2))

    checkpoint = args.checkpoint or out / "ala2_psm.pt"
    frames = read_frames(training)
    stage("training", args.checkpoint is not None or Path(checkpoint).exists(), lambda: train(
        frames, checkpoint, loss="piecewise-weighted", temperature=TEMPERATURE, steps=budget.train_steps,
        batch_size=budget.batch_size, seed=args.seed, device="cpu", progress=False, atom_types="graph",
        model={"hidden_irreps": budget.hidden_irreps, "sh_lmax": 1},
    ))

    template = atoms_from_openmm(pdb.topology, pdb.positions)
    samples_path = out / "psm_samples.extxyz"

    def psm_samples() -> None:
        import ase.io

        ase.io.write(samples_path, sample(checkpoint, template, budget.n_runs, sampler="pc", steps=budget.sample_steps,
                                          seed=args.seed, progress=False, on_invalid="keep"))

    stage("sampling", samples_path.exists(), psm_samples)
    import ase.io

    structures = ase.io.read(samples_path, index=":")
    checker = StructureChecker.from_topology(template.positions, pdb.topology)
    l_fraction = float(checker.same_chirality(np.stack([a.positions for a in structures])).mean())
    problems = [checker.check(atoms.positions) for atoms in structures]
    sample_checks = dict(Counter(problem[0] if problem else "pass" for problem in problems))

    settings = SeedSettings(steps=budget.run_steps, temperature=TEMPERATURE, report_interval=budget.report_interval,
                            seed=args.seed, check_after_minimization=args.check_after_minimization)
    rng = np.random.default_rng(args.seed)
    frame_seeds = [frames.to_atoms(int(i)) for i in rng.choice(len(frames), budget.n_runs, replace=False)]
    reports = {}
    for name, seeds in (("B", frame_seeds), ("C", structures)):
        run_dir = out / f"runs_{name}"
        report_file = out / f"report_{name}.json"

        def seeded(run_dir=run_dir, seeds=seeds, report_file=report_file) -> None:
            report = seed_simulations(None, system, pdb.topology, pdb.positions, structures=seeds, out=run_dir,
                                      settings=settings, progress=False)
            report_file.write_text(json.dumps({
                "generated": report.generated, "accepted": report.accepted, "rejections": report.rejection_counts,
                "reasons": [asdict(r) for r in report.rejected], "paths": [str(p) for p in report.paths]}))

        stage(f"({name}) seeded runs", report_file.exists(), seeded)
        reports[name] = json.loads(report_file.read_text())

    reference_angles = dihedrals(out / "reference.dcd")
    reference = histogram(reference_angles)
    curves = {"A: continue one run": single_run_curve(dihedrals(out / "continued.dcd"), reference, budget.report_interval)}
    for name, label in (("B", "B: seeds from training frames"), ("C", "C: seeds from PSM samples")):
        runs = [dihedrals(Path(p)) for p in reports[name]["paths"]]
        curves[label] = parallel_curve(runs, reference, budget.report_interval)
    curves["floor: independent reference frames"] = independent_curve(
        reference_angles, reference, budget.report_interval, args.seed)
    training_tvd = tvd(dihedrals(out / "biased.dcd"), reference)
    sample_angles = np.radians(phi_psi(np.stack([a.positions for a in structures]), str(PDB)))
    results = {
        "budget": asdict(budget), "checkpoint": str(checkpoint),
        "check_after_minimization": args.check_after_minimization, "timings_s": timings, "l_fraction": l_fraction, "sample_checks": sample_checks,
        "training_tvd": training_tvd,
        "psm_sample_tvd": tvd(sample_angles, reference), "reports": reports,
        "steps_to_reach": {str(t): {k: steps_to_reach(*c, t) for k, c in curves.items()} for t in THRESHOLDS},
        "curves": {k: [c[0].tolist(), c[1].tolist()] for k, c in curves.items()},
    }
    (out / "results.json").write_text(json.dumps(results, indent=1))
    _print_summary(results, budget)
    _plot(curves, reference, sample_angles, out / "ala2_seeding.png")


def _print_summary(results: dict, budget: Budget) -> None:
    print(f"L fraction of PSM samples: {results['l_fraction']:.3f}; structure checks of the raw samples: "
          f"{results['sample_checks']}")
    print(f"TVD of the training run: {results['training_tvd']:.3f}; of the raw PSM samples: {results['psm_sample_tvd']:.3f}")
    for name, report in results["reports"].items():
        print(f"({name}) accepted {report['accepted']}/{report['generated']}, rejections {report['rejections']}")
    print(f"{'TVD threshold':>14s}" + "".join(f"{k.split(':')[0]:>12s}" for k in results["curves"]) + f"{'A/C':>8s}")
    for threshold, reached in results["steps_to_reach"].items():
        values = list(reached.values())
        ratio = f"{values[0] / values[2]:.1f}" if values[0] and values[2] else "-"
        cells = "".join(f"{v:12.3g}" if v else f"{'>max':>12s}" for v in values)
        print(f"{threshold:>14s}{cells}{ratio:>8s}")
    for name, (steps, values) in results["curves"].items():
        if steps:
            print(f"{name}: final TVD {values[-1]:.3f} at {steps[-1]:.3g} total MD steps")


def _plot(curves: dict, reference: np.ndarray, sample_angles: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, (steps, values) in curves.items():
        style = {"ls": ":", "color": "k"} if name.startswith("floor") else {"marker": "o", "ms": 3}
        left.plot(steps, values, label=name, **style)
    left.axhline(PRIMARY_THRESHOLD, color="gray", ls="--", lw=1, label=f"TVD = {PRIMARY_THRESHOLD}")
    left.set(xscale="log", xlabel="total MD steps (2 fs)", ylabel="Ramachandran TVD to reference",
             title="ala2, amber14 vacuum, 300 K")
    left.legend(fontsize=8)
    extent = [-180, 180, -180, 180]
    right.imshow(np.log(reference.T + 1e-5), origin="lower", extent=extent, cmap="Greys", aspect="auto")
    degrees = np.degrees(sample_angles)
    right.scatter(degrees[:, 0], degrees[:, 1], s=10, c="tab:red", label="raw PSM samples (before checks)")
    right.set(xlabel="phi (deg)", ylabel="psi (deg)", title="reference (log density) and raw PSM samples")
    right.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
