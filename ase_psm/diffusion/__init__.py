"""Noise, regression targets and samplers of PSM / GPFF."""

from .noise import NoiseSchedule, geometric_sigmas, karras_sigmas, pair_noise_by_element, zero_com, zero_com_noise
from .samplers import (
    SAMPLERS,
    SamplerName,
    langevin_step,
    noise_levels,
    sample_adaptive,
    sample_ancestral,
    sample_direct,
    sample_euler,
    sample_heun,
    sample_pc,
    sampler_options,
)
from .targets import LOSSES, force_weight, loss_weight, pseudo_force_target

__all__ = [
    "LOSSES",
    "SAMPLERS",
    "NoiseSchedule",
    "SamplerName",
    "force_weight",
    "geometric_sigmas",
    "karras_sigmas",
    "langevin_step",
    "loss_weight",
    "noise_levels",
    "pair_noise_by_element",
    "pseudo_force_target",
    "sample_adaptive",
    "sample_ancestral",
    "sample_direct",
    "sample_euler",
    "sample_heun",
    "sample_pc",
    "sampler_options",
    "zero_com",
    "zero_com_noise",
]
