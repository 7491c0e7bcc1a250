"""Tests for the sample-quality metrics against hand-computable cases."""

import numpy as np
import pytest

from ase_psm.metrics import (
    HR_BINS,
    distance_tvd,
    energy_w2,
    hr,
    hr_mae,
    hr_mae_by_range,
    pairwise_distances,
    plot_distance_histograms,
    x_w2,
)

pytestmark = pytest.mark.mindeps  # CI also runs these against the oldest declared dependencies


def _dimers(distances) -> np.ndarray:
    """Dimers along x with the given separations, shape (len(distances), 2, 3)."""
    positions = np.zeros((len(distances), 2, 3))
    positions[:, 1, 0] = distances
    return positions


@pytest.fixture
def clusters() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(20, 5, 3))


def test_pairwise_distances_order_and_shape():
    triangle = np.array([[[0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 4.0, 0.0]]])
    np.testing.assert_allclose(pairwise_distances(triangle), [[3.0, 4.0, 5.0]])
    assert pairwise_distances(np.zeros((7, 13, 3)) + np.arange(13)[:, None]).shape == (7, 78)
    with pytest.raises(ValueError):
        pairwise_distances(np.zeros((4, 39)))


def test_tvd_identical_sets_is_zero(clusters):
    assert distance_tvd(clusters, clusters) == 0.0


def test_tvd_point_masses():
    reference = _dimers([1.0, 2.0])  # half the mass in the first bin, half in the last
    assert distance_tvd(_dimers([1.0, 1.0]), reference) == pytest.approx(0.5)
    assert distance_tvd(_dimers([1.5]), reference) == pytest.approx(1.0)
    # distances outside the reference range are dropped before normalising
    assert distance_tvd(_dimers([1.0, 3.0]), reference) == pytest.approx(0.5)
    # no distance inside the reference range: disjoint support, the largest TVD
    assert distance_tvd(_dimers([3.0]), reference) == 1.0


def test_hr_integrates_to_one_and_mae_of_identical_sets_is_zero(clusters):
    r, h = hr(clusters)
    assert r.shape == h.shape == (500,)
    assert np.sum(h * np.diff(HR_BINS)) == pytest.approx(1.0)
    assert hr_mae(clusters, clusters) == 0.0


def test_hr_mae_of_disjoint_point_masses():
    # two disjoint one-bin densities of height 1/dr: mean |dh| = 2 / (dr * 500), times 10
    dr = HR_BINS[1] - HR_BINS[0]
    assert hr_mae(_dimers([1.01]), _dimers([2.01])) == pytest.approx(2.0 / (dr * 500) * 10.0)


def test_hr_mae_by_range_puts_each_error_in_its_range_and_sums_to_hr_mae(clusters):
    # the 1.01 and 2.01 point masses each carry half the MAE, in the range holding their bin
    parts = hr_mae_by_range(_dimers([1.01]), _dimers([2.01]), edges=(0.0, 1.5, 2.5, 10.0))
    np.testing.assert_allclose(parts, [0.5, 0.5, 0.0] * np.array(hr_mae(_dimers([1.01]), _dimers([2.01]))))
    shifted = clusters * 1.1
    assert hr_mae_by_range(shifted, clusters, (0.0, 1.0, 3.0, 10.0)).sum() == pytest.approx(hr_mae(shifted, clusters))
    with pytest.raises(ValueError, match="increasing"):
        hr_mae_by_range(shifted, clusters, (0.0, 2.0, 1.0))


def test_x_w2_identical_shifted_and_scaled(clusters):
    assert x_w2(clusters, clusters) == pytest.approx(0.0, abs=1e-7)
    shifted = clusters[::-1] + np.array([1.0, -2.0, 0.5])
    assert x_w2(shifted, clusters) == pytest.approx(0.0, abs=1e-7)
    # x -> c x is the optimal (Brenier) map: W2 = |1 - c| sqrt(mean |x_centred|^2)
    centred = clusters - clusters.mean(axis=1, keepdims=True)
    expected = 0.5 * np.sqrt(np.mean(np.sum(centred**2, axis=(1, 2))))
    assert x_w2(1.5 * clusters, clusters) == pytest.approx(expected, rel=1e-6)


def test_energy_w2():
    assert energy_w2(np.full(10, 3.0), np.full(7, -1.5)) == pytest.approx(4.5)
    energies = np.random.default_rng(1).normal(size=50)
    assert energy_w2(energies, energies[::-1]) == pytest.approx(0.0, abs=1e-12)
    assert energy_w2(energies + 2.0, energies) == pytest.approx(2.0)


def test_plot_distance_histograms_writes_png(tmp_path, clusters):
    path = plot_distance_histograms(
        {"same": clusters, "scaled": 1.2 * clusters}, clusters, tmp_path / "distances.png"
    )
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = plot_distance_histograms({"same": clusters}, clusters, tmp_path / "distances.svg")
    assert b"<svg" in svg.read_bytes()[:1000]  # the suffix picks the format, as every other plot does
