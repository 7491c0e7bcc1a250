"""Property-based tests (hypothesis): readers, the calculator and the CLI on random input.

Readers and the CLI must answer bad input with a ValueError / exit code 2 and a message, never
another exception; the calculator must be rotation- and permutation-equivariant and finite.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from pathlib import Path

import ase
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ase_psm import PSMCalculator
from ase_psm.cli.main import main
from ase_psm.data import Frames, read_frames, write_frames
from ase_psm.validation import MAX_COORDINATE

pytestmark = pytest.mark.mindeps  # CI also runs these against the oldest declared dependencies

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SPECIES = (1, 6, 8)


@pytest.fixture(scope="module")
def calc(hco_checkpoint) -> PSMCalculator:
    return PSMCalculator(hco_checkpoint, device="cpu", dtype="float64")


@pytest.fixture(scope="module")
def extxyz_bytes(lj7_frames) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "three.extxyz"
        write_frames(path, lj7_frames.subset([0, 1, 2]))
        return path.read_bytes()


def _read(name: str, data: bytes, **options) -> Frames | None:
    """read_frames on a file holding ``data``: Frames, or None after a ValueError with a message."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            frames = read_frames(path, **options)
        except ValueError as error:
            assert str(error).strip()
            return None
    assert isinstance(frames, Frames) and np.isfinite(frames.positions).all()
    return frames


@st.composite
def molecules(draw) -> ase.Atoms:
    """2-8 atoms of H, C, O within a few Å of the origin."""
    n = draw(st.integers(2, 8))
    numbers = draw(st.lists(st.sampled_from(SPECIES), min_size=n, max_size=n))
    seed = draw(st.integers(0, 2**32 - 1))
    positions = np.random.default_rng(seed).normal(scale=1.5, size=(n, 3))
    return ase.Atoms(numbers=numbers, positions=positions)


@st.composite
def rotations(draw) -> np.ndarray:
    """A random proper rotation matrix (det +1)."""
    seed = draw(st.integers(0, 2**32 - 1))
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _forces(calc: PSMCalculator, atoms: ase.Atoms) -> np.ndarray:
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_forces()


# --------------------------------------------------------------------------- readers


@FUZZ
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".xyz", ".extxyz", ".npz", ".traj", ".pdb"]))
def test_random_bytes_give_value_errors(data, suffix):
    _read(f"random{suffix}", data, energy_unit="eV" if suffix == ".npz" else None)


@FUZZ
@given(fraction=st.floats(0.0, 1.0, exclude_max=True))
def test_truncated_extxyz_gives_frames_or_value_error(extxyz_bytes, fraction):
    frames = _read("cut.extxyz", extxyz_bytes[: int(fraction * len(extxyz_bytes))])
    assert frames is None or (len(frames) <= 3 and frames.n_atoms <= 7)


shapes = st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple)


@FUZZ
@given(r_shape=shapes, z_shape=shapes, f_shape=st.none() | shapes, e_shape=st.none() | shapes,
       z_value=st.integers(-5, 130))
def test_npz_with_wrong_shapes_gives_value_error(r_shape, z_shape, f_shape, e_shape, z_value):
    arrays = {"R": np.ones(r_shape), "z": np.full(z_shape, z_value)}
    if f_shape is not None:
        arrays["F"] = np.zeros(f_shape)
    if e_shape is not None:
        arrays["E"] = np.zeros(e_shape)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    frames = _read("md17.npz", buffer.getvalue(), energy_unit="kcal/mol")
    if frames is not None:
        assert frames.positions.shape[1:] == (frames.n_atoms, 3) and 1 <= z_value <= 118


# --------------------------------------------------------------------------- the calculator


@FUZZ
@given(atoms=molecules(), rotation=rotations())
def test_forces_rotate_with_the_molecule(calc, atoms, rotation):
    rotated = atoms.copy()
    rotated.positions = atoms.positions @ rotation.T
    np.testing.assert_allclose(_forces(calc, rotated), _forces(calc, atoms) @ rotation.T, atol=1e-6)


@FUZZ
@given(atoms=molecules(), seed=st.integers(0, 2**32 - 1))
def test_forces_permute_with_the_atoms(calc, atoms, seed):
    order = np.random.default_rng(seed).permutation(len(atoms))
    np.testing.assert_allclose(_forces(calc, atoms[order]), _forces(calc, atoms)[order], atol=1e-6)


@FUZZ
@given(
    numbers=st.lists(st.sampled_from(SPECIES), min_size=1, max_size=6),
    scale=st.sampled_from([0.0, 1e-6, 1.0, 1e3, MAX_COORDINATE, 1e6, np.inf]),
    seed=st.integers(0, 2**32 - 1),
    nan=st.booleans(),
)
def test_any_coordinates_give_finite_forces_or_a_clear_error(calc, numbers, scale, seed, nan):
    positions = scale * np.random.default_rng(seed).uniform(-1, 1, size=(len(numbers), 3))
    if nan:
        positions[0, 0] = np.nan
    atoms = ase.Atoms(numbers=numbers, positions=positions)
    valid = np.isfinite(positions).all() and np.abs(positions).max() <= MAX_COORDINATE
    if valid:
        assert np.isfinite(_forces(calc, atoms)).all()
    else:
        with pytest.raises(ValueError, match="NaN or inf|beyond"):
            _forces(calc, atoms)


# --------------------------------------------------------------------------- the CLI


def _exit_code(argv: list[str]) -> tuple[int, str]:
    """Run the CLI in-process: exit code and stderr (argparse errors exit through SystemExit)."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
    return code, stderr.getvalue()


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("bad")
    files = {"garbage.pt": np.random.default_rng(0).bytes(400), "empty.extxyz": b"",
             "cut.extxyz": b"7\nLattice=\"1 0 0\n", "notes.xyz": b"hello world\n"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {name: str(folder / name) for name in files}


argument = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30).filter(
    lambda text: not text.startswith("-")
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples=st.lists(argument, min_size=1, max_size=3), reference=st.sampled_from(["garbage.pt", "empty.extxyz",
       "cut.extxyz", "notes.xyz"]), plot=st.none() | argument)
def test_evaluate_on_bad_files_exits_2_without_traceback(bad_files, samples, reference, plot):
    argv = ["evaluate", *samples, "--reference", bad_files[reference]] + ([] if plot is None else ["--plot", plot])
    code, stderr = _exit_code(argv)
    assert code == 2 and "Traceback" not in stderr and "error" in stderr


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(checkpoint=st.sampled_from(["garbage.pt", "empty.extxyz", "notes.xyz"]) | argument,
       template=st.sampled_from(["garbage.pt", "cut.extxyz", "notes.xyz"]) | argument,
       extra=st.lists(st.sampled_from(["--n", "--steps", "--sigma-max", "--sampler", "--seed"]).flatmap(
           lambda flag: st.tuples(st.just(flag), argument)), max_size=3))
def test_sample_on_bad_files_exits_2_without_traceback(bad_files, checkpoint, template, extra):
    argv = ["sample", bad_files.get(checkpoint, checkpoint), "--template", bad_files.get(template, template),
            "--device", "cpu", *[part for pair in extra for part in pair]]
    code, stderr = _exit_code(argv)
    assert code == 2 and "Traceback" not in stderr and "error" in stderr
