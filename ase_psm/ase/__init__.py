"""ASE integration: pseudo-force calculator and adaptive denoising optimizer."""

from .calculator import PSMCalculator
from .denoiser import PseudoForceDenoiser

__all__ = ["PSMCalculator", "PseudoForceDenoiser"]
