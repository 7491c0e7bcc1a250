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
    hidden_irreps: str = "32x0e + 32x1e"
    """Node features. All parities are even: the network is SE(3)- but not
    E(3)-equivariant, so cross products (1e x 1e -> 1e) can tell mirror images apart. The
    multiplicity of the scalars (0e) is the number of channels of the products."""
    sh_lmax: int = 2
    """Highest degree of the edge spherical harmonics."""
    num_layers: int = 2
    """Interactions (message passing rounds); each reaches ``cutoff`` further."""
    correlation: int = 3
    """Body order of each interaction: products of up to this many summed messages (MACE's ν)."""
    num_radial: int = 8
    """Bessel functions of the distance between 0 and ``cutoff``."""
    radial_hidden: int = 64
    """Width of the two hidden layers of the MLP from edge scalars to tensor-product weights."""
    cutoff: float = 5.0
    """Neighbour cutoff and range of the radial basis (Å, in the network's scaled coordinates):
    atoms farther apart exchange no messages in one interaction. Large values connect every pair."""
    avg_neighbours: float = 10.0
    """Message sums are divided by this (the training data's mean neighbour count within the cutoff)."""
    conservative: bool = False
    """Predict an energy E(x, sigma) and return its negative gradient: a conservative pseudo-force
    (at small sigma a force field, F/kT up to the output scale); about three times the cost of the
    direct vector output."""
    edge_chunk: int | None = None
    """Build and sum messages in chunks of this many edges (same result, less memory; None: all
    at once). A speed and memory setting, not part of the trained model."""
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
    shrink_graph: bool = True
    """Build the cutoff graph and its radial features on the shrunk noised positions. False: on the noised
    positions in Å, so that a noised large molecule keeps about its clean neighbour count at every sigma
    (shrunk, it packs all its atoms inside one cutoff at large sigma: cost quadratic in atoms); the
    centroid channel still sees the shrunk structure."""

    def __post_init__(self) -> None:
        if not isinstance(self.cutoff, (int, float)) or not 0 < self.cutoff < float("inf"):
            raise ValueError(f"cutoff must be a positive, finite distance (Å), got {self.cutoff!r}: e.g. 5.0 for "
                             "molecules; a value beyond every distance in the structures connects every pair")
        for name in ("num_layers", "correlation", "num_radial"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)
