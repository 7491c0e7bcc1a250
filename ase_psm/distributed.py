"""The processes of a ``torchrun`` job: joining and leaving its process group, per-rank seeds.

Backends: gloo on the CPU, nccl on CUDA (one GPU per process, chosen by ``LOCAL_RANK``). Used by
data-parallel training (:mod:`ase_psm.train.distributed`) and sharded generation
(:func:`ase_psm.generate.sharded_sample`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from .checkpoint import resolve_device


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
