"""Per-structure sums and means over flat batches.

A flat batch holds the atoms of several structures in one tensor (n_atoms, ...), with each atom's
structure index in ``batch`` (n_atoms,); structures may differ in size.
"""

from __future__ import annotations

import torch


def structure_sum(values: torch.Tensor, batch: torch.Tensor, num_structures: int) -> torch.Tensor:
    """Sum of ``values`` (n_atoms, ...) over each structure's atoms: (num_structures, ...)."""
    return values.new_zeros((num_structures, *values.shape[1:])).index_add_(0, batch, values)


def structure_mean(values: torch.Tensor, batch: torch.Tensor, num_structures: int) -> torch.Tensor:
    """Mean of ``values`` (n_atoms, ...) over each structure's atoms: (num_structures, ...); 0 for a
    structure without atoms."""
    counts = torch.bincount(batch, minlength=num_structures).clamp(min=1).to(values.dtype)
    return structure_sum(values, batch, num_structures) / counts.reshape(-1, *[1] * (values.dim() - 1))
