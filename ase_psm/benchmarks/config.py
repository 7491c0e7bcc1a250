"""Settings of the benchmark suite: systems, sizes, models and protocols.

Units: LJ systems in reduced units (r_m, epsilon, kT = 1); molecules in Å, eV, K, fs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..diffusion.targets import PIECEWISE_T

SIZES = ("tiny", "cpu", "paper")
SYSTEMS = ("lj13", "lj55", "md17", "ala2")
MD17_MOLECULES = {
    "ethanol": "CCO",
    "malonaldehyde": "O=CCC=O",
    "uracil": "O=C1C=CNC(=O)N1",
    "naphthalene": "c1ccc2ccccc2c1",
    "salicylic_acid": "OC(=O)c1ccccc1O",
    "toluene": "Cc1ccccc1",
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
}


@dataclass(frozen=True)
class ModelSpec:
    """One compared model: a loss, whether the network sees the noise level, and its loss weighting."""

    name: str
    loss: str
    sigma_conditioned: bool | None = None  # None: the loss's default (False for gpff)
    loss_weighting: str | None = None
    """None: the size's weighting. Time-step-free models use GPFF's min(1, 1/σ²): the sizes' ``score``
    weighting, ~1/σ⁴, is made for σ-conditioned outputs; a network that cannot see σ then learns the
    small-σ displacements only (measured on LJ-13: 15–17 % of the displacement at σ = 0.3, TVD 0.42)."""


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("dsm", "dsm"),
        ModelSpec("piecewise", "piecewise"),
        ModelSpec("piecewise-weighted", "piecewise-weighted"),
        ModelSpec("gpff", "gpff", loss_weighting="gpff"),
        ModelSpec("tsf-psm", "piecewise-weighted", sigma_conditioned=False, loss_weighting="gpff"),
    )
}


@dataclass(frozen=True)
class TrainSettings:
    """Training and sampling budget of one size (steps, structures; σ in the system's length unit)."""

    steps: int
    batch_size: int
    model: dict = field(default_factory=dict)
    sigma_min: float = 0.01
    sigma_max: float = 3.0
    loss_weighting: str | None = None
    n_samples: int = 1000
    sampler: str = "pc"
    sample_steps: int = 100
    final_corrector_steps: int = 0  # pc only: Langevin steps at sigma_min before the final denoising
    val_every: int = 250
    atom_types: str = "element"
    force_crossover_t: float | str = PIECEWISE_T  # diffusion time of the force/noise switch, or "thermal"
    learning_rate: float = 1e-3
    small_sigma_fraction: float = 0.0


_TINY_MODEL = dict(hidden_irreps="4x0e + 2x1e", num_layers=1, num_radial=8)
_CPU_MODEL = dict(hidden_irreps="32x0e + 16x1e", sh_lmax=1, num_layers=3, num_radial=96)
_TINY_TRAIN = TrainSettings(steps=3, batch_size=8, model=_TINY_MODEL, n_samples=8, sample_steps=3, val_every=3)

#: Data-generation settings per (system, size). Keys are the generator's keyword arguments.
DATA: dict[str, dict[str, dict]] = {
    "lj13": {
        "tiny": dict(n_reference=200, n_chains=200, burn_in=20, thinning=5, n_biased=100, biased_burn_in=10),
        "cpu": dict(n_reference=5000, n_chains=5000, burn_in=500, thinning=200, n_biased=1000, biased_burn_in=100),
        "paper": dict(n_reference=10000, n_chains=10000, burn_in=1000, thinning=200, n_biased=1000,
                      biased_burn_in=100),
    },
    "lj55": {
        "tiny": dict(n_reference=100, n_chains=100, burn_in=10, thinning=5, n_biased=50, biased_burn_in=5),
        "cpu": dict(n_reference=2000, n_chains=2000, burn_in=300, thinning=100, n_biased=1000, biased_burn_in=100),
        "paper": dict(n_reference=10000, n_chains=10000, burn_in=1000, thinning=200, n_biased=1000,
                      biased_burn_in=100),
    },
    # biased: the first n_biased MD steps of one run (early: its first fifth); reference: a second run, burn-in,
    # one frame every `thinning`
    "md17": {
        "tiny": dict(molecules=("ethanol",), n_biased=200, n_reference=100, thinning=5, burn_in=50),
        "cpu": dict(molecules=tuple(MD17_MOLECULES), n_biased=5000, n_reference=5000, thinning=20, burn_in=1000),
        "paper": dict(molecules=tuple(MD17_MOLECULES), n_biased=5000, n_reference=10000, thinning=50,
                      burn_in=2000),
    },
    # MD steps of 1 fs; frames every `interval` steps (cpu: 100 ps of training frames, a 5 ns reference)
    "ala2": {
        "tiny": dict(n_biased=100, biased_interval=20, n_reference=200, reference_interval=100),
        "cpu": dict(n_biased=1000, biased_interval=100, n_reference=5000, reference_interval=1000),
        "paper": dict(n_biased=5000, biased_interval=100, n_reference=50000, reference_interval=1000),
    },
}

#: Molecules (md17, ala2): the same budgets, σ up to 5 Å. One molecule per data set: atom types from
#: its bond graph, so samples keep the graph in atom order (phi/psi and the stability check read atoms
#: by index); measured on ethanol, element types gave 0 of 500 samples with the right bonds at 2000 steps.
#: The network also sees the bonds themselves (graph-conditioned): with graph types alone 348 of 500
#: naphthalene DSM samples clashed, graph-conditioned 9 of 500 failed any check (docs/benchmarks.md).
_MOLECULE_TRAIN: dict[str, TrainSettings] = {
    size: replace(settings, atom_types="graph", model={**settings.model, "graph_conditioned": True})
    for size, settings in {
        "tiny": _TINY_TRAIN,
        "cpu": TrainSettings(steps=8000, batch_size=32, model=_CPU_MODEL, sigma_max=5.0, loss_weighting="score",
                             n_samples=500, val_every=1000),
        "paper": TrainSettings(steps=100_000, batch_size=64, model=_CPU_MODEL, sigma_max=5.0,
                               loss_weighting="score", sample_steps=1000),
    }.items()
}

#: Training and sampling budgets per (system, size).
TRAIN: dict[str, dict[str, TrainSettings]] = {
    "lj13": {
        "tiny": _TINY_TRAIN,
        "cpu": TrainSettings(steps=2000, batch_size=64, model=_CPU_MODEL, loss_weighting="score"),
        "paper": TrainSettings(steps=100_000, batch_size=64, model=_CPU_MODEL, loss_weighting="score",
                               sample_steps=1000),
    },
    "lj55": {
        "tiny": _TINY_TRAIN,
        "cpu": TrainSettings(steps=2000, batch_size=16, model=_CPU_MODEL, loss_weighting="score"),
        "paper": TrainSettings(steps=100_000, batch_size=64, model=_CPU_MODEL, loss_weighting="score",
                               sample_steps=1000),
    },
    "md17": _MOLECULE_TRAIN,
    "ala2": _MOLECULE_TRAIN,
}

PROTOCOLS: dict[str, tuple[str, ...]] = {
    "lj13": ("table2", "biased", "cold"),
    "lj55": ("table2", "biased", "cold"),
    "md17": ("biased", "early"),
    "ala2": ("biased",),
}
