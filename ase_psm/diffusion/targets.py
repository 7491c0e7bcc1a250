"""Regression targets of PSM and GPFF: one formula for every loss (docs/theory.md).

f* = (1 - w(sigma)) (x0 - x) + w(sigma) sigma^2 F(x0) / kT

with w = 0 for denoising score matching (``dsm``, ``gpff``), a step at t = 0.05
(``piecewise``), the sigmoid 1 / (1 + exp(50 (t - 0.05))) (``piecewise-weighted``) or
1 / (1 + (sigma/sigma_c)^2) (``harmonic``), t = ln(sigma/sigma_min) / ln(sigma_max/sigma_min) and sigma_c
the sigma of the crossover t (0.05, or the data's thermal length).

Both targets are unbiased at every sigma: E[x0 - x | x] = sigma^2 grad log p_sigma(x) (Tweedie) and
E[sigma^2 F(x0)/kT | x] = sigma^2 grad log p_sigma(x) (the target score identity, De Bortoli et al. 2024,
arXiv:2402.08667), so any w gives the same minimiser and w only sets the variance of the target. For a
harmonic well of thermal length sigma_c the ``harmonic`` weight makes the target a function of x alone: no
variance at any sigma; over modes of many stiffnesses it is the scalar weight of least variance when sigma_c
is 1/RMS(F/kT), the data's thermal length (the ``"thermal"`` crossover).
"""

from __future__ import annotations

import math

import torch

from .noise import NoiseSchedule, zero_com

LOSSES = ("dsm", "piecewise", "piecewise-weighted", "harmonic", "gpff")
FORCE_LOSSES = ("piecewise", "piecewise-weighted", "harmonic")
PIECEWISE_T = 0.05
SIGMOID_SLOPE = 50.0


def force_weight(
    loss: str, sigma: torch.Tensor, schedule: NoiseSchedule, crossover_t: float = PIECEWISE_T
) -> torch.Tensor:
    """Weight w(sigma) of the force label in the target, per structure.

    ``crossover_t`` is the diffusion time of the switch (the paper's 0.05).
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    if loss in ("dsm", "gpff"):
        return torch.zeros_like(sigma)
    t = schedule.time(sigma)
    if loss == "piecewise":
        return (t <= crossover_t).to(sigma.dtype)
    if loss == "harmonic":  # 1 / (1 + (sigma/sigma_c)^2), as a sigmoid in t
        return torch.sigmoid(-2 * math.log(schedule.sigma_max / schedule.sigma_min) * (t - crossover_t))
    return torch.sigmoid(-SIGMOID_SLOPE * (t - crossover_t))


def pseudo_force_target(
    clean: torch.Tensor,
    noised: torch.Tensor,
    sigma: torch.Tensor,
    weight: torch.Tensor,
    scaled_forces: torch.Tensor | None,
) -> torch.Tensor:
    """Target pseudo-force (B, N, 3) in Å.

    clean x0 and noised x (B, N, 3) Å; sigma and the force weight w (B,);
    scaled_forces F(x0)/kT (B, N, 3) in 1/Å, needed where any w > 0.
    """
    target = clean - noised
    if torch.any(weight > 0):
        if scaled_forces is None:
            raise ValueError("this loss needs force labels: the training frames carry no forces")
        w = weight[:, None, None]
        force_target = zero_com(sigma[:, None, None] ** 2 * scaled_forces)
        target = (1 - w) * target + w * force_target
    return target


LOSS_WEIGHTINGS = ("epsilon", "gpff", "score")


def loss_weight(weighting: str, sigma: torch.Tensor, sigma_data: float = 1.0) -> torch.Tensor:
    """Weight of the squared pseudo-force error per structure.

    ``epsilon``: 1/sigma^2, the paper's epsilon loss (lambda = 1). ``gpff``:
    min(1, 1/sigma^2) (SchNetPack). ``score``: (sigma^2 + sigma_data^2)/sigma^4, the
    error of the network's preconditioned output, which gives small noise levels
    (where force labels are precise) as much weight as large ones.
    """
    if weighting == "epsilon":
        return sigma**-2
    if weighting == "gpff":
        return torch.clamp(sigma**-2, max=1.0)
    if weighting == "score":
        return (sigma**2 + sigma_data**2) / sigma**4
    raise ValueError(f"unknown loss weighting {weighting!r}; choose one of {', '.join(LOSS_WEIGHTINGS)}")
