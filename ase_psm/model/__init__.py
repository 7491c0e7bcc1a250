"""The SE(3)-equivariant pseudo-force network."""

from .config import ModelConfig
from .graph import TOPOLOGY_CLASSES, build_edges, topology_classes
from .network import PseudoForceNet

__all__ = ["TOPOLOGY_CLASSES", "ModelConfig", "PseudoForceNet", "build_edges", "topology_classes"]
