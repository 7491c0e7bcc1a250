"""Building blocks of the pseudo-force network (e3nn, SE(3)-equivariant), after MACE's.

Radial features are Bessel functions times a smooth polynomial envelope that reaches zero with its
first derivatives at the cutoff; messages are summed over neighbours (normalised by the data's mean
neighbour count, not averaged per atom), and each interaction raises the body order with
channel-wise tensor products of the summed messages (Batatia et al. 2022, MACE).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch
from e3nn import o3
from torch import nn

ENVELOPE_POWER = 5
"""Polynomial envelope u(x) = 1 - 21 x^5 + 35 x^6 - 15 x^7 (p = 5, as MACE's and DimeNet's)."""


class BesselBasis(nn.Module):
    """sqrt(2/r_c) sin(n pi r / r_c) / r for n = 1..num_basis, times a polynomial envelope (r_c: the cutoff)."""

    frequencies: torch.Tensor  # registered buffer

    def __init__(self, num_basis: int, cutoff: float) -> None:
        super().__init__()
        self.cutoff = cutoff
        self.register_buffer("frequencies", torch.arange(1, num_basis + 1) * math.pi / cutoff)

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        """(E,) distances -> (E, num_basis) features, zero beyond the cutoff."""
        r = distances[:, None]
        basis = math.sqrt(2.0 / self.cutoff) * torch.sin(self.frequencies * r) / r.clamp(min=1e-9)
        x = (r / self.cutoff).clamp(max=1.0)
        p = ENVELOPE_POWER
        envelope = 1 - (p + 1) * (p + 2) / 2 * x**p + p * (p + 2) * x ** (p + 1) - p * (p + 1) / 2 * x ** (p + 2)
        return basis * envelope


class CentroidEmbedding(nn.Module):
    """Initial node features from each atom's offset d_i = x_i - (its structure's centroid), Å.

    Scalars: a linear map of Gaussians of |d_i| on [0, r_max] (|d_i| clamped there, so the last one
    stays on for atoms farther out); vectors: for each vector (1e) channel c, w_c(|d_i|) times
    d_i / sqrt(|d_i|^2 + length^2). Every atom, even one farther than the cutoff from all others,
    so knows where the rest of its structure is: a coarse global channel beside the cutoff graph.
    """

    centres: torch.Tensor  # registered buffer

    def __init__(self, irreps_hidden: o3.Irreps, r_max: float, length: float, num_basis: int = 8) -> None:
        super().__init__()
        self.register_buffer("centres", torch.linspace(0.0, r_max, num_basis))
        self.width = r_max / (num_basis - 1)
        self.r_max, self.length = r_max, length
        self.num_scalars = irreps_hidden.count("0e")
        self.num_vectors = irreps_hidden.count("1e")
        self.padding = irreps_hidden.dim - self.num_scalars - 3 * self.num_vectors
        self.to_scalars = nn.Linear(num_basis, self.num_scalars)
        self.to_vectors = nn.Linear(num_basis, self.num_vectors)

    def forward(self, offsets: torch.Tensor) -> torch.Tensor:
        """(n_atoms, 3) offsets from the centroid, Å -> (n_atoms, hidden dim) features in e3nn's layout."""
        distance = offsets.norm(dim=-1, keepdim=True)
        basis = torch.exp(-0.5 * ((distance.clamp(max=self.r_max) - self.centres) / self.width) ** 2)
        soft_direction = offsets / torch.sqrt(distance**2 + self.length**2)
        vectors = o3.spherical_harmonics(1, soft_direction, normalize=False, normalization="component")
        vector_features = self.to_vectors(basis)[:, :, None] * vectors[:, None, :]
        return torch.cat(
            [self.to_scalars(basis), vector_features.flatten(1), offsets.new_zeros(len(offsets), self.padding)], dim=-1
        )


class NoiseLevelEmbedding(nn.Module):
    """Fourier features of log(sigma) followed by a small MLP."""

    frequencies: torch.Tensor  # registered buffer

    def __init__(self, dim: int, num_frequencies: int = 8) -> None:
        super().__init__()
        self.register_buffer("frequencies", torch.arange(1, num_frequencies + 1) * 0.5)
        self.mlp = mlp([2 * num_frequencies, dim, dim])

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        """(G,) noise levels -> (G, dim)."""
        phase = torch.log(sigma)[:, None] * self.frequencies
        return self.mlp(torch.cat([torch.sin(phase), torch.cos(phase)], dim=-1))


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers of the given widths with SiLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for width_in, width_out in pairwise(sizes):
        layers += [nn.Linear(width_in, width_out), nn.SiLU()]
    return nn.Sequential(*layers[:-1])


def channelwise_product(irreps: o3.Irreps) -> o3.TensorProduct:
    """Weighted products a_k (x) b_k of channel k of two feature sets into channel k ("uuu"), every
    coupling l1 x l2 -> l3 the irreps allow: one step up in body order, as MACE's symmetric contraction."""
    instructions = [
        (i, j, k, "uuu", True)
        for i, (_, ir_1) in enumerate(irreps)
        for j, (_, ir_2) in enumerate(irreps)
        for k, (_, ir_out) in enumerate(irreps)
        if ir_out in ir_1 * ir_2
    ]
    return o3.TensorProduct(irreps, irreps, irreps, instructions, internal_weights=True, shared_weights=True)


class ProductInteraction(nn.Module):
    """One interaction: summed equivariant messages A_i, products up to ``correlation`` of them, residual.

    A_i = Linear(sum_j TP(W h_j, Y(r_ij); R(edge scalars)) / avg_neighbours)
    B_i = A_i + A_i * A_i + (A_i * A_i) * A_i + ...  (channel-wise products, ``correlation`` factors)
    h_i <- Linear(h_i) + Linear(B_i)

    Messages are built and summed in chunks of ``edge_chunk`` edges (same sum, less memory traffic
    on CPU; None: all at once).
    """

    def __init__(
        self,
        irreps_hidden: o3.Irreps,
        irreps_sh: o3.Irreps,
        irreps_products: o3.Irreps,
        edge_scalar_dim: int,
        radial_hidden: int,
        correlation: int,
        avg_neighbours: float,
        edge_chunk: int | None = None,
    ) -> None:
        super().__init__()
        self.avg_neighbours = avg_neighbours
        self.edge_chunk = edge_chunk
        self.linear_up = o3.Linear(irreps_hidden, irreps_hidden)
        mid: list[tuple[int, o3.Irrep]] = []
        instructions: list[tuple[int, int, int, str, bool]] = []
        for i, (mul, ir_in) in enumerate(irreps_hidden):
            for j, (_, ir_edge) in enumerate(irreps_sh):
                for ir_out in ir_in * ir_edge:
                    if ir_out in irreps_products:
                        instructions.append((i, j, len(mid), "uvu", True))
                        mid.append((mul, ir_out))
        self.tensor_product = o3.TensorProduct(
            irreps_hidden, irreps_sh, o3.Irreps(mid), instructions, shared_weights=False, internal_weights=False
        )
        self.radial_mlp = mlp([edge_scalar_dim, radial_hidden, radial_hidden, self.tensor_product.weight_numel])
        self.message_dim = self.tensor_product.irreps_out.dim  # an int: torch.compile cannot guard e3nn 0.6's Irreps
        self.linear_messages = o3.Linear(self.tensor_product.irreps_out, irreps_products)
        self.products = nn.ModuleList(channelwise_product(irreps_products) for _ in range(correlation - 1))
        self.linear_out = o3.Linear(irreps_products, irreps_hidden)
        self.self_connection = o3.Linear(irreps_hidden, irreps_hidden)

    def forward(
        self,
        features: torch.Tensor,
        edge_src: torch.Tensor,
        edge_dst: torch.Tensor,
        edge_sh: torch.Tensor,
        edge_scalars: torch.Tensor,
    ) -> torch.Tensor:
        nodes = self.linear_up(features)
        summed = features.new_zeros(features.shape[0], self.message_dim)
        chunk = self.edge_chunk or max(len(edge_src), 1)
        for start in range(0, len(edge_src), chunk):
            edges = slice(start, start + chunk)
            weights = self.radial_mlp(edge_scalars[edges])
            messages = self.tensor_product(nodes[edge_src[edges]], edge_sh[edges], weights)
            summed = summed.index_add(0, edge_dst[edges], messages)
        basis = self.linear_messages(summed / self.avg_neighbours)
        product, total = basis, basis
        for contraction in self.products:
            product = contraction(product, basis)
            total = total + product
        return self.self_connection(features) + self.linear_out(total)
