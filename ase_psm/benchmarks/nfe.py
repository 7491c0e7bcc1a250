"""Counting network function evaluations (NFE): the cost measure of samplers."""

from __future__ import annotations

import torch

from ..model import PseudoForceNet


class NFECounter:
    """Counts forward calls of every :class:`~ase_psm.model.PseudoForceNet` from its creation until
    :meth:`close`; ``count`` may be reset between measurements."""

    def __init__(self) -> None:
        self.count = 0
        self._handle = torch.nn.modules.module.register_module_forward_hook(self._hook)

    def _hook(self, module: torch.nn.Module, inputs: object, output: object) -> None:
        self.count += isinstance(module, PseudoForceNet)

    def close(self) -> None:
        """Stop counting."""
        self._handle.remove()
