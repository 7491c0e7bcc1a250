"""ase-psm: potential score matching and generative pseudo-force fields for ASE.

frames -> dataset -> trainer -> checkpoint -> model -> calculator / samplers -> structures -> metrics
"""

__version__ = "0.1.0"

from .ase import PSMCalculator, PseudoForceDenoiser  # noqa: E402
from .generate import sample  # noqa: E402
from .train import TrainConfig, train  # noqa: E402

__all__ = ["PSMCalculator", "PseudoForceDenoiser", "TrainConfig", "__version__", "sample", "train"]
