"""How fast does a network learn the small-sigma score? Score error against F/kT versus CPU time on alanine dipeptide.

Trains one sigma-conditioned, graph-conditioned network on the first 1000 frames of the `ase-psm bench ala2
--size cpu` data (900 train; amber14 vacuum, 300 K, unconstrained) with the piecewise-weighted target, one CPU
thread, and every ``--eval-every`` CPU seconds (evaluation not counted) measures the EMA network's score
s = f(x, sigma) / sigma^2 at ``--eval-sigma`` on 200 held-out reference frames: the median over frames of
|s - F/kT| / |F/kT| (F from the amber14 System). With ``--exact FILE`` (written by ``--write-exact``) it also
compares s with the exact score of the noised Boltzmann density, E[F(x0)/kT | x_sigma = x], estimated by Langevin
dynamics of x0 restrained to each frame (``ala2_exact_score``): the regression function the training target has,
so that error is the network's fit alone. At sigma = 0.01 Å the exact score itself is about 0.24 off F/kT (X-H
and C-H stretches have a thermal length of about 0.03 Å), a floor no model trained on noised data goes below.

It uses only the network, the data set's target formula and the package's defaults, so the same command runs on
earlier versions of the package (e.g. a worktree at an older commit on PYTHONPATH) for a side-by-side curve:

    python benchmarks/probes/ala2_score_fit.py new --cpu-seconds 3600 --lr 3e-3 --small-sigma-fraction 0.5 --cosine
    python benchmarks/probes/ala2_score_fit.py --plot runs/score_fit/*.json     # the curve, error vs CPU minutes
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from ase.units import kB

from ase_psm.benchmarks.data import ALA2_TEMPERATURE, ala2_system, load_system
from ase_psm.data import Frames, split_frames
from ase_psm.diffusion.noise import NoiseSchedule, zero_com_noise
from ase_psm.diffusion.targets import force_weight, loss_weight, pseudo_force_target
from ase_psm.model import PseudoForceNet
from ase_psm.train.config import TrainConfig
from ase_psm.train.trainer import default_model_config

KT = kB * ALA2_TEMPERATURE


def reference_forces(numbers: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Forces (eV/Å) of the benchmark's amber14 vacuum System for (F, 22, 3) Å."""
    from ase_psm.openmm import label_forces

    pdb, system = ala2_system()
    forces = label_forces(Frames(numbers, positions), system, topology=pdb.topology, progress=False).forces
    assert forces is not None
    return forces


def score_error(model: PseudoForceNet, numbers: np.ndarray, positions: np.ndarray, target: np.ndarray,
                sigma: float) -> float:
    """Median over frames of |f(x, sigma)/sigma^2 - target| / |target| (target zero-mean per frame)."""
    target = target - target.mean(axis=1, keepdims=True)
    with torch.no_grad():
        f = model.eval().pseudo_forces(torch.as_tensor(numbers), torch.tensor(positions, dtype=torch.float32),
                                       torch.full((len(positions),), sigma))
    score = f.double().numpy() / sigma**2
    return float(np.median(np.linalg.norm(score - target, axis=(1, 2)) / np.linalg.norm(target, axis=(1, 2))))


def train_and_measure(args: argparse.Namespace) -> dict:
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    (data,) = load_system("ala2", "cpu", args.cache)
    positions, forces = data.training["biased"]
    frames = Frames(data.numbers, positions, forces=forces)
    train_frames, _ = split_frames(frames, 0.1, 0)
    rng = np.random.default_rng(0)
    reference = data.reference[rng.choice(len(data.reference), 200, replace=False)]
    reference_target = reference_forces(data.numbers, reference) / KT
    exact = np.load(args.exact) if args.exact else None
    schedule = NoiseSchedule(args.sigma_min, args.sigma_max)
    config = TrainConfig(loss="piecewise-weighted", temperature=ALA2_TEMPERATURE, schedule=schedule,
                         loss_weighting="score", atom_types="graph",
                         model={"graph_conditioned": True, **json.loads(args.model)})
    model = PseudoForceNet(default_model_config(train_frames, config))
    ema = copy.deepcopy(model).requires_grad_(False)
    sigma_data = model.config.sigma_data
    t_cross = (math.log(sigma_data / schedule.sigma_min) / math.log(schedule.sigma_max / schedule.sigma_min)
               if args.crossover == "thermal" else float(args.crossover))
    sigma_cross = schedule.sigma_min * (schedule.sigma_max / schedule.sigma_min) ** t_cross
    clean_all = torch.tensor(train_frames.positions - train_frames.positions.mean(axis=1, keepdims=True),
                             dtype=torch.float32)
    scaled_forces = torch.tensor(train_frames.forces / KT, dtype=torch.float32)
    numbers = torch.as_tensor(data.numbers)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed)
    log, cpu, next_eval, step = [], 0.0, 0.0, 0
    while True:
        if cpu >= next_eval or cpu >= args.cpu_seconds:
            row = dict(step=step, cpu_s=cpu, **{
                f"error_sigma_{sigma}": score_error(ema, data.numbers, reference, reference_target, sigma)
                for sigma in args.eval_sigma})
            if exact is not None:
                row["error_vs_exact"] = score_error(ema, data.numbers, reference[: len(exact["score"])],
                                                    exact["score"], float(exact["sigma"]))
            log.append(row)
            print(json.dumps(row), flush=True)
            next_eval += args.eval_every
            if cpu >= args.cpu_seconds:
                break
        started = time.process_time()
        model.train()
        indices = torch.randint(len(clean_all), (args.batch_size,), generator=generator)
        clean = clean_all[indices]
        sigma = schedule.draw(args.batch_size, generator)
        small = round(args.small_sigma_fraction * args.batch_size)
        sigma[:small] = schedule.sigma_min * (sigma_cross / schedule.sigma_min) ** torch.rand(small, generator=generator)
        noised = clean + sigma[:, None, None] * zero_com_noise(clean.shape, generator)
        weight = force_weight("piecewise-weighted", sigma, schedule, t_cross)
        target = pseudo_force_target(clean, noised, sigma, weight, scaled_forces[indices])
        squared = (model.pseudo_forces(numbers, noised, sigma) - target).square().flatten(1).mean(1)
        loss = (loss_weight("score", sigma, sigma_data) * squared).mean()
        factor = min(1.0, (step + 1) / 100)
        if args.cosine and step >= 100:
            factor = 0.5 * (1 + math.cos(math.pi * min(1.0, cpu / args.cpu_seconds)))
        for group in optimizer.param_groups:
            group["lr"] = args.lr * factor
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        with torch.no_grad():
            decay = min(0.999, (1 + step) / (10 + step))
            for averaged, current in zip(ema.parameters(), model.parameters()):
                averaged.lerp_(current, 1 - decay)
        step += 1
        cpu += time.process_time() - started
    return dict(settings=vars(args), parameters=sum(p.numel() for p in model.parameters()), log=log)


def write_exact_score(args: argparse.Namespace) -> None:
    """E[F(x0)/kT | x_sigma = x] for the first ``--n-exact`` reference frames, by restrained Langevin dynamics."""
    import openmm
    from openmm import unit

    (data,) = load_system("ala2", "cpu", args.cache)
    rng = np.random.default_rng(0)
    reference = data.reference[rng.choice(len(data.reference), 200, replace=False)][: args.n_exact]
    _, system = ala2_system()
    restraint = openmm.CustomExternalForce("0.5*k*((x-x0)^2+(y-y0)^2+(z-z0)^2)")
    sigma = args.eval_sigma[0]
    restraint.addGlobalParameter("k", KT / sigma**2 * 96.485 * 100)  # eV/Å² -> kJ/mol/nm²
    for name in ("x0", "y0", "z0"):
        restraint.addPerParticleParameter(name)
    for i in range(system.getNumParticles()):
        restraint.addParticle(i, [0.0, 0.0, 0.0])
    restraint.setForceGroup(1)
    system.addForce(restraint)
    integrator = openmm.LangevinMiddleIntegrator(ALA2_TEMPERATURE * unit.kelvin, 10 / unit.picosecond,
                                                 0.02 * sigma * unit.picosecond)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"), {"Threads": "1"})
    scores = []
    for index, x in enumerate(reference):
        for i, position in enumerate(x / 10.0):
            restraint.setParticleParameters(i, i, position.tolist())
        restraint.updateParametersInContext(context)
        context.setPositions(x / 10.0)
        context.setVelocitiesToTemperature(ALA2_TEMPERATURE * unit.kelvin, index + 1)
        integrator.step(500)
        total = np.zeros_like(x)
        for _ in range(args.exact_samples):
            integrator.step(5)
            state = context.getState(getForces=True, groups={0})
            total += state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer) / 964.85
        scores.append(total / args.exact_samples / KT)
    np.savez(args.write_exact, score=np.array(scores), sigma=sigma)
    target = reference_forces(data.numbers, reference) / KT
    target -= target.mean(axis=1, keepdims=True)
    exact = np.array(scores) - np.array(scores).mean(axis=1, keepdims=True)
    error = np.median(np.linalg.norm(exact - target, axis=(1, 2)) / np.linalg.norm(target, axis=(1, 2)))
    print(f"the exact score at sigma = {sigma} Å is {error:.3f} off F/kT (median over {len(target)} frames)")


def plot(paths: list[Path], out: Path, floor: float | None) -> None:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for path in paths:
        run = json.loads(path.read_text())
        minutes = [row["cpu_s"] / 60 for row in run["log"]]
        for key in [key for key in run["log"][0] if key.startswith("error_sigma_")]:
            label = f"{run['settings']['name']}, sigma = {key.removeprefix('error_sigma_')} Å"
            axis.plot(minutes, [row[key] for row in run["log"]], marker="o", label=label)
    if floor is not None:
        axis.axhline(floor, color="grey", linestyle="--", label="exact score at sigma = 0.01 Å (floor)")
    axis.set_xlabel("training CPU time (min, one thread)")
    axis.set_ylabel("median |s - F/kT| / |F/kT|")
    axis.set_title("alanine dipeptide, held-out frames")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(out, dpi=120)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", default="run", help="name of the run (its JSON: OUT/NAME.json)")
    parser.add_argument("--out", type=Path, default=Path("runs/score_fit"))
    parser.add_argument("--cache", type=Path, default=Path("runs/bench_ala2/cache"), help="ase-psm bench data cache")
    parser.add_argument("--model", default="{}", help="ModelConfig overrides as JSON")
    parser.add_argument("--cpu-seconds", type=float, default=3600.0)
    parser.add_argument("--eval-every", type=float, default=300.0, help="CPU seconds between evaluations")
    parser.add_argument("--eval-sigma", type=float, nargs="+", default=[0.01], help="Å (one or more)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--cosine", action="store_true", help="cosine decay of the learning rate over the CPU budget")
    parser.add_argument("--small-sigma-fraction", type=float, default=0.0)
    parser.add_argument("--sigma-min", type=float, default=0.01)
    parser.add_argument("--sigma-max", type=float, default=5.0)
    parser.add_argument("--crossover", default="0.05", help="diffusion time t of the force/noise switch, or thermal")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exact", type=Path, help="exact scores from --write-exact, to compare with as well")
    parser.add_argument("--write-exact", type=Path, help="estimate exact scores at --eval-sigma into this file")
    parser.add_argument("--n-exact", type=int, default=40)
    parser.add_argument("--exact-samples", type=int, default=1600)
    parser.add_argument("--plot", type=Path, nargs="+", help="plot these run JSON files")
    parser.add_argument("--floor", type=float, help="draw the exact score's error at sigma = 0.01 Å (--write-exact)")
    args = parser.parse_args()
    if args.plot:
        plot(args.plot, args.out / "score_fit.png", args.floor)
    elif args.write_exact:
        write_exact_score(args)
    else:
        result = train_and_measure(args)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
