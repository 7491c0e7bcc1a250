"""One-step denoising of noised reference structures: does a model remove the noise it is given?

Reference structures x0 (the first ``--n`` of a cached LJ benchmark data file) are noised with
zero-mean Gaussian noise of width sigma (reduced units, per coordinate), x = x0 + sigma z, and
passed once through each checkpoint. Printed per sigma: the RMS of the pseudo-force f(x) (the
displacement the model applies), the RMS of the true displacement x0 - x, and the mean relative
error |x + f - x0| / |x - x0|. A time-step-free checkpoint is called without sigma, so this shows
whether it can tell the noise level from the structure alone (docs/benchmarks.md, LJ-13 `table2`
for the time-step-free models). Below the data's thermal width the noise cannot be told from
thermal motion, so relative errors near 1 there are expected of every model.

    python benchmarks/probes/lj_denoising_probe.py runs/bench_lj13_cpu/cache/lj13-<key>.npz \\
        runs/lj13_table2_tsf/runs/lj13_table2_gpff_seed0/model.pt ...      # seconds on one core
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ase_psm.checkpoint import load_model


def probe(checkpoint: str, reference: np.ndarray, sigmas: list[float]) -> None:
    """Print the RMS pseudo-force, RMS true displacement and relative error per sigma."""
    model, _ = load_model(checkpoint, "cpu", "float32")
    x0 = torch.tensor(reference, dtype=torch.float32)
    x0 = x0 - x0.mean(dim=1, keepdim=True)
    numbers = torch.full((x0.shape[1],), model.config.species[0])
    generator = torch.Generator().manual_seed(0)
    print(f"{checkpoint} (sigma-conditioned: {model.config.sigma_conditioned})")
    for sigma in sigmas:
        noise = torch.randn(x0.shape, generator=generator)
        displacement = sigma * (noise - noise.mean(dim=1, keepdim=True))
        x = x0 + displacement
        with torch.no_grad():
            f = model.pseudo_forces(numbers, x, torch.tensor(sigma) if model.config.sigma_conditioned else None)
        error = ((x + f - x0).pow(2).sum((1, 2)) / displacement.pow(2).sum((1, 2))).sqrt().mean()
        print(f"  sigma {sigma:5.2f}: RMS f {f.pow(2).mean().sqrt():.4f}, "
              f"RMS x0 - x {displacement.pow(2).mean().sqrt():.4f}, relative error {error:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="cached LJ data file (NPZ with a 'reference' array)")
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--n", type=int, default=128, help="reference structures")
    parser.add_argument("--sigmas", nargs="+", type=float, default=[0.01, 0.03, 0.1, 0.3, 1.0, 2.0, 3.0])
    args = parser.parse_args()
    torch.set_num_threads(1)
    reference = np.load(args.data)["reference"][: args.n]
    for checkpoint in args.checkpoints:
        probe(checkpoint, reference, args.sigmas)


if __name__ == "__main__":
    main()
