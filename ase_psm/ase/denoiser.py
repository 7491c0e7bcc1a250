"""PseudoForceDenoiser: time-step-free adaptive denoising as an ASE optimizer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

import ase
import numpy as np
from ase.optimize.optimize import Optimizer

from ..validation import check_atoms, fixed_atom_mask
from .calculator import PSMCalculator


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
        logfile: IO | str | Path | None = "-",
        trajectory: str | Path | None = None,
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
        if isinstance(trajectory, Path):
            trajectory = str(trajectory)  # ASE 3.23-3.25 open only str paths (and take a Path for a writer)
        super().__init__(atoms, logfile=logfile, trajectory=trajectory, **kwargs)

    def step(self) -> None:
        """One denoising step x <- x + f (+ annealing noise), on the atoms' own positions and forces.

        Reads ``self.atoms`` rather than ASE's optimizable, whose gradient changed name and sign
        between ASE 3.25, 3.26 and 3.27.
        """
        forces = self.atoms.get_forces()
        free = ~fixed_atom_mask(self.atoms)
        sigma_hat = float(np.sqrt(np.mean(forces[free] ** 2))) if free.any() else 0.0
        positions = self.atoms.get_positions() + forces
        if sigma_hat > self.sigma_stop:
            noise = self.rng.standard_normal(positions.shape)
            if free.all():
                noise -= noise.mean(axis=0)
            noise[~free] = 0.0
            positions = positions + self.kappa * sigma_hat * noise
        self.atoms.set_positions(positions)

    def todict(self) -> dict:
        """ASE's optimizer description (written into trajectories) with the denoiser's settings."""
        return {**super().todict(), "kappa": self.kappa, "sigma_stop": self.sigma_stop}

    def converged(self, forces: np.ndarray | None = None, *, gradient: np.ndarray | None = None) -> bool:
        """Whether every atom's pseudo-force (eV/Å) is below ``fmax``; default: the atoms' current forces.

        Takes ``forces`` (n_atoms, 3) as ASE 3.23-3.25 and 3.28+ do, the flat gradient that ASE 3.26-3.27
        pass in its place, or ``gradient=`` as ASE 3.28+ do (its sign does not change the norm).
        """
        if forces is None:
            forces = self.atoms.get_forces() if gradient is None else gradient
        return self._below_fmax(forces)

    def gradient_converged(self, gradient: np.ndarray) -> bool:
        """Whether every atom's part of the flat gradient (ASE >= 3.28 passes it) is below ``fmax``."""
        return self._below_fmax(gradient)

    def _below_fmax(self, vectors: np.ndarray) -> bool:
        if self.fmax is None:
            raise RuntimeError("PseudoForceDenoiser.converged needs fmax: call run(fmax=...) or irun(fmax=...) first")
        norms = np.linalg.norm(np.asarray(vectors).reshape(-1, 3), axis=1)
        return bool(norms.max(initial=0.0) < self.fmax)
