"""ase-psm: potential score matching and generative pseudo-force fields for ASE.

frames -> dataset -> trainer -> checkpoint -> model -> calculator / samplers -> structures -> metrics
"""

from ._version import __version__
from .ase import PseudoForceDenoiser, PSMCalculator
from .generate import SampleConfig, sample
from .train import TrainConfig, train, train_molecules

__all__ = [
    "PSMCalculator",
    "PseudoForceDenoiser",
    "SampleConfig",
    "TrainConfig",
    "__version__",
    "sample",
    "train",
    "train_molecules",
]
