"""Generate structures from a checkpoint: priors, sampler dispatch and batching."""

from __future__ import annotations

import os

import ase
import torch

from .ase.constraints import fixed_atom_mask
from .checkpoint import load_model, resolve_dtype
from .diffusion.noise import geometric_sigmas, karras_sigmas, zero_com_noise
from .diffusion.samplers import SAMPLERS
from .model import PseudoForceNet


def make_denoiser(model: PseudoForceNet, numbers: torch.Tensor):
    """``denoise(x, sigma) -> x + f(x)`` over (B, N, 3) tensors for the samplers."""

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        return x + model.pseudo_forces(numbers, x, sigma if model.config.sigma_conditioned else None)

    return denoise


def sample(
    checkpoint: str | os.PathLike,
    template: ase.Atoms,
    n: int = 1,
    *,
    sampler: str = "pc",
    steps: int = 100,
    seed: int = 0,
    prior: str = "gaussian",
    sigma_max: float | None = None,
    sigma_min: float | None = None,
    batch_size: int = 256,
    device: str = "auto",
    dtype: str = "float32",
    progress: bool = True,
    **sampler_options,
) -> list[ase.Atoms]:
    """Generate ``n`` structures with the atoms of ``template``.

    prior: ``"gaussian"`` starts from zero-centred noise of width sigma_max (Å);
    ``"structure"`` starts from the template's positions noised to sigma_max
    (a structural prior). Atoms fixed by a FixAtoms constraint on the template
    keep their template positions (inpainting). ``steps`` is the number of noise
    levels (``pc``, ``euler``, ``heun``, ``ancestral``; geometric for ``pc``, Karras
    for the others), the maximum number of steps (``adaptive``) or the number of
    denoising steps (``direct``). sigma_min/sigma_max default to the training schedule.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if prior not in ("gaussian", "structure"):
        raise ValueError(f"prior must be 'gaussian' or 'structure', got {prior!r}")
    if n < 1 or steps < 1:
        raise ValueError(f"n and steps must be at least 1, got n={n}, steps={steps}")
    model, checkpoint_data = load_model(checkpoint, device, dtype)
    schedule = checkpoint_data["schedule"]
    sigma_max = float(sigma_max if sigma_max is not None else schedule["sigma_max"])
    sigma_min = float(sigma_min if sigma_min is not None else schedule["sigma_min"])
    torch_device = next(model.parameters()).device
    torch_dtype = resolve_dtype(dtype)
    numbers = torch.as_tensor(template.numbers, dtype=torch.long, device=torch_device)
    model.species_index(numbers)  # clear error for unknown elements before any work
    fixed = fixed_atom_mask(template)
    free = torch.as_tensor(~fixed, device=torch_device) if fixed.any() else None
    reference = torch.as_tensor(template.positions, dtype=torch_dtype, device=torch_device)
    if free is None:
        reference = reference - reference.mean(dim=0)
    generator = torch.Generator().manual_seed(seed)
    denoise = make_denoiser(model, numbers)
    if sampler == "pc":
        sigmas = geometric_sigmas(steps, sigma_min, sigma_max)
    else:
        sigmas = karras_sigmas(steps, sigma_min, sigma_max)
    sigmas = sigmas.to(device=torch_device, dtype=torch_dtype)

    structures = []
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        shape = (size, len(template), 3)
        noise = zero_com_noise(shape, generator, torch_dtype, torch_device, free)
        base = reference.expand(shape) if (prior == "structure" or free is not None) else reference.new_zeros(shape)
        x = base + sigma_max * noise
        common = dict(generator=generator, free=free, disable=not progress)
        if sampler == "adaptive":
            x = SAMPLERS[sampler](denoise, x, sigma_max, max_steps=steps, **common, **sampler_options)
        elif sampler == "direct":
            x = SAMPLERS[sampler](denoise, x, sigma_max, steps=steps, **common, **sampler_options)
        else:
            x = SAMPLERS[sampler](denoise, x, sigmas, **common, **sampler_options)
        for positions in x.cpu().double().numpy():
            atoms = template.copy()
            atoms.calc = None
            atoms.set_positions(positions, apply_constraint=False)
            structures.append(atoms)
    return structures
