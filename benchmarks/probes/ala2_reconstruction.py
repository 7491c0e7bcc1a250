"""At which noise level does a model lose alanine dipeptide's Ramachandran distribution?

Reference frames of `ase-psm bench ala2` (Boltzmann samples) are noised to a starting level sigma_s and
denoised by the `pc` sampler from sigma_s down to the checkpoint's sigma_min (the levels of a 100-level
run from 5 Å, cut at sigma_s). A model whose score is exact at every sigma <= sigma_s returns the
reference distribution, so the Ramachandran TVD of the result stays at the sampling floor (the TVD of
the frames before noising); where it rises, the model's score above that sigma is what fails. Mirror
images of the template are reflected before scoring, as `ase_psm.sample` does. One CPU thread.

    python benchmarks/probes/ala2_reconstruction.py runs/a/model.pt runs/b/model.pt --cache runs/cache \\
        --sigmas 0.1 0.2 0.4 0.8 1.6 --n 256 --out runs/reconstruction.json --plot runs/reconstruction.png
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import ase
import numpy as np
import torch

from ase_psm.benchmarks.data import ALA2_PDB, ala2_data
from ase_psm.checkpoint import load_model
from ase_psm.chemistry.bonds import molecule_bonds
from ase_psm.chemistry.stereo import signed_volumes, stereocentres
from ase_psm.diffusion.noise import zero_com_noise
from ase_psm.diffusion.samplers import SAMPLERS, Denoiser, noise_levels
from ase_psm.generate.checks import mirror_enantiomers
from ase_psm.generate.sampling import make_denoiser
from ase_psm.metrics.structure import phi_psi, ramachandran_tvd
from ase_psm.model import topology_classes

LEVELS_PER_DECADE = 100 / math.log10(5.0 / 0.002)
"""Levels per decade of sigma of the benchmark's `pc` run (100 levels from 5 to 0.002 Å)."""


def checkpoint_denoiser(checkpoint: Path, template: ase.Atoms) -> tuple[Denoiser, float]:
    """The checkpoint's denoiser for ``template``'s molecule on the CPU, and its sigma_min (Å)."""
    model, data = load_model(checkpoint, "cpu")
    topology = topology_classes(len(template), molecule_bonds(template)) if model.needs_topology else None
    return make_denoiser(model, torch.as_tensor(template.numbers), topology), data["schedule"]["sigma_min"]


def reconstruct(denoise: Denoiser, sigma_min: float, clean: np.ndarray, sigma_s: float, seed: int) -> np.ndarray:
    """``clean`` frames (n, N, 3) Å noised to ``sigma_s`` Å and denoised by `pc` from there to sigma 0."""
    steps = max(2, round(LEVELS_PER_DECADE * math.log10(sigma_s / sigma_min)))
    generator = torch.Generator().manual_seed(seed)
    x0 = torch.as_tensor(clean, dtype=torch.float32)
    x0 = x0 - x0.mean(dim=1, keepdim=True)
    x = x0 + sigma_s * zero_com_noise(x0.shape, generator, x0.dtype)
    with torch.no_grad():
        x = SAMPLERS["pc"](denoise, x, noise_levels("pc", steps, sigma_min, sigma_s).float(), generator=generator)
    return x.double().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--size", default="cpu", help="the bench size whose data to use (tiny, cpu)")
    parser.add_argument("--cache", default="runs/cache", help="the bench's data cache directory")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.1, 0.2, 0.4, 0.8, 1.6], help="sigma_s (Å)")
    parser.add_argument("--n", type=int, default=256, help="reference frames per sigma_s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/ala2_reconstruction.json"))
    parser.add_argument("--plot", type=Path, help="PNG of the TVD against sigma_s")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = ala2_data(args.size, args.cache)
    template = ase.Atoms(numbers=data.numbers, positions=data.reference[0])
    reference = phi_psi(data.reference, str(ALA2_PDB))
    frames = np.random.default_rng(args.seed).choice(len(data.reference), args.n, replace=False)
    floor = ramachandran_tvd(reference[frames], reference)
    centres = stereocentres(template.numbers, molecule_bonds(template))
    handedness = np.sign(signed_volumes(template.positions[None], centres))[0]
    rows = []
    for checkpoint in args.checkpoints:
        denoise, sigma_min = checkpoint_denoiser(checkpoint, template)
        for sigma_s in args.sigmas:
            started = time.perf_counter()
            positions = reconstruct(denoise, sigma_min, data.reference[frames], sigma_s, args.seed)
            mirrored = mirror_enantiomers(positions, centres, handedness) / len(positions)  # as sample() does
            tvd = ramachandran_tvd(phi_psi(positions, str(ALA2_PDB)), reference)
            rows.append(dict(checkpoint=str(checkpoint), sigma_s=sigma_s, ramachandran_tvd=tvd, mirrored=mirrored,
                             floor=floor, seconds=time.perf_counter() - started))
            print(f"{checkpoint} sigma_s {sigma_s:g} Å: TVD {tvd:.3f} (floor {floor:.3f}), "
                  f"{mirrored:.0%} mirrored, {rows[-1]['seconds']:.0f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    if args.plot:
        plot(rows, args.plot)


def plot(rows: list[dict], path: Path) -> None:
    """Ramachandran TVD against sigma_s, one line per checkpoint, the floor dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 3.5))
    for checkpoint in dict.fromkeys(row["checkpoint"] for row in rows):
        mine = [row for row in rows if row["checkpoint"] == checkpoint]
        axes.plot([r["sigma_s"] for r in mine], [r["ramachandran_tvd"] for r in mine], "o-",
                  label=Path(checkpoint).parent.name or checkpoint)
    axes.axhline(rows[0]["floor"], color="grey", linestyle="--", label="reference frames (floor)")
    sigmas = sorted({row["sigma_s"] for row in rows})
    axes.set(xscale="log", xlabel="starting noise level σ_s (Å)", ylabel="Ramachandran TVD to the reference")
    axes.set_title("alanine dipeptide: reference frames noised and denoised", fontsize=9)
    axes.set_xticks(sigmas, [f"{sigma:g}" for sigma in sigmas])
    axes.minorticks_off()
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
