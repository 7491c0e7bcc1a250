"""The σ → 0 end of the score as a force field: ase-psm's network against MACE, force error vs CPU time.

Both models learn the forces of the same frames on one CPU thread and are scored every ``--eval-every``
CPU seconds (evaluation not counted) on held-out frames: the relative force RMSE
sqrt(sum |F_pred - F|^2 / sum |F|^2) over every atom and frame (forces with their per-frame mean removed).

- data: aspirin (21 atoms) by GFN2-xTB Langevin MD at 500 K, 0.5 fs (the md17 benchmark's generator):
  training frames are the first ``--n-train`` MD steps of one run (the md17 ``early`` protocol), the held-out
  frames one every 50 steps of a second run after ``--burn-in`` steps (1000).
- ours: the network ``ase_psm.train`` builds for one molecule (graph atom types, graph-conditioned), at the
  noise level σ0 = 0.002 Å with PSM's target there, σ0² F/kT: the t → 0 limit of PSM taken literally;
  ``--conservative`` uses the energy head (force = -∇E).
- mace: mace-torch's MACE (32 channels, L ≤ 1, 2 interactions, correlation 3, r_max 5 Å, float32), trained
  on energies and forces (weights 1 and 100, MACE's defaults) with Adam at lr 0.01 and an EMA of 0.99.
  mace-torch 0.3.16 pins e3nn 0.4.4 (ase-psm needs >= 0.5.1), so it runs in its own environment and this
  mode imports nothing of ase-psm.

    python benchmarks/force_field_fit.py data --out runs/ff_fit
    python benchmarks/force_field_fit.py ours --out runs/ff_fit --cpu-seconds 900
    python benchmarks/force_field_fit.py ours --out runs/ff_fit --cpu-seconds 900 --conservative
    python -m venv mace-venv && mace-venv/bin/pip install torch==2.13.0 mace-torch==0.3.16
    mace-venv/bin/python benchmarks/force_field_fit.py mace --out runs/ff_fit --cpu-seconds 900
    python benchmarks/force_field_fit.py plot --out runs/ff_fit --plot docs/force_field_fit.png
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

TEMPERATURE = 500.0  # K, the md17 benchmark's
KT = 8.617333262e-5 * TEMPERATURE  # eV
SIGMA0 = 0.002  # Å, the smallest noise level of ase-psm's default schedule
BATCH = 16


def write_data(out: Path, n_train: int, n_held_out: int, burn_in: int) -> None:
    """GFN2-xTB aspirin frames: ``data.npz`` with numbers, train/held-out positions (Å), forces (eV/Å), energies (eV)."""
    from ase_psm.benchmarks.config import MD17_MOLECULES
    from ase_psm.benchmarks.data import molecule_from_smiles, xtb_langevin

    atoms = molecule_from_smiles(MD17_MOLECULES["aspirin"])
    started = time.perf_counter()
    train = xtb_langevin(atoms, n_train, 1, seed=0, progress=False, label="train")
    held_out = xtb_langevin(atoms, burn_in + 50 * n_held_out, 50, seed=1, progress=False, label="held-out")
    skip = burn_in // 50
    np.savez(out / "data.npz", numbers=atoms.numbers, train_positions=train[0], train_forces=train[1],
             train_energies=train[2], held_out_positions=held_out[0][skip:], held_out_forces=held_out[1][skip:],
             held_out_energies=held_out[2][skip:], seconds=time.perf_counter() - started)


def relative_rmse(predicted: np.ndarray, target: np.ndarray) -> float:
    """sqrt(sum |p - t|^2 / sum |t|^2) with each frame's mean force removed from both."""
    predicted = predicted - predicted.mean(axis=1, keepdims=True)
    target = target - target.mean(axis=1, keepdims=True)
    return float(np.sqrt(np.square(predicted - target).sum() / np.square(target).sum()))


def run_for(cpu_seconds: float, eval_every: float, step: Callable[[int], None], evaluate: Callable[[], float],
            name: str) -> list[dict]:
    """Call ``step(i)`` until ``cpu_seconds`` of process CPU time; ``evaluate()`` every ``eval_every`` of them."""
    log: list[dict] = []
    cpu, next_eval, i = 0.0, 0.0, 0
    while True:
        if cpu >= next_eval or cpu >= cpu_seconds:
            log.append({"step": i, "cpu_s": cpu, "relative_force_rmse": evaluate()})
            print(f"{name} step {i} cpu {cpu:.0f} s: relative force RMSE {log[-1]['relative_force_rmse']:.3f}", flush=True)
            next_eval += eval_every
            if cpu >= cpu_seconds:
                return log
        started = time.process_time()
        step(i)
        cpu += time.process_time() - started
        i += 1


def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for averaged, current in zip(ema.parameters(), model.parameters()):
            averaged.lerp_(current, 1 - decay)


def train_ours(data: dict, args: argparse.Namespace) -> tuple[list[dict], int]:
    """ase-psm's network at σ0 with PSM's small-σ target; (log, parameter count)."""
    from ase_psm.data import Frames
    from ase_psm.diffusion.noise import zero_com_noise
    from ase_psm.diffusion.targets import loss_weight, pseudo_force_target
    from ase_psm.model import PseudoForceNet
    from ase_psm.train.config import TrainConfig
    from ase_psm.train.trainer import default_model_config

    frames = Frames(data["numbers"], data["train_positions"], forces=data["train_forces"])
    config = TrainConfig(temperature=TEMPERATURE, atom_types="graph",
                         model={"graph_conditioned": True, "conservative": args.conservative})
    model = PseudoForceNet(default_model_config(frames, config))
    ema = copy.deepcopy(model).requires_grad_(False)
    numbers = torch.as_tensor(data["numbers"])
    clean_all = torch.tensor(data["train_positions"], dtype=torch.float32)
    scaled_forces = torch.tensor(data["train_forces"] / KT, dtype=torch.float32)
    held_out = torch.tensor(data["held_out_positions"], dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr or 3e-3)
    generator = torch.Generator().manual_seed(0)
    sigma = torch.full((BATCH,), SIGMA0)

    def step(i: int) -> None:
        model.train()
        indices = torch.randint(len(clean_all), (BATCH,), generator=generator)
        clean = clean_all[indices]
        noised = clean + SIGMA0 * zero_com_noise(clean.shape, generator)
        target = pseudo_force_target(clean, noised, sigma, torch.ones(BATCH), scaled_forces[indices])
        squared = (model.pseudo_forces(numbers, noised, sigma) - target).square().flatten(1).mean(1)
        loss = (loss_weight("score", sigma, model.config.sigma_data) * squared).mean()
        for group in optimizer.param_groups:
            group["lr"] = (args.lr or 3e-3) * min(1.0, (i + 1) / 100)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        update_ema(ema, model, min(0.999, (1 + i) / (10 + i)))

    def evaluate() -> float:
        sigmas = torch.full((len(held_out),), SIGMA0)
        with torch.set_grad_enabled(args.conservative):
            score = ema.eval().pseudo_forces(numbers, held_out, sigmas).detach().double().numpy() / SIGMA0**2
        return relative_rmse(score * KT, data["held_out_forces"])

    name = "ase-psm conservative" if args.conservative else "ase-psm"
    return run_for(args.cpu_seconds, args.eval_every, step, evaluate, name), sum(p.numel() for p in model.parameters())


def _mace_batches(data: dict, prefix: str, z_table, cutoff: float, batch_size: int, shuffle: bool):
    """A mace-torch DataLoader over the ``prefix`` frames (energies in eV, forces in eV/Å)."""
    import ase
    from mace import data as mace_data
    from mace.tools import torch_geometric

    configs = []
    for positions, forces, energy in zip(data[f"{prefix}_positions"], data[f"{prefix}_forces"],
                                         data[f"{prefix}_energies"]):
        atoms = ase.Atoms(numbers=data["numbers"], positions=positions)
        atoms.info["REF_energy"], atoms.arrays["REF_forces"] = float(energy), forces
        configs.append(mace_data.config_from_atoms(atoms, key_specification=mace_data.KeySpecification(
            info_keys={"energy": "REF_energy"}, arrays_keys={"forces": "REF_forces"})))
    dataset = [mace_data.AtomicData.from_config(c, z_table=z_table, cutoff=cutoff) for c in configs]
    return torch_geometric.dataloader.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=shuffle)


def train_mace(data: dict, args: argparse.Namespace) -> tuple[list[dict], int]:
    """mace-torch's MACE on energies and forces; (log, parameter count)."""
    torch.serialization.add_safe_globals([slice])  # e3nn 0.4.4 loads its constants with torch.load (weights only)
    from e3nn import o3
    from mace import modules, tools

    torch.set_default_dtype(torch.float32)
    z_table = tools.AtomicNumberTable(sorted({int(z) for z in data["numbers"]}))
    train_loader = _mace_batches(data, "train", z_table, 5.0, BATCH, shuffle=True)
    held_out_loader = _mace_batches(data, "held_out", z_table, 5.0, 64, shuffle=False)
    counts = np.array([[np.sum(data["numbers"] == z) for z in z_table.zs]], dtype=float)
    e0 = np.linalg.lstsq(counts, [data["train_energies"].mean()], rcond=None)[0]  # one molecule: a minimum-norm E0
    model = modules.MACE(
        r_max=5.0, num_bessel=8, num_polynomial_cutoff=5, max_ell=3,
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        num_interactions=2, num_elements=len(z_table), hidden_irreps=o3.Irreps("32x0e + 32x1o"),
        MLP_irreps=o3.Irreps("16x0e"), atomic_energies=e0, avg_num_neighbors=modules.compute_avg_num_neighbors(
            train_loader), atomic_numbers=z_table.zs, correlation=3, gate=torch.nn.functional.silu)
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr or 0.01, amsgrad=True)
    batches = iter(())

    def step(i: int) -> None:
        nonlocal batches
        batch = next(batches, None)
        if batch is None:
            batches = iter(train_loader)
            batch = next(batches)
        output = model(batch.to_dict(), training=True, compute_force=True)
        atoms_per_graph = (batch.ptr[1:] - batch.ptr[:-1]).to(output["energy"].dtype)
        energy_loss = torch.mean(((output["energy"] - batch.energy) / atoms_per_graph) ** 2)
        loss = energy_loss + 100.0 * torch.mean((output["forces"] - batch.forces) ** 2)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        update_ema(ema, model, 0.99)

    def evaluate() -> float:
        predicted = [ema(b.to_dict(), training=False, compute_force=True)["forces"].detach().numpy()
                     for b in held_out_loader]
        return relative_rmse(np.concatenate(predicted).reshape(data["held_out_forces"].shape), data["held_out_forces"])

    return run_for(args.cpu_seconds, args.eval_every, step, evaluate, "mace"), sum(p.numel() for p in model.parameters())


def plot(out: Path, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for result in sorted(out.glob("fit_*.json")):
        run = json.loads(result.read_text())
        axis.plot([row["cpu_s"] / 60 for row in run["log"]], [row["relative_force_rmse"] for row in run["log"]],
                  marker="o", label=f"{run['model']} ({run['parameters']:,} parameters)")
    axis.set_xlabel("training CPU time (min, one thread)")
    axis.set_ylabel("relative force RMSE, held-out frames")
    axis.set_title("aspirin, GFN2-xTB at 500 K")
    axis.set_yscale("log")
    axis.grid(alpha=0.3, which="both")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["data", "ours", "mace", "plot"])
    parser.add_argument("--out", type=Path, default=Path("ff_fit"))
    parser.add_argument("--cpu-seconds", type=float, default=900.0, help="training CPU time of one model (s)")
    parser.add_argument("--eval-every", type=float, default=60.0, help="CPU seconds between evaluations")
    parser.add_argument("--n-train", type=int, default=1000, help="data: training frames (first MD steps)")
    parser.add_argument("--n-held-out", type=int, default=200, help="data: held-out frames")
    parser.add_argument("--burn-in", type=int, default=1000, help="data: MD steps before the first held-out frame")
    parser.add_argument("--conservative", action="store_true", help="ours: the energy head (force = -grad E)")
    parser.add_argument("--lr", type=float, help="learning rate (default: ours 3e-3, MACE 0.01)")
    parser.add_argument("--plot", type=Path, default=Path("force_field_fit.png"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    if args.mode == "data":
        write_data(args.out, args.n_train, args.n_held_out, args.burn_in)
        return
    if args.mode == "plot":
        plot(args.out, args.plot)
        return
    torch.manual_seed(0)
    with np.load(args.out / "data.npz") as stored:
        data = {key: stored[key] for key in stored.files}
    log, parameters = (train_ours if args.mode == "ours" else train_mace)(data, args)
    name = "mace" if args.mode == "mace" else "ase-psm conservative" if args.conservative else "ase-psm"
    result = {"model": name, "parameters": parameters, "settings": {k: str(v) for k, v in vars(args).items()},
              "torch": torch.__version__, "log": log}
    (args.out / f"fit_{name.replace(' ', '_')}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
