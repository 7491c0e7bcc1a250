"""Graphs over batches of structures: every pair, or the pairs inside a cutoff."""

from __future__ import annotations

import torch


def _pair_template(n_atoms: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """All ordered pairs (i, j), i != j, of one structure with n_atoms atoms."""
    index = torch.arange(n_atoms, device=device)
    src, dst = torch.meshgrid(index, index, indexing="ij")
    keep = src != dst
    return src[keep], dst[keep]


def build_edges(
    batch: torch.Tensor, positions: torch.Tensor, cutoff: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Directed edges (source, destination) between atoms of the same structure.

    ``batch`` (n_atoms,) gives each atom's structure index; the atoms of one
    structure must be contiguous and structures in increasing order. With a
    ``cutoff`` (same length unit as ``positions``) only pairs closer than it are kept.
    """
    if batch.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=batch.device)
        return empty, empty
    if torch.any(batch[1:] < batch[:-1]):
        raise ValueError("atoms of one structure must be contiguous and sorted by structure index")
    counts = torch.bincount(batch)
    starts = torch.cumsum(counts, 0) - counts
    sources, destinations = [], []
    for n_atoms in torch.unique(counts).tolist():
        if n_atoms < 2:
            continue
        graph_starts = starts[counts == n_atoms]
        src, dst = _pair_template(n_atoms, batch.device)
        sources.append((graph_starts[:, None] + src).reshape(-1))
        destinations.append((graph_starts[:, None] + dst).reshape(-1))
    if not sources:
        empty = torch.zeros(0, dtype=torch.long, device=batch.device)
        return empty, empty
    source = torch.cat(sources)
    destination = torch.cat(destinations)
    if cutoff is not None:
        close = (positions[source] - positions[destination]).norm(dim=-1) < cutoff
        source, destination = source[close], destination[close]
    return source, destination
