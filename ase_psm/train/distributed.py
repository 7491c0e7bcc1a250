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
from ..model import PseudoForceNet

# the process-group helpers, as the training loop calls them (distributed.setup, ...)
__all__ = ["DistributedContext", "check_replicas_match", "data_parallel", "rank_seed", "setup", "teardown"]


def data_parallel(net: PseudoForceNet, context: DistributedContext) -> DistributedDataParallel:
    """``net`` under DistributedDataParallel: called like ``net`` (flat batches); the backward pass
    averages gradients over the ranks."""
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(net, device_ids=device_ids)


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
