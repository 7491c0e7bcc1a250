"""Small building blocks of the pseudo-force network (e3nn, SE(3)-equivariant)."""

from __future__ import annotations

import math

import torch
from e3nn import nn as e3nn_nn
from e3nn import o3
from torch import nn

# Edges per chunk of a message-passing layer on CPU. Per-edge tensors of a whole batch (e.g. 190 000
# LJ-55 edges x 240 channels) stream through main memory between each of the tensor product's
# elementwise steps; chunks of a few thousand edges stay in cache. On a 2-core EPYC this made
# batched inference about twice as fast, with the same result (training gained little). GPUs get
# the whole batch at once.
CPU_EDGE_CHUNK = 4096


class GaussianRadialBasis(nn.Module):
    """Gaussians on evenly spaced centres in [0, r_max], with an optional smooth cutoff."""

    centres: torch.Tensor  # registered buffer

    def __init__(self, num_basis: int, r_max: float, cutoff: float | None = None) -> None:
        super().__init__()
        self.register_buffer("centres", torch.linspace(0.0, r_max, num_basis))
        self.width = r_max / (num_basis - 1)
        self.cutoff = cutoff

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        """(E,) distances -> (E, num_basis) features."""
        exponent = -0.5 * ((distances[:, None] - self.centres) / self.width) ** 2
        # exp(-80) ~ 1e-35 is zero for every purpose; the clamp keeps exp out of the slow
        # subnormal range, which made this the costliest line of a forward pass on CPU.
        basis = torch.exp(exponent.clamp(min=-80.0))
        if self.cutoff is not None:
            envelope = 0.5 * (torch.cos(math.pi * distances / self.cutoff) + 1.0)
            basis = basis * (envelope * (distances < self.cutoff))[:, None]
        return basis


class NoiseLevelEmbedding(nn.Module):
    """Fourier features of log(sigma) followed by a small MLP."""

    frequencies: torch.Tensor  # registered buffer

    def __init__(self, dim: int, num_frequencies: int = 8) -> None:
        super().__init__()
        self.register_buffer("frequencies", torch.arange(1, num_frequencies + 1) * 0.5)
        self.mlp = nn.Sequential(
            nn.Linear(2 * num_frequencies, dim), nn.SiLU(), nn.Linear(dim, dim)
        )

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        """(G,) noise levels -> (G, dim)."""
        phase = torch.log(sigma)[:, None] * self.frequencies
        return self.mlp(torch.cat([torch.sin(phase), torch.cos(phase)], dim=-1))


def gated_irreps(irreps_hidden: o3.Irreps) -> tuple[o3.Irreps, o3.Irreps, o3.Irreps]:
    """Split hidden irreps into (scalars, gates, gated) for an e3nn Gate."""
    scalars = o3.Irreps([(mul, ir) for mul, ir in irreps_hidden if ir.l == 0])
    gated = o3.Irreps([(mul, ir) for mul, ir in irreps_hidden if ir.l > 0])
    gates = o3.Irreps(f"{gated.num_irreps}x0e")
    return scalars, gates, gated


class InteractionBlock(nn.Module):
    """One round of equivariant message passing (NequIP-style, residual).

    h_i <- h_i + Gate(Linear(mean_j TP(h_j, Y(r_ij); w(edge scalars))))

    Messages are built and summed in chunks of ``CPU_EDGE_CHUNK`` edges on CPU (same sum, less
    memory traffic).
    """

    def __init__(
        self,
        irreps_hidden: o3.Irreps,
        irreps_sh: o3.Irreps,
        edge_scalar_dim: int,
        radial_hidden: int,
    ) -> None:
        super().__init__()
        self.linear_in = o3.Linear(irreps_hidden, irreps_hidden)
        mid: list[tuple[int, o3.Irrep]] = []
        instructions: list[tuple[int, int, int, str, bool]] = []
        for i, (mul, ir_in) in enumerate(irreps_hidden):
            for j, (_, ir_edge) in enumerate(irreps_sh):
                for ir_out in ir_in * ir_edge:
                    if ir_out in irreps_hidden:
                        instructions.append((i, j, len(mid), "uvu", True))
                        mid.append((mul, ir_out))
        irreps_mid = o3.Irreps(mid)
        self.tensor_product = o3.TensorProduct(
            irreps_hidden,
            irreps_sh,
            irreps_mid,
            instructions,
            shared_weights=False,
            internal_weights=False,
        )
        self.radial_mlp = nn.Sequential(
            nn.Linear(edge_scalar_dim, radial_hidden),
            nn.SiLU(),
            nn.Linear(radial_hidden, self.tensor_product.weight_numel),
        )
        scalars, gates, gated = gated_irreps(irreps_hidden)
        self.gate = e3nn_nn.Gate(scalars, [nn.functional.silu], gates, [torch.sigmoid], gated)
        self.linear_out = o3.Linear(irreps_mid, self.gate.irreps_in)

    def forward(
        self,
        features: torch.Tensor,
        edge_src: torch.Tensor,
        edge_dst: torch.Tensor,
        edge_sh: torch.Tensor,
        edge_scalars: torch.Tensor,
        inverse_degree: torch.Tensor,
    ) -> torch.Tensor:
        nodes = self.linear_in(features)
        aggregated = features.new_zeros(features.shape[0], self.tensor_product.irreps_out.dim)
        chunk = CPU_EDGE_CHUNK if features.device.type == "cpu" else max(len(edge_src), 1)
        for start in range(0, len(edge_src), chunk):
            edges = slice(start, start + chunk)
            weights = self.radial_mlp(edge_scalars[edges])
            messages = self.tensor_product(nodes[edge_src[edges]], edge_sh[edges], weights)
            aggregated.index_add_(0, edge_dst[edges], messages)
        aggregated = aggregated * inverse_degree[:, None]
        return features + self.gate(self.linear_out(aggregated))
