"""Sample-quality metrics for particle systems, following the iDEM and MDsim conventions.

Positions are (n_frames, n_atoms, 3) arrays in any consistent length unit; distance-based
metrics are translation invariant, the W2 metrics mean-centre each frame first.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

__all__ = [
    "HR_BINS",
    "distance_tvd",
    "energy_w2",
    "hr",
    "hr_mae",
    "hr_mae_by_range",
    "pairwise_distances",
    "x_w2",
]

#: MDsim h(r) bin edges (length units of the positions): 500 bins on [1e-6, 10].
HR_BINS = np.linspace(1e-6, 10.0, 501)

_CHUNK_DISTANCES = 4_000_000
"""Distances computed at once by the histogram metrics (~100 MB of temporaries): thousands of frames of a
360-atom structure would otherwise need tens of GB."""


def _check_frames(positions: np.ndarray, name: str = "positions") -> np.ndarray:
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 3 or positions.shape[-1] != 3 or positions.shape[1] < 2:
        raise ValueError(
            f"{name} must have shape (n_frames, n_atoms >= 2, 3), got {positions.shape}"
        )
    if positions.shape[0] == 0:
        raise ValueError(f"{name} contains no frames")
    return positions


def _import_ot():
    try:
        import ot
    except ImportError as error:
        raise ImportError("Wasserstein metrics need POT: pip install POT") from error
    return ot


def pairwise_distances(positions: np.ndarray) -> np.ndarray:
    """Interatomic distances d_ij, i < j: (n_frames, n, 3) -> (n_frames, n (n - 1) / 2)."""
    positions = _check_frames(positions)
    i, j = np.triu_indices(positions.shape[1], k=1)
    return np.linalg.norm(positions[:, i] - positions[:, j], axis=-1)


def _distance_chunks(positions: np.ndarray) -> Iterator[np.ndarray]:
    """The distances of `pairwise_distances`, flattened, a few frames at a time (bounded memory)."""
    positions = _check_frames(positions)
    i, j = np.triu_indices(positions.shape[1], k=1)
    frames = max(1, _CHUNK_DISTANCES // len(i))
    for start in range(0, len(positions), frames):
        chunk = positions[start : start + frames]
        yield np.linalg.norm(chunk[:, i] - chunk[:, j], axis=-1).ravel()


def _distance_counts(positions: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Histogram counts of all interatomic distances in the bins `edges` (outside ones dropped)."""
    return sum((np.histogram(d, bins=edges)[0] for d in _distance_chunks(positions)), np.zeros(len(edges) - 1, int))


def distance_tvd(samples: np.ndarray, reference: np.ndarray, n_bins: int = 200) -> float:
    """Total variation distance between interatomic-distance histograms (iDEM convention).

    n_bins equal bins span the reference distances' [min, max]; sample distances outside
    that range are dropped. Each histogram is normalised to sum 1; TVD = 1/2 sum |p - q|.
    Samples with no distance inside the range share no support with the reference: TVD 1.
    """
    ranges = np.array([(d.min(), d.max()) for d in _distance_chunks(reference)])
    low, high = float(ranges[:, 0].min()), float(ranges[:, 1].max())
    if not np.isfinite(low) or not np.isfinite(high):
        raise ValueError(f"reference distances span [{low}, {high}], which is not finite")
    edges = np.linspace(low, high, n_bins + 1)
    reference_counts = _distance_counts(reference, edges)
    sample_counts = _distance_counts(samples, edges)
    if sample_counts.sum() == 0:
        return 1.0
    p = reference_counts / reference_counts.sum()
    q = sample_counts / sample_counts.sum()
    return float(0.5 * np.abs(p - q).sum())


def hr(positions: np.ndarray, bins: np.ndarray = HR_BINS) -> tuple[np.ndarray, np.ndarray]:
    """MDsim h(r): density histogram of all interatomic distances.

    Returns bin centres r and the density h (integrates to 1 over the bins).
    """
    edges = np.asarray(bins, dtype=np.float64)
    counts = _distance_counts(positions, edges)
    h = counts / (counts.sum() * np.diff(edges))
    return 0.5 * (edges[:-1] + edges[1:]), h


def _hr_abs_error(samples: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres r and |h_samples - h_reference| in each of the HR_BINS."""
    r, h_samples = hr(samples)
    _, h_reference = hr(reference)
    return r, np.abs(h_samples - h_reference)


def hr_mae(samples: np.ndarray, reference: np.ndarray) -> float:
    """MDsim h(r) MAE: mean |h_samples - h_reference| over HR_BINS, times 10."""
    _, error = _hr_abs_error(samples, reference)
    return float(np.mean(error) * 10.0)


def hr_mae_by_range(samples: np.ndarray, reference: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """`hr_mae` split by distance: the part from the h(r) bins whose centres lie in each range
    [edges[k], edges[k + 1]) (length units of the positions). The parts sum to `hr_mae` when the
    ranges cover [0, 10]: e.g. edges (0, 1.3, 1.8, 2.7, 10.0) separate X–H bonds, heavy-atom
    bonds, bond angles and longer distances (torsions, overall shape) in Å.
    """
    edges_array = np.asarray(edges, dtype=np.float64)
    if edges_array.ndim != 1 or len(edges_array) < 2 or np.any(np.diff(edges_array) <= 0):
        raise ValueError(f"edges must be at least two increasing distances, got {edges}")
    r, error = _hr_abs_error(samples, reference)
    terms = error * 10.0 / len(r)
    return np.array([terms[(r >= low) & (r < high)].sum() for low, high in itertools.pairwise(edges_array)])


def x_w2(samples: np.ndarray, reference: np.ndarray) -> float:
    """Exact 2-Wasserstein distance between configuration sets (iDEM x-W2).

    Frames are mean-centred and flattened to 3n vectors; uniform weights, squared-Euclidean
    cost, exact optimal transport (POT emd2); returns the square root (length units).
    """
    ot = _import_ot()
    x = _check_frames(samples, "samples")
    y = _check_frames(reference, "reference")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"atom counts differ: {x.shape[1]} vs {y.shape[1]}")
    x = (x - x.mean(axis=1, keepdims=True)).reshape(len(x), -1)
    y = (y - y.mean(axis=1, keepdims=True)).reshape(len(y), -1)
    cost = ot.dist(x, y)
    squared = ot.emd2(ot.unif(len(x)), ot.unif(len(y)), cost, numItermax=int(1e7))
    return float(np.sqrt(max(float(squared), 0.0)))


def energy_w2(e_samples: np.ndarray, e_reference: np.ndarray) -> float:
    """1-D 2-Wasserstein distance between energy samples (same unit as the energies)."""
    ot = _import_ot()
    a = np.asarray(e_samples, dtype=np.float64).ravel()
    b = np.asarray(e_reference, dtype=np.float64).ravel()
    if a.size == 0 or b.size == 0:
        raise ValueError("energy arrays must be non-empty")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("energies must be finite")
    return float(np.sqrt(max(float(ot.emd2_1d(a, b)), 0.0)))
