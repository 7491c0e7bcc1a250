"""Flat batches of mixed sizes, the neighbour list, and the calculator's batched path."""

from __future__ import annotations

import os

import ase
import numpy as np
import pytest
import torch
from e3nn import o3

from ase_psm import PSMCalculator
from ase_psm.model import ModelConfig, PseudoForceNet, build_edges, graph

SPECIES = [1, 6, 8]


def make_net(cutoff: float = 5.0, sigma_conditioned: bool = True) -> PseudoForceNet:
    torch.manual_seed(0)
    config = ModelConfig(
        species=SPECIES, hidden_irreps="8x0e + 4x1e", sh_lmax=1, num_layers=2, radial_hidden=16,
        num_radial=16, cutoff=cutoff, sigma_conditioned=sigma_conditioned,
    )
    return PseudoForceNet(config).double()


def random_cloud(n_atoms: int, generator: torch.Generator, spacing: float = 1.0) -> torch.Tensor:
    """n_atoms points in a cube sized for about one atom per spacing^3 (Å)."""
    side = spacing * n_atoms ** (1 / 3)
    return side * torch.rand(n_atoms, 3, generator=generator, dtype=torch.float64)


def mixed_batch(sizes: list[int], seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    numbers = [torch.tensor(SPECIES)[torch.randint(3, (n,), generator=generator)] for n in sizes]
    positions = [random_cloud(n, generator) for n in sizes]
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return numbers, positions, batch


def brute_force_edges(batch: torch.Tensor, positions: torch.Tensor, cutoff: float | None) -> set:
    distances = torch.cdist(positions, positions)
    same = batch[:, None] == batch[None, :]
    keep = same & ~torch.eye(len(batch), dtype=torch.bool)
    if cutoff is not None:
        keep &= distances < cutoff
    return set(map(tuple, keep.nonzero().tolist()))


@pytest.mark.mindeps
@pytest.mark.parametrize("use_vesin", [True, False])
@pytest.mark.parametrize("cutoff", [None, 1.5, 3.0])
def test_neighbour_list_matches_brute_force(cutoff, use_vesin, monkeypatch):
    if use_vesin and graph.vesin is None:
        pytest.skip("vesin is not installed")
    if not use_vesin:
        monkeypatch.setattr(graph, "vesin", None)
    for seed in range(3):
        _, positions, batch = mixed_batch([1, 2, 7, 60, 3, 130, 49], seed)
        positions = torch.cat(positions)
        source, destination = build_edges(batch, positions, cutoff)
        edges = list(zip(source.tolist(), destination.tolist()))
        assert edges == sorted(edges) and len(set(edges)) == len(edges)
        assert set(edges) == brute_force_edges(batch, positions, cutoff)


@pytest.mark.parametrize("cutoff", [100.0, 2.0])  # 100: every pair
@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_flat_batch_of_mixed_sizes_matches_one_structure_at_a_time(cutoff, dtype, tolerance):
    net = make_net(cutoff).to(dtype)
    sizes = [5, 1, 12, 60, 3]
    numbers, positions, batch = mixed_batch(sizes)
    sigma = torch.tensor([0.05, 0.3, 1.0, 2.0, 0.5], dtype=dtype)
    flat = net.pseudo_forces_flat(torch.cat(numbers), torch.cat(positions).to(dtype), batch, sigma)
    singles = [
        net.pseudo_forces(z, x[None].to(dtype), s)[0] for z, x, s in zip(numbers, positions, sigma)
    ]
    assert flat.abs().max() > 1e-3
    torch.testing.assert_close(flat, torch.cat(singles), atol=tolerance, rtol=0)


def test_equivariance_on_the_cell_list_path():
    net = make_net(cutoff=2.0)
    numbers, positions, batch = mixed_batch([80, 7])
    z, x = torch.cat(numbers), torch.cat(positions)
    assert int(torch.bincount(batch).max()) > graph.DENSE_MAX_ATOMS
    sigma = torch.tensor([0.1, 0.4], dtype=torch.float64)
    rotation = o3.rand_matrix(dtype=torch.float64)
    out = net.pseudo_forces_flat(z, x, batch, sigma)
    moved = net.pseudo_forces_flat(z, x @ rotation.T + torch.tensor([5.0, -2.0, 1.0]).double(), batch, sigma)
    torch.testing.assert_close(moved, out @ rotation.T, atol=1e-9, rtol=1e-9)


def test_flat_rejects_bad_batches():
    net = make_net()
    numbers, positions = torch.tensor([1, 6, 8]), torch.rand(3, 3).double()
    with pytest.raises(ValueError, match="contiguous"):
        net.pseudo_forces_flat(numbers, positions, torch.tensor([0, 1, 0]), 0.1)
    with pytest.raises(ValueError, match="one noise level per structure"):
        net.pseudo_forces_flat(numbers, positions, torch.tensor([0, 0, 1]), torch.tensor([0.1, 0.2, 0.3]))


@pytest.fixture(scope="module")
def ch_checkpoint(tmp_path_factory) -> str:
    """An untrained (random-weight) sigma-conditioned checkpoint for H, C, O."""
    from ase_psm.checkpoint import save_checkpoint

    net = make_net().float()
    path = tmp_path_factory.mktemp("perf") / "random.pt"
    save_checkpoint(path, {
        "model_config": net.config.to_dict(), "model_state": net.state_dict(),
        "schedule": {"sigma_min": 0.01, "sigma_max": 3.0},
    })
    return str(path)


def random_molecules(sizes: list[int], seed: int = 0) -> list[ase.Atoms]:
    numbers, positions, _ = mixed_batch(sizes, seed)
    return [ase.Atoms(numbers=z.numpy(), positions=x.numpy()) for z, x in zip(numbers, positions)]


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-10), ("float32", 1e-5)])
@pytest.mark.parametrize("sigma", [None, 0.2])
def test_calculate_batch_of_mixed_sizes_matches_calculate(ch_checkpoint, dtype, tolerance, sigma):
    calc = PSMCalculator(ch_checkpoint, device="cpu", dtype=dtype, sigma=sigma)
    images = random_molecules([4, 9, 2, 9, 15, 1, 6])
    batched = calc.calculate_batch(images, batch_size=3, max_atoms=20)
    assert len(batched) == len(images)
    for atoms, result in zip(images, batched):
        atoms.calc = calc
        np.testing.assert_allclose(result["forces"], atoms.get_forces(), atol=tolerance, rtol=0)
        assert result["sigma"] == pytest.approx(atoms.calc.results["sigma"], abs=tolerance)
        assert result["forces"].shape == (len(atoms), 3)


def test_calculator_compile_flag(ch_checkpoint):
    images = random_molecules([5, 8])
    reference = PSMCalculator(ch_checkpoint, device="cpu", sigma=0.3, compile=False).calculate_batch(images)
    if not os.environ.get("ASE_PSM_TEST_COMPILE"):
        pytest.skip("torch.compile takes minutes on a small CPU; set ASE_PSM_TEST_COMPILE=1 to run it")
    compiled = PSMCalculator(ch_checkpoint, device="cpu", sigma=0.3, compile=True).calculate_batch(images)
    for a, b in zip(reference, compiled):
        np.testing.assert_allclose(a["forces"], b["forces"], atol=1e-5)
