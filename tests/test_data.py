"""Tests for ase_psm.data: Frames container, selection/splitting and file readers."""

from __future__ import annotations

import ase
import ase.io
import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator

from ase_psm.data import Frames, read_frames, select_frames, split_frames, write_frames

pytestmark = pytest.mark.mindeps  # CI also runs these against the oldest declared dependencies

KCAL_PER_MOL_IN_EV = 0.0433641


def make_frames(n_frames: int = 5, n_atoms: int = 3, seed: int = 0) -> Frames:
    """Water-like Frames with random positions, forces and energies."""
    rng = np.random.default_rng(seed)
    return Frames(
        numbers=np.array([8, 1, 1][:n_atoms] + [6] * max(0, n_atoms - 3)),
        positions=rng.normal(size=(n_frames, n_atoms, 3)),
        forces=rng.normal(size=(n_frames, n_atoms, 3)),
        energies=rng.normal(size=n_frames),
    )


def numbered_frames(n_frames: int) -> Frames:
    """Frames whose energy equals the frame index, to check which frames were selected."""
    return Frames(
        numbers=[1],
        positions=np.zeros((n_frames, 1, 3)),
        energies=np.arange(n_frames, dtype=float),
    )


def selected(frames: Frames) -> list[int]:
    return frames.energies.astype(int).tolist()


# --------------------------------------------------------------------------- Frames


def test_frames_converts_dtypes_and_reports_sizes():
    frames = Frames(numbers=[8, 1, 1], positions=np.zeros((2, 3, 3), dtype=np.float32))
    assert frames.numbers.dtype == np.int64
    assert frames.positions.dtype == np.float64
    assert len(frames) == 2
    assert frames.n_atoms == 3
    assert frames.forces is None and frames.energies is None


def test_frames_rejects_nan_positions():
    positions = np.zeros((3, 2, 3))
    positions[1, 0, 2] = np.nan
    with pytest.raises(ValueError, match="positions contains NaN.*frame 1"):
        Frames(numbers=[1, 1], positions=positions)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"positions": np.zeros((2, 3))}, r"positions must have shape \(n_frames, 2, 3\)"),
        ({"positions": np.zeros((1, 3, 3))}, r"positions must have shape"),
        ({"forces": np.zeros((1, 2, 3))}, "forces must have the same shape"),
        ({"energies": np.zeros(3)}, r"energies must have shape \(2,\)"),
        ({"energies": [0.0, np.inf]}, "energies contains NaN or inf"),
        ({"numbers": [1.5, 1]}, "numbers must be integer"),
        ({"numbers": [0, 1]}, "atomic numbers must lie in 1..118"),
    ],
)
def test_frames_rejects_bad_inputs(kwargs, message):
    arguments = {"numbers": [1, 1], "positions": np.zeros((2, 2, 3))} | kwargs
    with pytest.raises(ValueError, match=message):
        Frames(**arguments)


def test_subset_slices_all_arrays_consistently():
    frames = make_frames(6)
    part = frames.subset([4, 1])
    np.testing.assert_array_equal(part.positions, frames.positions[[4, 1]])
    np.testing.assert_array_equal(part.forces, frames.forces[[4, 1]])
    np.testing.assert_array_equal(part.energies, frames.energies[[4, 1]])
    assert len(frames.subset(slice(None, None, 2))) == 3
    with pytest.raises(IndexError, match="frame index 6 is out of range"):
        frames.subset([0, 6])


def test_to_atoms_and_from_atoms_round_trip():
    frames = make_frames(3)
    atoms = frames.to_atoms(-1)
    np.testing.assert_allclose(atoms.get_forces(), frames.forces[-1])
    assert atoms.get_potential_energy() == pytest.approx(frames.energies[-1])
    back = Frames.from_atoms([frames.to_atoms(i) for i in range(3)])
    np.testing.assert_array_equal(back.numbers, frames.numbers)
    np.testing.assert_allclose(back.positions, frames.positions)
    np.testing.assert_allclose(back.forces, frames.forces)
    np.testing.assert_allclose(back.energies, frames.energies)


def test_from_atoms_drops_properties_missing_on_some_images():
    images = [ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]) for _ in range(2)]
    images[0].calc = SinglePointCalculator(images[0], energy=1.0, forces=np.zeros((2, 3)))
    images[1].calc = SinglePointCalculator(images[1], energy=2.0)
    frames = Frames.from_atoms(images)
    assert frames.forces is None
    np.testing.assert_allclose(frames.energies, [1.0, 2.0])


def test_from_atoms_rejects_mismatched_numbers():
    images = [ase.Atoms("H2O"), ase.Atoms("H2O"), ase.Atoms("OH2")]
    with pytest.raises(ValueError, match="frame 2 has atomic numbers different from frame 0"):
        Frames.from_atoms(images)
    with pytest.raises(ValueError, match="empty"):
        Frames.from_atoms([])


# --------------------------------------------------------------------------- selection


def test_select_frames_stride_then_first():
    frames = numbered_frames(20)
    assert selected(select_frames(frames, stride=3)) == [0, 3, 6, 9, 12, 15, 18]
    assert selected(select_frames(frames, first=4)) == [0, 1, 2, 3]
    assert selected(select_frames(frames, stride=3, first=4)) == [0, 3, 6, 9]


def test_select_frames_fraction_is_seeded_sorted_and_applied_last():
    frames = numbered_frames(20)
    chosen = select_frames(frames, stride=2, first=8, fraction=0.5, seed=3)
    candidates = np.arange(0, 16, 2)
    expected = np.sort(np.random.default_rng(3).choice(candidates, size=4, replace=False))
    assert selected(chosen) == expected.tolist()
    assert selected(select_frames(frames, fraction=0.3, seed=1)) == selected(
        select_frames(frames, fraction=0.3, seed=1)
    )
    assert len(select_frames(frames, fraction=0.3)) == 6
    assert len(select_frames(frames, fraction=0.001)) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stride": 0}, "stride must be an integer >= 1"),
        ({"stride": 1.5}, "stride must be an integer >= 1"),
        ({"first": 0}, "first must be None or an integer >= 1"),
        ({"fraction": 0.0}, r"fraction must be None or in \(0, 1\]"),
        ({"fraction": 1.2}, r"fraction must be None or in \(0, 1\]"),
    ],
)
def test_select_frames_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        select_frames(numbered_frames(5), **kwargs)


def test_split_frames_sizes_and_disjointness():
    frames = numbered_frames(10)
    train, val = split_frames(frames, 0.25, seed=5)
    assert len(val) == 2 and len(train) == 8  # round(2.5) == 2
    assert set(selected(train)).isdisjoint(selected(val))
    assert sorted(selected(train) + selected(val)) == list(range(10))
    assert selected(train) == sorted(selected(train))
    again_train, _ = split_frames(frames, 0.25, seed=5)
    assert selected(again_train) == selected(train)

    train, val = split_frames(numbered_frames(2), 0.01)
    assert (len(train), len(val)) == (1, 1)
    train, val = split_frames(frames, 0.0)
    assert train is frames and val is None
    with pytest.raises(ValueError, match="at least 2 frames"):
        split_frames(numbered_frames(1), 0.5)
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        split_frames(frames, 1.0)


# --------------------------------------------------------------------------- ASE formats


def test_extxyz_round_trip_with_forces_and_energies(tmp_path):
    frames = make_frames(4)
    path = tmp_path / "data.extxyz"
    write_frames(path, frames)
    back = read_frames(path)
    np.testing.assert_array_equal(back.numbers, frames.numbers)
    np.testing.assert_allclose(back.positions, frames.positions, atol=1e-7)  # 8 decimals
    np.testing.assert_allclose(back.forces, frames.forces, atol=1e-7)
    np.testing.assert_allclose(back.energies, frames.energies)
    assert len(read_frames(path, index="1::2")) == 2
    assert len(read_frames(path, index=-1)) == 1


def test_extxyz_with_explicit_units(tmp_path):
    frames = make_frames(2)
    path = tmp_path / "data.xyz"
    write_frames(path, frames)
    back = read_frames(path, length_unit="Bohr", energy_unit="Hartree")
    bohr, hartree = 0.529177210903, 27.211386245988  # Å, eV (CODATA 2018)
    np.testing.assert_allclose(back.positions, frames.positions * bohr, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(back.energies, frames.energies * hartree, rtol=1e-6)
    np.testing.assert_allclose(back.forces, frames.forces * hartree / bohr, rtol=1e-6, atol=1e-6)


def test_write_frames_rejects_other_suffixes(tmp_path):
    with pytest.raises(ValueError, match="use a .xyz or .extxyz suffix"):
        write_frames(tmp_path / "data.traj", make_frames(1))


def test_ase_traj(tmp_path):
    frames = make_frames(3)
    path = tmp_path / "run.traj"
    ase.io.write(path, [frames.to_atoms(i) for i in range(3)])
    back = read_frames(path)
    np.testing.assert_allclose(back.positions, frames.positions)
    np.testing.assert_allclose(back.forces, frames.forces)
    np.testing.assert_allclose(back.energies, frames.energies)


def test_ase_images_without_calculator_have_no_labels(tmp_path):
    path = tmp_path / "plain.xyz"
    ase.io.write(path, [ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])] * 2, format="xyz")
    back = read_frames(path)
    assert len(back) == 2 and back.forces is None and back.energies is None


# --------------------------------------------------------------------------- NPZ


def write_md17(path, **arrays) -> None:
    rng = np.random.default_rng(0)
    defaults = {"R": rng.normal(size=(4, 3, 3)), "z": np.array([8, 1, 1])}
    np.savez(path, **(defaults | arrays))


def test_npz_kcal_per_mol_conversion(tmp_path):
    path = tmp_path / "md17.npz"
    energies = np.array([[-1000.0], [-1001.0], [-1002.0], [-1003.0]])  # (n, 1) as in MD17
    forces = np.full((4, 3, 3), 2.0)
    write_md17(path, E=energies, F=forces)
    frames = read_frames(path, energy_unit="kcal/mol")
    np.testing.assert_allclose(frames.energies, energies[:, 0] * KCAL_PER_MOL_IN_EV, rtol=1e-6)
    assert frames.energies[0] == pytest.approx(-43.3641, rel=1e-6)
    np.testing.assert_allclose(frames.forces, 2.0 * KCAL_PER_MOL_IN_EV, rtol=1e-6)
    np.testing.assert_array_equal(frames.numbers, [8, 1, 1])

    in_ev = read_frames(path, energy_unit="eV", force_unit="kcal/mol/A")
    np.testing.assert_allclose(in_ev.energies, energies[:, 0])
    np.testing.assert_allclose(in_ev.forces, 2.0 * KCAL_PER_MOL_IN_EV, rtol=1e-6)
    assert len(read_frames(path, energy_unit="eV", index="::2")) == 2


def test_npz_requires_energy_unit_when_labelled(tmp_path):
    path = tmp_path / "md17.npz"
    write_md17(path, E=np.zeros(4), F=np.zeros((4, 3, 3)))
    with pytest.raises(ValueError, match="energy_unit='kcal/mol'"):
        read_frames(path)


def test_npz_alias_keys_and_single_frame_without_labels(tmp_path):
    path = tmp_path / "single.npz"
    np.savez(path, coords=np.ones((3, 3)), nuclear_charges=np.array([6, 1, 1]))
    frames = read_frames(path)  # no labels: no energy_unit needed
    assert len(frames) == 1 and frames.forces is None and frames.energies is None


def test_npz_missing_key_and_unknown_unit(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, R=np.ones((1, 2, 3)))
    with pytest.raises(ValueError, match="none of the keys.*found keys"):
        read_frames(path)
    write_md17(path, E=np.zeros(4))
    with pytest.raises(ValueError, match="unknown energy unit 'kcal'.*kcal/mol"):
        read_frames(path, energy_unit="kcal")


def test_npz_mismatched_shapes(tmp_path):
    path = tmp_path / "bad.npz"
    write_md17(path, z=np.array([8, 1]))
    with pytest.raises(ValueError, match=r"positions must have shape \(n_frames, 2, 3\)"):
        read_frames(path)


# --------------------------------------------------------------------------- mdtraj


def write_mdtraj_system(tmp_path, n_frames: int = 3):
    """Write a 3-atom water trajectory (nm) as PDB; return (trajectory, pdb path)."""
    md = pytest.importorskip("mdtraj")
    topology = md.Topology()
    residue = topology.add_residue("HOH", topology.add_chain())
    oxygen = topology.add_atom("O", md.element.oxygen, residue)
    for name in ("H1", "H2"):
        topology.add_bond(oxygen, topology.add_atom(name, md.element.hydrogen, residue))
    rng = np.random.default_rng(0)
    xyz = (rng.uniform(0.0, 1.0, size=(n_frames, 3, 3))).astype(np.float32)
    trajectory = md.Trajectory(xyz, topology)
    pdb = tmp_path / "water.pdb"
    trajectory[0].save_pdb(str(pdb))
    return trajectory, pdb


def test_mdtraj_dcd_with_pdb_topology(tmp_path):
    trajectory, pdb = write_mdtraj_system(tmp_path)
    dcd = tmp_path / "water.dcd"
    trajectory.save_dcd(str(dcd))
    frames = read_frames(dcd, topology=pdb)
    np.testing.assert_array_equal(frames.numbers, [8, 1, 1])
    np.testing.assert_allclose(frames.positions, trajectory.xyz * 10.0, atol=1e-4)
    assert frames.forces is None and frames.energies is None
    assert len(read_frames(dcd, topology=pdb, index="1:")) == 2

    single = read_frames(pdb)  # PDB carries its own topology; 3 decimals in Å
    np.testing.assert_allclose(single.positions[0], trajectory.xyz[0] * 10.0, atol=1e-3)


def test_mdtraj_hdf5(tmp_path):
    pytest.importorskip("tables")
    trajectory, _ = write_mdtraj_system(tmp_path)
    h5 = tmp_path / "water.h5"
    trajectory.save_hdf5(str(h5))
    frames = read_frames(h5)
    np.testing.assert_array_equal(frames.numbers, [8, 1, 1])
    np.testing.assert_allclose(frames.positions, trajectory.xyz * 10.0, rtol=1e-6)


def test_mdtraj_topology_errors(tmp_path):
    trajectory, pdb = write_mdtraj_system(tmp_path)
    dcd = tmp_path / "water.dcd"
    trajectory.save_dcd(str(dcd))
    with pytest.raises(ValueError, match="pass topology="):
        read_frames(dcd)
    with pytest.raises(FileNotFoundError, match="topology file not found"):
        read_frames(dcd, topology=tmp_path / "missing.pdb")
    with pytest.raises(ValueError, match="carry their own topology"):
        read_frames(pdb, topology=pdb)
    with pytest.raises(ValueError, match="do not pass length_unit"):
        read_frames(dcd, topology=pdb, length_unit="nm")


# --------------------------------------------------------------------------- generic errors


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.xyz"
    with pytest.raises(FileNotFoundError, match="nope.xyz"):
        read_frames(missing)


def test_unknown_format(tmp_path):
    path = tmp_path / "data.weird"
    path.write_text("not a trajectory\n")
    with pytest.raises(ValueError, match="unknown file format.*Supported: .*npz"):
        read_frames(path)
