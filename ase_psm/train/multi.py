"""Training on many different molecules: one time-step-free (GPFF) network for conformers of any molecule.

:func:`ase_psm.train` handles one system (a fixed list of atoms). :func:`train_molecules` trains one
pseudo-force network on clean conformers of many compositions and sizes, in flat batches: each
batch draws molecules, one noise level per molecule from the schedule, zero-centre-of-mass noise per
molecule, and regresses the GPFF target x0 - x, by default with the ``gpff`` weighting
min(1, 1/sigma^2), in the same training loop (:func:`~ase_psm.train.loop.fit`) and with the same
checkpoint payload, so :func:`ase_psm.sample` and ``PSMCalculator`` load it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ase
import numpy as np
import torch

from ..chemistry.bonds import molecule_bonds
from ..data.dataset import MoleculeDataset, mean_neighbour_count
from ..diffusion.noise import NoiseSchedule
from ..model import ModelConfig, topology_classes
from .config import TrainConfig
from .loop import fit
from .trainer import radial_basis_size, typical_max_sigma

MOLECULE_SCHEDULE = NoiseSchedule(0.02, 4.0, kind="log-normal", log_mean=-0.5, log_std=1.3)
"""Training noise for molecules: log-normal around 0.6 Å, clipped to [0.02, 4] Å, so that a
Gaussian prior of width 4 Å (about twice a drug-like molecule's radius) is in the training range."""


def molecule_topologies(molecules: Sequence[ase.Atoms]) -> list[torch.Tensor]:
    """Each molecule's :func:`~ase_psm.model.topology_classes` from its bonds (``info["bonds"]`` or perceived)."""
    return [topology_classes(len(atoms), molecule_bonds(atoms)) for atoms in molecules]


def molecule_model_config(molecules: Sequence[ase.Atoms], schedule: NoiseSchedule, overrides: dict) -> ModelConfig:
    """Network settings from the molecules (as ``default_model_config`` for one system), then overrides."""
    nearest, widest = [], 0.0
    for atoms in molecules[:: max(1, len(molecules) // 200)]:
        distances = atoms.get_all_distances()
        widest = max(widest, float(distances.max()))
        np.fill_diagonal(distances, np.inf)
        nearest.extend(distances.min(axis=1).tolist())
    length_scale = float(np.median(nearest))
    cutoff = overrides.get("cutoff", widest + 4.0 * typical_max_sigma(schedule))
    values: dict[str, Any] = dict(
        species=sorted({int(z) for atoms in molecules for z in atoms.numbers}),
        sigma_conditioned=False,
        sigma_data=0.1 * length_scale,
        length_scale=length_scale,
        cutoff=cutoff,
        num_radial=radial_basis_size(cutoff, length_scale),
        avg_neighbours=mean_neighbour_count([atoms.positions for atoms in molecules], cutoff),
    )
    values.update(overrides)
    return ModelConfig(**values)


MOLECULE_TRAINING: dict[str, Any] = dict(
    loss="gpff", steps=1000, batch_size=16, learning_rate=2e-3, schedule=MOLECULE_SCHEDULE, val_fraction=0.0,
    val_every=50,
)
"""Defaults of :func:`train_molecules` that differ from :class:`TrainConfig`'s (no validation set:
the log and the checkpoint are written every ``val_every`` steps)."""


def train_molecules(
    molecules: Sequence[ase.Atoms],
    out: str | os.PathLike = "molecules.pt",
    *,
    config: TrainConfig | None = None,
    resume: bool = False,
    progress: bool = True,
    **settings,
) -> Path:
    """Train a pseudo-force network on many molecules; return the checkpoint path.

    ``molecules``: ase.Atoms of any compositions and sizes (clean conformers, Å). ``settings`` are
    :class:`TrainConfig` fields over :data:`MOLECULE_TRAINING`; the loss is ``gpff`` (target x0 - x:
    there are no force labels). Writes ``out`` (EMA weights; with ``val_fraction`` > 0 the best on the
    held-out molecules), ``<out>.last.pt`` and ``<out>.csv``; the checkpoint's ``"molecules"`` holds the
    number of structures. ``pair_noise=True`` re-pairs the noised atoms of each element with
    the clean ones by optimal assignment, as SchNetPack's GPFF does. ``model=dict(sigma_conditioned=True)``
    trains a sigma-conditioned network on the same targets (for the ``pc``/``heun`` samplers);
    ``model=dict(graph_conditioned=True)`` one that takes each molecule's bond graph
    (``atoms.info["bonds"]``, else perceived from the clean conformer), for conformers of a given molecule.
    """
    if config is None:
        config = TrainConfig(**{**MOLECULE_TRAINING, **settings})
    elif settings:
        raise TypeError("pass either config or settings, not both")
    if config.loss != "gpff":
        raise ValueError(f"train_molecules trains on clean conformers without force labels: use loss='gpff', "
                         f"not {config.loss!r} (force-label losses train on MD frames with ase_psm.train)")
    if config.pair_noise and config.model.get("graph_conditioned"):
        raise ValueError(
            "pair_noise swaps atoms of one element, which breaks the bond graph a graph-conditioned "
            "network reads: use pair_noise=False with graph_conditioned=True"
        )
    if not molecules:
        raise ValueError("no training molecules")
    schedule = config.resolved_schedule
    held_out = _held_out(len(molecules), config.val_fraction, config.seed)
    train_set = [atoms for i, atoms in enumerate(molecules) if i not in held_out]
    model_config = molecule_model_config(train_set, schedule, {"sigma_conditioned": config.sigma_conditioned,
                                                               **config.model})

    def dataset_of(part: Sequence[ase.Atoms]) -> MoleculeDataset:
        topologies = molecule_topologies(part) if model_config.graph_conditioned else None
        return MoleculeDataset(part, schedule, config.pair_noise, topologies)

    val_set = [molecules[i] for i in sorted(held_out)]
    payload = {"multi_system": True, "molecules": len(molecules)}  # sample() takes any subset of the species
    return fit(model_config, dataset_of(train_set), config, Path(out),
               val_dataset=dataset_of(val_set) if val_set else None, payload=payload, resume=resume,
               progress=progress)


def _held_out(n: int, fraction: float, seed: int) -> set[int]:
    """Indices of round(fraction * n) molecules held out for validation (a seeded random choice)."""
    count = round(fraction * n)
    return set(np.random.default_rng(seed).choice(n, count, replace=False).tolist()) if count else set()
