""":func:`~ase_psm.generate.sample` split over the processes of a ``torchrun`` job."""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from typing import Any

import ase
import torch.distributed as dist

from ..distributed import rank_seed, setup, teardown
from ..metrics.validity import SampleReport
from .config import SampleConfig, sample_config
from .sampling import Structures, sample


def sharded_sample(
    checkpoint: str | os.PathLike,
    template: ase.Atoms,
    n: int = 1,
    *,
    config: SampleConfig | None = None,
    progress: bool = True,
    **settings,
) -> Structures | None:
    """:func:`~ase_psm.generate.sample` split over the ranks of a torchrun job.

    Rank r generates n // W (+1 for r < n % W) structures with seed ``rank_seed(seed, r)``;
    rank 0 returns all of them in rank order with one merged report, the other ranks return None.
    For a given (n, W, seed) the output is deterministic.
    """
    config = sample_config(config, settings)
    context = setup(config.device)
    share = n // context.world_size + int(context.rank < n % context.world_size)
    part = None
    if share:
        rank_config = dataclasses.replace(config, seed=rank_seed(config.seed, context.rank), device=str(context.device))
        part = sample(checkpoint, template, share, config=rank_config, progress=progress and context.is_main)
    gathered: list[Any] | None = [None] * context.world_size if context.is_main else None
    dist.gather_object(part, gathered, dst=0)
    teardown(context)
    if gathered is None:  # not the main rank
        return None
    parts = [part for part in gathered if part is not None]
    return Structures([atoms for part in parts for atoms in part], _merge_reports([part.report for part in parts]))


def _merge_reports(reports: list[SampleReport]) -> SampleReport:
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
