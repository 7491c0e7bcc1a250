"""Metrics of one set of structures against a benchmark system's reference.

Every metric is a finite float or None; a None has its reason in ``reasons``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .data import BenchData


@dataclass
class MetricSet:
    """Metric values (None: not computed, see reasons) of one set of structures."""

    values: dict[str, float | None] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, compute: Callable[[], float]) -> None:
        """Compute one metric; a missing optional package or a failure gives None with a reason."""
        try:
            value = float(compute())
        except ImportError as error:
            self.values[name], self.reasons[name] = None, f"optional package missing: {error}"
            return
        except (ValueError, FloatingPointError, RuntimeError) as error:
            self.values[name], self.reasons[name] = None, f"{type(error).__name__}: {error}"
            return
        if np.isfinite(value):
            self.values[name] = value
        else:
            self.values[name], self.reasons[name] = None, f"non-finite value {value}"

    def as_dict(self) -> dict:
        return {"values": self.values, "null_reasons": self.reasons}


def metric_names(data: BenchData) -> list[str]:
    """The metrics reported for a system, the primary one first."""
    if data.name.startswith("lj"):
        return ["distance_tvd", "x_w2", "energy_w2", "hr_mae", "energy_median"]
    if data.topology is not None:  # peptides: ala2, md22's Ac-Ala3-NHMe and Ac-Ala10-NHMe
        return ["ramachandran_tvd", "hr_mae", "distance_tvd", "stability"]
    if len(set(data.numbers.tolist())) == 1:  # one element (the nanotube): atoms interchange, no bonds by index
        return ["hr_mae", "distance_tvd"]
    return ["hr_mae", "distance_tvd", "stability"]


def evaluate(positions: np.ndarray, data: BenchData, reference: np.ndarray | None = None) -> MetricSet:
    """Metrics of `positions` (n, n_atoms, 3) against `reference` (default: the system's reference).

    Non-finite structures are left out (and make every metric None if none is left).
    """
    from ..metrics import (
        backbone_dihedrals,
        distance_tvd,
        energy_w2,
        hr_mae,
        residue_ramachandran_tvd,
        stability,
        x_w2,
    )
    from ..systems import lj_energy

    reference = data.reference if reference is None else reference
    positions = np.asarray(positions, dtype=np.float64)
    finite = positions[np.isfinite(positions).all(axis=(1, 2))] if len(positions) else positions
    result = MetricSet()
    names = metric_names(data)
    if len(finite) < 2:
        for name in names:
            result.values[name], result.reasons[name] = None, f"{len(finite)} finite structures (need 2)"
        return result
    computations: dict[str, Callable[[], float]] = {
        "distance_tvd": lambda: distance_tvd(finite, reference),
        "hr_mae": lambda: hr_mae(finite, reference),
        "x_w2": lambda: x_w2(finite, reference),
        "energy_w2": lambda: energy_w2(lj_energy(finite), lj_energy(reference)),
        "energy_median": lambda: float(np.median(lj_energy(finite))),
        "stability": lambda: stability(finite, reference, data.numbers),
        "ramachandran_tvd": lambda: residue_ramachandran_tvd(backbone_dihedrals(finite, data.topology),
                                                             backbone_dihedrals(reference, data.topology)),
    }
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        for name in names:
            result.add(name, computations[name])
    return result


def floor_metrics(data: BenchData, n: int, seed: int = 0) -> MetricSet:
    """The finite-sample floor: `n` random reference structures against the rest of the reference."""
    n = min(n, len(data.reference) // 2)
    order = np.random.default_rng(seed).permutation(len(data.reference))
    return evaluate(data.reference[order[:n]], data, reference=data.reference[order[n:]])


def disjoint_subsets(positions: np.ndarray, size: int, seed: int = 0) -> list[np.ndarray]:
    """Disjoint random subsets of ``size`` structures (one subset, all of them, when there are no more)."""
    order = np.random.default_rng(seed).permutation(len(positions))
    count = max(1, len(positions) // size)
    return [positions[order[i * size:(i + 1) * size]] for i in range(count)]


def training_metrics(frames: np.ndarray, data: BenchData, n: int, seed: int = 0) -> MetricSet:
    """The training set's metrics at the samples' count ``n``: the mean over disjoint random subsets of ``n``
    frames (all frames when there are no more than ``n``), so that the debias ratio compares equal numbers
    of structures (a metric of fewer structures is further from the reference by chance alone)."""
    scored = [evaluate(subset, data) for subset in disjoint_subsets(frames, n, seed)]
    result = MetricSet()
    for name in scored[0].values:
        values = [value for metrics in scored if (value := metrics.values[name]) is not None]
        if len(values) == len(scored):
            result.values[name] = float(np.mean(values))
        else:
            result.values[name] = None
            result.reasons[name] = next(m.reasons[name] for m in scored if m.values[name] is None)
    return result
