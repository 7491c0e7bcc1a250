"""PseudoForceDenoiser: time-step-free adaptive denoising as an ASE optimizer."""

from __future__ import annotations

import os

import ase
import numpy as np
from ase.optimize.optimize import Optimizer

from ..validation import check_atoms
from .calculator import PSMCalculator
from .constraints import fixed_atom_mask


class PseudoForceDenoiser(Optimizer):
    """Adaptive denoising on the pseudo potential-energy surface (GPFF).

    Each step reads the pseudo-forces f (eV/Å = Å displacement, k = 1 eV/Å^2) of
    the attached calculator, estimates the noise level sigma_hat = RMS(f) over the
    free atoms, jumps to the denoised structure x0 = x + f and, while sigma_hat >
    ``sigma_stop``, puts back ``kappa`` sigma_hat of fresh noise (annealing);
    below it, steps are plain denoising steps x <- x + f. ``run(fmax, steps)``
    stops when every pseudo-force is below fmax (Å) and returns whether it did.
    ASE constraints (FixAtoms) are honoured: fixed atoms neither move nor get noise.
    """

    def __init__(
        self,
        atoms: ase.Atoms,
        checkpoint: str | os.PathLike | None = None,
        *,
        kappa: float = 0.7,
        sigma_stop: float = 0.02,
        seed: int | None = None,
        logfile: str | None = "-",
        trajectory: str | None = None,
        device: str = "auto",
        dtype: str = "float32",
        **kwargs,
    ) -> None:
        if checkpoint is not None:
            atoms.calc = PSMCalculator(checkpoint, device=device, dtype=dtype)
        if atoms.calc is None:
            raise ValueError(
                "PseudoForceDenoiser needs pseudo-forces: attach a PSMCalculator to the atoms "
                "or pass a checkpoint"
            )
        if isinstance(atoms.calc, PSMCalculator):
            check_atoms(atoms, atoms.calc.model.config.species)
        if not 0 <= kappa < 1:
            raise ValueError(f"kappa must lie in [0, 1), got {kappa}")
        self.kappa = kappa
        self.sigma_stop = sigma_stop
        self.rng = np.random.default_rng(seed)
        super().__init__(atoms, logfile=logfile, trajectory=trajectory, **kwargs)

    def step(self) -> None:
        optimizable = self.optimizable
        forces = -optimizable.get_gradient().reshape(-1, 3)
        positions = optimizable.get_x().reshape(-1, 3)
        free = ~fixed_atom_mask(self.atoms)
        sigma_hat = float(np.sqrt(np.mean(forces[free] ** 2))) if free.any() else 0.0
        positions = positions + forces
        if sigma_hat > self.sigma_stop:
            noise = self.rng.standard_normal(positions.shape)
            if free.all():
                noise -= noise.mean(axis=0)
            noise[~free] = 0.0
            positions = positions + self.kappa * sigma_hat * noise
        optimizable.set_x(positions.ravel())
