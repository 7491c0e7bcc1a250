"""Samplers over a denoiser, in the style of k-diffusion.

Every sampler is one short function with one signature::

    sampler(denoise, x, sigmas, *, generator=None, free=None, disable=True, **options) -> x

over ``denoise(x, sigma) -> x0_hat`` with x of shape (B, N, 3) in Å and a noise level sigma (Å;
time-step-free models ignore it), and ``sigmas``, a decreasing tensor of noise levels (Å) ending
with 0 (see :func:`noise_levels`). ``pc``, ``euler``, ``heun`` and ``ancestral`` step through the
levels; ``adaptive`` and ``direct`` estimate the noise as they go and read only the starting level
``sigmas[0]`` and the number of steps ``len(sigmas) - 1`` (at most, for ``adaptive``). A boolean
``free`` mask (N,) keeps fixed atoms where they are: they get no noise and no update (inpainting,
structural priors). Without fixed atoms, noise has zero centre of mass, so samples stay centred.
``disable`` hides the progress bar; the remaining keyword arguments are each sampler's options
(:func:`sampler_options`).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Literal

import torch
from tqdm.auto import tqdm

from .noise import geometric_sigmas, karras_sigmas, zero_com_noise

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SamplerName = Literal["pc", "euler", "heun", "ancestral", "adaptive", "direct"]
"""The samplers' names, as :data:`SAMPLERS` holds them."""
COMMON_ARGUMENTS = ("generator", "free", "disable")
"""Keyword arguments every sampler takes; the others are its options."""


def _noise(x: torch.Tensor, generator: torch.Generator | None, free: torch.Tensor | None) -> torch.Tensor:
    return zero_com_noise(x.shape, generator, x.dtype, x.device, free)


def _norm(x: torch.Tensor) -> torch.Tensor:
    """Per-structure Euclidean norm, shaped (B, 1, 1) for broadcasting."""
    return x.flatten(1).norm(dim=1)[:, None, None]


def _rms(x: torch.Tensor) -> torch.Tensor:
    """Per-structure root mean square over atoms and xyz, shape (B,)."""
    return x.flatten(1).square().mean(dim=1).sqrt()


def masked_denoiser(denoise: Denoiser, free: torch.Tensor | None) -> Denoiser:
    """A denoiser that leaves fixed atoms (``free`` False) where they are."""
    if free is None:
        return denoise

    def denoise_free(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return x + (denoise(x, sigma) - x) * free[:, None].to(x.dtype)

    return denoise_free


@torch.no_grad()
def langevin_step(
    denoise: Denoiser,
    x: torch.Tensor,
    sigma: torch.Tensor,
    snr: float,
    generator: torch.Generator | None,
    free: torch.Tensor | None,
) -> torch.Tensor:
    """One Langevin corrector step at noise level sigma (Å): x + eta score + sqrt(2 eta) z.

    score = (D(x, sigma) - x) / sigma^2 (1/Å); eta = 2 (snr |z| / |score|)^2 (Å^2) with the norms
    averaged over the batch; z is zero-centre-of-mass unit noise (none on fixed atoms).
    """
    score = (denoise(x, sigma) - x) / sigma**2
    z = _noise(x, generator, free)
    # batch-mean norms as in Song et al.'s code: a per-structure ratio would be
    # state dependent and widen the sampled distribution in few dimensions
    step = 2 * (snr * _norm(z).mean() / _norm(score).mean().clamp(min=1e-12)) ** 2
    return x + step * score + (2 * step).sqrt() * z


@torch.no_grad()
def sample_pc(
    denoise: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    free: torch.Tensor | None = None,
    snr: float = 0.16,
    final_corrector_steps: int = 0,
    disable: bool = True,
) -> torch.Tensor:
    """Predictor-corrector (Song et al. 2021): reverse-SDE Euler-Maruyama + one Langevin step.

    2 denoiser calls per noise level; the last step (to sigma = 0) is one denoising call.
    The corrector step is eta = 2 (snr |z| / |score|)^2 with norms averaged over the batch.
    ``final_corrector_steps`` more Langevin steps (one call each) at the smallest positive
    sigma equilibrate the samples in the learned score there before the final denoising:
    annealed Langevin dynamics (Song & Ermon 2019) spending its extra steps at the bottom.
    """
    if final_corrector_steps < 0:
        raise ValueError(f"final_corrector_steps must be 0 or more, got {final_corrector_steps}")
    denoise = masked_denoiser(denoise, free)
    for i in tqdm(range(len(sigmas) - 1), disable=disable, desc="pc"):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        if sigma_next == 0:  # the last level: the optional Langevin steps, then one denoising call
            for _ in tqdm(range(final_corrector_steps), disable=disable or not final_corrector_steps,
                          desc="final corrector", leave=False):
                x = langevin_step(denoise, x, sigma, snr, generator, free)
            x = denoise(x, sigma)
        else:
            score = (denoise(x, sigma) - x) / sigma**2
            variance = sigma**2 - sigma_next**2
            x = x + variance * score + variance.sqrt() * _noise(x, generator, free)
            x = langevin_step(denoise, x, sigma_next, snr, generator, free)
    return x


@torch.no_grad()
def sample_euler(
    denoise: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    free: torch.Tensor | None = None,
    churn: float = 0.0,
    disable: bool = True,
) -> torch.Tensor:
    """Euler steps on the probability-flow ODE with optional churn (Karras et al. 2022, Alg. 2)."""
    return _probability_flow(denoise, x, sigmas, generator, free, churn, second_order=False, disable=disable)


@torch.no_grad()
def sample_heun(
    denoise: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    free: torch.Tensor | None = None,
    churn: float = 0.0,
    disable: bool = True,
) -> torch.Tensor:
    """Heun's second-order method on the probability-flow ODE (Karras et al. 2022): 2 calls per step
    but the last."""
    return _probability_flow(denoise, x, sigmas, generator, free, churn, second_order=True, disable=disable)


def _probability_flow(
    denoise: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    generator: torch.Generator | None,
    free: torch.Tensor | None,
    churn: float,
    second_order: bool,
    disable: bool,
) -> torch.Tensor:
    """Euler (or, with ``second_order``, Heun) steps through ``sigmas`` with churn (Karras et al. 2022, Alg. 2)."""
    denoise = masked_denoiser(denoise, free)
    n_steps = len(sigmas) - 1
    for i in tqdm(range(n_steps), disable=disable, desc="heun" if second_order else "euler"):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        gamma = min(churn / n_steps, math.sqrt(2) - 1)
        sigma_hat = sigma * (1 + gamma)
        if gamma > 0:
            x = x + (sigma_hat**2 - sigma**2).sqrt() * _noise(x, generator, free)
        slope = (x - denoise(x, sigma_hat)) / sigma_hat
        x_next = x + slope * (sigma_next - sigma_hat)
        if second_order and sigma_next > 0:
            slope_next = (x_next - denoise(x_next, sigma_next)) / sigma_next
            x_next = x + 0.5 * (slope + slope_next) * (sigma_next - sigma_hat)
        x = x_next
    return x


@torch.no_grad()
def sample_ancestral(
    denoise: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    free: torch.Tensor | None = None,
    disable: bool = True,
) -> torch.Tensor:
    """Ancestral sampling: a deterministic step down to sigma_down, then fresh noise sigma_up."""
    denoise = masked_denoiser(denoise, free)
    for i in tqdm(range(len(sigmas) - 1), disable=disable, desc="ancestral"):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        sigma_up = torch.minimum(sigma_next, (sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2).sqrt())
        sigma_down = (sigma_next**2 - sigma_up**2).sqrt()
        slope = (x - denoise(x, sigma)) / sigma
        x = x + slope * (sigma_down - sigma)
        if sigma_next > 0:
            x = x + sigma_up * _noise(x, generator, free)
    return x


@torch.no_grad()
def sample_adaptive(
    denoise: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    free: torch.Tensor | None = None,
    sigma_stop: float = 0.02,
    kappa: float = 0.7,
    disable: bool = True,
) -> torch.Tensor:
    """Time-step-free adaptive denoising (GPFF), at most ``len(sigmas) - 1`` network calls.

    Per structure: f = D(x) - x, sigma_hat = RMS(f); x0_hat = x + f; stop when
    sigma_hat <= sigma_stop (Å; returning x0_hat), else x <- x0_hat + kappa sigma_hat z.
    The last step returns x0_hat for every structure still running (no noise is
    added after the last network call). A sigma-conditioned denoiser is called with the current
    noise estimate, ``sigmas[0]`` at first.
    """
    denoise = masked_denoiser(denoise, free)
    max_steps = len(sigmas) - 1
    x = x.clone()
    sigma = torch.full((x.shape[0],), float(sigmas[0]), dtype=x.dtype, device=x.device)
    active = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    for step in tqdm(range(max_steps), disable=disable, desc="adaptive"):
        rows = active.nonzero().squeeze(1)
        denoised = denoise(x[rows], sigma[rows])
        sigma_hat = _rms((denoised - x[rows])[:, free] if free is not None else denoised - x[rows])
        finished = (sigma_hat <= sigma_stop) | (step == max_steps - 1)
        noise = _noise(denoised, generator, free)
        x[rows] = torch.where(finished[:, None, None], denoised, denoised + kappa * sigma_hat[:, None, None] * noise)
        sigma[rows] = torch.clamp(kappa * sigma_hat, min=sigma_stop)
        active[rows[finished]] = False
        if not active.any():
            break
    return x


@torch.no_grad()
def sample_direct(
    denoise: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    free: torch.Tensor | None = None,
    noise_scale: float = 1.0,
    disable: bool = True,
) -> torch.Tensor:
    """Direct denoising (GPFF): for k = 1..N, x += lambda (1 - k/N) z, then x <- D(x); N = len(sigmas) - 1.

    ``noise_scale`` is lambda in Å. A sigma-conditioned denoiser gets the RMS of
    its previous pseudo-force as the noise level (``sigmas[0]`` at first).
    """
    denoise = masked_denoiser(denoise, free)
    steps = len(sigmas) - 1
    sigma = torch.full((x.shape[0],), float(sigmas[0]), dtype=x.dtype, device=x.device)
    for k in tqdm(range(1, steps + 1), disable=disable, desc="direct"):
        x = x + noise_scale * (1 - k / steps) * _noise(x, generator, free)
        denoised = denoise(x, sigma)
        sigma = torch.clamp(_rms(denoised - x), min=1e-3)
        x = denoised
    return x


SAMPLERS: dict[SamplerName, Callable[..., torch.Tensor]] = {
    "pc": sample_pc,
    "euler": sample_euler,
    "heun": sample_heun,
    "ancestral": sample_ancestral,
    "adaptive": sample_adaptive,
    "direct": sample_direct,
}


def noise_levels(sampler: SamplerName, steps: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """The ``sigmas`` (Å, float64) of ``steps`` levels from sigma_max down to sigma_min, then 0, that
    :func:`ase_psm.sample` runs a sampler through: geometric for ``pc`` (VE SDE), Karras for the others."""
    spacing = geometric_sigmas if sampler == "pc" else karras_sigmas
    return spacing(steps, sigma_min, sigma_max)


def sampler_options(sampler: SamplerName) -> tuple[str, ...]:
    """The options of a sampler: its keyword arguments besides :data:`COMMON_ARGUMENTS`."""
    parameters = inspect.signature(SAMPLERS[sampler]).parameters.values()
    return tuple(p.name for p in parameters if p.kind is p.KEYWORD_ONLY and p.name not in COMMON_ARGUMENTS)
