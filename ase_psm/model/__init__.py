"""The SE(3)-equivariant pseudo-force network."""

from .config import ModelConfig
from .graph import build_edges
from .network import PseudoForceNet

__all__ = ["ModelConfig", "PseudoForceNet", "build_edges"]
