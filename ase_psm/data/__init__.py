"""Loading, selecting and splitting molecular snapshots (Å, eV, eV/Å)."""

from ase_psm.data.dataset import PseudoPESDataset
from ase_psm.data.frames import Frames, select_frames, split_frames
from ase_psm.data.readers import read_frames, write_frames

__all__ = ["Frames", "PseudoPESDataset", "read_frames", "select_frames", "split_frames", "write_frames"]
