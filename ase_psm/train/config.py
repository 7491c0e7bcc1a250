"""Training settings."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..diffusion.noise import NoiseSchedule
from ..diffusion.targets import LOSS_WEIGHTINGS, LOSSES
from ..model import ModelConfig

#: Choices of TrainConfig.atom_types.
ATOM_TYPES = ("auto", "element", "graph")


def default_schedule(loss: str, sigma_conditioned: bool = True) -> NoiseSchedule:
    """The noise schedule a model trains with unless told otherwise, sigma in Å.

    ``gpff``: GPFF's log-normal sigma in [0.05, 30]. Other time-step-free models: log-uniform sigma in
    [0.002, 5], the PSM paper's VE schedule, but down to about a fifteenth of a molecule's thermal length
    at 300 K (about 0.03 Å), where the score of the noised density, which the model learns, is close to
    the force F/kT (its error grows as sigma^2). sigma-conditioned models (the paper's losses): the same
    range with log-normal sigma (log sigma ~ N(-0.7, 1.2^2), median 0.5 Å), which trains more at
    0.2-2 Å, where a molecule's conformations are told apart (docs/benchmarks.md, "Noise levels")."""
    if loss == "gpff":
        return NoiseSchedule(0.05, 30.0, kind="log-normal")
    return NoiseSchedule(0.002, 5.0, kind="log-normal" if sigma_conditioned else "log-uniform")


@dataclass
class TrainConfig:
    """How to train a pseudo-force network on frames of one system.

    ``temperature`` (K) or ``kT`` (eV, or reduced units with kT = 1 for
    Lennard-Jones) scales the force labels; one of them is required by the
    force-label losses ``piecewise``, ``piecewise-weighted`` and ``harmonic``.
    """

    loss: str = field(default="harmonic", metadata={"choices": LOSSES})
    """``harmonic`` (PSM: the force label F/kT and the noise target mixed at every sigma with the force
    label's weight 1 / (1 + (sigma/sigma_c)^2), sigma_c the crossover's sigma: no target variance in a
    harmonic well), ``piecewise`` / ``piecewise-weighted`` (PSM as published: the force label below the
    force crossover, the noise target above), ``dsm`` (noise target) or ``gpff`` (target x0 - x,
    time-step-free)."""
    temperature: float | None = None
    """K: converts force labels in eV/Å to F/kT (the temperature of the MD run that made the frames)."""
    kT: float | None = None
    """k_B T in the force labels' energy unit, instead of ``temperature`` (1 in reduced LJ units)."""
    steps: int = 3000
    """Optimizer steps."""
    batch_size: int = 64
    """Structures per step (per process with ``ddp``)."""
    learning_rate: float = field(default=3e-3, metadata={"flag": "--lr"})
    """Peak learning rate of AdamW: linear warm-up, then cosine decay to zero at ``steps``."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_steps: int = 100
    """Steps of linear learning-rate warm-up."""
    grad_clip: float = 10.0
    """Largest gradient norm; larger gradients are scaled down to it."""
    ema_decay: float = 0.999
    """Decay of the exponential moving average of the weights that checkpoints and validation use."""
    seed: int = 0
    """Seed of the weights, the noise and the frame selection."""
    first: int | None = None
    """Keep the first N frames (the biased head of one run)."""
    stride: int = 1
    """Keep every k-th frame."""
    fraction: float | None = None
    """Keep a random fraction of the frames."""
    val_fraction: float = 0.1
    """Fraction of the frames held out for the validation loss (0: none)."""
    val_every: int = 250
    """Validate, and write the best and last checkpoints, every N steps."""
    force_crossover_t: float | str = field(default="thermal", metadata={"flag": "--force-crossover"})
    """Diffusion time t where force labels hand over to noise targets: ``"thermal"`` for the t of the
    data's thermal length 1/RMS(F/kT), where the force target's spread (sigma^2 |F|/kT) and the noise
    target's (sigma) are equal (t = 0.05, the paper's, for data without force labels), or a number
    such as the paper's 0.05."""
    small_sigma_fraction: float | None = None
    """Fraction of each batch drawn at the smallest noise levels, t ~ U(0, force_crossover_t), the
    rest from the schedule; for every loss, so DSM and PSM models see the same noise levels. Below the
    crossover PSM's target is the force label: this spends more of the training on the small-sigma
    score, a force field, which corrects a bias on the scale of thermal vibrations (data started
    at an energy minimum); the rest of the batch learns the global structure. None: 0.25 for
    sigma-conditioned models, 0.5 for time-step-free ones. (Frames of one system;
    :func:`~ase_psm.train.train_molecules` draws every sigma from its schedule.)"""
    loss_weighting: str | None = field(default=None, metadata={"choices": LOSS_WEIGHTINGS})
    """``epsilon`` (paper), ``gpff`` or ``score``; None: ``gpff`` min(1, 1/sigma^2) for the ``gpff``
    loss and for any time-step-free model, else ``score`` (every noise level's preconditioned output
    counts alike)."""
    sigma_conditioned: bool | None = field(default=None, metadata={"flag": "--time-step-free"})
    """Whether the network sees the noise level sigma; False: time-step-free (GPFF: the network is a
    pseudo-force field). None: True for the paper's losses, False for ``gpff``."""
    schedule: NoiseSchedule | None = None
    """None: the model's default (:func:`default_schedule`); a dict of some :class:`NoiseSchedule` fields,
    e.g. ``{"sigma_max": 30.0}``, changes only those fields of that default."""
    atom_types: str = field(default="auto", metadata={"choices": ATOM_TYPES})
    """How the network tells atoms apart: ``"element"`` (any structure of the elements seen), or
    ``"graph"`` for data of one molecule: each atom also gets its class in the first frame's covalent
    bond graph, so samples keep the bond graph in the training atom order (needed for molecules
    checked against a topology, e.g. when seeding OpenMM), and the network also sees how many bonds
    apart each pair is (``model=dict(graph_conditioned=False)`` turns that off); the checkpoint carries
    the bonds. ``"auto"``: ``"graph"`` when the first frame is one molecule (several elements, one
    connected covalent graph), else ``"element"`` (clusters of one element such as Lennard-Jones)."""
    pair_noise: bool = False
    """Re-pair the noised atoms of each element with the clean ones by optimal assignment (SchNetPack's
    GPFF), for noise targets of structures whose like atoms are interchangeable (element atom types)."""
    time_limit: float | None = None
    """Stop after this many seconds of training (the learning-rate schedule still assumes ``steps``)."""
    model: dict = field(default_factory=dict)
    """Overrides of :class:`~ase_psm.model.ModelConfig` fields (e.g. hidden_irreps, num_layers)."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``, ..."""

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if self.sigma_conditioned is None:
            self.sigma_conditioned = self.loss != "gpff"
        if self.schedule is None:
            self.schedule = default_schedule(self.loss, self.sigma_conditioned)
        elif isinstance(self.schedule, dict):
            default = default_schedule(self.loss, self.sigma_conditioned)
            self.schedule = NoiseSchedule(**{**default.to_dict(), **self.schedule})
        if self.small_sigma_fraction is None:
            self.small_sigma_fraction = 0.25 if self.sigma_conditioned else 0.5
        if self.temperature is not None and self.kT is not None:
            raise ValueError("give either temperature (K) or kT (energy units), not both")
        if self.temperature is not None and not 0 < self.temperature < math.inf:
            raise ValueError(
                f"temperature must be positive and finite (K), got {self.temperature}: "
                "give the temperature of the MD run that made the frames, e.g. 300"
            )
        if self.kT is not None and not 0 < self.kT < math.inf:
            raise ValueError(
                f"kT must be positive and finite, got {self.kT}: give k_B T in the force labels' "
                "energy unit (kT = 1 for reduced Lennard-Jones units), or temperature in K"
            )
        unknown = sorted(set(self.model) - set(ModelConfig.__dataclass_fields__))
        if unknown:
            raise ValueError(
                f"unknown model settings {unknown}; known: {', '.join(ModelConfig.__dataclass_fields__)}"
            )
        if self.pair_noise and (self.loss != "gpff" or self.atom_types == "graph"):
            raise ValueError(
                "pair_noise swaps like atoms, which only suits the gpff loss (noise targets) on element atom "
                "types: leave pair_noise off, or use loss='gpff' with atom_types='element'"
            )
        if not 0.0 <= self.resolved_small_sigma_fraction <= 1.0:
            raise ValueError(f"small_sigma_fraction must lie in [0, 1], got {self.small_sigma_fraction}")
        for name in ("steps", "batch_size", "val_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.atom_types not in ATOM_TYPES:
            raise ValueError(f"unknown atom_types {self.atom_types!r}; choose one of {', '.join(ATOM_TYPES)}")
        if self.loss_weighting is None:
            # measured on LJ-13 (docs/benchmarks.md): a time-step-free PSM model trained with epsilon
            # weighting samples worse (distance TVD 0.123-0.126 against 0.076-0.091) and clashes some clusters
            self.loss_weighting = "gpff" if self.loss == "gpff" or not self.sigma_conditioned else "score"
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise ValueError(
                f"unknown loss weighting {self.loss_weighting!r}; choose one of {', '.join(LOSS_WEIGHTINGS)}"
            )
        if isinstance(self.force_crossover_t, str) and self.force_crossover_t != "thermal":
            try:
                self.force_crossover_t = float(self.force_crossover_t)
            except ValueError:
                raise ValueError(
                    f"force_crossover_t must be a number or 'thermal', got {self.force_crossover_t!r}"
                ) from None

    @property
    def resolved_kT(self) -> float | None:
        """kT in the energy unit of the force labels (eV from temperature in K)."""
        from ase.units import kB

        return self.kT if self.kT is not None else (kB * self.temperature if self.temperature else None)

    @property
    def resolved_schedule(self) -> NoiseSchedule:
        """The noise schedule; ``__post_init__`` replaces None by the loss's default."""
        if self.schedule is None:
            raise ValueError(
                "TrainConfig.schedule is None: set a NoiseSchedule (None is only resolved at construction)"
            )
        return self.schedule

    @property
    def resolved_loss_weighting(self) -> str:
        """The loss weighting; ``__post_init__`` replaces None by the loss's default."""
        if self.loss_weighting is None:
            raise ValueError("TrainConfig.loss_weighting is None: set one of " + ", ".join(LOSS_WEIGHTINGS))
        return self.loss_weighting

    @property
    def resolved_small_sigma_fraction(self) -> float:
        """The small-sigma share of each batch; ``__post_init__`` replaces None by the model's default."""
        if self.small_sigma_fraction is None:
            raise ValueError("TrainConfig.small_sigma_fraction is None: set a number in [0, 1]")
        return self.small_sigma_fraction

    def to_dict(self) -> dict:
        values = asdict(self)
        values["schedule"] = self.resolved_schedule.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})
