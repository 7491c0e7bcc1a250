"""Independent samples per second: PSM generation against OpenMM MD of alanine dipeptide.

MD (amber14, vacuum, 300 K, 2 fs, H-bond constraints, LangevinMiddle 1/ps, OpenMM CPU platform)
gives steps / tau_int independent samples, where tau_int (steps) is the largest integrated
autocorrelation time of sin/cos phi and sin/cos psi, tau = 1 + 2 sum_k rho(k) with Sokal's
automatic window (c = 5). MD runs one thread per simulation and is credited with `--threads`
independent simulations in parallel (for 22 atoms one simulation on two threads is several times
slower than on one). PSM gives every structure that passes the checks (``sample``'s checks and
the template's chirality at the alpha carbon) as an independent sample, using `--threads` torch
threads. Ramachandran TVDs to the MD trajectory tell how good the samples are.

    python benchmarks/psm_vs_md.py --checkpoint ala2 --out /tmp/psm-vs-md          # ~10 min, 2 cores
    python benchmarks/psm_vs_md.py --checkpoint ala2 --out /tmp/q --quick           # seconds
    python benchmarks/psm_vs_md.py --checkpoint ala2-gpff --sampler direct --sample-steps 32 --out /tmp/gpff
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch

from ase_psm import sample
from ase_psm.metrics import phi_psi, ramachandran_tvd
from ase_psm.openmm import StructureChecker, atoms_from_openmm

PDB = str(files("ase_psm") / "examples_data" / "ala2.pdb")
TEMPERATURE = 300.0  # K
TIMESTEP = 0.002  # ps


def make_simulation(threads: int, seed: int):
    """A minimized amber14 vacuum ala2 Simulation on the CPU platform with `threads` threads."""
    import openmm
    from openmm import app, unit

    pdb = app.PDBFile(PDB)
    system = app.ForceField("amber14-all.xml").createSystem(pdb.topology, nonbondedMethod=app.NoCutoff,
                                                           constraints=app.HBonds)
    integrator = openmm.LangevinMiddleIntegrator(TEMPERATURE * unit.kelvin, 1 / unit.picosecond,
                                                 TIMESTEP * unit.picosecond)
    integrator.setRandomNumberSeed(seed)
    platform = openmm.Platform.getPlatformByName("CPU")
    simulation = app.Simulation(pdb.topology, system, integrator, platform, {"Threads": str(threads)})
    simulation.context.setPositions(pdb.positions)
    simulation.minimizeEnergy()
    simulation.context.setVelocitiesToTemperature(TEMPERATURE * unit.kelvin, seed)
    return pdb, simulation


def integrated_autocorrelation_time(series: np.ndarray, c: float = 5.0) -> float:
    """tau = 1 + 2 sum_{k=1}^{M} rho(k) in frames, with the smallest window M >= c tau(M) (Sokal)."""
    x = np.asarray(series, dtype=np.float64) - np.mean(series)
    n = len(x)
    spectrum = np.fft.rfft(x, 2 * n)
    autocovariance = np.fft.irfft(spectrum * np.conj(spectrum))[:n] / n
    rho = autocovariance / autocovariance[0]
    taus = 2.0 * np.cumsum(rho) - 1.0
    window = np.arange(n) >= c * taus
    m = int(np.argmax(window)) if window.any() else n - 1
    return float(taus[m])


def md_side(steps: int, interval: int, threads: int, seed: int) -> dict:
    """MD speed of one single-thread simulation (steps/s, no reporters), tau_int of phi/psi from a run
    sampled every `interval`, and independent samples/s of `threads` such simulations in parallel."""
    from openmm import unit

    pdb, simulation = make_simulation(1, seed)
    simulation.step(5_000)  # equilibrate after minimization
    started = time.perf_counter()
    simulation.step(steps // 10)
    steps_per_second = (steps // 10) / (time.perf_counter() - started)
    positions = []
    for _ in range(steps // interval):
        simulation.step(interval)
        state = simulation.context.getState(getPositions=True)
        positions.append(state.getPositions(asNumpy=True).value_in_unit(unit.angstrom))
    angles = phi_psi(np.asarray(positions), pdb.topology)
    radians = np.radians(angles)
    series = {"sin phi": np.sin(radians[:, 0]), "cos phi": np.cos(radians[:, 0]),
              "sin psi": np.sin(radians[:, 1]), "cos psi": np.cos(radians[:, 1])}
    taus = {name: integrated_autocorrelation_time(values) * interval for name, values in series.items()}
    tau = max(taus.values())
    return {"steps": steps, "interval": interval, "steps_per_second": steps_per_second, "parallel_runs": threads,
            "tau_steps": taus, "tau_int_steps": tau, "independent_per_second": threads * steps_per_second / tau,
            "angles": angles, "template": pdb}


def psm_side(checkpoint: str, pdb, n: int, sampler: str, sample_steps: int, seed: int) -> dict:
    """Seconds to generate `n` structures in one batch, and how many pass the checks and are L."""
    template = atoms_from_openmm(pdb.topology, pdb.positions)
    checker = StructureChecker.from_topology(template.positions, pdb.topology)
    with warnings.catch_warnings():  # failures are counted in the report
        warnings.simplefilter("ignore")
        sample(checkpoint, template, n=2, sampler=sampler, steps=2, progress=False, on_invalid="keep")  # warm-up
        started = time.perf_counter()
        structures = sample(checkpoint, template, n=n, sampler=sampler, steps=sample_steps, seed=seed,
                            batch_size=n, max_rounds=1, on_invalid="drop", progress=False)
    seconds = time.perf_counter() - started
    accepted = [atoms for atoms in structures if checker.check(atoms.positions) is None]
    l_fraction = float(np.mean([checker.same_chirality(a.positions) for a in structures])) if structures else 0.0
    angles = phi_psi(np.stack([a.positions for a in accepted]), pdb.topology) if accepted else np.zeros((0, 2))
    return {"n": n, "sampler": sampler, "sample_steps": sample_steps, "seconds": seconds,
            "passed_sample_checks": len(structures), "accepted": len(accepted),
            "l_fraction": l_fraction, "report": str(structures.report),
            "independent_per_second": len(accepted) / seconds, "angles": angles}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="ala2", help="PSM checkpoint (path or shipped name)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--md-steps", type=int, default=1_000_000)
    parser.add_argument("--interval", type=int, default=10, help="MD steps between analysed frames")
    parser.add_argument("--n", type=int, default=256, help="PSM structures, one batch")
    parser.add_argument("--sampler", default="pc")
    parser.add_argument("--sample-steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2,
                        help="CPU cores: torch threads for PSM, parallel single-thread simulations for MD")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny budget (a smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.md_steps, args.n, args.sample_steps = 20_000, 8, 5
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)

    md = md_side(args.md_steps, args.interval, args.threads, args.seed)
    psm = psm_side(args.checkpoint, md.pop("template"), args.n, args.sampler, args.sample_steps, args.seed)
    md_angles, psm_angles = md.pop("angles"), psm.pop("angles")
    psm["ramachandran_tvd_to_md"] = ramachandran_tvd(psm_angles, md_angles) if len(psm_angles) else None
    picks = np.random.default_rng(args.seed).choice(len(md_angles), size=max(len(psm_angles), 1), replace=False)
    md["ramachandran_tvd_floor"] = ramachandran_tvd(md_angles[picks], md_angles)
    ratio = psm["independent_per_second"] / md["independent_per_second"]
    result = {"md": md, "psm": psm, "ratio": ratio, "threads": args.threads, "checkpoint": args.checkpoint,
              "torch": torch.__version__}
    (args.out / "psm_vs_md.json").write_text(json.dumps(result, indent=1))

    print(f"MD:  {md['steps_per_second']:.0f} steps/s per single-thread run x {md['parallel_runs']} runs, tau_int {md['tau_int_steps']:.0f} steps "
          f"({', '.join(f'{k} {v:.0f}' for k, v in md['tau_steps'].items())}) -> "
          f"{md['independent_per_second']:.2f} independent samples/s")
    print(f"PSM: {psm['accepted']}/{psm['n']} accepted, {psm['l_fraction']:.1%} L among those passing sample's "
          f"checks ({psm['report']}) in {psm['seconds']:.1f} s "
          f"-> {psm['independent_per_second']:.2f} samples/s; Ramachandran TVD to MD "
          f"{psm['ramachandran_tvd_to_md']} (floor for as many independent MD frames {md['ramachandran_tvd_floor']:.3f})")
    print(f"ratio PSM / MD: {ratio:.2f}x ({args.threads} cores each)")


if __name__ == "__main__":
    main()
