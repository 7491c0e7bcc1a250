"""The pseudo-force network: atoms (+ noise level) -> one displacement vector per atom."""

from __future__ import annotations

import numpy as np
import torch
from e3nn import o3
from torch import nn

from .blocks import BesselBasis, CentroidEmbedding, NoiseLevelEmbedding, ProductInteraction, mlp
from .config import ModelConfig
from .graph import TOPOLOGY_CLASSES, build_edges, pair_index, topology_classes
from .segments import structure_mean

MAX_BONDS = 6
"""Bond counts above this share one embedding (graph-conditioned networks)."""


class PseudoForceNet(nn.Module):
    """SE(3)-equivariant network predicting pseudo-forces f = D(x) - x (Å).

    A MACE-style message-passing network (:mod:`.blocks`): neighbours within ``config.cutoff``
    exchange equivariant messages, summed, with products up to ``config.correlation`` of them per
    interaction. The output is a vector per atom from every interaction plus a pair term
    sum_j w_ij (x_j - x_i), or, with ``config.conservative``, the negative gradient of a predicted
    energy.

    The output is the displacement from a (noised) structure to its denoised
    structure, which equals the pseudo-force in eV/Å on the quadratic pseudo
    potential-energy surface U = 1/2 k |x - x0|^2 with k = 1 eV/Å^2.

    Equivariant under rotations, translations and permutations of like atoms;
    not under reflections (all irreps carry even parity, so features can hold
    pseudo-vectors and pseudo-scalars and a mirror image is a different input).
    A single-molecule network (``config.site_types``) also embeds each atom's type, so it
    tells bonded partners apart; permuting atoms of one type then permutes the output.
    A graph-conditioned network (``config.graph_conditioned``) takes the molecular graph as
    ``topology``: its edges carry how many bonds apart the two atoms are (one-hot, 1-3 or more) and
    its atoms their number of bonds. A single-molecule graph-conditioned network
    (``config.site_bonds``) carries its molecule's graph and needs no ``topology``.
    A sigma-conditioned network sees noised coordinates shrunk by
    s = sqrt(1 + sigma^2 / length_scale^2) and scales its output by
    c_out = sigma^2 / sqrt(sigma^2 + sigma_data^2), so that the network output
    is of order one at every noise level. Pseudo-forces have zero mean over each
    structure's atoms (no net translation), like the zero-centre-of-mass noise.
    """

    z_to_index: torch.Tensor  # registered buffer (non-persistent)
    site_types: torch.Tensor  # registered buffer of a single-molecule network (non-persistent)
    site_numbers: torch.Tensor  # registered buffer of a single-molecule network (non-persistent)
    site_topology: torch.Tensor  # registered buffer of a single-molecule graph-conditioned network (non-persistent)
    site_bond_counts: torch.Tensor  # registered buffer of a single-molecule graph-conditioned network (non-persistent)

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not config.species:
            raise ValueError("ModelConfig.species is empty: list the atomic numbers the model must know")
        self.config = config
        irreps_hidden = o3.Irreps(config.hidden_irreps).sort().irreps.simplify()
        if irreps_hidden[0].ir != o3.Irrep("0e"):
            raise ValueError(f"hidden_irreps {config.hidden_irreps!r} need scalar channels (0e)")
        if any(ir.p != 1 for _, ir in irreps_hidden):
            raise ValueError(
                f"hidden_irreps {config.hidden_irreps!r} must use even parity only (e.g. '16x1e'), "
                "which keeps the network SE(3)- and not E(3)-equivariant"
            )
        self.irreps_hidden = irreps_hidden
        self.hidden_dim = irreps_hidden.dim
        self.num_scalars = irreps_hidden[0].mul
        irreps_sh = o3.Irreps([(1, (degree, 1)) for degree in range(config.sh_lmax + 1)])
        lmax = max(ir.l for _, ir in irreps_hidden)
        irreps_products = o3.Irreps([(self.num_scalars, (degree, 1)) for degree in range(max(lmax, 1) + 1)])

        z_to_index = torch.full((119,), -1, dtype=torch.long)
        z_to_index[torch.tensor(config.species)] = torch.arange(len(config.species))
        self.register_buffer("z_to_index", z_to_index, persistent=False)

        self.spherical_harmonics = o3.SphericalHarmonics(
            irreps_sh, normalize=True, normalization="component", irreps_in="1e"
        )
        self.radial_basis = BesselBasis(config.num_radial, config.cutoff)
        self.centroid_embedding = CentroidEmbedding(irreps_hidden, config.cutoff, config.length_scale)
        self.species_embedding = nn.Embedding(len(config.species), self.num_scalars)
        if (config.site_types is None) != (config.site_numbers is None) or (
            config.site_types is not None and len(config.site_types) != len(config.site_numbers or [])
        ):
            raise ValueError("site_types and site_numbers go together: one type and one atomic number per atom")
        if config.site_types is not None:
            self.register_buffer("site_types", torch.tensor(config.site_types), persistent=False)
            self.register_buffer("site_numbers", torch.tensor(config.site_numbers), persistent=False)
            self.site_embedding = nn.Embedding(max(config.site_types) + 1, self.num_scalars)
        if config.site_bonds is not None:
            if config.site_numbers is None or not config.graph_conditioned:
                raise ValueError(
                    "site_bonds (the bonds of one molecule) need site_numbers and graph_conditioned=True"
                )
            n_sites = len(config.site_numbers)
            site_topology = topology_classes(n_sites, np.asarray(config.site_bonds))
            self.register_buffer("site_topology", site_topology, persistent=False)
            self.register_buffer("site_bond_counts", (site_topology.view(n_sites, n_sites) == 1).sum(1), persistent=False)
        edge_scalar_dim = config.num_radial
        if config.graph_conditioned:
            self.degree_embedding = nn.Embedding(MAX_BONDS + 1, self.num_scalars)
            edge_scalar_dim += TOPOLOGY_CLASSES
        if config.sigma_conditioned:
            self.noise_embedding = NoiseLevelEmbedding(config.sigma_embedding_dim)
            self.noise_to_nodes = nn.Linear(config.sigma_embedding_dim, self.num_scalars)
            edge_scalar_dim += config.sigma_embedding_dim
        self.layers = nn.ModuleList(
            ProductInteraction(irreps_hidden, irreps_sh, irreps_products, edge_scalar_dim, config.radial_hidden,
                               config.correlation, config.avg_neighbours, config.edge_chunk)
            for _ in range(config.num_layers)
        )
        if config.conservative:
            self.energy_heads = nn.ModuleList(o3.Linear(irreps_hidden, "1x0e") for _ in range(config.num_layers - 1))
            # no bias: a constant energy has no gradient
            self.final_energy_head = nn.Sequential(
                nn.Linear(self.num_scalars, 16), nn.SiLU(), nn.Linear(16, 1, bias=False)
            )
        else:
            if not any(ir == o3.Irrep("1e") for _, ir in irreps_hidden):
                raise ValueError(f"hidden_irreps {config.hidden_irreps!r} need vectors (1e) for a direct output")
            self.vector_heads = nn.ModuleList(o3.Linear(irreps_hidden, "1x1e") for _ in range(config.num_layers))
            self.pair_weight_mlp = mlp([edge_scalar_dim, config.radial_hidden, self.num_scalars])

    def species_index(self, numbers: torch.Tensor) -> torch.Tensor:
        """Embedding index of each atomic number; a clear error for unknown elements."""
        if numbers.min() < 0 or numbers.max() > 118:
            raise ValueError(f"atomic numbers must lie in 0..118, got {numbers.unique().tolist()}")
        index = self.z_to_index[numbers]
        if torch.any(index < 0):
            unknown = sorted(set(numbers[index < 0].tolist()))
            raise ValueError(
                f"the model was trained on elements {self.config.species} and does not know {unknown}"
            )
        return index

    @property
    def needs_topology(self) -> bool:
        """True when callers must pass the molecular graph (graph-conditioned, not one molecule's network)."""
        return self.config.graph_conditioned and self.config.site_bonds is None

    def _site_index(self, numbers: torch.Tensor, batch: torch.Tensor, num_structures: int) -> torch.Tensor:
        """Type of each atom of a flat batch of the molecule's structures; a clear error for others."""
        n_sites = len(self.site_types)
        counts = torch.bincount(batch, minlength=num_structures)
        if torch.any(counts != n_sites):
            raise ValueError(
                f"this model is for one molecule of {n_sites} atoms in a fixed order, got structures of "
                f"{sorted(set(counts.tolist()))} atoms; use the molecule it was trained on (atom_types='graph')"
            )
        site = self._sites(batch)
        if not torch.equal(numbers, self.site_numbers[site]):
            raise ValueError(
                "the atoms are not in the order the model was trained on (atom_types='graph'): expected elements "
                f"{self.site_numbers.tolist()}; reorder the structure to the training frames' atom order"
            )
        return self.site_types[site]

    def _sites(self, batch: torch.Tensor) -> torch.Tensor:
        """Site (atom index in the molecule) of each atom of a flat batch of the one molecule's structures."""
        return torch.arange(len(batch), device=batch.device) % len(self.site_numbers)  # structures are contiguous

    def _pair_classes(
        self, topology: torch.Tensor | None, batch: torch.Tensor, source: torch.Tensor, destination: torch.Tensor
    ) -> torch.Tensor:
        """Topology class (0-3) of each edge: from the flat batch's ``topology``, or when it is None from
        the one molecule's n x n matrix, without a copy per structure."""
        if topology is not None:
            return topology[pair_index(batch, source, destination)]
        sites = self._sites(batch)
        return self.site_topology[sites[source] * len(self.site_numbers) + sites[destination]]

    def _checked_topology(self, topology: torch.Tensor | None, batch: torch.Tensor) -> torch.Tensor:
        """The flat batch's topology on the batch's device; clear errors for a missing or misshapen one."""
        if topology is None:
            raise ValueError(
                "this model is conditioned on the molecular graph: pass the bonds (atoms.info['bonds'], "
                "or a clean template whose bonds can be perceived)"
            )
        expected = int((torch.bincount(batch) ** 2).sum()) if batch.numel() else 0
        if topology.shape != (expected,):
            raise ValueError(
                f"topology has shape {tuple(topology.shape)}, expected ({expected},): one n x n "
                "topology_classes matrix per structure, concatenated"
            )
        return topology.to(batch.device)

    def forward(
        self,
        numbers: torch.Tensor,
        positions: torch.Tensor,
        batch: torch.Tensor,
        sigma: torch.Tensor | None = None,
        topology: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Pseudo-forces (n_atoms, 3) in Å for a flat batch.

        numbers (n_atoms,), positions (n_atoms, 3) Å, batch (n_atoms,) structure
        index, sigma (n_structures,) noise level in Å (required when sigma-conditioned),
        topology: the structures' :func:`~ase_psm.model.topology_classes` concatenated
        (sum of n_b^2,; required when graph-conditioned).
        """
        config = self.config
        num_structures = int(batch.max()) + 1 if batch.numel() else 0
        node_scalars = self.species_embedding(self.species_index(numbers))
        if config.site_types is not None:
            node_scalars = node_scalars + self.site_embedding(self._site_index(numbers, batch, num_structures))
        noise_features, stretch = None, None
        if config.sigma_conditioned:
            if sigma is None:
                raise ValueError("this model is sigma-conditioned: pass the noise level sigma")
            sigma = sigma.to(positions.dtype).expand(num_structures)
            shrink = torch.sqrt(1.0 + (sigma / config.length_scale) ** 2)[batch, None]
            positions = positions / shrink
            stretch = None if config.shrink_graph else shrink
            noise_features = self.noise_embedding(sigma)
            node_scalars = node_scalars + self.noise_to_nodes(noise_features)[batch]
        if config.graph_conditioned:
            if topology is None and config.site_bonds is not None:  # _site_index checked the atoms
                bond_counts = self.site_bond_counts[self._sites(batch)]
            else:
                topology = self._checked_topology(topology, batch)
                bond_counts = _bond_counts(topology, batch)
            node_scalars = node_scalars + self.degree_embedding(bond_counts.clamp(max=MAX_BONDS))
        if config.conservative:
            differentiable = self.training or positions.requires_grad  # callers may differentiate the output
            with torch.enable_grad():
                if not positions.requires_grad:
                    positions = positions.detach().requires_grad_(True)
                energy = self._energy(node_scalars, positions, batch, noise_features, topology, stretch)
                (gradient,) = torch.autograd.grad(energy, positions, create_graph=differentiable)
            output = -gradient
        else:
            output = self._vectors(node_scalars, positions, batch, noise_features, topology, stretch)
        output = output - structure_mean(output, batch, num_structures)[batch]  # no net translation
        if config.sigma_conditioned:
            assert sigma is not None
            output = output * (sigma**2 / torch.sqrt(sigma**2 + config.sigma_data**2))[batch, None]
        return output

    def _interactions(
        self,
        node_scalars: torch.Tensor,
        positions: torch.Tensor,
        batch: torch.Tensor,
        noise_features: torch.Tensor | None,
        topology: torch.Tensor | None,
        stretch: torch.Tensor | None = None,
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Node features after each interaction, and the edges (source, destination, vectors, scalars).

        ``stretch`` (n_atoms, 1): the graph is built on ``positions * stretch`` (unshrunk, ``shrink_graph``
        False); the centroid channel always sees ``positions``."""
        graph_positions = positions if stretch is None else positions * stretch
        source, destination = build_edges(batch, graph_positions.detach(), self.config.cutoff)
        edge_vectors = graph_positions[source] - graph_positions[destination]
        edge_scalars = self.radial_basis(edge_vectors.norm(dim=-1))
        if noise_features is not None:
            edge_scalars = torch.cat([edge_scalars, noise_features[batch[destination]]], dim=-1)
        if self.config.graph_conditioned:
            pair_classes = self._pair_classes(topology, batch, source, destination)
            one_hot = nn.functional.one_hot(pair_classes, TOPOLOGY_CLASSES).to(edge_scalars.dtype)
            edge_scalars = torch.cat([edge_scalars, one_hot], dim=-1)
        edge_sh = self.spherical_harmonics(edge_vectors)
        centroids = structure_mean(positions, batch, int(batch[-1]) + 1)
        features = self.centroid_embedding(positions - centroids[batch])
        features = torch.cat([features[:, : self.num_scalars] + node_scalars, features[:, self.num_scalars :]], dim=-1)
        per_layer = []
        for layer in self.layers:
            features = layer(features, source, destination, edge_sh, edge_scalars)
            per_layer.append(features)
        return per_layer, source, destination, edge_vectors, edge_scalars

    def _vectors(
        self,
        node_scalars: torch.Tensor,
        positions: torch.Tensor,
        batch: torch.Tensor,
        noise_features: torch.Tensor | None,
        topology: torch.Tensor | None,
        stretch: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Direct output: a vector per atom from each interaction plus a learned pair term."""
        per_layer, source, destination, edge_vectors, edge_scalars = self._interactions(
            node_scalars, positions, batch, noise_features, topology, stretch
        )
        output = sum(head(features) for head, features in zip(self.vector_heads, per_layer))
        scalars = per_layer[-1][:, : self.num_scalars]
        pair_weights = (self.pair_weight_mlp(edge_scalars) * scalars[source] * scalars[destination]).mean(-1)
        pair_term = torch.zeros_like(positions).index_add(0, destination, pair_weights[:, None] * edge_vectors)
        return output + pair_term / self.config.avg_neighbours

    def _energy(
        self,
        node_scalars: torch.Tensor,
        positions: torch.Tensor,
        batch: torch.Tensor,
        noise_features: torch.Tensor | None,
        topology: torch.Tensor | None,
        stretch: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Total predicted energy of the batch (dimensionless; its gradient is the output)."""
        per_layer, *_ = self._interactions(node_scalars, positions, batch, noise_features, topology, stretch)
        energy = sum(head(features).sum() for head, features in zip(self.energy_heads, per_layer[:-1]))
        return energy + self.final_energy_head(per_layer[-1][:, : self.num_scalars]).sum()

    def pseudo_forces_flat(
        self,
        numbers: torch.Tensor,
        positions: torch.Tensor,
        batch: torch.Tensor,
        sigma: torch.Tensor | float | None = None,
        topology: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Pseudo-forces (N_total, 3) in Å for structures of any sizes and compositions in one flat batch.

        numbers (N_total,), positions (N_total, 3) Å, batch (N_total,) structure index
        (atoms of a structure contiguous, structures in increasing order), sigma (B,) or a
        scalar noise level in Å, or None for a time-step-free model; topology for a
        graph-conditioned model (see :meth:`forward`).
        """
        if sigma is not None:
            sigma = torch.as_tensor(sigma, dtype=positions.dtype, device=positions.device).reshape(-1)
            num_structures = int(batch[-1]) + 1 if len(batch) else 0
            if sigma.numel() not in (1, num_structures):
                raise ValueError(
                    f"sigma has {sigma.numel()} values for {num_structures} structures: "
                    "give one noise level per structure or a scalar"
                )
        return self(numbers, positions, batch, sigma, topology)

    def pseudo_forces(
        self,
        numbers: torch.Tensor,
        positions: torch.Tensor,
        sigma: torch.Tensor | float | None = None,
        topology: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Pseudo-forces (B, N, 3) for B structures of the same N atoms (Å).

        numbers (N,), positions (B, N, 3), sigma (B,) or a scalar, or None; topology (N * N,)
        of the molecule (:func:`~ase_psm.model.topology_classes`) for a graph-conditioned model.
        """
        n_structures, n_atoms, _ = positions.shape
        batch = torch.arange(n_structures, device=positions.device).repeat_interleave(n_atoms)
        if topology is not None:
            topology = topology.to(positions.device).repeat(n_structures)
        flat = self.pseudo_forces_flat(
            numbers.repeat(n_structures), positions.reshape(-1, 3), batch, sigma, topology
        )
        return flat.reshape(n_structures, n_atoms, 3)


def _bond_counts(topology: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    """Bonds of every atom: the class-1 entries of its row of the concatenated n_b x n_b matrices."""
    row = torch.arange(len(batch), device=batch.device).repeat_interleave(torch.bincount(batch)[batch])
    return torch.bincount(row[topology == 1], minlength=len(batch))

