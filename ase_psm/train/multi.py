"""A time-step-free (GPFF) training loop over many different molecules.

:func:`ase_psm.train` handles one system (a fixed list of atoms). This loop trains one
pseudo-force network on structures of many compositions and sizes, in flat batches
(:meth:`~ase_psm.model.PseudoForceNet.pseudo_forces_flat`): each batch draws molecules, one
noise level per molecule from the schedule, zero-centre-of-mass noise per molecule, and
regresses the GPFF target x0 - x, by default with the ``gpff`` weighting min(1, 1/sigma^2). AdamW,
warm-up + cosine learning rate, gradient clipping and EMA weights as in :mod:`.trainer`; the
checkpoint has the same payload, so :func:`ase_psm.sample` and ``PSMCalculator`` load it.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ase
import numpy as np
import torch
from tqdm.auto import tqdm

from ..checkpoint import save_checkpoint
from ..chemistry.bonds import molecule_bonds
from ..diffusion.noise import NoiseSchedule, pair_noise_by_element
from ..diffusion.targets import loss_weight, pseudo_force_target
from ..model import ModelConfig, PseudoForceNet, topology_classes
from .config import TrainConfig
from .trainer import RADIAL_BASIS_SIZE, _lr_factor, _payload, optimizer_step

MOLECULE_SCHEDULE = NoiseSchedule(0.02, 4.0, kind="log-normal", log_mean=-0.5, log_std=1.3)
"""Training noise for molecules: log-normal around 0.6 Å, clipped to [0.02, 4] Å, so that a
Gaussian prior of width 4 Å (about twice a drug-like molecule's radius) is in the training range."""


def _stack(molecules: Sequence[ase.Atoms]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat numbers, centred positions, atom offsets and sizes of every structure."""
    sizes = torch.tensor([len(atoms) for atoms in molecules])
    offsets = torch.cumsum(sizes, 0) - sizes
    numbers = torch.as_tensor(np.concatenate([atoms.numbers for atoms in molecules]), dtype=torch.long)
    positions = torch.as_tensor(
        np.concatenate([atoms.positions - atoms.positions.mean(axis=0) for atoms in molecules]),
        dtype=torch.float32,
    )
    return numbers, positions, offsets, sizes


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
    typical_max_sigma = min(schedule.sigma_max, math.exp(schedule.log_mean + 2 * schedule.log_std))
    values: dict[str, Any] = dict(
        species=sorted({int(z) for atoms in molecules for z in atoms.numbers}),
        sigma_conditioned=False,
        sigma_data=0.1 * length_scale,
        length_scale=length_scale,
        radial_max=widest + 4.0 * typical_max_sigma,
        num_radial=RADIAL_BASIS_SIZE,
    )
    values.update(overrides)
    return ModelConfig(**values)


def gpff_batch(
    numbers: torch.Tensor,
    positions: torch.Tensor,
    offsets: torch.Tensor,
    sizes: torch.Tensor,
    chosen: torch.Tensor,
    schedule: NoiseSchedule,
    generator: torch.Generator,
    pair_noise: bool = False,
    topologies: Sequence[torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One flat batch: numbers, noised positions, batch index, sigma (B,), target pseudo-forces and topology.

    ``pair_noise``: re-pair noised atoms of one element with the clean ones by optimal assignment
    (:func:`~ase_psm.diffusion.noise.pair_noise_by_element`). ``topologies``: every molecule's
    topology classes, of which the chosen ones are concatenated (None: no topology).
    """
    batch_sizes = sizes[chosen]
    index = torch.cat([torch.arange(int(o), int(o) + int(s)) for o, s in zip(offsets[chosen], batch_sizes)])
    batch = torch.arange(len(chosen)).repeat_interleave(batch_sizes)
    clean = positions[index]
    sigma = schedule.draw(len(chosen), generator, clean.dtype)
    noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
    means = torch.zeros(len(chosen), 3, dtype=clean.dtype).index_add_(0, batch, noise) / batch_sizes[:, None]
    noised = clean + sigma[batch, None] * (noise - means[batch])
    if pair_noise:
        noised = pair_noise_by_element(clean, noised, numbers[index], batch)
    target = pseudo_force_target(clean, noised, sigma[batch], torch.zeros_like(sigma), None)
    topology = None if topologies is None else torch.cat([topologies[int(i)] for i in chosen])
    return numbers[index], noised, batch, sigma, target, topology


def train_molecules(
    molecules: Sequence[ase.Atoms],
    out: str | os.PathLike = "molecules.pt",
    *,
    steps: int = 1000,
    batch_size: int = 16,
    learning_rate: float = 2e-3,
    weight_decay: float = 0.0,
    warmup_steps: int = 100,
    grad_clip: float = 10.0,
    ema_decay: float = 0.999,
    schedule: NoiseSchedule | None = None,
    loss_weighting: str = "gpff",
    pair_noise: bool = False,
    model: dict | None = None,
    seed: int = 0,
    time_limit: float | None = None,
    log_every: int = 50,
    progress: bool = True,
) -> Path:
    """Train a time-step-free pseudo-force network on many molecules; return the checkpoint path.

    ``molecules``: ase.Atoms of any compositions and sizes (clean conformers, Å). Writes ``out``
    (final EMA weights, the :mod:`.trainer` payload with ``train_config["molecules"]`` holding the
    number of structures) and ``<out>.csv`` (step, learning rate, running loss, elapsed s).
    ``time_limit`` (s) stops early and saves; the learning-rate schedule still assumes ``steps``.
    ``loss_weighting``: ``"gpff"`` min(1, 1/sigma^2) (SchNetPack), ``"epsilon"`` 1/sigma^2,
    which weights small noise levels (bond-length precision) as much as large ones, or ``"score"``
    (with the network's sigma_data, as in :mod:`.trainer`). ``pair_noise``: re-pair the noised atoms
    of each element with the clean ones by optimal assignment, as SchNetPack's GPFF does, so that
    the target at large noise points to the nearest atom of the right element, not a random one.
    ``model=dict(sigma_conditioned=True)`` trains a sigma-conditioned network on the same targets
    (for the ``pc``/``heun`` samplers) instead of a time-step-free one; ``model=dict(graph_conditioned=True)``
    one that takes each molecule's bond graph (``atoms.info["bonds"]``, else perceived from the clean
    conformer), for conformers of a given molecule.
    """
    if not molecules:
        raise ValueError("no training molecules")
    if pair_noise and (model or {}).get("graph_conditioned"):
        raise ValueError(
            "pair_noise swaps atoms of one element, which breaks the bond graph a graph-conditioned "
            "network reads: use pair_noise=False with graph_conditioned=True"
        )
    schedule = schedule or MOLECULE_SCHEDULE
    config = TrainConfig(
        loss="gpff", steps=steps, batch_size=batch_size, learning_rate=learning_rate,
        weight_decay=weight_decay, warmup_steps=warmup_steps, grad_clip=grad_clip, ema_decay=ema_decay,
        seed=seed, val_fraction=0.0, schedule=schedule, model=dict(model or {}), device="cpu",
        loss_weighting=loss_weighting,
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    net = PseudoForceNet(molecule_model_config(molecules, schedule, config.model))
    ema = PseudoForceNet(net.config).requires_grad_(False).eval()
    ema.load_state_dict(net.state_dict())
    optimizer = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, config))
    generator = torch.Generator().manual_seed(seed)
    numbers, positions, offsets, sizes = _stack(molecules)
    topologies = molecule_topologies(molecules) if net.config.graph_conditioned else None
    log_path = out.with_suffix(".csv")
    with open(log_path, "w", newline="") as handle:
        csv.writer(handle).writerow(["step", "learning_rate", "train_loss", "elapsed_s"])
    started = time.perf_counter()
    running: float | None = None
    step = 0
    bar = tqdm(total=steps, disable=not progress, desc="train gpff (molecules)", unit="step")
    try:
        while step < steps:
            if time_limit is not None and time.perf_counter() - started > time_limit:
                break
            net.train()
            chosen = torch.randint(len(molecules), (batch_size,), generator=generator)
            z, noised, batch, sigma, target, topology = gpff_batch(
                numbers, positions, offsets, sizes, chosen, schedule, generator, pair_noise, topologies
            )
            predicted = net.pseudo_forces_flat(
                z, noised, batch, sigma if net.config.sigma_conditioned else None, topology
            )
            squared = torch.zeros(len(chosen)).index_add_(0, batch, (predicted - target).square().sum(-1))
            squared = squared / (3 * sizes[chosen])
            loss = (loss_weight(loss_weighting, sigma, net.config.sigma_data) * squared).mean()
            optimizer_step(net, ema, loss, optimizer, scheduler, grad_clip, ema_decay, step)
            step += 1
            value = loss.item()
            running = value if running is None else 0.98 * running + 0.02 * value
            bar.update(1)
            bar.set_postfix(loss=f"{running:.4g}")
            if step % log_every == 0 or step == steps:
                with open(log_path, "a", newline="") as handle:
                    csv.writer(handle).writerow(
                        [step, scheduler.get_last_lr()[0], running, time.perf_counter() - started]
                    )
    finally:
        bar.close()
    payload = _payload(ema, config, 0.0, step, None)
    payload["multi_system"] = True  # sample() then accepts templates with any subset of the species
    payload["train_config"]["molecules"] = len(molecules)
    payload["train_config"]["steps_done"] = step
    payload["train_config"]["pair_noise"] = pair_noise
    save_checkpoint(out, payload)
    return out
