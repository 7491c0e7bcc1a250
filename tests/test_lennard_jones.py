"""Tests for the Lennard-Jones cluster energy, forces, Metropolis sampler and data sets."""

import numpy as np
import pytest
from scipy.integrate import quad

from ase_psm.systems import (
    lj_energy,
    lj_forces,
    lj_initial_positions,
    lj_local_minimum,
    make_lj_cold_head,
    make_lj_dataset,
    metropolis,
)


def _pair_once(d: float) -> float:
    return d**-12 - 2.0 * d**-6


def test_dimer_energy_counts_ordered_pairs():
    dimer = np.array([[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0]])
    # 2 (1 - 2) from both ordered pairs, plus 1/2 (0.5^2 + 0.5^2) from the trap
    assert lj_energy(dimer) == pytest.approx(-2.0 + 0.25, abs=1e-12)


def test_linear_trimer_energy():
    trimer = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    expected = 2.0 * (2 * _pair_once(1.0) + _pair_once(2.0)) + 0.5 * (1.0 + 0.0 + 1.0)
    assert lj_energy(trimer) == pytest.approx(expected, abs=1e-12)


def test_energy_is_vectorised_over_leading_dims():
    positions = lj_initial_positions(6, 6, seed=1).reshape(2, 3, 6, 3)
    energies = lj_energy(positions)
    assert energies.shape == (2, 3) and energies.dtype == np.float64
    assert energies[1, 2] == pytest.approx(lj_energy(positions[1, 2]), rel=1e-12)


def test_forces_match_central_finite_differences():
    positions = lj_initial_positions(7, 2, seed=3)
    forces = lj_forces(positions)
    step = 1e-6
    numeric = np.zeros_like(positions)
    for atom in range(7):
        for axis in range(3):
            shift = np.zeros_like(positions)
            shift[:, atom, axis] = step
            difference = lj_energy(positions + shift) - lj_energy(positions - shift)
            numeric[:, atom, axis] = -difference / (2 * step)
    np.testing.assert_allclose(forces, numeric, rtol=1e-6, atol=1e-6)


def test_translation_invariance_and_zero_net_force():
    positions = lj_initial_positions(13, 3, seed=4)
    shifted = positions + np.array([3.0, -1.5, 0.7])
    np.testing.assert_allclose(lj_energy(shifted), lj_energy(positions), rtol=1e-12)
    np.testing.assert_allclose(lj_forces(shifted), lj_forces(positions), atol=1e-10)
    np.testing.assert_allclose(lj_forces(positions).sum(axis=1), 0.0, atol=1e-9)


def test_initial_positions_are_compact_and_centred():
    positions = lj_initial_positions(13, 5, seed=0)
    assert positions.shape == (5, 13, 3)
    np.testing.assert_allclose(positions.mean(axis=1), 0.0, atol=1e-12)
    i, j = np.triu_indices(13, k=1)
    distances = np.linalg.norm(positions[:, i] - positions[:, j], axis=-1)
    assert distances.min() > 0.8 and distances.max() < 5.0


def test_metropolis_tiny_run_is_finite_with_sane_acceptance():
    x0 = lj_initial_positions(13, 8, seed=0)
    samples, acceptance = metropolis(x0, 20, seed=1, record_every=5)
    assert samples.shape == (8, 4, 13, 3)
    assert np.all(np.isfinite(lj_energy(samples)))
    assert 0.2 < acceptance < 0.7


def test_metropolis_progress_bar_leaves_the_chain_unchanged(capsys):
    x0 = lj_initial_positions(13, 4, seed=0)
    quiet, _ = metropolis(x0, 6, seed=1, record_every=3)
    shown, _ = metropolis(x0, 6, seed=1, record_every=3, progress=True, label="LJ-13 test chain")
    np.testing.assert_array_equal(quiet, shown)
    assert "LJ-13 test chain" in capsys.readouterr().err


def test_metropolis_samples_dimer_distance_distribution():
    # dimer: E = 2 phi(d) + d^2 / 4, so p(d) ~ d^2 exp(-E(d)) at kT = 1; mean 1.99
    # (pair-once energy would give 2.20)
    def weight(d: float) -> float:
        return d**2 * np.exp(-2.0 * _pair_once(d) - d**2 / 4.0)

    norm = quad(weight, 0.5, 12.0, points=[1.0])[0]
    expected = quad(lambda d: d * weight(d), 0.5, 12.0, points=[1.0])[0] / norm

    x0 = np.tile(np.array([[[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0]]]), (1000, 1, 1))
    samples, _ = metropolis(x0, 300, step_size=0.4, seed=2, record_every=50)
    distances = np.linalg.norm(samples[:, 2:, 0] - samples[:, 2:, 1], axis=-1)
    assert distances.mean() == pytest.approx(expected, abs=0.05)  # 3 standard errors


def test_metropolis_rejects_bad_input():
    with pytest.raises(ValueError):
        metropolis(np.zeros((2, 13)), 1)
    with pytest.raises(ValueError):
        metropolis(np.zeros((2, 3, 3)), 1)  # overlapping atoms
    with pytest.raises(ValueError):
        metropolis(lj_initial_positions(4, 2), 1, step_size=0.0)


def test_make_lj_dataset_shapes_tiny():
    data = make_lj_dataset(
        5, n_reference=40, n_biased=10, burn_in=5, n_chains=8, thinning=2, biased_burn_in=2, seed=3
    )
    assert data["reference"].shape == (40, 5, 3)
    assert data["biased"].shape == data["biased_forces"].shape == (10, 5, 3)
    assert data["unbiased"].shape == data["unbiased_forces"].shape == (4, 5, 3)
    for key in ("reference", "biased", "unbiased"):
        np.testing.assert_allclose(data[key].mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(data["biased_forces"], lj_forces(data["biased"]))
    np.testing.assert_allclose(data["unbiased_forces"], lj_forces(data["unbiased"]))
    reference_rows = {row.tobytes() for row in data["reference"]}
    assert all(row.tobytes() in reference_rows for row in data["unbiased"])


def test_lj_local_minimum_is_stationary_and_below_its_start():
    start = lj_initial_positions(7, 1, seed=2)[0]
    minimum = lj_local_minimum(start)
    assert lj_energy(minimum) < lj_energy(start)
    assert np.abs(lj_forces(minimum)).max() < 1e-2 * np.abs(lj_forces(start)).max()
    np.testing.assert_allclose(minimum.mean(axis=0), 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="n_atoms, 3"):
        lj_local_minimum(start[None])


def test_cold_head_starts_cold_and_heats_up():
    data = make_lj_cold_head(7, n_frames=60, seed=1)
    cold, forces = data["cold"], data["cold_forces"]
    assert cold.shape == forces.shape == (60, 7, 3)
    np.testing.assert_allclose(cold.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(forces, lj_forces(cold))
    energies = lj_energy(cold)
    minimum = lj_energy(lj_local_minimum(cold[0]))
    # the first frame is one sweep away from a minimum; kT = 1 heats the chain up from there
    assert energies[0] - minimum < 3.0
    assert energies[-20:].mean() > energies[:3].mean()
    np.testing.assert_array_equal(make_lj_cold_head(7, n_frames=60, seed=1)["cold"], cold)
    with pytest.raises(ValueError, match="n_frames"):
        make_lj_cold_head(7, n_frames=0)
