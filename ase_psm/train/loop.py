"""The one training loop: AdamW, warm-up + cosine schedule, EMA weights, clipping, CSV log,
best/last checkpoints and resume, for any dataset that yields :class:`~ase_psm.data.dataset.TrainingBatch` es."""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import Protocol

import torch
from tqdm.auto import tqdm

from .._version import __version__
from ..checkpoint import load_checkpoint, resolve_device, save_checkpoint
from ..data.dataset import TrainingBatch
from ..diffusion.targets import loss_weight
from ..model import ModelConfig, PseudoForceNet
from . import distributed
from .config import TrainConfig

VALIDATION_REPEATS = 4
MAX_VALIDATION_FRAMES = 256
VALIDATION_BATCH_ATOMS = 8192
"""Atoms per validation batch: larger validation sets (large molecules) are scored in chunks, which bounds memory."""
RESUME_MUST_MATCH = ("loss", "kT", "temperature", "batch_size", "seed", "first", "stride", "fraction",
                     "loss_weighting", "force_crossover_t", "small_sigma_fraction", "schedule", "pair_noise")
"""Training settings a resumed run must share with the run it continues."""


class Dataset(Protocol):
    """What the loop trains on: indexed structures that come back noised, with targets."""

    def __len__(self) -> int: ...

    def batch(self, indices: torch.Tensor, generator: torch.Generator) -> TrainingBatch: ...

    def atom_count(self, indices: torch.Tensor) -> int: ...


def batch_loss(model: torch.nn.Module, batch: TrainingBatch, weighting: str, config: ModelConfig) -> torch.Tensor:
    """Weighted mean over structures of the mean squared pseudo-force error (Å^2) per structure."""
    sigma = batch.sigma if config.sigma_conditioned else None
    predicted = model(batch.numbers, batch.noised, batch.batch, sigma, batch.topology)
    squared = (predicted - batch.target).square().sum(dim=1)
    per_structure = torch.zeros_like(batch.sigma).index_add(0, batch.batch, squared)
    per_structure = per_structure / (3.0 * torch.bincount(batch.batch, minlength=len(batch.sigma)))
    return (loss_weight(weighting, batch.sigma, config.sigma_data) * per_structure).mean()


@torch.no_grad()
def validation_loss(model: PseudoForceNet, dataset: Dataset, seed: int, device, weighting: str) -> float:
    """Weighted loss on (up to 256 of) the validation structures, with the same noise draws every time."""
    generator = torch.Generator().manual_seed(seed + 1)
    indices = torch.arange(min(len(dataset), MAX_VALIDATION_FRAMES))
    per_chunk = max(1, len(indices) * VALIDATION_BATCH_ATOMS // max(1, dataset.atom_count(indices)))
    chunks = indices.split(per_chunk)
    total = sum(
        float(batch_loss(model, dataset.batch(chunk, generator).to(device), weighting, model.config)) * len(chunk)
        for _ in range(VALIDATION_REPEATS)
        for chunk in chunks
    )
    return total / (VALIDATION_REPEATS * len(indices))


def learning_rate_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up over ``warmup_steps``, then a cosine decay to zero at ``steps``."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def last_checkpoint_path(out: str | Path) -> Path:
    """Where the full training state (for resuming) is kept beside the best model."""
    out = Path(out)
    return out.with_name(out.stem + ".last" + out.suffix)


def fit(
    model_config: ModelConfig,
    dataset: Dataset,
    config: TrainConfig,
    out: Path,
    *,
    val_dataset: Dataset | None = None,
    payload: dict | None = None,
    resume: bool = False,
    progress: bool = True,
    ddp: bool = False,
) -> Path:
    """Train a network of ``model_config`` on ``dataset`` and return the path of its checkpoint.

    Writes ``out`` (the EMA weights: the best by validation loss, or the latest without a validation
    set), ``<out>.last.pt`` (the full training state, which ``resume=True`` continues) and
    ``<out>.csv`` (step, learning rate, running and validation loss, elapsed s), every ``val_every``
    steps and at the end. ``payload`` adds entries to every checkpoint. ``config.time_limit`` (s)
    stops early (the learning-rate schedule still assumes ``steps``). ``ddp=True`` trains
    data-parallel across the processes of a torchrun job (``batch_size`` per process; rank 0 writes).
    """
    context = distributed.setup(config.device) if ddp else None
    device = context.device if context else resolve_device(config.device)
    main = context is None or context.is_main
    last_path, log_path = last_checkpoint_path(out), out.with_suffix(".csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    model = PseudoForceNet(model_config).to(device)
    ema = PseudoForceNet(model_config).to(device).requires_grad_(False).eval()
    ema.load_state_dict(model.state_dict())
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate_factor(step, config))
    generator = torch.Generator().manual_seed(config.seed)
    step, best_val = 0, math.inf

    def checkpoint(val_loss: float | None) -> dict:
        return {"package_version": __version__, "model_config": ema.config.to_dict(), "model_state": ema.state_dict(),
                "species": list(ema.config.species),
                "units": {"length": "Å", "energy": "eV", "pseudo_force": "eV/Å", "spring_constant": "eV/Å^2"},
                "kT": config.resolved_kT, "temperature": config.temperature,
                "schedule": config.resolved_schedule.to_dict(), "loss": config.loss,
                "train_config": config.to_dict(), "step": step, "val_loss": val_loss, **(payload or {})}

    def save_last(val_loss: float | None) -> None:
        state = checkpoint(val_loss)
        state["training_state"] = {
            "model_state": model.state_dict(), "optimizer_state": optimizer.state_dict(),
            "scheduler_state": scheduler.state_dict(), "generator_state": generator.get_state(), "best_val": best_val,
        }
        save_checkpoint(last_path, state)

    if resume and last_path.exists():
        state = load_checkpoint(last_path)
        _check_resumable(state, config, model_config, last_path)
        training_state = state["training_state"]
        model.load_state_dict(training_state["model_state"])
        ema.load_state_dict(state["model_state"])
        optimizer.load_state_dict(training_state["optimizer_state"])
        scheduler.load_state_dict(training_state["scheduler_state"])
        generator.set_state(training_state["generator_state"])
        step, best_val = state["step"], training_state["best_val"]
    elif main and (not resume or not log_path.exists()):
        with open(log_path, "w", newline="") as handle:
            csv.writer(handle).writerow(["step", "learning_rate", "train_loss", "val_loss", "elapsed_s"])

    if context:  # each rank draws its own batches and noise
        generator.manual_seed(distributed.rank_seed(config.seed, context.rank, step))
    net = distributed.data_parallel(model, context) if context else model
    weighting = config.resolved_loss_weighting
    started = time.perf_counter()
    running_loss: float | None = None
    saved_step = step if resume and last_path.exists() else -1
    bar = tqdm(total=config.steps, initial=step, disable=not (progress and main), desc=f"train {config.loss}",
               unit="step")
    try:
        while step < config.steps:
            if config.time_limit is not None and time.perf_counter() - started > config.time_limit:
                break
            model.train()
            indices = torch.randint(len(dataset), (config.batch_size,), generator=generator)
            loss = batch_loss(net, dataset.batch(indices, generator).to(device), weighting, model_config)
            _optimizer_step(model, ema, loss, optimizer, scheduler, config, step)
            step += 1
            running_loss = loss.item() if running_loss is None else 0.98 * running_loss + 0.02 * loss.item()
            bar.update(1)
            bar.set_postfix(loss=f"{running_loss:.4g}")
            if main and (step % config.val_every == 0 or step == config.steps):
                val_loss = validation_loss(ema, val_dataset, config.seed, device, weighting) if val_dataset else None
                with open(log_path, "a", newline="") as handle:
                    csv.writer(handle).writerow(
                        [step, scheduler.get_last_lr()[0], running_loss, val_loss, time.perf_counter() - started])
                if val_loss is None or val_loss < best_val:
                    best_val = math.inf if val_loss is None else val_loss
                    save_checkpoint(out, checkpoint(val_loss))
                save_last(val_loss)
                saved_step = step
                bar.set_postfix(loss=f"{running_loss:.4g}", val=f"{val_loss:.4g}" if val_loss else "-")
        if main and saved_step != step:  # stopped by time_limit between two saves
            save_last(None)
            if val_dataset is None or not out.exists():
                save_checkpoint(out, checkpoint(None))
        if context:
            distributed.check_replicas_match(ema)
            del net  # DDP's reducer must go before its process group, or gloo can hang on exit
            distributed.teardown(context)
    except KeyboardInterrupt:
        if main:
            save_last(None)
        raise
    finally:
        bar.close()
    return out


def _optimizer_step(
    model: torch.nn.Module,
    ema: torch.nn.Module,
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    config: TrainConfig,
    step: int,
) -> None:
    """One update of ``model`` from ``loss`` (gradients clipped to norm ``grad_clip``), then of
    its EMA copy, whose decay warms up as (1 + step)/(10 + step) towards ``ema_decay``."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    scheduler.step()
    with torch.no_grad():
        decay = min(config.ema_decay, (1 + step) / (10 + step))
        torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1.0 - decay)


def _check_resumable(state: dict, config: TrainConfig, model_config: ModelConfig, path: Path) -> None:
    if "training_state" not in state:
        raise ValueError(f"{path} has no training state to resume from")
    saved = TrainConfig.from_dict(state["train_config"])
    for name in RESUME_MUST_MATCH:
        if getattr(saved, name) != getattr(config, name):
            raise ValueError(
                f"cannot resume from {path}: it was trained with {name}={getattr(saved, name)!r}, "
                f"now {name}={getattr(config, name)!r}; use the same settings or a new output path"
            )
    if state["model_config"] != model_config.to_dict():
        raise ValueError(f"cannot resume from {path}: the model settings or the training data differ")
