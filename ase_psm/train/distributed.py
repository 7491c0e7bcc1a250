"""Data-parallel training and sharded generation over the processes of a ``torchrun`` job.

Backends: gloo on the CPU, nccl on CUDA (one GPU per process, chosen by ``LOCAL_RANK``).
In training every rank draws its own batches and noise (generator seeded by (seed, rank)),
DistributedDataParallel averages the gradients, so weights and EMA weights stay identical on
all ranks, and rank 0 alone writes checkpoints and logs. In generation rank r draws its share of
the structures with a seed derived from (seed, r) and rank 0 returns them all in rank order.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..checkpoint import resolve_device
from ..model import PseudoForceNet


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the job."""

    rank: int
    world_size: int
    device: torch.device
    owns_group: bool
    """True when :func:`setup` started the process group (and :func:`teardown` ends it)."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str | torch.device = "auto") -> DistributedContext:
    """Join the process group described by torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, ...)."""
    if not dist.is_initialized() and "RANK" not in os.environ:
        raise ValueError(
            "--ddp / ddp=True needs a process group: launch with torchrun, e.g. "
            "`torchrun --nproc_per_node 2 -m ase_psm.cli.main train ... --ddp`"
        )
    resolved = resolve_device(device)
    if resolved.type == "cuda":
        resolved = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(resolved)
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo")
    return DistributedContext(dist.get_rank(), dist.get_world_size(), resolved, owns_group)


def teardown(context: DistributedContext | None) -> None:
    """End the process group if :func:`setup` started it (collective: call it on every rank)."""
    if context is not None and context.owns_group and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def rank_seed(seed: int, rank: int, *more: int) -> int:
    """An independent, reproducible seed for (seed, rank, ...)."""
    return int(np.random.SeedSequence([seed, rank, *more]).generate_state(1)[0])


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


def sharded_sample(checkpoint, template, n: int = 1, *, seed: int = 0, device: str = "auto",
                   progress: bool = True, **options):
    """:func:`ase_psm.sample` split over the ranks of a torchrun job.

    Rank r generates n // W (+1 for r < n % W) structures with seed ``rank_seed(seed, r)``;
    rank 0 returns all of them in rank order (with a merged report when
    ``return_report=True``), the other ranks return None. For a given (n, W, seed) the
    output is deterministic.
    """
    from ..generate import sample

    context = setup(device)
    share = n // context.world_size + int(context.rank < n % context.world_size)
    result = None
    if share:
        result = sample(checkpoint, template, share, seed=rank_seed(seed, context.rank),
                        device=str(context.device), progress=progress and context.is_main, **options)
    gathered: list[Any] | None = [None] * context.world_size if context.is_main else None
    dist.gather_object(result, gathered, dst=0)
    teardown(context)
    if not context.is_main:
        return None
    assert gathered is not None  # allocated on the main rank above
    parts = [part for part in gathered if part is not None]
    if not options.get("return_report"):
        return [atoms for part in parts for atoms in part]
    return [atoms for part, _ in parts for atoms in part], _merge_reports([report for _, report in parts])


def _merge_reports(reports: list):
    """One report for several ranks: counts add up, rounds is the largest."""
    values = {}
    for field in dataclasses.fields(reports[0]):
        items = [getattr(report, field.name) for report in reports]
        if field.name == "rounds":
            values[field.name] = max(items)
        elif isinstance(items[0], Counter):
            values[field.name] = sum(items, Counter())
        elif isinstance(items[0], int):
            values[field.name] = sum(items)
        else:
            values[field.name] = items[0]
    return dataclasses.replace(reports[0], **values)
