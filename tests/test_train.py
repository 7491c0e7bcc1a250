"""Training: improvement, determinism, resume, checkpoints and bad input."""

from __future__ import annotations

import csv
import importlib
import pickle
import re

import ase
import numpy as np
import pytest
import torch
from conftest import TINY_MODEL

from ase_psm.checkpoint import load_checkpoint, load_model
from ase_psm.data import Frames, PseudoPESDataset
from ase_psm.diffusion import NoiseSchedule
from ase_psm.model import ModelConfig, PseudoForceNet
from ase_psm.train import TrainConfig, train
from ase_psm.train.loop import last_checkpoint_path, validation_loss

pytestmark = pytest.mark.mindeps  # CI also runs these against the oldest declared dependencies

SETTINGS = dict(
    kT=1.0, batch_size=16, schedule=dict(sigma_min=0.01, sigma_max=3.0), model=TINY_MODEL,
    device="cpu", progress=False,
)


def test_short_training_lowers_validation_loss(lj7_frames, tmp_path):
    settings = dict(loss="piecewise-weighted", loss_weighting="score", force_crossover_t="thermal")
    out = train(lj7_frames, tmp_path / "m.pt", steps=240, val_every=120, learning_rate=3e-3, **settings, **SETTINGS)
    checkpoint = load_checkpoint(out)
    val = PseudoPESDataset(lj7_frames.subset(range(250, 300)), "piecewise-weighted", NoiseSchedule(0.01, 3.0), 1.0,
                           crossover_t=checkpoint["force_crossover_t"])
    trained = load_model(out, device="cpu")[0]
    torch.manual_seed(123)
    untrained = PseudoForceNet(trained.config)
    before = validation_loss(untrained, val, seed=0, device="cpu", weighting="score")
    after = validation_loss(trained, val, seed=0, device="cpu", weighting="score")
    assert after < 0.7 * before
    with open(tmp_path / "m.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [120, 240]
    assert checkpoint["step"] in (120, 240) and checkpoint["loss"] == "piecewise-weighted"


def test_validation_of_large_sets_is_scored_in_bounded_batches(lj7_frames, monkeypatch):
    from ase_psm.train import loop

    val = PseudoPESDataset(lj7_frames.subset(range(250, 300)), "dsm", NoiseSchedule(0.01, 3.0), 1.0)
    model = PseudoForceNet(ModelConfig(species=[18], **TINY_MODEL))
    whole = validation_loss(model, val, seed=0, device="cpu", weighting="score")
    sizes: list[int] = []
    batch = val.batch
    monkeypatch.setattr(val, "batch", lambda indices, generator: sizes.append(len(indices)) or batch(indices, generator))
    monkeypatch.setattr(loop, "VALIDATION_BATCH_ATOMS", 7 * 8)  # 8 structures of 7 atoms per batch
    chunked = validation_loss(model, val, seed=0, device="cpu", weighting="score")
    assert max(sizes) == 8 and sum(sizes) == 4 * 50  # every structure, four noise draws
    assert chunked == pytest.approx(whole, rel=0.5)  # other noise draws, the same loss scale


def test_training_is_deterministic_and_resumes_exactly(lj7_frames, tmp_path):
    full = train(lj7_frames, tmp_path / "full.pt", loss="piecewise", steps=20, val_every=10, **SETTINGS)
    train(lj7_frames, tmp_path / "part.pt", loss="piecewise", steps=10, val_every=10, **SETTINGS)
    resumed = train(lj7_frames, tmp_path / "part.pt", loss="piecewise", steps=20, val_every=10, resume=True, **SETTINGS)
    a = load_checkpoint(last_checkpoint_path(full))
    b = load_checkpoint(last_checkpoint_path(resumed))
    assert a["step"] == b["step"] == 20
    for key, value in a["model_state"].items():
        torch.testing.assert_close(b["model_state"][key], value)
    with pytest.raises(ValueError, match="cannot resume"):
        train(lj7_frames, tmp_path / "part.pt", loss="dsm", steps=30, val_every=10, resume=True, **SETTINGS)
    with pytest.raises(ValueError, match="cannot resume.*schedule"):  # other noise levels: not the same run
        train(lj7_frames, tmp_path / "part.pt", loss="piecewise", steps=30, val_every=10, resume=True,
              **{**SETTINGS, "schedule": {"kind": "log-uniform"}})


def test_training_on_the_device_continues_on_the_cpu_and_back(lj7_frames, tmp_path, device):
    """A checkpoint written by training on ``device`` gives the same pseudo-forces on the CPU, and its
    training continues on the CPU and then on ``device`` again."""
    out, on_device = tmp_path / "m.pt", {**SETTINGS, "device": device}
    train(lj7_frames, out, loss="piecewise-weighted", steps=4, val_every=2, **on_device)
    cpu_model, device_model = load_model(out, device="cpu")[0], load_model(out, device=device)[0]
    numbers, x = torch.full((7,), 18), torch.as_tensor(lj7_frames.positions[:4], dtype=torch.float32)
    sigma = torch.tensor([0.05, 0.2, 1.0, 2.0])
    expected = cpu_model.pseudo_forces(numbers, x, sigma)
    moved = device_model.pseudo_forces(numbers.to(device), x.to(device), sigma.to(device)).cpu()
    torch.testing.assert_close(moved, expected, atol=1e-5, rtol=1e-4)
    train(lj7_frames, out, loss="piecewise-weighted", steps=6, val_every=2, resume=True, **SETTINGS)
    train(lj7_frames, out, loss="piecewise-weighted", steps=8, val_every=2, resume=True, **on_device)
    last = load_checkpoint(last_checkpoint_path(out))
    assert last["step"] == 8 and all(torch.isfinite(value).all() for value in last["model_state"].values())
    with open(tmp_path / "m.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["step"]) for row in rows] == [2, 4, 6, 8]
    assert all(np.isfinite(float(row["train_loss"])) for row in rows)


def test_checkpoint_carries_everything_and_loads_safely(tiny_checkpoint, tmp_path):
    checkpoint = load_checkpoint(tiny_checkpoint)
    for key in ("model_config", "model_state", "species", "units", "kT", "schedule", "loss", "train_config",
                "package_version", "format_version"):
        assert key in checkpoint
    assert checkpoint["species"] == [18] and checkpoint["kT"] == 1.0
    assert checkpoint["units"]["length"] == "Å"
    model, _ = load_model(tiny_checkpoint, device="cpu", dtype="float64")
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    again, _ = load_model(tiny_checkpoint, device="cpu", dtype="float64")
    sigma = torch.tensor([0.1, 1.0], dtype=torch.float64)
    torch.testing.assert_close(model.pseudo_forces(torch.full((7,), 18), x, sigma),
                               again.pseudo_forces(torch.full((7,), 18), x, sigma))

    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    crafted = tmp_path / "evil.pt"
    with open(crafted, "wb") as handle:
        pickle.dump({"model_config": Payload()}, handle)
    with pytest.raises(ValueError, match="refused|not a readable"):
        load_checkpoint(crafted)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_bad_training_input(lj7_frames, tmp_path):
    no_forces = lj7_frames.subset(range(10))
    no_forces.forces = None
    with pytest.raises(ValueError, match="needs force labels"):
        train(no_forces, tmp_path / "x.pt", loss="piecewise-weighted", steps=1, **SETTINGS)
    with pytest.raises(ValueError, match="positive kT"):
        train(lj7_frames, tmp_path / "x.pt", loss="piecewise", steps=1, model=TINY_MODEL, progress=False)
    with pytest.raises(ValueError, match="unknown loss"):
        TrainConfig(loss="l2")
    with pytest.raises(ValueError, match="thermal"):
        TrainConfig(force_crossover_t="hot")
    assert TrainConfig(force_crossover_t="0.2").force_crossover_t == 0.2
    with pytest.raises(ValueError, match="unknown loss weighting"):
        TrainConfig(loss_weighting="flat")
    with pytest.raises(TypeError, match="training data"):
        train(42, tmp_path / "x.pt", steps=1)
    with pytest.raises(FileNotFoundError):
        train(tmp_path / "missing.extxyz", tmp_path / "x.pt", steps=1)


def test_default_loss_weighting_follows_the_noise_input():
    assert TrainConfig().loss_weighting == "score"  # sigma-conditioned: every noise level's output alike
    assert TrainConfig(loss="gpff").loss_weighting == "gpff"
    assert TrainConfig(sigma_conditioned=False).loss_weighting == "gpff"  # time-step-free PSM
    assert TrainConfig(loss="dsm", sigma_conditioned=False).loss_weighting == "gpff"
    assert TrainConfig(sigma_conditioned=False, loss_weighting="epsilon").loss_weighting == "epsilon"


def test_default_noise_levels_follow_the_noise_input():
    conditioned = TrainConfig()  # log-normal sigma, a quarter of each batch below the force crossover
    assert (conditioned.resolved_schedule.kind, conditioned.small_sigma_fraction) == ("log-normal", 0.25)
    assert (conditioned.resolved_schedule.sigma_min, conditioned.resolved_schedule.sigma_max) == (0.002, 5.0)
    assert TrainConfig(loss="dsm").resolved_schedule == conditioned.resolved_schedule  # DSM sees the same levels
    free = TrainConfig(sigma_conditioned=False)  # time-step-free PSM keeps the log-uniform VE schedule
    assert (free.resolved_schedule.kind, free.small_sigma_fraction) == ("log-uniform", 0.5)
    gpff = TrainConfig(loss="gpff")
    assert (gpff.resolved_schedule.kind, gpff.resolved_schedule.sigma_max, gpff.small_sigma_fraction) == (
        "log-normal", 30.0, 0.5)
    partial = TrainConfig(schedule={"sigma_min": 0.01, "sigma_max": 3.0}, small_sigma_fraction=0.5)
    assert (partial.resolved_schedule.kind, partial.resolved_schedule.sigma_min, partial.small_sigma_fraction) == (
        "log-normal", 0.01, 0.5)


def test_atom_types_default_to_the_bond_graph_for_one_molecule(lj7_frames):
    """A user who passes nothing gets graph atom types and the graph-conditioned network on a molecule's
    frames, and element types on a cluster of one element."""
    from test_model import ETHANOL_NUMBERS, ETHANOL_POSITIONS

    from ase_psm.train.trainer import default_model_config

    rng = np.random.default_rng(0)
    molecule = Frames(ETHANOL_NUMBERS.numpy(), ETHANOL_POSITIONS.numpy() + 0.03 * rng.standard_normal((4, 9, 3)))
    config = default_model_config(molecule, TrainConfig(loss="dsm"))
    assert config.site_types is not None and config.graph_conditioned and len(config.site_bonds) == 8
    assert not default_model_config(molecule, TrainConfig(loss="dsm", model={"graph_conditioned": False})).graph_conditioned
    cluster = default_model_config(lj7_frames, TrainConfig(loss="dsm"))
    assert cluster.site_types is None and not cluster.graph_conditioned


def test_thermal_crossover_is_resolved_from_forces(lj7_frames):
    from ase_psm.data.dataset import thermal_length
    from ase_psm.train.trainer import force_crossover_time

    config = TrainConfig(kT=1.0, force_crossover_t="thermal", schedule=NoiseSchedule(0.01, 3.0))
    sigma_data = thermal_length(lj7_frames, 1.0)
    assert 0.01 < sigma_data < 3.0
    assert 0.01 * 300 ** force_crossover_time(lj7_frames, config) == pytest.approx(sigma_data)
    no_forces = lj7_frames.subset(range(5))
    no_forces.forces = None
    with pytest.raises(ValueError, match="needs force labels"):
        force_crossover_time(no_forces, config)


def test_train_from_list_of_atoms(lj7_frames, tmp_path):
    images = [lj7_frames.to_atoms(i) for i in range(40)]
    assert isinstance(images[0], ase.Atoms)
    out = train(images, tmp_path / "atoms.pt", loss="piecewise-weighted", steps=2, val_every=1, **SETTINGS)
    assert load_checkpoint(out)["species"] == [18]


def test_graph_atom_types_are_stored_in_the_checkpoint(tmp_path):
    from test_model import ETHANOL_NUMBERS, ETHANOL_POSITIONS

    rng = np.random.default_rng(0)
    positions = ETHANOL_POSITIONS.numpy() + 0.03 * rng.standard_normal((16, 9, 3))
    frames = Frames(ETHANOL_NUMBERS.numpy(), positions)
    path = train(frames, tmp_path / "ethanol.pt", loss="dsm", steps=2, batch_size=4, atom_types="graph",
                 model=TINY_MODEL, device="cpu", progress=False)
    model, _ = load_model(path, device="cpu")
    assert model.config.site_numbers == ETHANOL_NUMBERS.tolist()
    types = model.config.site_types
    assert types is not None and types[3] == types[4] == types[5] != types[6]
    with pytest.raises(ValueError, match="unknown atom_types 'residue'"):
        TrainConfig(atom_types="residue")


def test_one_molecule_graph_conditioned_network_carries_its_bonds(tmp_path):
    from test_model import ETHANOL_NUMBERS, ETHANOL_POSITIONS

    from ase_psm import PSMCalculator, sample
    from ase_psm.model import topology_classes

    rng = np.random.default_rng(0)
    positions = ETHANOL_POSITIONS.numpy() + 0.03 * rng.standard_normal((16, 9, 3))
    frames = Frames(ETHANOL_NUMBERS.numpy(), positions)
    path = train(frames, tmp_path / "ethanol.pt", loss="gpff", steps=2, batch_size=4, atom_types="graph",
                 model=dict(TINY_MODEL, graph_conditioned=True), device="cpu", progress=False)
    model, _ = load_model(path, device="cpu")
    bonds = np.asarray(model.config.site_bonds)
    assert bonds.shape == (8, 2) and not model.needs_topology  # ethanol: 2 C-O/C-C + 6 X-H bonds
    # the stored graph is what an explicit topology of the same bonds gives, and differs from another graph
    x = torch.as_tensor(positions[:3], dtype=torch.float32)
    z = ETHANOL_NUMBERS
    own = model.pseudo_forces(z, x).detach()
    assert torch.allclose(own, model.pseudo_forces(z, x, topology=topology_classes(9, bonds)))
    assert not torch.allclose(own, model.pseudo_forces(z, x, topology=topology_classes(9, bonds[:-1])))
    # no atoms.info["bonds"] needed by the calculator or the sampler
    atoms = frames.to_atoms(0)
    atoms.calc = PSMCalculator(path, device="cpu")
    assert np.allclose(atoms.get_forces(), own[0].numpy(), atol=1e-5)
    assert len(sample(path, atoms, 2, sampler="direct", steps=2, device="cpu", on_invalid="keep")) == 2
    with pytest.raises(ValueError, match="needs atom_types='graph'") as refusal:
        train(frames, tmp_path / "element.pt", loss="gpff", steps=1, atom_types="element",
              model=dict(graph_conditioned=True), progress=False)
    suggested = re.search(r"use ase_psm\.(\w+)", str(refusal.value)).group(1)  # the function it names exists
    assert callable(getattr(importlib.import_module("ase_psm"), suggested, None))
    with pytest.raises(ValueError, match="site_bonds .* need site_numbers"):
        PseudoForceNet(ModelConfig(species=[1, 6], graph_conditioned=True, site_bonds=[[0, 1]]))
