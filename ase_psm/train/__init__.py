"""Training of pseudo-force networks on MD frames."""

from .config import TrainConfig
from .trainer import train

__all__ = ["TrainConfig", "train"]
