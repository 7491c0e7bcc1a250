"""Sample-quality metrics (interatomic-distance TVD, h(r), Wasserstein distances)."""

from ase_psm.metrics.distances import (
    HR_BINS,
    distance_tvd,
    energy_w2,
    hr,
    hr_mae,
    pairwise_distances,
    plot_distance_histograms,
    x_w2,
)

__all__ = [
    "HR_BINS",
    "distance_tvd",
    "energy_w2",
    "hr",
    "hr_mae",
    "pairwise_distances",
    "plot_distance_histograms",
    "x_w2",
]
