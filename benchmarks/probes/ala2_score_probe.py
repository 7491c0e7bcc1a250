"""How close is each ala2 benchmark model's small-sigma score to the physical force F/kT?

PSM's claim rests on its score at the smallest noise levels being the force label F/kT (the score of
the Boltzmann density), where DSM only sees noise. For frames of an `ase-psm bench ala2` run (held-out
reference frames and training frames), this compares the learned score s = f(x, sigma) / sigma^2
(1/Å) of every model of one seed with F/kT from the amber14 System (no constraints, as the data):
median relative error |s - F/kT| / |F/kT|, cosine and norm ratio |s| / |F/kT|, per sigma (Å).
The score of the noised density approaches F/kT as sigma -> 0, so at sigma well below the thermal
length (1/RMS(F/kT), about 0.03 Å here) a perfect model has a small error; both losses would then agree.

    python benchmarks/probes/ala2_score_probe.py runs/bench_ala2_cpu_free --seed 0     # under a minute
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from ase.units import kB

from ase_psm.benchmarks.data import ALA2_TEMPERATURE, ala2_system
from ase_psm.checkpoint import load_model
from ase_psm.data import Frames


def benchmark_forces(numbers: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Forces (eV/Å) of the benchmark's System (amber14, vacuum, as the data) for (F, 22, 3) Å."""
    from ase_psm.openmm import label_forces

    pdb, system = ala2_system()
    labelled = label_forces(Frames(numbers, positions), system, topology=pdb.topology, progress=False)
    assert labelled.forces is not None
    return labelled.forces


def score_agreement(model, numbers: np.ndarray, positions: np.ndarray, target: np.ndarray,
                    sigma: float) -> dict[str, float]:
    """Median relative error, cosine and norm ratio of f(x, sigma)/sigma^2 against ``target`` (1/Å)."""
    target = target - target.mean(axis=1, keepdims=True)  # the network's output has zero mean
    sigmas = torch.full((len(positions),), sigma) if model.config.sigma_conditioned else None
    with torch.no_grad():
        f = model.pseudo_forces(torch.as_tensor(numbers), torch.tensor(positions, dtype=torch.float32), sigmas)
    score = f.double().numpy() / sigma**2
    norm_s, norm_t = np.linalg.norm(score, axis=(1, 2)), np.linalg.norm(target, axis=(1, 2))
    return dict(
        relative_error=float(np.median(np.linalg.norm(score - target, axis=(1, 2)) / norm_t)),
        cosine=float(np.median((score * target).sum(axis=(1, 2)) / (norm_s * norm_t))),
        norm_ratio=float(np.median(norm_s / norm_t)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the --out directory of an `ase-psm bench ala2` run")
    parser.add_argument("--cache", type=Path, help="its data cache (default: OUT/cache)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=200, help="frames of each set")
    parser.add_argument("--sigmas", nargs="+", type=float, default=[0.01, 0.02, 0.05, 0.1])
    args = parser.parse_args()
    torch.set_num_threads(1)
    cache = args.cache or args.out / "cache"
    files = sorted(cache.glob("ala2-*.npz"))
    if not files:
        raise SystemExit(f"no ala2 data in {cache}: run `ase-psm bench ala2` first or pass --cache")
    data = np.load(files[-1])
    kT = kB * ALA2_TEMPERATURE
    rng = np.random.default_rng(args.seed)
    reference = data["reference"][rng.choice(len(data["reference"]), args.n, replace=False)]
    sets = {
        "reference": (reference, benchmark_forces(data["numbers"], reference) / kT),
        "training": (data["biased"][: args.n], data["biased_forces"][: args.n] / kT),
    }
    rows = []
    for checkpoint in sorted(args.out.glob(f"runs/ala2_*_seed{args.seed}/model.pt")):
        model, _ = load_model(checkpoint, "cpu")
        name = checkpoint.parent.name.removeprefix("ala2_biased_").removesuffix(f"_seed{args.seed}")
        for set_name, (positions, target) in sets.items():
            for sigma in args.sigmas:
                row = dict(model=name, frames=set_name, sigma=sigma,
                           **score_agreement(model, data["numbers"], positions, target, sigma))
                rows.append(row)
                print(f"{name:20s} {set_name:9s} sigma {sigma:5.3f} Å: relative error {row['relative_error']:.3f}, "
                      f"cosine {row['cosine']:.3f}, norm ratio {row['norm_ratio']:.3f}", flush=True)
    if not rows:
        raise SystemExit(f"no models of seed {args.seed} under {args.out}/runs")
    path = args.out / f"score_probe_seed{args.seed}.json"
    path.write_text(json.dumps(rows, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
