"""Settings of the benchmark suite: systems, sizes, models and protocols.

Units: LJ systems in reduced units (r_m, epsilon, kT = 1); molecules in Å, eV, K, fs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..train import TrainConfig

SIZES = ("tiny", "cpu", "paper")
SYSTEMS = ("lj13", "lj55", "md17", "ala2", "md22")
MD17_MOLECULES = {
    "ethanol": "CCO",
    "malonaldehyde": "O=CCC=O",
    "uracil": "O=C1C=CNC(=O)N1",
    "naphthalene": "c1ccc2ccccc2c1",
    "salicylic_acid": "OC(=O)c1ccccc1O",
    "toluene": "Cc1ccccc1",
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
}
#: MD22-like systems, built and simulated in OpenMM (ase_psm.systems).
MD22_MOLECULES = {
    "ac-ala3-nhme": "Ac-(L-Ala)3-NHMe, 42 atoms, amber14 in vacuum",
    "ac-ala10-nhme": "Ac-(L-Ala)10-NHMe, 112 atoms, amber14 in vacuum",
    "dw-nanotube": "(5,5)@(10,10) double-walled carbon nanotube, 360 atoms (6 cells), bonded carbon force field",
}
#: Alanine residues of each md22 peptide, Ac-(Ala)n-NHMe (the other md22 system is the nanotube).
PEPTIDE_RESIDUES = {"ac-ala3-nhme": 3, "ac-ala10-nhme": 10}


@dataclass(frozen=True)
class ModelSpec:
    """One compared model: its name and the training settings that make it (TrainConfig fields)."""

    name: str
    train: dict = field(default_factory=dict)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("dsm", dict(loss="dsm")),
        ModelSpec("piecewise", dict(loss="piecewise")),
        ModelSpec("piecewise-weighted", dict(loss="piecewise-weighted")),
        ModelSpec("harmonic", dict(loss="harmonic")),
        # Time-step-free models use GPFF's min(1, 1/σ²) (TrainConfig's default for them): the ``score``
        # weighting, ~1/σ⁴, is made for σ-conditioned outputs; a network that cannot see σ then learns the
        # small-σ displacements only (measured on LJ-13: 15–17 % of the displacement at σ = 0.3, TVD 0.42).
        ModelSpec("gpff", dict(loss="gpff")),
        ModelSpec("tsf-psm", dict(loss="piecewise-weighted", sigma_conditioned=False)),
    )
}


@dataclass(frozen=True)
class BenchSettings:
    """One size's budget: how to train (TrainConfig fields over its defaults) and how to sample."""

    train: dict = field(default_factory=dict)
    """:class:`~ase_psm.train.TrainConfig` fields (steps, batch_size, schedule, model, ...)."""
    n_samples: int = 1000
    """Structures sampled per model and seed."""
    sampler: str = "pc"
    sample_steps: int = 100
    """Noise levels of the sampler (``steps`` of :func:`ase_psm.sample`)."""
    final_corrector_steps: int = 0
    """pc only: Langevin steps at sigma_min before the final denoising."""
    max_batch_atoms: int | None = None
    """Largest training batch in atoms: the batch size shrinks to fit it for large molecules (None: no limit)."""

    def with_overrides(self, overrides: dict) -> BenchSettings:
        """These settings with ``overrides`` (``--set``) of sampling fields; TrainConfig fields are checked
        here and applied by :meth:`train_config`, after the model's own."""
        own = {key: value for key, value in overrides.items() if key in self.__dataclass_fields__ and key != "train"}
        unknown = sorted(set(overrides) - set(own) - set(TrainConfig.__dataclass_fields__))
        if unknown:
            known = sorted(set(TrainConfig.__dataclass_fields__) | (set(self.__dataclass_fields__) - {"train"}))
            raise ValueError(f"{unknown} are not training or sampling settings; known: {', '.join(known)}")
        if own.get("final_corrector_steps", self.final_corrector_steps) and own.get("sampler", self.sampler) != "pc":
            raise ValueError("final_corrector_steps applies to the pc sampler only: "
                             "add --set sampler=pc or leave final_corrector_steps out")
        return replace(self, **own)

    def train_config(self, spec: ModelSpec, overrides: dict, **fixed) -> TrainConfig:
        """The TrainConfig of one run: these settings' ``train``, the model's, the TrainConfig fields of
        ``overrides`` (``--set``), then ``fixed``; a dict setting (``schedule``, ``model``) is updated key by
        key, so ``--set 'schedule={kind: log-uniform}'`` keeps the size's sigma range."""
        training = {key: value for key, value in overrides.items() if key in TrainConfig.__dataclass_fields__}
        merged: dict = {}
        for layer in (self.train, spec.train, training, fixed):
            for key, value in layer.items():
                both_dicts = isinstance(value, dict) and isinstance(merged.get(key), dict)
                merged[key] = {**merged[key], **value} if both_dicts else value
        return TrainConfig(**merged)

    def record(self, train_config: TrainConfig) -> dict:
        """What a result JSON keeps: every training setting of the run and the sampling settings, flat."""
        return {**train_config.to_dict(), **{key: getattr(self, key) for key in self.__dataclass_fields__
                                             if key != "train"}}


_LJ_SCHEDULE = dict(sigma_min=0.01, sigma_max=3.0)  # the paper's LJ-13 sigma_min; sigma_max: the cluster's size
_TINY = BenchSettings(train=dict(steps=3, batch_size=8, val_every=3,
                                 model=dict(hidden_irreps="4x0e + 2x1e", num_layers=1, num_radial=8)),
                      n_samples=8, sample_steps=3)

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
    # MD steps of 1 fs at 500 K (the md17 temperature) from the minimized structure; biased = the first
    # n_biased frames, every biased_interval steps (cpu: the first 20 ps); reference = a second run after a
    # burn-in of 10 reference intervals. tiny: two nanotube cells (120 atoms).
    "md22": {
        "tiny": dict(molecules=("ac-ala3-nhme", "dw-nanotube"), n_biased=50, biased_interval=10, n_reference=60,
                     reference_interval=20, nanotube_cells=2),
        "cpu": dict(molecules=tuple(MD22_MOLECULES), n_biased=1000, biased_interval=20, n_reference=5000,
                    reference_interval=400, nanotube_cells=6),
        "paper": dict(molecules=tuple(MD22_MOLECULES), n_biased=5000, biased_interval=20, n_reference=20000,
                      reference_interval=1000, nanotube_cells=6),
    },
}

#: Molecules (md17, ala2): one molecule per data set, so TrainConfig's defaults give graph atom types and the
#: graph-conditioned network (samples keep the bond graph in atom order; phi/psi and the stability check
#: read atoms by index). Measured with the earlier network on ethanol: element types gave 0 of 500 samples
#: with the right bonds at 2000 steps; with graph types alone 348 of 500 naphthalene DSM samples clashed,
#: graph-conditioned 9 of 500 failed any check (docs/benchmarks.md).
_MOLECULES: dict[str, BenchSettings] = {
    "tiny": replace(_TINY, train={**_TINY.train, "atom_types": "graph"}),
    "cpu": BenchSettings(train=dict(steps=8000, batch_size=32, val_every=1000, atom_types="graph"), n_samples=500),
    "paper": BenchSettings(train=dict(steps=100_000, batch_size=64, atom_types="graph"), sample_steps=1000),
}

#: Training and sampling budgets per (system, size).
SETTINGS: dict[str, dict[str, BenchSettings]] = {
    "lj13": {
        "tiny": _TINY,
        "cpu": BenchSettings(train=dict(steps=2000, batch_size=64, schedule=_LJ_SCHEDULE)),
        "paper": BenchSettings(train=dict(steps=100_000, batch_size=64, schedule=_LJ_SCHEDULE), sample_steps=1000),
    },
    "lj55": {
        "tiny": _TINY,
        "cpu": BenchSettings(train=dict(steps=2000, batch_size=16, schedule=_LJ_SCHEDULE)),
        "paper": BenchSettings(train=dict(steps=100_000, batch_size=64, schedule=_LJ_SCHEDULE), sample_steps=1000),
    },
    "md17": _MOLECULES,
    "ala2": _MOLECULES,
    # 42, 112 and 360 atoms. cpu: ala2's budget (8000 steps, batch 32), training batches capped at 1344 atoms
    # (32 and 12 peptides, 3 nanotubes); 3000 steps of batch 16 (1 nanotube) gave broken samples of Ac-Ala3-NHMe
    # and the nanotube with either loss (docs/benchmarks.md, md22). atom_types "auto": graph types for peptides,
    # elements for the nanotube (two walls, not one bond graph). The nanotube at this size takes CPU-days: a GPU
    # size in practice.
    "md22": {
        "tiny": replace(_TINY, sampler="heun"),
        "cpu": BenchSettings(train=dict(steps=8000, batch_size=32, val_every=1000), n_samples=200,
                             max_batch_atoms=1344),
        "paper": BenchSettings(train=dict(steps=100_000, batch_size=64), n_samples=1000, sample_steps=1000),
    },
}

PROTOCOLS: dict[str, tuple[str, ...]] = {
    "lj13": ("table2", "biased", "cold"),
    "lj55": ("table2", "biased", "cold"),
    "md17": ("biased", "early"),
    "ala2": ("biased",),
    "md22": ("biased",),
}
