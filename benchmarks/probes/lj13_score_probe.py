"""How accurate is a model's score near sigma_min? Probe the shipped LJ-13 models.

For reference (Boltzmann) structures x, compares the learned score s = f(x, sigma)/sigma^2 with
the true F(x)/kT (kT = 1): median relative error, cosine and norm ratio, per model and sigma.
With ``--langevin K``, also samples ``--n`` structures with ``pc`` (100 levels) and refines them
with K overdamped Langevin steps x <- x + eta s + sqrt(2 eta) z at sigma_min, printing the
distance TVD and energy median along the way (docs/lj13.md, item 6).

    python benchmarks/probes/lj13_score_probe.py                     # seconds
    python benchmarks/probes/lj13_score_probe.py --langevin 400 --n 256 --models lj13-dsm   # ~10 min on 2 cores
"""

from __future__ import annotations

import argparse

import ase
import numpy as np
import torch

from ase_psm import sample
from ase_psm.checkpoint import load_model
from ase_psm.demo import load_lj13_data
from ase_psm.metrics import distance_tvd
from ase_psm.systems import lj_energy, lj_forces


def probe(model, reference: np.ndarray, sigma: float) -> tuple[float, float, float]:
    """Median relative error, cosine and norm ratio of the learned score against F/kT."""
    forces = lj_forces(reference)
    forces -= forces.mean(axis=1, keepdims=True)
    numbers = torch.full((reference.shape[1],), 18)
    x = torch.tensor(reference, dtype=torch.float32)
    with torch.no_grad():
        score = model.pseudo_forces(numbers, x, torch.full((len(x),), sigma)).double().numpy() / sigma**2
    norm_s, norm_f = np.linalg.norm(score, axis=(1, 2)), np.linalg.norm(forces, axis=(1, 2))
    error = np.linalg.norm(score - forces, axis=(1, 2)) / norm_f
    cosine = (score * forces).sum(axis=(1, 2)) / (norm_s * norm_f)
    return float(np.median(error)), float(np.median(cosine)), float(np.median(norm_s / norm_f))


def langevin(name: str, reference: np.ndarray, n: int, steps: int, eta: float, sigma: float) -> None:
    template = ase.Atoms(numbers=[18] * 13, positions=reference[0])
    structures = sample(name, template, n=n, sampler="pc", steps=100, seed=0, device="cpu", progress=False)
    x = torch.tensor(np.stack([a.positions for a in structures]), dtype=torch.float32)
    model, _ = load_model(name, "cpu")
    numbers, generator = torch.full((13,), 18), torch.Generator().manual_seed(1)
    checkpoints = {steps // 8, steps // 4, steps // 2, steps}
    print(f"{name} pc: TVD {distance_tvd(x.numpy(), reference):.4f}, E median {np.median(lj_energy(x.numpy())):.2f}")
    with torch.no_grad():
        for k in range(1, steps + 1):
            score = model.pseudo_forces(numbers, x, torch.full((len(x),), sigma)) / sigma**2
            noise = torch.randn(x.shape, generator=generator)
            x = x + eta * score + (2 * eta) ** 0.5 * (noise - noise.mean(dim=1, keepdim=True))
            if k in checkpoints:
                positions = x.numpy().astype(np.float64)
                print(f"{name} + {k} Langevin steps: TVD {distance_tvd(positions, reference):.4f}, "
                      f"E median {np.median(lj_energy(positions)):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["lj13-dsm", "lj13-psm"])
    parser.add_argument("--sigmas", nargs="+", type=float, default=[0.01, 0.02, 0.05])
    parser.add_argument("--langevin", type=int, default=0, help="Langevin steps after pc sampling (0: none)")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--eta", type=float, default=2e-4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    reference = load_lj13_data()["reference"]
    for name in args.models:
        model, _ = load_model(name, "cpu")
        for sigma in args.sigmas:
            error, cosine, ratio = probe(model, reference[:256], sigma)
            print(f"{name} sigma {sigma}: relative error {error:.3f}, cosine {cosine:.3f}, norm ratio {ratio:.3f}")
        if args.langevin:
            langevin(name, reference, args.n, args.langevin, args.eta, min(args.sigmas))


if __name__ == "__main__":
    main()
