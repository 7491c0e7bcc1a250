"""Sample-quality metrics (interatomic-distance TVD, h(r), Wasserstein distances) and validity checks."""

from ase_psm.metrics.distances import (
    HR_BINS,
    distance_tvd,
    energy_w2,
    hr,
    hr_mae,
    hr_mae_by_range,
    pairwise_distances,
    x_w2,
)
from ase_psm.metrics.plots import (
    plot_distance_histograms,
    plot_energy_histograms,
    plot_grouped_bars,
    plot_hr,
    plot_loss_curve,
    plot_ramachandran,
)
from ase_psm.metrics.structure import (
    backbone_dihedrals,
    phi_psi,
    ramachandran_histogram,
    ramachandran_tvd,
    residue_ramachandran_tvd,
    stability,
)
from ase_psm.metrics.validity import (
    PROBLEMS,
    SampleReport,
    bond_graph,
    structure_problems,
)

__all__ = [
    "HR_BINS",
    "PROBLEMS",
    "SampleReport",
    "backbone_dihedrals",
    "bond_graph",
    "distance_tvd",
    "energy_w2",
    "hr",
    "hr_mae",
    "hr_mae_by_range",
    "pairwise_distances",
    "phi_psi",
    "plot_distance_histograms",
    "plot_energy_histograms",
    "plot_grouped_bars",
    "plot_hr",
    "plot_loss_curve",
    "plot_ramachandran",
    "ramachandran_histogram",
    "ramachandran_tvd",
    "residue_ramachandran_tvd",
    "stability",
    "structure_problems",
    "x_w2",
]
