"""Graphs over flat batches of structures: every pair, or the pairs inside a cutoff.

Both paths are vectorised over the whole batch (no Python loop over structures) and
return edges sorted by (source, destination), so they give identical graphs:

- all pairs (``cutoff=None``, or small structures with a cutoff): index arithmetic, O(sum n^2);
- large structures with a cutoff: one cell-list search with ``vesin`` (O(n)) over the batch laid
  out along x with gaps wider than the cutoff, then the same exact ``distance < cutoff`` filter.
  Without ``vesin`` installed the all-pairs path is used for every size.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

try:
    import vesin
except ImportError:  # optional: the all-pairs path covers every case, in O(n^2)
    vesin = None

DENSE_MAX_ATOMS = 48
"""With a cutoff, structures up to this many atoms use all pairs + filter; larger ones a cell list."""

TOPOLOGY_CLASSES = 4
"""Pair classes a graph-conditioned network sees: 1, 2 or 3 bonds apart, and 0 for farther or unconnected."""


def all_pairs(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every ordered pair (i, j), i != j, of atoms in the same structure, sorted by (i, j).

    ``batch`` (n_atoms,) holds each atom's structure index, contiguous and increasing.
    """
    device = batch.device
    counts = torch.bincount(batch)
    starts = torch.cumsum(counts, 0) - counts
    degree = counts[batch] - 1
    atoms = torch.arange(len(batch), device=device)
    source = torch.repeat_interleave(atoms, degree)
    first_edge = torch.cumsum(degree, 0) - degree
    k = torch.arange(len(source), device=device) - first_edge[source]
    local_source = (atoms - starts[batch])[source]
    destination = starts[batch[source]] + k + (k >= local_source).long()
    return source, destination


def _cell_list_pairs(
    batch: torch.Tensor, positions: torch.Tensor, cutoff: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs closer than (slightly more than) ``cutoff`` from one vesin search, sorted by (i, j)."""
    x = positions.detach().to("cpu", torch.float64)
    cpu_batch = batch.cpu()
    num_structures = int(cpu_batch[-1]) + 1
    index = cpu_batch[:, None].expand(-1, 3)
    lower = torch.full((num_structures, 3), torch.inf, dtype=x.dtype).scatter_reduce(0, index, x, "amin")
    local = x - lower[cpu_batch]
    width = torch.zeros(num_structures, dtype=x.dtype).scatter_reduce(0, cpu_batch, local[:, 0], "amax")
    offset = torch.cumsum(width + 2.0 * cutoff, 0) - (width + 2.0 * cutoff)
    local[:, 0] += offset[cpu_batch]
    search = vesin.NeighborList(cutoff=cutoff * (1.0 + 1e-6) + 1e-9, full_list=True)
    i, j = search.compute(local.numpy(), np.zeros((3, 3)), False, "ij")
    key = torch.from_numpy(i.astype(np.int64) * len(x) + j.astype(np.int64)).sort().values
    return (key // len(x)).to(batch.device), (key % len(x)).to(batch.device)


def build_edges(
    batch: torch.Tensor, positions: torch.Tensor, cutoff: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Directed edges (source, destination) between atoms of the same structure.

    ``batch`` (n_atoms,) gives each atom's structure index; the atoms of one
    structure must be contiguous and structures in increasing order. With a
    ``cutoff`` (same length unit as ``positions``, Å) only pairs closer than it are kept.
    Edges are sorted by (source, destination).
    """
    if batch.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=batch.device)
        return empty, empty
    if torch.any(batch[1:] < batch[:-1]):
        raise ValueError("atoms of one structure must be contiguous and sorted by structure index")
    if cutoff is None:
        return all_pairs(batch)
    if vesin is not None and int(torch.bincount(batch).max()) > DENSE_MAX_ATOMS:
        source, destination = _cell_list_pairs(batch, positions, cutoff)
    else:
        source, destination = all_pairs(batch)
    close = (positions[source] - positions[destination]).norm(dim=-1) < cutoff
    return source[close], destination[close]


def topology_classes(n_atoms: int, bonds: np.ndarray) -> torch.Tensor:
    """(n_atoms * n_atoms,) class of every ordered pair (i, j), row-major, from (n_bonds, 2) bonds.

    The class is the number of bonds on the shortest path between i and j when it is 1, 2 or 3,
    and 0 otherwise (4 or more bonds apart, unconnected, or i = j): the molecular graph as a
    graph-conditioned :class:`~ase_psm.model.PseudoForceNet` sees it.
    """
    bonds = np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
    adjacency = csr_matrix((np.ones(len(bonds)), (bonds[:, 0], bonds[:, 1])), shape=(n_atoms, n_atoms))
    hops = shortest_path(adjacency, directed=False, unweighted=True)
    classes = np.where((hops >= 1) & (hops < TOPOLOGY_CLASSES), hops, 0)
    return torch.as_tensor(classes.reshape(-1), dtype=torch.long)


def pair_index(batch: torch.Tensor, source: torch.Tensor, destination: torch.Tensor) -> torch.Tensor:
    """Index of each edge into the concatenated row-major (n_b * n_b) pair matrices of a flat batch."""
    counts = torch.bincount(batch)
    starts = torch.cumsum(counts, 0) - counts
    pair_starts = torch.cumsum(counts**2, 0) - counts**2
    structure = batch[source]
    return (
        pair_starts[structure]
        + (source - starts[structure]) * counts[structure]
        + (destination - starts[structure])
    )
