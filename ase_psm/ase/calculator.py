"""PSMCalculator: a trained network as an ASE calculator of pseudo-forces."""

from __future__ import annotations

import os
from collections.abc import Sequence

import ase
import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from ..checkpoint import load_model, resolve_dtype

SIGMA_ITERATIONS = 6


class PSMCalculator(Calculator):
    """Pseudo-forces of a PSM / GPFF checkpoint.

    ``forces`` (eV/Å) are the pseudo-forces f = D(x) - x on the quadratic pseudo
    potential-energy surface U = 1/2 k |x - x0|^2 with k = 1 eV/Å^2, so a force of
    1 eV/Å is a displacement of 1 Å towards the denoised structure x0 = D(x).
    ``energy`` (eV) is that surface's value U = 1/2 k |f|^2 at the predicted x0;
    the network predicts forces directly, so they are not its exact gradient.
    ``results["sigma"]`` is the noise estimate sigma_hat = RMS(f) (Å).

    sigma: noise level (Å) given to a sigma-conditioned network. ``None``
    estimates it self-consistently, sigma <- RMS(f(x, sigma)) from the
    schedule's sigma_max. Time-step-free (GPFF) networks ignore it.
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(
        self,
        checkpoint: str | os.PathLike,
        device: str = "auto",
        dtype: str = "float32",
        sigma: float | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.model, self.checkpoint = load_model(checkpoint, device, dtype)
        self.device = next(self.model.parameters()).device
        self.dtype = resolve_dtype(dtype)
        if sigma is not None and sigma <= 0:
            raise ValueError(f"sigma must be a positive noise level in Å, got {sigma}")
        self.sigma = sigma

    @torch.inference_mode()
    def pseudo_forces(self, numbers: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pseudo-forces (B, N, 3) in eV/Å and sigma_hat (B,) in Å for B structures of the same atoms."""
        model = self.model
        z = torch.as_tensor(np.asarray(numbers), dtype=torch.long, device=self.device)
        x = torch.as_tensor(np.asarray(positions), dtype=self.dtype, device=self.device)
        if not model.config.sigma_conditioned:
            forces = model.pseudo_forces(z, x)
        else:
            schedule = self.checkpoint["schedule"]
            if self.sigma is not None:
                sigma = torch.full((len(x),), self.sigma, dtype=self.dtype, device=self.device)
            else:
                sigma = torch.full((len(x),), schedule["sigma_max"], dtype=self.dtype, device=self.device)
                for _ in range(SIGMA_ITERATIONS):
                    forces = model.pseudo_forces(z, x, sigma)
                    sigma = _rms(forces).clamp(schedule["sigma_min"], schedule["sigma_max"])
            forces = model.pseudo_forces(z, x, sigma)
        return forces.double().cpu().numpy(), _rms(forces).double().cpu().numpy()

    def calculate(
        self,
        atoms: ase.Atoms | None = None,
        properties: Sequence[str] = ("forces",),
        system_changes: Sequence[str] = all_changes,
    ) -> None:
        super().calculate(atoms, properties, system_changes)
        forces, sigma = self.pseudo_forces(self.atoms.numbers, self.atoms.positions[None])
        self.results = _results(forces[0], sigma[0])

    def calculate_batch(self, images: Sequence[ase.Atoms], batch_size: int = 256) -> list[dict]:
        """Results (forces, energy, sigma) for many structures, batched by composition and order."""
        results: list[dict | None] = [None] * len(images)
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, atoms in enumerate(images):
            groups.setdefault(tuple(atoms.numbers), []).append(index)
        for numbers, indices in groups.items():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                positions = np.stack([images[i].positions for i in chunk])
                forces, sigma = self.pseudo_forces(np.array(numbers), positions)
                for i, f, s in zip(chunk, forces, sigma):
                    results[i] = _results(f, s)
        return results


def _rms(forces: torch.Tensor) -> torch.Tensor:
    return forces.flatten(1).square().mean(dim=1).sqrt()


def _results(forces: np.ndarray, sigma: float) -> dict:
    energy = 0.5 * float(np.sum(forces**2))
    return {"forces": forces, "energy": energy, "free_energy": energy, "sigma": float(sigma)}
