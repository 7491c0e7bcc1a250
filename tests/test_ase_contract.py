"""ASE's contracts, as ASE tests its own optimizers and calculators, for PseudoForceDenoiser and PSMCalculator.

Each test holds on every ASE version the project declares (CI also runs them on the oldest).
"""

from __future__ import annotations

import ase
import ase.io
import numpy as np
import pytest
from ase.calculators.calculator import PropertyNotImplementedError

from ase_psm import PseudoForceDenoiser, PSMCalculator
from ase_psm.demo import demo_asset

pytestmark = pytest.mark.mindeps


@pytest.fixture(scope="module")
def calculator() -> PSMCalculator:
    return PSMCalculator("lj13", device="cpu")


@pytest.fixture()
def atoms(calculator) -> ase.Atoms:
    """A rattled LJ-13 cluster (reduced units) with the shipped lj13 model attached."""
    with np.load(demo_asset("lj13.npz")) as data:
        atoms = ase.Atoms("Ar13", positions=data["reference"][0])
    atoms.rattle(0.3, seed=1)
    atoms.calc = calculator
    return atoms


def _fmax(atoms: ase.Atoms) -> float:
    return float(np.linalg.norm(atoms.get_forces(), axis=1).max())


def test_denoiser_converges_and_says_so(atoms):
    start = atoms.get_all_distances()
    with PseudoForceDenoiser(atoms, seed=0, logfile=None) as denoiser:
        converged = denoiser.run(fmax=0.05, steps=200)
    assert converged is True  # a Python bool, not numpy's
    assert _fmax(atoms) < 0.05 and 0 < denoiser.nsteps < 200
    assert np.abs(atoms.get_all_distances() - start).max() < 1.0  # denoised, not run away
    forces = atoms.get_forces()
    assert denoiser.converged() is True
    assert denoiser.converged(forces=forces) is True
    assert denoiser.converged(gradient=-forces.ravel()) is True
    assert denoiser.gradient_converged(-forces.ravel()) is True


def test_denoiser_unconverged(atoms):
    with PseudoForceDenoiser(atoms, seed=0, logfile=None) as denoiser:
        converged = denoiser.run(fmax=1e-9, steps=1)
    assert converged is False and denoiser.nsteps == 1
    forces = atoms.get_forces()
    assert denoiser.converged() is False
    assert denoiser.converged(forces=forces) is False
    assert denoiser.gradient_converged(-forces.ravel()) is False
    description = denoiser.todict()
    assert description["fmax"] == 1e-9 and description["optimizer"] == "PseudoForceDenoiser"
    assert description["kappa"] == 0.7 and description["sigma_stop"] == 0.02


def test_denoiser_needs_fmax_before_converged(atoms):
    with pytest.raises(RuntimeError, match=r"call run\(fmax=...\)"):
        PseudoForceDenoiser(atoms, logfile=None).converged()


def test_running_twice_adds_steps(atoms):
    with PseudoForceDenoiser(atoms, seed=0, logfile=None) as denoiser:
        denoiser.run(fmax=1e-9, steps=5)
        denoiser.run(fmax=1e-9, steps=5)
    assert denoiser.nsteps == 10 and denoiser.max_steps == 10


@pytest.mark.parametrize("steps", [0, 1, 4])
def test_irun_yields_steps_plus_one_times(atoms, steps):
    with PseudoForceDenoiser(atoms, seed=0, logfile=None) as denoiser:
        yielded = list(denoiser.irun(fmax=0, steps=steps))
    assert len(yielded) == steps + 1 and not any(yielded)
    assert all(type(value) is bool for value in yielded)


@pytest.mark.parametrize("as_path", [False, True])
def test_log_and_trajectory_files(atoms, tmp_path, as_path):
    log, trajectory = tmp_path / "denoise.log", tmp_path / "denoise.traj"
    files = (log, trajectory) if as_path else (str(log), str(trajectory))
    with PseudoForceDenoiser(atoms, seed=0, logfile=files[0], trajectory=files[1]) as denoiser:
        denoiser.run(fmax=1e-9, steps=3)
    assert len(log.read_text().splitlines()) == 1 + 4  # header, then steps 0 to 3
    images = ase.io.read(trajectory, index=":")
    assert len(images) == 4
    np.testing.assert_allclose(images[-1].positions, atoms.positions)


def test_seed_makes_runs_repeatable(atoms):
    start = atoms.copy()
    PseudoForceDenoiser(atoms, seed=3, logfile=None).run(fmax=1e-9, steps=3)
    start.calc = atoms.calc
    PseudoForceDenoiser(start, seed=3, logfile=None).run(fmax=1e-9, steps=3)
    np.testing.assert_array_equal(start.positions, atoms.positions)


def test_calculator_properties(atoms, calculator):
    forces = calculator.get_property("forces", atoms)
    assert forces.shape == (13, 3)
    assert calculator.get_property("energy", atoms) == pytest.approx(0.5 * np.sum(forces**2))
    assert atoms.get_potential_energy(force_consistent=True) == atoms.get_potential_energy()
    for name in ("stress", "dipole", "magmom"):
        with pytest.raises(PropertyNotImplementedError):
            calculator.get_property(name, atoms)
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_stress()


def test_calculator_caches_by_state(atoms):
    calculator = PSMCalculator("lj13", device="cpu")
    assert calculator.get_property("forces", atoms, allow_calculation=False) is None
    forces = calculator.get_property("forces", atoms)
    assert calculator.check_state(atoms) == []
    forces[:] = 0.0  # results are handed out as copies
    assert np.abs(calculator.get_property("forces", atoms, allow_calculation=False)).max() > 0
    atoms.positions[0, 0] += 0.1  # changed in place: the calculator kept its own copy
    assert calculator.check_state(atoms) == ["positions"]
    assert calculator.get_property("forces", atoms, allow_calculation=False) is None


def test_calculator_shared_by_copies(atoms):
    calculator = atoms.calc
    other = atoms.copy()
    other.positions *= 1.05
    other.calc = calculator
    expected = [PSMCalculator("lj13", device="cpu").get_property("forces", a) for a in (atoms, other)]
    for _ in range(2):  # alternating structures recalculate instead of reusing the other's results
        np.testing.assert_allclose(atoms.get_forces(), expected[0], atol=1e-6)
        np.testing.assert_allclose(other.get_forces(), expected[1], atol=1e-6)
    assert not np.allclose(expected[0], expected[1])


def test_graph_conditioned_calculator_recalculates_when_the_bonds_change():
    from ase.build import molecule

    from ase_psm.chemistry.bonds import molecule_bonds

    atoms = molecule("CH3CH2OH")
    atoms.info["bonds"] = molecule_bonds(atoms)  # perceived from the clean structure
    atoms.calc = PSMCalculator("conformers", device="cpu")
    forces = atoms.get_forces()
    assert atoms.calc.check_state(atoms) == []
    atoms.info["bonds"] = atoms.info["bonds"][:-1]  # the same coordinates, one bond fewer
    assert atoms.calc.check_state(atoms) == ["bonds"]
    assert not np.allclose(atoms.get_forces(), forces)
