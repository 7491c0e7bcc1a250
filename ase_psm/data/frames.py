"""In-memory container for snapshots of one molecular system, plus frame selection.

Units throughout: positions in Å, energies in eV, forces in eV/Å.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ase
import numpy as np
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.singlepoint import SinglePointCalculator


@dataclass(eq=False, repr=False)
class Frames:
    """Snapshots of one system (fixed atom count and order).

    Attributes:
        numbers: (n_atoms,) int64 atomic numbers.
        positions: (n_frames, n_atoms, 3) float64 Cartesian positions in Å.
        forces: optional (n_frames, n_atoms, 3) float64 forces in eV/Å.
        energies: optional (n_frames,) float64 potential energies in eV.
    """

    numbers: np.ndarray
    positions: np.ndarray
    forces: np.ndarray | None = None
    energies: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.numbers = _as_atomic_numbers(self.numbers)
        n_atoms = self.numbers.shape[0]

        self.positions = _as_float_array(self.positions, "positions")
        if self.positions.ndim != 3 or self.positions.shape[1:] != (n_atoms, 3):
            raise ValueError(
                f"positions must have shape (n_frames, {n_atoms}, 3) to match {n_atoms} atomic "
                f"numbers, got {self.positions.shape}; for a single frame pass positions[None]."
            )
        _check_finite(self.positions, "positions")
        n_frames = self.positions.shape[0]

        if self.forces is not None:
            self.forces = _as_float_array(self.forces, "forces")
            if self.forces.shape != self.positions.shape:
                raise ValueError(
                    f"forces must have the same shape as positions {self.positions.shape}, "
                    f"got {self.forces.shape}."
                )
            _check_finite(self.forces, "forces")

        if self.energies is not None:
            self.energies = _as_float_array(self.energies, "energies")
            if self.energies.shape != (n_frames,):
                raise ValueError(
                    f"energies must have shape ({n_frames},) (one per frame), "
                    f"got {self.energies.shape}."
                )
            _check_finite(self.energies, "energies")

    def __len__(self) -> int:
        """Number of frames."""
        return self.positions.shape[0]

    def __repr__(self) -> str:
        return (
            f"Frames(n_frames={len(self)}, n_atoms={self.n_atoms}, "
            f"forces={self.forces is not None}, energies={self.energies is not None})"
        )

    @property
    def n_atoms(self) -> int:
        """Number of atoms per frame."""
        return self.numbers.shape[0]

    def subset(self, indices: Sequence[int] | np.ndarray | slice) -> Frames:
        """Return the frames at `indices` (a slice or integer indices), arrays sliced consistently."""
        if isinstance(indices, slice):
            selection = np.arange(len(self))[indices]
        else:
            selection = np.asarray(indices)
            if selection.size == 0:
                selection = selection.astype(np.int64)
            if selection.ndim != 1 or not np.issubdtype(selection.dtype, np.integer):
                raise ValueError(
                    f"subset indices must be a slice or a 1-D sequence of integers, "
                    f"got array of shape {selection.shape} and dtype {selection.dtype}."
                )
            out_of_range = (selection < -len(self)) | (selection >= len(self))
            if out_of_range.any():
                raise IndexError(
                    f"frame index {int(selection[out_of_range][0])} is out of range "
                    f"for {len(self)} frames."
                )
        return Frames(
            numbers=self.numbers.copy(),
            positions=self.positions[selection],
            forces=None if self.forces is None else self.forces[selection],
            energies=None if self.energies is None else self.energies[selection],
        )

    def to_atoms(self, index: int) -> ase.Atoms:
        """Frame `index` as ase.Atoms; forces/energy (if present) sit on a SinglePointCalculator."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"frame index {index} is out of range for {len(self)} frames.")
        atoms = ase.Atoms(numbers=self.numbers.copy(), positions=self.positions[index].copy())
        results: dict[str, object] = {}
        if self.energies is not None:
            results["energy"] = float(self.energies[index])
        if self.forces is not None:
            results["forces"] = self.forces[index].copy()
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        return atoms

    @classmethod
    def from_atoms(cls, images: Sequence[ase.Atoms]) -> Frames:
        """Build Frames from ASE images; forces/energies are kept only if every image stores them.

        Values are read from the attached calculators' stored results (nothing is recomputed).
        """
        images = list(images)
        if not images:
            raise ValueError("from_atoms needs at least one ase.Atoms image, got an empty sequence.")
        numbers = images[0].get_atomic_numbers()
        for i, atoms in enumerate(images[1:], start=1):
            other = atoms.get_atomic_numbers()
            if other.shape != numbers.shape or not np.array_equal(other, numbers):
                raise ValueError(
                    f"frame {i} has atomic numbers different from frame 0 ({len(other)} vs "
                    f"{len(numbers)} atoms); all frames must describe the same system in the "
                    f"same atom order."
                )
        positions = np.stack([atoms.get_positions() for atoms in images])
        forces = [_stored_property(atoms, "forces") for atoms in images]
        energies = [_stored_property(atoms, "energy") for atoms in images]
        stored_forces = [f for f in forces if f is not None]
        return cls(
            numbers=numbers,
            positions=positions,
            forces=None if len(stored_forces) < len(forces) else np.stack(stored_forces),
            energies=None if any(e is None for e in energies) else np.array(energies, dtype=float),
        )


def select_frames(
    frames: Frames,
    *,
    first: int | None = None,
    stride: int = 1,
    fraction: float | None = None,
    seed: int = 0,
) -> Frames:
    """Select frames: take every `stride`-th frame, then the first `first` of those,
    then a random `fraction` of what remains (sorted, at least one frame, seeded by `seed`)."""
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be an integer >= 1, got {stride!r}.")
    if first is not None and (
        isinstance(first, bool) or not isinstance(first, (int, np.integer)) or first < 1
    ):
        raise ValueError(f"first must be None or an integer >= 1, got {first!r}.")
    if fraction is not None and not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be None or in (0, 1], got {fraction!r}.")
    if len(frames) == 0:
        raise ValueError("cannot select from Frames with 0 frames.")

    indices = np.arange(len(frames))[::stride]
    if first is not None:
        indices = indices[:first]
    if fraction is not None:
        n_keep = max(1, round(fraction * len(indices)))
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(indices, size=n_keep, replace=False))
    return frames.subset(indices)


def split_frames(
    frames: Frames, val_fraction: float, seed: int = 0
) -> tuple[Frames, Frames | None]:
    """Randomly split into (train, val); val gets round(val_fraction * n) frames (at least 1,
    at most n - 1). Returns (frames, None) when val_fraction == 0."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}.")
    if val_fraction == 0.0:
        return frames, None
    n = len(frames)
    if n < 2:
        raise ValueError(
            f"a validation split needs at least 2 frames, got {n}: give more frames, or train on "
            f"this one with val_fraction=0 (CLI: --val-fraction 0)."
        )
    n_val = min(max(1, round(val_fraction * n)), n - 1)
    permutation = np.random.default_rng(seed).permutation(n)
    val_indices = np.sort(permutation[:n_val])
    train_indices = np.sort(permutation[n_val:])
    return frames.subset(train_indices), frames.subset(val_indices)


def _as_atomic_numbers(numbers: np.ndarray | Sequence[int]) -> np.ndarray:
    """Convert to a 1-D int64 array of atomic numbers in 1..118."""
    array = np.asarray(numbers)
    if array.ndim != 1:
        raise ValueError(f"numbers must be a 1-D array (n_atoms,), got shape {array.shape}.")
    if array.size == 0:
        raise ValueError("numbers is empty; a system needs at least one atom.")
    whole = np.issubdtype(array.dtype, np.integer) or (
        np.issubdtype(array.dtype, np.floating) and np.all(array == np.round(array))
    )
    if not whole:
        raise ValueError(
            f"numbers must be integer atomic numbers, got dtype {array.dtype} with values {array[:5]}..."
        )
    array = array.astype(np.int64)
    if array.min() < 1 or array.max() > 118:
        raise ValueError(
            f"atomic numbers must lie in 1..118, got range [{array.min()}, {array.max()}]."
        )
    return array


def _as_float_array(values: np.ndarray | Sequence[float], name: str) -> np.ndarray:
    """Convert to a contiguous float64 array, naming `name` on failure."""
    try:
        return np.ascontiguousarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be convertible to a float64 array: {error}") from error


def _check_finite(array: np.ndarray, name: str) -> None:
    """Raise if `array` has NaN/inf, naming the first offending frame."""
    bad = ~np.isfinite(array)
    if bad.any():
        frame = int(np.argwhere(bad)[0][0])
        raise ValueError(f"{name} contains NaN or inf values (first in frame {frame}).")


def _stored_property(atoms: ase.Atoms, name: str) -> np.ndarray | float | None:
    """Stored calculator result `name` of `atoms`, or None if absent (never triggers a calculation)."""
    if atoms.calc is None:
        return None
    try:
        value = atoms.calc.get_property(name, atoms, allow_calculation=False)
    except PropertyNotImplementedError:
        return None
    return None if value is None else np.array(value, dtype=np.float64)
