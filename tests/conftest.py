"""Shared fixtures: the devices, small Lennard-Jones frames, tiny trained checkpoints, the shipped alanine
dipeptide."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ase_psm.benchmarks.data import ALA2_PDB
from ase_psm.data import Frames, write_frames
from ase_psm.systems import ARGON, lj_forces, lj_initial_positions, metropolis
from ase_psm.train import train

TINY_MODEL = dict(hidden_irreps="8x0e + 4x1e", sh_lmax=1, num_layers=2, radial_hidden=16)
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
"""The devices the device-sensitive tests run on: the CPU, and CUDA when this machine has it."""


@pytest.fixture(params=[pytest.param(name, marks=pytest.mark.device, id=name) for name in DEVICES])
def device(request) -> str:
    """Each of :data:`DEVICES` in turn; a test that takes it is marked ``device`` (``pytest -m device``)."""
    return request.param


@pytest.fixture(autouse=True)
def _single_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def lj7_frames() -> Frames:
    """300 Metropolis frames of a 7-particle LJ cluster (reduced units, kT = 1) with forces."""
    samples, _ = metropolis(lj_initial_positions(7, 1, seed=0), 400, seed=0)
    positions = samples[0, 100:]
    return Frames(np.full(7, ARGON), positions, forces=lj_forces(positions))


@pytest.fixture(scope="session")
def tiny_checkpoint(lj7_frames, tmp_path_factory):
    """A sigma-conditioned PSM checkpoint trained for 100 steps: it denoises most structures, not all."""
    out = tmp_path_factory.mktemp("ckpt") / "psm.pt"
    return train(
        lj7_frames, out, loss="piecewise-weighted", kT=1.0, steps=100, batch_size=16, val_every=50, warmup_steps=10,
        schedule=dict(sigma_min=0.01, sigma_max=3.0), model=TINY_MODEL, device="cpu", progress=False,
    )


@pytest.fixture(scope="session")
def gpff_checkpoint(lj7_frames, tmp_path_factory):
    """A time-step-free (GPFF) checkpoint trained on one structure until it denoises towards it."""
    out = tmp_path_factory.mktemp("gpff") / "gpff.pt"
    one = lj7_frames.subset([0, 0])
    return train(
        one, out, loss="gpff", steps=300, batch_size=16, val_fraction=0.0, learning_rate=3e-3,
        schedule=dict(sigma_min=0.02, sigma_max=1.0, kind="log-normal", log_mean=-2.0, log_std=1.0),
        model=TINY_MODEL, device="cpu", progress=False, val_every=100,
    )


@pytest.fixture(scope="session")
def hco_checkpoint(tmp_path_factory):
    """An untrained (random-weight) sigma-conditioned network for H, C and O: input checks, symmetries."""
    from ase_psm.checkpoint import save_checkpoint
    from ase_psm.diffusion import NoiseSchedule
    from ase_psm.model import ModelConfig, PseudoForceNet

    torch.manual_seed(0)
    config = ModelConfig(species=[1, 6, 8], cutoff=8.0, length_scale=1.2, sigma_data=0.1, **TINY_MODEL)
    path = tmp_path_factory.mktemp("hco") / "hco.pt"
    save_checkpoint(path, {
        "model_config": config.to_dict(), "model_state": PseudoForceNet(config).state_dict(),
        "species": config.species, "schedule": NoiseSchedule(0.01, 3.0).to_dict(),
    })
    return path


@pytest.fixture()
def lj7_file(lj7_frames, tmp_path):
    """60 of the LJ-7 frames (with forces) as an extxyz file."""
    path = tmp_path / "lj7.extxyz"
    write_frames(path, lj7_frames.subset(range(60)))
    return path


@pytest.fixture(scope="session")
def ala2_pdb():
    """The shipped alanine dipeptide PDB as an OpenMM PDBFile; skips the test without OpenMM."""
    app = pytest.importorskip("openmm.app")
    return app.PDBFile(str(ALA2_PDB))
