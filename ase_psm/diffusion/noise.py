"""Variance-exploding noise: schedules, noise-level draws and translation-free noise."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment


@dataclass
class NoiseSchedule:
    """Noise levels sigma (Å) for training and sampling.

    ``kind="log-uniform"``: sigma = sigma_min (sigma_max / sigma_min)^t with
    t ~ U(0, 1) (the PSM paper's VE schedule). ``kind="log-normal"``: log sigma ~
    N(log_mean, log_std), clipped to [sigma_min, sigma_max] (SchNetPack's GPFF).
    """

    sigma_min: float = 0.01
    sigma_max: float = 5.0
    kind: str = "log-uniform"
    log_mean: float = -0.7
    log_std: float = 1.2

    def __post_init__(self) -> None:
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(
                f"need 0 < sigma_min < sigma_max (Å), got {self.sigma_min} and {self.sigma_max}: "
                "swap them, or leave sigma_min/sigma_max out for the default range"
            )
        if self.kind not in ("log-uniform", "log-normal"):
            raise ValueError(f"schedule kind must be 'log-uniform' or 'log-normal', got {self.kind!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def time(self, sigma: torch.Tensor) -> torch.Tensor:
        """Diffusion time t in [0, 1] of a noise level: ln(sigma/sigma_min) / ln(sigma_max/sigma_min)."""
        return torch.log(sigma / self.sigma_min) / math.log(self.sigma_max / self.sigma_min)

    def draw(self, n: int, generator: torch.Generator | None = None, dtype=torch.float32) -> torch.Tensor:
        """n training noise levels."""
        if self.kind == "log-uniform":
            t = torch.rand(n, generator=generator, dtype=dtype)
            return self.sigma_min * (self.sigma_max / self.sigma_min) ** t
        log_sigma = self.log_mean + self.log_std * torch.randn(n, generator=generator, dtype=dtype)
        return log_sigma.exp().clamp(self.sigma_min, self.sigma_max)


def draw_with_small_fraction(
    schedule: NoiseSchedule, n: int, fraction: float, t_small: float, generator: torch.Generator | None = None,
    dtype=torch.float32,
) -> torch.Tensor:
    """n noise levels (Å): round(fraction * n) of them at diffusion times t ~ U(0, t_small), the rest
    from the schedule. Where force labels are the target (t below the crossover), this spends more of
    each batch on the small-sigma score, a force field."""
    sigma = schedule.draw(n, generator, dtype)
    small = round(fraction * n)
    if small:
        t = t_small * torch.rand(small, generator=generator, dtype=dtype)
        sigma[:small] = schedule.sigma_min * (schedule.sigma_max / schedule.sigma_min) ** t
    return sigma


def zero_com(x: torch.Tensor, free: torch.Tensor | None = None) -> torch.Tensor:
    """Remove the centre of mass (unweighted mean over atoms) of each structure.

    x (B, N, 3). With a boolean ``free`` mask (N,), fixed atoms get zero and the
    free atoms are left as they are (fixed atoms pin the frame).
    """
    if free is None:
        return x - x.mean(dim=-2, keepdim=True)
    return x * free[:, None].to(x.dtype)


def zero_com_noise(
    shape: tuple[int, ...],
    generator: torch.Generator | None = None,
    dtype=torch.float32,
    device=None,
    free: torch.Tensor | None = None,
) -> torch.Tensor:
    """Standard normal noise (B, N, 3) with zero centre of mass (or zero on fixed atoms)."""
    noise = torch.randn(shape, generator=generator, dtype=dtype)
    return zero_com(noise.to(device) if device is not None else noise, free)


def pair_noise_by_element(
    clean: torch.Tensor, noised: torch.Tensor, numbers: torch.Tensor, batch: torch.Tensor
) -> torch.Tensor:
    """Noised positions re-paired with the clean atoms by optimal assignment (SchNetPack's GPFF).

    Flat tensors: clean x0 and noised x (n_atoms, 3) Å, atomic numbers and structure index
    (n_atoms,). Within each structure and element, the noised positions are permuted so that
    the sum of squared displacements |x0_i - x_i|^2 is smallest (Hungarian assignment), which
    shortens the pseudo-force target x0 - x at large noise and leaves it unchanged at small noise.
    The noised structure stays the same set of points (same centre of mass); only which atom owns
    which point changes, so use it only where atoms of one element are interchangeable (element
    atom types, not ``atom_types="graph"``) and for noise targets (not force labels).
    """
    keys = (batch * (int(numbers.max()) + 1) + numbers).cpu().numpy()
    order = np.arange(len(keys))
    x0 = clean.detach().cpu().double().numpy()
    x = noised.detach().cpu().double().numpy()
    for key in np.unique(keys):
        atoms = np.flatnonzero(keys == key)
        if len(atoms) < 2:
            continue
        cost = ((x0[atoms, None, :] - x[None, atoms, :]) ** 2).sum(-1)
        rows, columns = linear_sum_assignment(cost)
        order[atoms[rows]] = atoms[columns]
    return noised[torch.as_tensor(order, device=noised.device)]


def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """n noise levels from sigma_max down to sigma_min (Karras et al. 2022), then 0."""
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    inv_rho = 1.0 / rho
    sigmas = (sigma_max**inv_rho + ramp * (sigma_min**inv_rho - sigma_max**inv_rho)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def geometric_sigmas(n: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """n noise levels geometric from sigma_max down to sigma_min (VE SDE), then 0."""
    sigmas = torch.exp(torch.linspace(math.log(sigma_max), math.log(sigma_min), n, dtype=torch.float64))
    return torch.cat([sigmas, sigmas.new_zeros(1)])
