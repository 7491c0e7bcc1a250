"""Configuration of the pseudo-force network."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class ModelConfig:
    """Everything needed to rebuild a :class:`~ase_psm.model.PseudoForceNet`.

    Lengths are in Å (or reduced units for Lennard-Jones systems).
    """

    species: list[int] = field(default_factory=list)
    """Atomic numbers the network knows, in embedding order."""
    hidden_irreps: str = "32x0e + 16x1e + 8x2e"
    """Node features. All parities are even: the network is SE(3)- but not
    E(3)-equivariant, so cross products (1e x 1e -> 1e) can tell mirror images apart."""
    sh_lmax: int = 2
    """Highest degree of the edge spherical harmonics."""
    num_layers: int = 3
    num_radial: int = 64
    """Gaussian radial basis functions between 0 and ``radial_max``."""
    radial_max: float = 5.0
    """Range of the radial basis (Å, in the network's scaled coordinates)."""
    radial_hidden: int = 64
    cutoff: float | None = None
    """Neighbour cutoff (Å, scaled coordinates); ``None`` connects every pair,
    which is what small molecules and heavily noised structures need."""
    sigma_conditioned: bool = True
    """Take the noise level as input (PSM); ``False`` gives a time-step-free
    generative pseudo-force field (GPFF)."""
    site_numbers: list[int] | None = None
    """Atomic numbers of the one molecule the network is for, in atom order; set together with
    ``site_types``. None: a network for any structure of the known ``species``."""
    site_types: list[int] | None = None
    """Type of each atom of that molecule (e.g. bond-graph equivalence classes), which tells the
    network which atom is which beyond its element, so that samples keep the bond graph."""
    graph_conditioned: bool = False
    """Take the molecular graph as input: each pair's bond distance (1, 2, 3 or more bonds apart) on
    its edge and each atom's number of bonds, so that one network of many molecules generates
    conformers of a given molecule (not any molecule of its formula)."""
    site_bonds: list[list[int]] | None = None
    """Bonded atom pairs of the one molecule (with ``site_numbers``) of a graph-conditioned network:
    its graph whenever no ``topology`` is passed, so the checkpoint carries the molecule's bonds."""
    sigma_embedding_dim: int = 16
    sigma_data: float = 0.5
    """Thermal length scale (Å) of the data; sets the output scale at small noise."""
    length_scale: float = 1.0
    """Noised inputs are shrunk by sqrt(1 + sigma^2 / length_scale^2) (Å)."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)
