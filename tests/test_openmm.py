"""OpenMM/mdtraj integration: units, atom order, force labels, the recorder, checks and seeding."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

openmm = pytest.importorskip("openmm")
pytest.importorskip("mdtraj")

from importlib.resources import files

import ase
from ase import units
from conftest import TINY_MODEL
from openmm import app, unit

from ase_psm.cli.main import main
from ase_psm.data import Frames, read_frames
from ase_psm.metrics.validity import BONDS, CHIRALITY, CLASH
from ase_psm.openmm import (
    FrameRecorder,
    SeedSettings,
    StructureChecker,
    atoms_from_openmm,
    atoms_to_openmm,
    label_forces,
    seed_simulations,
    stereocentres,
    topology_bonds,
    write_structures,
)
from ase_psm.train import train

pytestmark = pytest.mark.mindeps  # CI also runs these against the oldest declared dependencies

ALA2 = files("ase_psm") / "examples_data" / "ala2.pdb"
CA = 8  # alpha carbon of ACE-ALA-NME, its only stereocentre


@pytest.fixture(scope="module")
def ala2(ala2_pdb):
    """(PDBFile, System): alanine dipeptide, amber14, vacuum, H-bond constraints."""
    system = app.ForceField("amber14-all.xml").createSystem(
        ala2_pdb.topology, nonbondedMethod=app.NoCutoff, constraints=app.HBonds
    )
    return ala2_pdb, system


def _simulation(pdb, system, seed: int = 1):
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 0.002 * unit.picosecond)
    integrator.setRandomNumberSeed(seed)
    simulation = app.Simulation(pdb.topology, system, integrator, openmm.Platform.getPlatformByName("Reference"))
    simulation.context.setPositions(pdb.positions)
    simulation.context.setVelocitiesToTemperature(300 * unit.kelvin, seed)
    return simulation


@pytest.fixture(scope="module")
def recorded(ala2):
    """(recorder, simulation) after 200 MD steps recorded every 10 steps."""
    recorder = FrameRecorder(10)
    simulation = _simulation(*ala2)
    simulation.reporters.append(recorder)
    with pytest.warns(UserWarning, match="12 constraints"):  # the fixture's System constrains X-H bonds
        simulation.step(200)
    return recorder, simulation


def test_atoms_round_trip_keeps_units_and_order(ala2):
    pdb, _ = ala2
    atoms = atoms_from_openmm(pdb.topology, pdb.positions)
    assert [a.element.symbol for a in pdb.topology.atoms()] == atoms.get_chemical_symbols()
    nm = pdb.positions.value_in_unit(unit.nanometer)
    np.testing.assert_allclose(atoms.positions, 10.0 * np.array([[v.x, v.y, v.z] for v in nm]))
    back = atoms_to_openmm(atoms, pdb.topology).value_in_unit(unit.nanometer)
    np.testing.assert_allclose(back, [[v.x, v.y, v.z] for v in nm], atol=1e-12)


def test_atoms_to_openmm_rejects_other_atom_order(ala2):
    pdb, _ = ala2
    atoms = atoms_from_openmm(pdb.topology, pdb.positions)
    with pytest.raises(ValueError, match="atom 1 is element 1 in the Atoms but 6"):
        atoms_to_openmm(atoms[::-1], pdb.topology)


@pytest.mark.parametrize("suffix", [".dcd", ".h5", ".pdb"])
def test_write_structures_round_trip(ala2, tmp_path, suffix):
    pdb, _ = ala2
    template = atoms_from_openmm(pdb.topology, pdb.positions)
    structures = [template.copy() for _ in range(3)]
    for k, atoms in enumerate(structures):
        atoms.positions += 0.5 * k
    path = write_structures(tmp_path / f"out{suffix}", structures, pdb.topology)
    frames = read_frames(path, topology=str(ALA2)) if suffix == ".dcd" else read_frames(path)
    assert len(frames) == 3 and np.array_equal(frames.numbers, template.numbers)
    np.testing.assert_allclose(frames.positions, [a.positions for a in structures], atol=2e-3)  # float32 / 3 decimals


def test_write_structures_rejects_bad_suffix_and_topology(ala2, tmp_path):
    pdb, _ = ala2
    atoms = atoms_from_openmm(pdb.topology, pdb.positions)
    with pytest.raises(ValueError, match="extxyz"):
        write_structures(tmp_path / "x.xyz", [atoms], pdb.topology)
    with pytest.raises(ValueError, match="21 atoms but the topology has 22"):
        write_structures(tmp_path / "x.dcd", [atoms[:-1]], pdb.topology)


def test_label_forces_match_openmm_and_finite_differences(ala2, recorded):
    pdb, system = ala2
    recorder, _ = recorded
    frames = Frames(recorder.frames().numbers, recorder.frames().positions[:3])
    labelled = label_forces(frames, system, topology=pdb.topology, progress=False)

    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(frames.positions[1] * unit.angstrom)
    state = context.getState(getEnergy=True, getForces=True)
    kj_mol = units.kJ / units.mol
    np.testing.assert_allclose(labelled.energies[1], state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) * kj_mol)
    expected = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer) * kj_mol / 10.0
    np.testing.assert_allclose(labelled.forces[1], expected, rtol=1e-6, atol=1e-8)

    # eV/Å forces are minus the gradient of the eV energies in Å
    step = 1e-4
    for atom, axis in [(8, 0), (5, 2)]:
        plus, minus = frames.positions[:1].copy(), frames.positions[:1].copy()
        plus[0, atom, axis] += step
        minus[0, atom, axis] -= step
        energies = label_forces(Frames(frames.numbers, np.concatenate([plus, minus])), system, progress=False).energies
        assert -(energies[0] - energies[1]) / (2 * step) == pytest.approx(labelled.forces[0, atom, axis], rel=1e-4, abs=1e-5)


def test_label_forces_rejects_wrong_system_size(ala2):
    _, system = ala2
    frames = Frames(np.ones(3, dtype=int), np.zeros((1, 3, 3)))
    with pytest.raises(ValueError, match="3 atoms but the OpenMM System has 22 particles"):
        label_forces(frames, system, progress=False)


def test_recorder_collects_frames_with_forces(ala2, recorded, tmp_path):
    _, system = ala2
    recorder, simulation = recorded
    frames = recorder.frames()
    assert len(frames) == 20 and frames.n_atoms == 22
    state = simulation.context.getState(getPositions=True)
    np.testing.assert_allclose(frames.positions[-1], state.getPositions(asNumpy=True).value_in_unit(unit.angstrom))
    relabelled = label_forces(frames.subset([0, 19]), system, progress=False)
    np.testing.assert_allclose(frames.forces[[0, 19]], relabelled.forces, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(frames.energies[[0, 19]], relabelled.energies, rtol=1e-9)
    for name in ("frames.extxyz", "frames.npz"):
        path = recorder.save(tmp_path / name)
        back = read_frames(path, energy_unit="eV") if name.endswith(".npz") else read_frames(path)
        np.testing.assert_allclose(back.forces, frames.forces, rtol=1e-6, atol=1e-7)  # extxyz: 8 digits
        np.testing.assert_allclose(back.energies, frames.energies, rtol=1e-6)


def test_constraints_warn_that_force_labels_miss_constraint_forces(ala2):
    pdb, constrained = ala2
    flexible = app.ForceField("amber14-all.xml").createSystem(pdb.topology, nonbondedMethod=app.NoCutoff)
    atoms = atoms_from_openmm(pdb.topology, pdb.positions)
    frames = Frames(atoms.numbers, atoms.positions[None])
    with pytest.warns(UserWarning, match="12 constraints.*constraints=None"):
        label_forces(frames, constrained, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        label_forces(frames, flexible, progress=False)
        simulation = _simulation(pdb, flexible)
        simulation.reporters.append(FrameRecorder(1))
        simulation.step(2)


def test_recorder_validates_interval_and_empty():
    with pytest.raises(ValueError, match="interval"):
        FrameRecorder(0)
    with pytest.raises(ValueError, match="no frames recorded"):
        FrameRecorder(5).frames()


def test_stereocentres_of_ala2(ala2):
    pdb, _ = ala2
    numbers = np.array([a.element.atomic_number for a in pdb.topology.atoms()])
    centres = stereocentres(numbers, topology_bonds(pdb.topology))
    assert [c for c, _ in centres] == [CA]  # methyl carbons (three equivalent H) are not
    assert set(centres[0][1]) == {6, 14, 10}  # N, C, CB: the heavy neighbours, not HA


def test_mirror_image_is_flagged_and_rigid_motion_is_not(ala2):
    pdb, _ = ala2
    atoms = atoms_from_openmm(pdb.topology, pdb.positions)
    checker = StructureChecker.from_topology(atoms.positions, pdb.topology)
    mirrored = atoms.positions * np.array([-1.0, 1.0, 1.0])
    category, reason = checker.check(mirrored)
    assert category == CHIRALITY and str(CA) in reason
    moved = atoms.copy()
    moved.rotate(73, (1, 2, 3))
    moved.translate((4.0, -2.0, 1.0))
    assert checker.check(moved.positions) is None
    assert checker.same_chirality(np.stack([atoms.positions, mirrored, moved.positions])).tolist() == [True, False, True]


def test_template_failing_the_checks_is_refused(ala2):
    pdb, _ = ala2
    positions = atoms_from_openmm(pdb.topology, pdb.positions).positions
    positions[3] = positions[20]
    with pytest.raises(ValueError, match="template itself fails"):
        StructureChecker.from_topology(positions, pdb.topology)


def test_seeding_runs_good_structures_and_rejects_overlaps(ala2, recorded, tmp_path):
    pdb, system = ala2
    frames = recorded[0].frames()
    good = [frames.to_atoms(5), frames.to_atoms(15)]
    overlapping = frames.to_atoms(10)
    overlapping.positions[12] = overlapping.positions[20] + 0.01
    mirrored = frames.to_atoms(0)
    mirrored.positions[:, 1] *= -1
    settings = SeedSettings(steps=40, temperature=300.0, report_interval=10, trajectory_format="h5")
    report = seed_simulations(
        None, system, pdb.topology, pdb.positions, structures=[good[0], overlapping, mirrored, good[1]],
        out=tmp_path / "runs", settings=settings, progress=False,
    )
    assert (report.generated, report.accepted) == (4, 2)
    assert [(r.index, r.category) for r in report.rejected] == [(1, CLASH), (2, CHIRALITY)]
    assert report.rejection_counts == {CLASH: 1, CHIRALITY: 1}
    assert [p.name for p in report.paths] == ["run_000.h5", "run_003.h5"]
    for path in report.paths:
        trajectory = read_frames(path)
        assert len(trajectory) == 4 and np.isfinite(trajectory.positions).all()
    assert all(e - report.template_energy < settings.energy_window for e in report.energies)
    assert "rejected 2 (clash: 1, chirality: 1)" in report.summary()


def test_seeding_from_a_simulation_rejects_high_energy(ala2, recorded, tmp_path):
    pdb, system = ala2
    stretched = recorded[0].frames().to_atoms(3)
    stretched.positions[[0, 2, 3]] += 0.25 * (stretched.positions[[0, 2, 3]] - stretched.positions[1])  # C-H +0.27 Å
    settings = SeedSettings(steps=20, report_interval=10, minimize=False, energy_window=0.1)
    report = seed_simulations(
        None, simulation=_simulation(pdb, system), structures=[stretched], out=tmp_path, settings=settings, progress=False,
    )
    assert report.temperature == pytest.approx(300.0)  # from the Simulation's integrator
    assert report.accepted == 0 and report.rejected[0].category == "energy" and report.paths == []


def test_seeding_from_a_checkpoint_accounts_for_every_structure(ala2, recorded, tmp_path):
    pdb, system = ala2
    checkpoint = train(
        recorded[0].frames(), tmp_path / "ala2.pt", loss="piecewise-weighted", temperature=300.0, steps=3,
        batch_size=4, val_fraction=0.0, model=TINY_MODEL, device="cpu", progress=False, atom_types="graph",
    )
    report = seed_simulations(
        checkpoint, system, pdb.topology, pdb.positions, n=3, out=tmp_path / "runs", sample_steps=3,
        settings=SeedSettings(steps=20, report_interval=10), progress=False,
    )
    assert report.temperature == 300.0  # the checkpoint's
    assert report.generated == 3 and report.accepted + len(report.rejected) == 3
    assert len(report.paths) == report.accepted


def test_checks_after_minimization_accept_repaired_bonds_but_not_mirror_images(ala2, recorded, tmp_path):
    pdb, system = ala2
    frames = recorded[0].frames()
    stretched = frames.to_atoms(4)
    bond = stretched.positions[1] - stretched.positions[4]  # ACE methyl C - carbonyl C, 1.5 Å
    stretched.positions[[0, 1, 2, 3]] += 0.4 * bond / np.linalg.norm(bond)  # the methyl group moves out
    mirrored = frames.to_atoms(0)
    mirrored.positions[:, 1] *= -1
    reports = {}
    for after in (False, True):
        settings = SeedSettings(steps=20, temperature=300.0, report_interval=10, check_after_minimization=after)
        reports[after] = seed_simulations(None, system, pdb.topology, pdb.positions, structures=[stretched, mirrored],
                                          out=tmp_path / str(after), settings=settings, progress=False)
    assert [(r.index, r.category) for r in reports[False].rejected] == [(0, BONDS), (1, CHIRALITY)]
    assert [(r.index, r.category) for r in reports[True].rejected] == [(1, CHIRALITY)]
    assert reports[True].accepted == 1


def test_seed_settings_validate():
    with pytest.raises(ValueError, match="trajectory_format"):
        SeedSettings(trajectory_format="xtc")
    with pytest.raises(ValueError, match="steps"):
        SeedSettings(steps=0)


def test_cli_seed_openmm(ala2, recorded, tmp_path, capsys):
    _pdb, system = ala2
    system_xml = tmp_path / "system.xml"
    system_xml.write_text(openmm.XmlSerializer.serialize(system))
    checkpoint = train(
        recorded[0].frames(), tmp_path / "m.pt", loss="dsm", steps=2, batch_size=4, val_fraction=0.0,
        model=TINY_MODEL, device="cpu", progress=False,
    )
    args = ["seed-openmm", "--system", str(system_xml), "--pdb", str(ALA2), "--checkpoint", str(checkpoint),
            "--n", "2", "--steps", "10", "--sample-steps", "2", "--temperature", "300", "--out", str(tmp_path / "runs")]
    assert main(["--quiet", *args]) == 0
    out, err = capsys.readouterr()
    assert "generated 2" in out and "%|" not in out + err  # --quiet: no progress bars
    pdb_as_system = [*args]
    pdb_as_system[2] = str(ALA2)
    assert main(pdb_as_system) == 2
    assert "not a serialized OpenMM System" in capsys.readouterr().err


def test_atoms_from_openmm_keeps_periodic_box(ala2):
    _pdb, _ = ala2
    topology = app.Topology()
    chain = topology.addChain()
    residue = topology.addResidue("HOH", chain)
    for name, element in (("O", "O"), ("H1", "H"), ("H2", "H")):
        topology.addAtom(name, app.Element.getBySymbol(element), residue)
    topology.setPeriodicBoxVectors(np.eye(3) * 2.0 * unit.nanometer)
    atoms = atoms_from_openmm(topology, np.zeros((3, 3)) * unit.nanometer)
    assert isinstance(atoms, ase.Atoms) and atoms.pbc.all()
    np.testing.assert_allclose(atoms.cell[:], np.eye(3) * 20.0)
