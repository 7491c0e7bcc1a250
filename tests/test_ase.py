"""PSMCalculator, PseudoForceDenoiser and sample() inside ASE workflows."""

from __future__ import annotations

import warnings

import ase
import numpy as np
import pytest
from ase.constraints import FixAtoms
from ase.optimize import FIRE

from ase_psm import PseudoForceDenoiser, PSMCalculator, sample
from ase_psm.diffusion import SAMPLERS

pytestmark = pytest.mark.mindeps  # CI also runs these against the oldest declared dependencies


def lj7(frames, index: int = 0) -> ase.Atoms:
    atoms = frames.to_atoms(index)
    atoms.calc = None
    return atoms


def test_calculator_in_an_ase_workflow(tiny_checkpoint, lj7_frames, device):
    atoms = lj7(lj7_frames)
    atoms.calc = PSMCalculator(tiny_checkpoint, device=device)
    forces = atoms.get_forces()
    assert forces.shape == (7, 3) and np.isfinite(forces).all()
    assert atoms.get_potential_energy() == pytest.approx(0.5 * np.sum(forces**2), rel=1e-6)
    assert atoms.calc.results["sigma"] == pytest.approx(np.sqrt(np.mean(forces**2)), rel=1e-5)
    # translation invariance and rotation equivariance through ASE
    moved = atoms.copy()
    moved.calc = atoms.calc
    moved.rotate(40, "z", center=(0, 0, 0))
    moved.translate([3.0, 0.0, -1.0])
    np.testing.assert_allclose(moved.get_forces(), _rotate_z(forces, 40), atol=2e-4)
    # a fixed noise level is honoured and changes the answer
    fixed = lj7(lj7_frames)
    fixed.calc = PSMCalculator(tiny_checkpoint, device=device, sigma=2.0)
    assert not np.allclose(fixed.get_forces(), forces)
    # an ASE optimizer runs on the pseudo-PES
    relaxed = lj7(lj7_frames)
    relaxed.calc = PSMCalculator(tiny_checkpoint, device=device, sigma=0.05)
    FIRE(relaxed, logfile=None).run(fmax=0.5, steps=5)


def _rotate_z(vectors: np.ndarray, degrees: float) -> np.ndarray:
    angle = np.radians(degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    return vectors @ rotation.T


def test_batched_calculation_matches_single(tiny_checkpoint, lj7_frames, device):
    calc = PSMCalculator(tiny_checkpoint, device=device, dtype="float64")
    images = [lj7(lj7_frames, i) for i in range(5)]
    batched = calc.calculate_batch(images, batch_size=2)
    for atoms, result in zip(images, batched):
        atoms.calc = calc
        np.testing.assert_allclose(atoms.get_forces(), result["forces"], atol=1e-10)
        assert atoms.calc.results["sigma"] == pytest.approx(result["sigma"])


def test_calculator_bad_input(tiny_checkpoint, tmp_path):
    with pytest.raises(FileNotFoundError):
        PSMCalculator(tmp_path / "nope.pt")
    with pytest.raises(ValueError, match="dtype"):
        PSMCalculator(tiny_checkpoint, dtype="float16")
    atoms = ase.Atoms("CO", positions=[[0, 0, 0], [1.1, 0, 0]])
    atoms.calc = PSMCalculator(tiny_checkpoint, device="cpu")
    with pytest.raises(ValueError, match="does not know"):
        atoms.get_forces()


def test_denoiser_converges_and_respects_fixed_atoms(gpff_checkpoint, lj7_frames, device):
    reference = lj7(lj7_frames)
    rng = np.random.default_rng(0)
    noised = reference.copy()
    noised.positions[2:] += 0.3 * rng.standard_normal((5, 3))  # inpainting: atoms 0 and 1 stay exact
    noised.set_constraint(FixAtoms(indices=[0, 1]))
    start = noised.positions.copy()
    denoiser = PseudoForceDenoiser(noised, gpff_checkpoint, seed=0, logfile=None, device=device)
    steps_seen = []
    denoiser.attach(lambda: steps_seen.append(denoiser.nsteps))
    converged = denoiser.run(fmax=0.05, steps=200)
    assert converged
    np.testing.assert_array_equal(noised.positions[:2], start[:2])
    distances = lambda a: np.sort(a.get_all_distances().ravel())
    error_before = np.abs(distances(ase.Atoms(positions=start)) - distances(reference)).mean()
    error_after = np.abs(distances(noised) - distances(reference)).mean()
    assert error_after < 0.5 * error_before
    assert steps_seen and steps_seen[-1] == denoiser.nsteps


def test_denoiser_needs_a_calculator():
    with pytest.raises(ValueError, match="PSMCalculator"):
        PseudoForceDenoiser(ase.Atoms("Ar2", positions=[[0, 0, 0], [1, 0, 0]]), logfile=None)


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_every_sampler_returns_finite_centred_structures(tiny_checkpoint, lj7_frames, sampler, device):
    template = lj7(lj7_frames)
    with warnings.catch_warnings():  # keep what a 100-step model makes, checked or not
        warnings.simplefilter("ignore", RuntimeWarning)
        structures = sample(tiny_checkpoint, template, n=5, sampler=sampler, steps=4, seed=0, device=device,
                            progress=False, batch_size=3, on_invalid="keep")
    assert len(structures) == 5
    positions = np.stack([a.positions for a in structures])
    assert positions.shape == (5, 7, 3) and np.isfinite(positions).all()
    # zero up to float32 rounding, a few ulp of the largest coordinate (up to 10 from this barely trained model)
    np.testing.assert_allclose(positions.mean(axis=1), 0.0, atol=1e-5 * max(1.0, np.abs(positions).max()))
    assert list(structures[0].numbers) == [18] * 7


def test_sample_is_seeded_and_keeps_fixed_atoms(tiny_checkpoint, lj7_frames):
    template = lj7(lj7_frames)
    options = {"n": 3, "steps": 3, "seed": 1, "device": "cpu", "progress": False, "on_invalid": "keep"}
    with warnings.catch_warnings():  # keep what a 100-step model makes, checked or not
        warnings.simplefilter("ignore", RuntimeWarning)
        a = sample(tiny_checkpoint, template, **options)
        b = sample(tiny_checkpoint, template, **options)
    np.testing.assert_array_equal(a[2].positions, b[2].positions)
    template.set_constraint(FixAtoms(indices=[2, 5]))
    inpainted = sample(tiny_checkpoint, template, **options, prior="structure", sigma_max=0.5)
    for atoms in inpainted:
        np.testing.assert_allclose(atoms.positions[[2, 5]], template.positions[[2, 5]], atol=1e-5)
    with pytest.raises(ValueError, match="unknown sampler"):
        sample(tiny_checkpoint, template, sampler="ddim")
    with pytest.raises(ValueError, match="heun sampler has no option.* final_corrector_steps; its options: churn"):
        sample(tiny_checkpoint, template, sampler="heun", final_corrector_steps=10)
