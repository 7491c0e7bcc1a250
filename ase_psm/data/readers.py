"""Read trajectories/datasets into Frames (Å, eV, eV/Å) and write them back as extxyz.

Supported inputs:
- anything ASE reads (.xyz, .extxyz, .traj, ...), via ase.io.read;
- MD17-style .npz (keys R/coords, z/Z/nuclear_charges, optional E/energies, F/forces);
- MD trajectories via mdtraj (.pdb, .h5, .gro with their own topology; .dcd, .xtc, .trr, .nc
  with a separate `topology` file). mdtraj works in nm; positions are converted to Å.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, overload

import ase.io
import numpy as np
from ase import units
from ase.io.formats import UnknownFileTypeError, string2index

from ase_psm.data.frames import Frames

# Conversion factors to eV and Å. Keys are matched case-insensitively.
ENERGY_UNITS: dict[str, float] = {
    "eV": 1.0,
    "meV": 1e-3,
    "kcal/mol": units.kcal / units.mol,
    "kJ/mol": units.kJ / units.mol,
    "Hartree": units.Hartree,
}
LENGTH_UNITS: dict[str, float] = {
    "Å": 1.0,
    "A": 1.0,
    "Angstrom": 1.0,
    "nm": 10.0,
    "Bohr": units.Bohr,
}

NPZ_SUFFIXES = frozenset({".npz"})
# mdtraj formats that carry their own topology.
MDTRAJ_TOPOLOGY_SUFFIXES = frozenset({".pdb", ".h5", ".gro"})
# mdtraj coordinate-only formats that need a separate topology file.
MDTRAJ_COORDINATE_SUFFIXES = frozenset({".dcd", ".xtc", ".trr", ".nc", ".netcdf"})
ASE_SUFFIXES = frozenset({".xyz", ".extxyz", ".traj"})

# Key aliases in MD17 (R, z, E, F) and revised MD17 (coords, nuclear_charges, energies, forces).
_NPZ_POSITION_KEYS = ("R", "coords")
_NPZ_NUMBER_KEYS = ("z", "Z", "nuclear_charges")
_NPZ_ENERGY_KEYS = ("E", "energies")
_NPZ_FORCE_KEYS = ("F", "forces")

Index = str | int | slice


def read_frames(
    path: str | os.PathLike,
    *,
    topology: str | os.PathLike | None = None,
    index: Index = ":",
    length_unit: str = "Å",
    energy_unit: str | None = None,
    force_unit: str | None = None,
) -> Frames:
    """Read `path` into Frames converted to Å, eV, eV/Å.

    Args:
        path: input file; the format is chosen from its suffix.
        topology: topology file (e.g. .pdb) for coordinate-only mdtraj formats (.dcd, .xtc, ...).
        index: frames to keep, ASE-style ("0", "-1", "::10", ":") or an int/slice.
        length_unit: unit of lengths in the file (ASE and NPZ inputs; mdtraj handles its own).
        energy_unit: unit of energies in the file; defaults to eV, except that NPZ files with
            energies/forces require it explicitly (MD17 files are usually in kcal/mol).
        force_unit: unit of forces, e.g. "kcal/mol/Å"; defaults to energy_unit/length_unit.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty: it holds no frames; check that the run that wrote it finished")
    suffix = path.suffix.lower()
    if suffix in NPZ_SUFFIXES:
        return _read_npz(path, index, length_unit, energy_unit, force_unit)
    if suffix in MDTRAJ_TOPOLOGY_SUFFIXES | MDTRAJ_COORDINATE_SUFFIXES:
        return _read_mdtraj(path, topology, index, length_unit, energy_unit, force_unit)
    frames = _read_ase(path, index)
    return _convert_units(frames, length_unit, energy_unit or "eV", force_unit)


def write_frames(path: str | os.PathLike, frames: Frames) -> None:
    """Write `frames` to an extended-XYZ file (.xyz/.extxyz) with energies and forces if present."""
    path = Path(path)
    if path.suffix.lower() not in {".xyz", ".extxyz"}:
        raise ValueError(
            f"write_frames writes extended XYZ; use a .xyz or .extxyz suffix, got {path.name!r}."
        )
    if len(frames) == 0:
        raise ValueError("cannot write Frames with 0 frames.")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output directory does not exist: {path.parent}")
    images = [frames.to_atoms(i) for i in range(len(frames))]
    ase.io.write(path, images, format="extxyz")


def _read_ase(path: Path, index: Index) -> Frames:
    """Read any ASE-supported file."""
    try:
        images = ase.io.read(path, index=index)
    except UnknownFileTypeError as error:
        supported = sorted(
            ASE_SUFFIXES | NPZ_SUFFIXES | MDTRAJ_TOPOLOGY_SUFFIXES | MDTRAJ_COORDINATE_SUFFIXES
        )
        raise ValueError(
            f"unknown file format for {path}: {error}. Supported: {', '.join(supported)}, "
            f"or any other format ase.io.read understands."
        ) from error
    except Exception as error:  # ASE's parsers raise many types on malformed files
        raise ValueError(
            f"could not read {path} ({type(error).__name__}: {error}): the file is corrupt, truncated "
            f"or not in the format its suffix {path.suffix!r} says"
        ) from error
    if isinstance(images, ase.Atoms):
        images = [images]
    if not images:
        raise ValueError(f"index {index!r} selects no frames from {path}.")
    return Frames.from_atoms(images)


def _read_npz(
    path: Path,
    index: Index,
    length_unit: str,
    energy_unit: str | None,
    force_unit: str | None,
) -> Frames:
    """Read an MD17-style NPZ archive."""
    with _open_npz(path) as archive:
        keys = set(archive.files)
        positions_key = _find_key(keys, _NPZ_POSITION_KEYS, path, required=True)
        numbers_key = _find_key(keys, _NPZ_NUMBER_KEYS, path, required=True)
        energies_key = _find_key(keys, _NPZ_ENERGY_KEYS, path, required=False)
        forces_key = _find_key(keys, _NPZ_FORCE_KEYS, path, required=False)

        missing_energy_unit = energies_key is not None and energy_unit is None
        missing_force_unit = forces_key is not None and energy_unit is None and force_unit is None
        if missing_energy_unit or missing_force_unit:
            raise ValueError(
                f"{path} contains energies/forces but no energy_unit was given. MD17-style files "
                f"are usually in kcal/mol: pass energy_unit='kcal/mol' (CLI: --energy-unit kcal/mol), "
                f"or 'eV' if the file is already in eV."
            )

        positions = _npz_array(archive, positions_key, path)
        if positions.ndim == 2:
            positions = positions[None]
        n_frames = positions.shape[0] if positions.ndim else 0
        energies = None
        if energies_key is not None:
            energies = _npz_array(archive, energies_key, path)
            if energies.shape == (n_frames, 1):
                energies = energies[:, 0]
        forces = None
        if forces_key is not None:
            forces = _npz_array(archive, forces_key, path)
            if forces.ndim == 2:
                forces = forces[None]
        numbers = _npz_array(archive, numbers_key, path, dtype=None)
        frames = Frames(numbers=numbers, positions=positions, forces=forces, energies=energies)
    frames = frames.subset(_index_to_array(index, len(frames)))
    return _convert_units(frames, length_unit, energy_unit or "eV", force_unit)


def _read_mdtraj(
    path: Path,
    topology: str | os.PathLike | None,
    index: Index,
    length_unit: str,
    energy_unit: str | None,
    force_unit: str | None,
) -> Frames:
    """Read an MD trajectory with mdtraj (nm) and convert positions to Å."""
    try:
        import mdtraj
    except ImportError as error:
        raise ImportError(
            f"reading {path.suffix} files needs mdtraj: pip install mdtraj"
        ) from error
    if _length_factor(length_unit) != 1.0 or energy_unit is not None or force_unit is not None:
        raise ValueError(
            f"{path.suffix} files are read with mdtraj, which handles their units itself; "
            f"do not pass length_unit, energy_unit or force_unit."
        )
    suffix = path.suffix.lower()
    if suffix in MDTRAJ_COORDINATE_SUFFIXES:
        if topology is None:
            raise ValueError(
                f"{path.suffix} files hold coordinates only; pass topology=<file with atoms, "
                f"e.g. a .pdb of the same system>."
            )
        if not Path(topology).is_file():
            raise FileNotFoundError(f"topology file not found: {topology}")
        trajectory = _load_mdtraj(mdtraj, path, Path(topology))
    else:
        if topology is not None:
            raise ValueError(
                f"{path.suffix} files carry their own topology; drop topology={str(topology)!r}."
            )
        trajectory = _load_mdtraj(mdtraj, path, None)

    numbers = []
    for atom in trajectory.topology.atoms:
        if atom.element is None or atom.element.atomic_number < 1:
            raise ValueError(
                f"atom {atom.index} ({atom}) in {path} has no chemical element "
                f"(virtual site or unknown name); remove it or fix the topology."
            )
        numbers.append(atom.element.atomic_number)
    positions = trajectory.xyz.astype(np.float64) * 10.0  # nm -> Å
    frames = Frames(numbers=np.array(numbers), positions=positions)
    return frames.subset(_index_to_array(index, len(frames)))


def _load_mdtraj(mdtraj, path: Path, topology: Path | None):
    """mdtraj.load with errors that name the files, and the atom counts when they differ."""
    try:
        # mdtraj 1.10.0 reads top=None as "no topology" instead of "the file's own": pass it only when given
        return mdtraj.load(str(path), **({} if topology is None else {"top": str(topology)}))
    except Exception as error:  # mdtraj's readers raise many types on malformed files
        counts = None if topology is None else _mdtraj_atom_counts(mdtraj, path, topology)
        if counts is not None and counts[0] != counts[1]:
            raise ValueError(
                f"{path} has {counts[0]} atoms per frame but its topology {topology} has {counts[1]}: "
                "pass the topology of the same system (same atoms in the same order)"
            ) from error
        raise ValueError(
            f"could not read {path} with mdtraj ({type(error).__name__}: {error}): the file is corrupt, "
            f"truncated or not in the format its suffix {path.suffix!r} says"
        ) from error


def _mdtraj_atom_counts(mdtraj, path: Path, topology: Path) -> tuple[int, int] | None:
    """(atoms per frame in `path`, atoms in `topology`), or None if either cannot be read."""
    try:
        n_topology = mdtraj.load_topology(str(topology)).n_atoms
        with mdtraj.open(str(path)) as handle:
            xyz = handle.read(n_frames=1)[0]
        return int(np.shape(xyz)[1]), int(n_topology)
    except Exception:  # noqa: BLE001 (only refines an error message)
        return None


def _open_npz(path: Path) -> np.lib.npyio.NpzFile:
    """Open an NPZ archive (no pickles), or a clear error for anything else."""
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as error:  # numpy raises many types on malformed files
        raise ValueError(
            f"{path} is not a readable NPZ archive (corrupt, truncated or another format: "
            f"{type(error).__name__}): write it with numpy.savez"
        ) from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} holds a single array, not an NPZ archive with keys R, z, E, F")  # noqa: TRY004
    return archive


def _npz_array(archive: np.lib.npyio.NpzFile, key: str, path: Path, dtype=np.float64) -> np.ndarray:
    """Array `key` of an open archive, or a ValueError naming the key and the file."""
    try:
        return np.asarray(archive[key], dtype=dtype)
    except Exception as error:  # corrupt members raise zipfile, zlib or numpy errors
        raise ValueError(
            f"array {key!r} in {path} cannot be read as numbers ({type(error).__name__}: {error})"
        ) from error


@overload
def _find_key(keys: set[str], aliases: tuple[str, ...], path: Path, required: Literal[True]) -> str: ...


@overload
def _find_key(keys: set[str], aliases: tuple[str, ...], path: Path, required: bool) -> str | None: ...


def _find_key(keys: set[str], aliases: tuple[str, ...], path: Path, required: bool) -> str | None:
    """First of `aliases` present in `keys`; raise if `required` and none is."""
    for key in aliases:
        if key in keys:
            return key
    if required:
        raise ValueError(
            f"{path} has none of the keys {list(aliases)}; found keys {sorted(keys)}."
        )
    return None


def _index_to_array(index: Index, n_frames: int) -> np.ndarray:
    """Frame indices selected by an ASE-style index string, an int or a slice."""
    selection = string2index(index) if isinstance(index, str) else index
    if isinstance(selection, str):  # string2index passes non-numeric strings through unchanged
        raise IndexError(f"index {index!r} is not a frame number or a slice like '::10'.")
    if isinstance(selection, int) and not -n_frames <= selection < n_frames:
        raise ValueError(f"index {index!r} is out of range for {n_frames} frames.")
    indices = np.atleast_1d(np.arange(n_frames)[selection])
    if indices.size == 0:
        raise ValueError(f"index {index!r} selects no frames out of {n_frames}.")
    return indices


def _lookup_unit(unit: str, table: dict[str, float], kind: str) -> float:
    """Case-insensitive lookup of a conversion factor in `table`."""
    for name, factor in table.items():
        if name.casefold() == unit.strip().casefold():
            return factor
    raise ValueError(f"unknown {kind} unit {unit!r}; known {kind} units: {', '.join(table)}.")


def _length_factor(unit: str) -> float:
    """Factor converting `unit` to Å."""
    return _lookup_unit(unit, LENGTH_UNITS, "length")


def _energy_factor(unit: str) -> float:
    """Factor converting `unit` to eV."""
    return _lookup_unit(unit, ENERGY_UNITS, "energy")


def _force_factor(unit: str) -> float:
    """Factor converting a force unit written "energy/length" (e.g. "kcal/mol/Å") to eV/Å."""
    energy, separator, length = unit.rpartition("/")
    if not separator or not energy:
        raise ValueError(
            f"force unit {unit!r} must be written as <energy>/<length>, e.g. 'kcal/mol/Å'; "
            f"energy units: {', '.join(ENERGY_UNITS)}; length units: {', '.join(LENGTH_UNITS)}."
        )
    return _energy_factor(energy) / _length_factor(length)


def _convert_units(
    frames: Frames, length_unit: str, energy_unit: str, force_unit: str | None
) -> Frames:
    """Convert frames read in the given units to Å, eV and eV/Å."""
    length = _length_factor(length_unit)
    energy = _energy_factor(energy_unit)
    force = _force_factor(force_unit) if force_unit is not None else energy / length
    if length == 1.0 and energy == 1.0 and force == 1.0:
        return frames
    return Frames(
        numbers=frames.numbers,
        positions=frames.positions * length,
        forces=None if frames.forces is None else frames.forces * force,
        energies=None if frames.energies is None else frames.energies * energy,
    )
