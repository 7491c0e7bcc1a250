"""An OpenMM reporter that collects frames with forces and energies during a simulation."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..data import Frames, write_frames
from .convert import atomic_numbers, positions_to_angstrom
from .labels import energy_and_forces, warn_if_constrained


class FrameRecorder:
    """Collect positions (Å), forces (eV/Å) and potential energies (eV) every `interval` steps.

    Attach it like any reporter, ``simulation.reporters.append(FrameRecorder(100))``; then
    ``recorder.frames()`` is ready for :func:`ase_psm.train` (with the simulation's
    temperature) and ``recorder.save("frames.extxyz")`` writes them. A simulation with
    constraints gets a warning at the first frame: record unconstrained runs for PSM labels.
    """

    def __init__(self, interval: int) -> None:
        if isinstance(interval, bool) or not isinstance(interval, (int, np.integer)) or interval < 1:
            raise ValueError(f"interval must be an integer number of steps >= 1, got {interval!r}.")
        self.interval = int(interval)
        self._numbers: np.ndarray | None = None
        self._positions: list[np.ndarray] = []
        self._forces: list[np.ndarray] = []
        self._energies: list[float] = []

    def __len__(self) -> int:
        return len(self._positions)

    def describeNextReport(self, simulation) -> tuple[int, bool, bool, bool, bool]:
        """Steps to the next report and what it needs: positions, no velocities, forces, energy."""
        steps = self.interval - simulation.currentStep % self.interval
        return steps, True, False, True, True

    def report(self, simulation, state) -> None:
        """Store one frame (called by OpenMM)."""
        if self._numbers is None:
            self._numbers = atomic_numbers(simulation.topology)
            warn_if_constrained(simulation.system)
        energy, forces = energy_and_forces(state)
        self._positions.append(positions_to_angstrom(state.getPositions(asNumpy=True)))
        self._forces.append(forces)
        self._energies.append(energy)

    def frames(self) -> Frames:
        """The recorded frames (Å, eV/Å, eV)."""
        if self._numbers is None:
            raise ValueError(
                f"no frames recorded yet; run the simulation for at least {self.interval} steps "
                f"with the recorder in simulation.reporters."
            )
        return Frames(
            numbers=self._numbers,
            positions=np.stack(self._positions),
            forces=np.stack(self._forces),
            energies=np.array(self._energies),
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the frames to extended XYZ (.xyz/.extxyz) or MD17-style .npz (keys R, z, E, F).

        The .npz holds eV and eV/Å: read it back with ``read_frames(path, energy_unit="eV")``.
        """
        path = Path(path)
        frames = self.frames()
        assert frames.energies is not None and frames.forces is not None  # frames() always records both
        if path.suffix.lower() == ".npz":
            if not path.parent.is_dir():
                raise FileNotFoundError(f"output directory does not exist: {path.parent}")
            np.savez(path, R=frames.positions, z=frames.numbers, E=frames.energies, F=frames.forces)
        else:
            write_frames(path, frames)
        return path
