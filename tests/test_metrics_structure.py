"""Stability, Ramachandran metrics and plots, on hand-made cases."""

from __future__ import annotations

from importlib import resources

import ase
import numpy as np
import pytest
from ase.build import molecule

from ase_psm.metrics import (
    backbone_dihedrals,
    phi_psi,
    plot_energy_histograms,
    plot_hr,
    plot_loss_curve,
    plot_ramachandran,
    ramachandran_tvd,
    residue_ramachandran_tvd,
    stability,
)
from ase_psm.metrics.plots import energy_histogram_edges

pytestmark = pytest.mark.mindeps  # CI also runs these against the oldest declared dependencies


def ethanol_frames(n: int, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    atoms = molecule("CH3CH2OH")
    rng = np.random.default_rng(seed)
    return atoms.numbers, atoms.positions + noise * rng.normal(size=(n, len(atoms), 3))


def test_stability_counts_structures_with_a_stretched_bond():
    numbers, reference = ethanol_frames(50, 0.02)
    samples = reference[:10].copy()
    assert stability(samples, reference, numbers) == 1.0
    carbon, oxygen = int(np.flatnonzero(numbers == 6)[1]), int(np.flatnonzero(numbers == 8)[0])
    direction = samples[:5, oxygen] - samples[:5, carbon]
    samples[:5, oxygen] += 0.7 * direction / np.linalg.norm(direction, axis=-1, keepdims=True)
    assert stability(samples, reference, numbers) == pytest.approx(0.5)
    assert stability(samples, reference, numbers, tolerance=1.0) == 1.0
    samples[9, 0] = np.nan
    assert stability(samples, reference, numbers) == pytest.approx(0.4)


def test_stability_needs_a_molecule():
    with pytest.raises(ValueError, match="no covalent bonds"):
        stability(np.zeros((1, 2, 3)) + [[0, 0, 0], [5, 0, 0]], np.array([[[0, 0, 0], [5, 0, 0]]]), [6, 6])


def test_ramachandran_tvd_on_hand_made_histograms():
    rng = np.random.default_rng(0)
    alpha = rng.normal([-70, -40], 5, size=(2000, 2))
    beta = rng.normal([-120, 130], 5, size=(2000, 2))
    assert ramachandran_tvd(alpha, alpha) == 0.0
    assert ramachandran_tvd(alpha, beta) == pytest.approx(1.0)
    assert ramachandran_tvd(np.concatenate([alpha, beta]), beta) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shape"):
        ramachandran_tvd(alpha[:, 0], beta)


def test_phi_psi_changes_sign_in_the_mirror_image():
    mdtraj = pytest.importorskip("mdtraj")
    pdb = resources.files("ase_psm") / "examples_data" / "ala2.pdb"
    structure = mdtraj.load(str(pdb))
    atoms = ase.Atoms(positions=structure.xyz[0] * 10.0)
    phi_atoms = mdtraj.compute_phi(structure)[0][0]
    psi_atoms = mdtraj.compute_psi(structure)[0][0]
    atoms.set_dihedral(*phi_atoms, -70.0)  # moves the last atom only: a helical (phi, psi)
    atoms.set_dihedral(*psi_atoms, 140.0)
    positions = atoms.positions[None]
    angles = phi_psi(positions, structure.topology)
    np.testing.assert_allclose(angles, [[-70.0, 140.0]], atol=1e-3)
    mirrored = positions * np.array([1.0, 1.0, -1.0])
    np.testing.assert_allclose(phi_psi(mirrored, structure.topology), -angles, atol=1e-3)
    with pytest.raises(ValueError, match="atoms"):
        phi_psi(positions[:, :10], structure.topology)
    np.testing.assert_allclose(backbone_dihedrals(positions, structure.topology)[:, 0], angles)


def test_residue_ramachandran_tvd_is_the_mean_over_residues():
    rng = np.random.default_rng(0)
    alpha = rng.normal([-70, -40], 5, size=(2000, 2))
    beta = rng.normal([-120, 130], 5, size=(2000, 2))
    two_residues = np.stack([alpha, beta], axis=1)
    assert residue_ramachandran_tvd(two_residues, two_residues) == 0.0
    assert residue_ramachandran_tvd(np.stack([alpha, alpha], axis=1), two_residues) == pytest.approx(0.5)
    assert residue_ramachandran_tvd(alpha[:, None], beta[:, None]) == ramachandran_tvd(alpha, beta)
    with pytest.raises(ValueError, match="n_residues"):
        residue_ramachandran_tvd(two_residues, alpha[:, None])


def test_energy_histogram_range_shows_hot_samples_and_caps_broken_ones():
    reference = np.random.default_rng(0).normal(-325.0, 10.0, size=2000)  # LJ-55-like
    hot = np.random.default_rng(1).normal(-255.0, 15.0, size=256)  # what an undertrained model gives
    edges = energy_histogram_edges({"hot": hot}, reference)
    assert edges[0] < np.percentile(reference, 0.5) and edges[-1] >= np.percentile(hot, 99.0)
    width = np.subtract(*np.percentile(reference, [99.5, 0.5]))
    exploded = np.full(10, 1e9)  # overlapping atoms: the axis must not stretch to them
    edges = energy_histogram_edges({"exploded": exploded}, reference)
    assert edges[-1] <= np.percentile(reference, 99.5) + 3.0 * width + 1e-9


def test_plots_are_written(tmp_path):
    _, reference = ethanol_frames(40, 0.05)
    _, samples = ethanol_frames(40, 0.1, seed=1)
    assert plot_hr({"model": samples}, reference, tmp_path / "hr.png").stat().st_size > 1000
    energies = np.random.default_rng(0).normal(size=200)
    assert plot_energy_histograms({"model": energies + 0.5}, energies, tmp_path / "e.svg").stat().st_size > 1000
    angles = np.random.default_rng(0).uniform(-180, 180, size=(300, 2))
    assert plot_ramachandran({"model": angles}, angles[::-1], tmp_path / "rama.png").stat().st_size > 1000
    log = tmp_path / "model.csv"
    log.write_text("step,learning_rate,train_loss,val_loss,elapsed_s\n10,0.001,2.0,2.5,1\n20,0.001,1.0,,2\n")
    assert plot_loss_curve(log, tmp_path / "loss.png").stat().st_size > 1000
    log.write_text("step,learning_rate,train_loss,val_loss,elapsed_s\n")
    with pytest.raises(ValueError, match="no logged steps"):
        plot_loss_curve(log, tmp_path / "empty.png")
