"""Training of pseudo-force networks on MD frames (one system) or on many molecules."""

from .config import TrainConfig
from .multi import train_molecules
from .trainer import train

__all__ = ["TrainConfig", "train", "train_molecules"]
