"""Plots people would rather look at than read: h(r), energies, Ramachandran maps, loss curves.

Each function saves one figure (PNG or SVG by the path's suffix) and returns its path. Figures
use matplotlib's object API (no global pyplot state).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ase_psm.metrics.distances import distance_tvd, hr, hr_mae, pairwise_distances
from ase_psm.metrics.structure import (
    RAMACHANDRAN_BINS,
    ramachandran_histogram,
    ramachandran_tvd,
)


def _figure(width: float = 6.0, height: float = 4.0):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=120)
    return figure, figure.add_subplot()


def _save(figure, path: str | Path) -> Path:
    path = Path(path)
    figure.tight_layout()
    figure.savefig(path, format=path.suffix.lstrip(".").lower() or "png")
    return path


def plot_distance_histograms(
    named_samples: dict[str, np.ndarray], reference: np.ndarray, path: str | Path, n_bins: int = 100
) -> Path:
    """Overlay interatomic-distance densities of each sample set on the reference's.

    The reference is drawn as a filled grey histogram; each label carries the set's
    distance_tvd against the reference, and the share of its distances beyond the reference's
    range (drawn densities are over all of a set's distances, not renormalised).
    """
    figure, axes = _figure()
    reference_distances = pairwise_distances(reference).ravel()
    edges = np.linspace(reference_distances.min(), reference_distances.max(), n_bins + 1)
    axes.hist(reference_distances, bins=edges.tolist(), density=True, color="0.75", label="reference")
    for name, samples in named_samples.items():
        tvd = distance_tvd(samples, reference)
        step_histogram(axes, pairwise_distances(samples).ravel(), edges, name, f"TVD {tvd:.3f}")
    axes.set(xlabel="interatomic distance", ylabel="density")
    axes.legend()
    return _save(figure, path)


def plot_hr(
    named_samples: dict[str, np.ndarray], reference: np.ndarray, path: str | Path, unit: str = "Å"
) -> Path:
    """Overlay the MDsim h(r) of each sample set (label: its h(r) MAE) on the reference's; `unit`
    names the length unit on the axis ("r_m" for reduced Lennard-Jones units)."""
    figure, axes = _figure()
    r, h_reference = hr(reference)
    axes.fill_between(r, h_reference, color="0.8", label="reference")
    upper = r[np.flatnonzero(h_reference > 0)[-1]] if h_reference.any() else r[-1]
    for name, samples in named_samples.items():
        _, h = hr(samples)
        axes.plot(r, h, linewidth=1.2, label=f"{name} (h(r) MAE {hr_mae(samples, reference):.3f})")
    axes.set(xlabel=f"interatomic distance r ({unit})", ylabel="h(r)", xlim=(0.0, min(10.0, 1.1 * upper)))
    axes.legend()
    return _save(figure, path)


def step_histogram(axes, values: np.ndarray, edges: np.ndarray, name: str, details: str) -> None:
    """Draw ``values`` as a step-line density over all of them on evenly spaced ``edges``: values beyond
    the edges lower the curve instead of being renormalised away, and the label "name (details)" gives
    their share."""
    outside = float(np.mean((values < edges[0]) | (values > edges[-1]))) if values.size else 0.0
    weights = np.full(values.shape, 1.0 / (max(values.size, 1) * (edges[1] - edges[0])))
    label = f"{name} ({details}" + (f", {outside:.1%} off the axis)" if outside else ")")
    axes.hist(values, bins=edges, weights=weights, histtype="step", linewidth=1.5, label=label)


def energy_histogram_edges(
    named_energies: dict[str, np.ndarray], reference: np.ndarray, bins: int = 60, max_widths: float = 3.0
) -> np.ndarray:
    """Bin edges covering the reference (0.5-99.5 %, plus half its width each side) and the middle
    98 % of each sample set, extended by at most ``max_widths`` reference widths each side, so that
    hot or broken samples show without squeezing the reference into one bin."""
    ref_low, ref_high = np.percentile(reference, [0.5, 99.5])
    width = max(ref_high - ref_low, 1e-12)
    low, high = ref_low - 0.5 * width, ref_high + 0.5 * width
    for energies in named_energies.values():
        if energies.size:
            sample_low, sample_high = np.percentile(energies, [1.0, 99.0])
            low, high = min(low, sample_low), max(high, sample_high)
    low = max(low, ref_low - max_widths * width)
    high = min(high, ref_high + max_widths * width)
    return np.linspace(low, high, bins + 1)


def plot_energy_histograms(
    named_energies: dict[str, np.ndarray], reference: np.ndarray, path: str | Path, unit: str = "eV", bins: int = 60
) -> Path:
    """Energy densities of each sample set over the reference's (finite energies only).

    Densities are normalised over all of a set's finite energies, so samples beyond the plotted
    range (see :func:`energy_histogram_edges`) lower the curve instead of being renormalised away;
    the legend gives their share.
    """
    figure, axes = _figure()
    reference = np.asarray(reference, dtype=np.float64)
    reference = reference[np.isfinite(reference)]
    finite = {name: np.asarray(e, dtype=np.float64)[np.isfinite(e)] for name, e in named_energies.items()}
    edges = energy_histogram_edges(finite, reference, bins)
    axes.hist(reference, bins=edges, density=True, color="0.75", label="reference")
    for name, energies in finite.items():
        step_histogram(axes, energies, edges, name, f"median {np.median(energies):.2f}")
    axes.set(xlabel=f"energy ({unit})", ylabel="density")
    axes.legend()
    return _save(figure, path)


def plot_ramachandran(
    named_angles: dict[str, np.ndarray], reference: np.ndarray, path: str | Path, bins: int = RAMACHANDRAN_BINS
) -> Path:
    """Ramachandran maps (phi, psi in degrees): the reference, then each sample set with its TVD."""
    from matplotlib.figure import Figure

    panels = {"reference": reference, **named_angles}
    figure = Figure(figsize=(3.2 * len(panels), 3.2), dpi=120)
    for k, (name, angles) in enumerate(panels.items()):
        axes = figure.add_subplot(1, len(panels), k + 1)
        density = ramachandran_histogram(angles, bins)
        axes.imshow(np.log(density.T + 1e-4), origin="lower", extent=(-180, 180, -180, 180), cmap="viridis")
        title = name if k == 0 else f"{name}\nTVD {ramachandran_tvd(angles, reference, bins):.3f}"
        axes.set(title=title, xlabel="φ (deg)", ylabel="ψ (deg)" if k == 0 else None)
    return _save(figure, path)


def plot_loss_curve(log: str | Path, path: str | Path) -> Path:
    """Training and validation loss against step from a trainer's CSV log."""
    with open(log, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{log} holds no logged steps yet")
    steps = np.array([float(row["step"]) for row in rows])
    figure, axes = _figure()
    for column in ("train_loss", "val_loss"):
        values = np.array([float(row[column]) if row[column] not in ("", "None") else np.nan for row in rows])
        if np.isfinite(values).any():
            axes.plot(steps, values, marker=".", label=column.replace("_", " "))
    axes.set(xlabel="step", ylabel="loss", yscale="log")
    axes.legend()
    return _save(figure, path)


def plot_grouped_bars(values: dict[str, dict[str, float]], path: str | Path, ylabel: str) -> Path:
    """One group of bars per key of `values` (e.g. a molecule), one bar per inner key (e.g. a model)."""
    groups = list(values)
    series = list(dict.fromkeys(name for group in values.values() for name in group))
    figure, axes = _figure(width=max(6.0, 1.1 * len(groups)))
    width = 0.8 / max(len(series), 1)
    for k, name in enumerate(series):
        heights = [values[group].get(name, np.nan) for group in groups]
        axes.bar(np.arange(len(groups)) + (k - (len(series) - 1) / 2) * width, heights, width, label=name)
    axes.set_xticks(np.arange(len(groups)), groups, rotation=30, ha="right")
    axes.set(ylabel=ylabel)
    axes.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(series), frameon=False)  # above the bars
    return _save(figure, path)
