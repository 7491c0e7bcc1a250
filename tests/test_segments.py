"""Per-structure sums and means over flat batches."""

from __future__ import annotations

import torch

from ase_psm.model.segments import structure_mean, structure_sum


def test_sums_and_means_per_structure_of_a_flat_batch():
    values = torch.arange(12, dtype=torch.float64).reshape(6, 2)
    batch = torch.tensor([0, 0, 0, 2, 2, 2])  # structure 1 has no atoms
    torch.testing.assert_close(structure_sum(values, batch, 3), torch.tensor([[6.0, 9.0], [0.0, 0.0], [24.0, 27.0]],
                                                                             dtype=torch.float64))
    torch.testing.assert_close(structure_mean(values, batch, 3), torch.tensor([[2.0, 3.0], [0.0, 0.0], [8.0, 9.0]],
                                                                              dtype=torch.float64))
    torch.testing.assert_close(structure_mean(values[:, 0], batch, 3), torch.tensor([2.0, 0.0, 8.0], dtype=torch.float64))
