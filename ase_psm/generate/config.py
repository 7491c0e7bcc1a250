"""Settings of :func:`ase_psm.sample`: sampler, prior, batching and the checks of every structure."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

from ..diffusion.samplers import SAMPLERS, SamplerName, sampler_options

ON_INVALID = ("regenerate", "drop", "keep")
ENANTIOMERS = ("mirror", "reject", "keep")
PRIORS = ("gaussian", "structure")


@dataclass
class SampleConfig:
    """How :func:`ase_psm.sample` generates structures and screens them.

    Lengths are in Å (reduced units for Lennard-Jones models). The last fields are sampler options:
    None leaves the sampler's own default, and a value for an option the chosen sampler lacks is an error.
    """

    sampler: SamplerName = "pc"
    """pc (the PSM paper's predictor-corrector), euler, heun, ancestral; adaptive and direct for
    time-step-free models (see :mod:`ase_psm.diffusion.samplers`)."""
    steps: int = 100
    """Noise levels (pc, euler, heun, ancestral: geometric for pc, Karras for the others), the most
    denoising steps (adaptive) or the denoising steps (direct)."""
    seed: int = 0
    """Seed of the prior and the sampler noise."""
    prior: Literal["gaussian", "structure"] = "gaussian"
    """gaussian: start from zero-centred noise of width sigma_max; structure: start from the template's
    positions noised to sigma_max (a structural prior)."""
    sigma_max: float | None = None
    """Starting noise level (Å); None: the checkpoint's training schedule."""
    sigma_min: float | None = None
    """Smallest positive noise level (Å); None: the checkpoint's training schedule."""
    batch_size: int = 256
    """Most structures per network call."""
    batch_atoms: int = 8192
    """Most atoms per network call: larger molecules go in batches of batch_atoms // n_atoms structures
    (at least one), so that memory stays bounded (the prior packs a large molecule densely at sigma_max)."""
    device: str = "auto"
    """auto (CUDA if available), cpu, cuda, cuda:1, ..."""
    dtype: Literal["float32", "float64"] = "float32"
    """Floating-point precision of the network and the sampler."""
    on_invalid: Literal["regenerate", "drop", "keep"] = "regenerate"
    """What happens to structures that fail a check: regenerate replacements (up to max_rounds rounds),
    drop them, or keep them with atoms.info["problems"] set."""
    max_rounds: int = 5
    """Sampling rounds with on_invalid regenerate."""
    clash_distance: float | None = None
    """Two atoms closer than this (Å) clash; None: half the training data's nearest-neighbour distance."""
    check_bonds: bool | Literal["auto"] = field(default="auto", metadata={"flag": "--no-bond-check"})
    """Compare each structure's covalent bond graph with the template's; auto: when the template is a
    connected molecule of several elements."""
    enantiomers: Literal["mirror", "reject", "keep"] = "mirror"
    """For a template with stereocentres: mirror reflects a structure that is the template's mirror
    image at every stereocentre (exact: the Boltzmann distribution is invariant under reflection) and
    flags partial inversions as chirality; reject flags every inversion; keep does not look (nor at
    the E/Z of double bonds, checked when the template has info["bond_orders"])."""
    renumber: bool = True
    """Renumber a structure whose bond graph is the template's up to a renumbering of atoms of one
    element (symmetry-equivalent atoms that swapped places) into the template's atom order, so that
    it counts as valid."""
    snr: float | None = None
    """pc: signal-to-noise ratio of the Langevin corrector step."""
    final_corrector_steps: int | None = None
    """pc: Langevin steps at the smallest noise level before the final denoising (one network call
    each; check on held-out data that it helps your model)."""
    churn: float | None = None
    """euler, heun: noise added back per step (Karras et al.'s S_churn)."""
    sigma_stop: float | None = None
    """adaptive: a structure stops when its noise estimate falls below this (Å)."""
    kappa: float | None = None
    """adaptive: fraction of the noise estimate put back as fresh noise per step."""
    noise_scale: float | None = None
    """direct: noise (Å) added before the first denoising step, shrinking linearly to 0."""

    def __post_init__(self) -> None:
        _check_choice("sampler", self.sampler, tuple(SAMPLERS))
        _check_choice("prior", self.prior, PRIORS)
        _check_choice("on_invalid", self.on_invalid, ON_INVALID)
        _check_choice("enantiomers", self.enantiomers, ENANTIOMERS)
        if self.check_bonds not in (True, False, "auto"):
            raise ValueError(f"check_bonds must be True, False or 'auto', got {self.check_bonds!r}")
        for name in ("steps", "batch_size", "batch_atoms", "max_rounds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        options = sampler_options(self.sampler)
        unknown = [name for name in SAMPLER_OPTIONS if getattr(self, name) is not None and name not in options]
        if unknown:
            raise ValueError(f"the {self.sampler} sampler has no option(s) {', '.join(unknown)}; "
                             f"its options: {', '.join(options) or 'none'}")

    def sampler_options(self) -> dict[str, float | int]:
        """The sampler options that are set (not None), as keyword arguments of the sampler."""
        return {name: getattr(self, name) for name in SAMPLER_OPTIONS if getattr(self, name) is not None}


SAMPLER_OPTIONS = ("snr", "final_corrector_steps", "churn", "sigma_stop", "kappa", "noise_scale")
"""The fields of :class:`SampleConfig` that are options of some sampler."""


def sample_config(config: SampleConfig | None, settings: dict) -> SampleConfig:
    """``config``, or one built from keyword settings (not both)."""
    if config is not None and settings:
        raise TypeError("pass either config=SampleConfig(...) or settings as keywords, not both")
    known = [f.name for f in fields(SampleConfig)]
    unknown = sorted(set(settings) - set(known))
    if unknown:
        hint = " (the returned list carries the SampleReport as .report)" if "return_report" in unknown else ""
        raise TypeError(f"sample() has no setting(s) {', '.join(unknown)}{hint}; its settings: {', '.join(known)}")
    return config if config is not None else SampleConfig(**settings)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
