"""Data-parallel training over the processes of a ``torchrun`` job (see :mod:`ase_psm.distributed`).

Every rank draws its own batches and noise (generator seeded by (seed, rank)),
DistributedDataParallel averages the gradients, so weights and EMA weights stay identical on
all ranks, and rank 0 alone writes checkpoints and logs.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..distributed import DistributedContext, rank_seed, setup, teardown
from ..model import ModelConfig, PseudoForceNet

# the process-group helpers, as the training loop calls them (distributed.setup, ...)
__all__ = ["DataParallelNet", "DistributedContext", "check_replicas_match", "rank_seed", "setup", "teardown"]


class _PseudoForces(nn.Module):
    def __init__(self, net: PseudoForceNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, numbers: torch.Tensor, positions: torch.Tensor, sigma: torch.Tensor | None) -> torch.Tensor:
        return self.net.pseudo_forces(numbers, positions, sigma)


class DataParallelNet:
    """A network under DistributedDataParallel with the ``pseudo_forces`` and ``config`` the trainer uses."""

    def __init__(self, net: PseudoForceNet, context: DistributedContext) -> None:
        self.config: ModelConfig = net.config
        device_ids = [context.device.index] if context.device.type == "cuda" else None
        self._ddp = DistributedDataParallel(_PseudoForces(net), device_ids=device_ids)

    def pseudo_forces(
        self, numbers: torch.Tensor, positions: torch.Tensor, sigma: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, N, 3) pseudo-forces; the backward pass averages gradients over the ranks."""
        return self._ddp(numbers, positions, sigma)


@torch.no_grad()
def check_replicas_match(module: nn.Module) -> None:
    """Raise if the parameters of ``module`` differ between ranks (collective)."""
    vector = torch.cat([p.detach().reshape(-1) for p in module.parameters()]).double()
    reference = vector.clone()
    dist.broadcast(reference, src=0)
    difference = (vector - reference).abs().max()
    dist.all_reduce(difference, op=dist.ReduceOp.MAX)
    if difference > 0:
        raise RuntimeError(f"replicas diverged: parameters differ by up to {float(difference):.3g} between ranks")
