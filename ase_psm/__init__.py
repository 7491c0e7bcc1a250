"""ase-psm: potential score matching and generative pseudo-force fields for ASE.

frames -> dataset -> trainer -> checkpoint -> model -> calculator / samplers -> structures -> metrics
"""

__version__ = "0.2.0.dev0"

from .ase import PseudoForceDenoiser, PSMCalculator
from .generate import sample
from .train import TrainConfig, train, train_molecules

__all__ = ["PSMCalculator", "PseudoForceDenoiser", "TrainConfig", "__version__", "sample", "train", "train_molecules"]
