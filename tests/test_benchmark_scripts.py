"""Smoke runs of the stand-alone benchmark scripts and a check of their statistics."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
PROBES = BENCHMARKS / "probes"


def run_script(path: Path, *arguments: str) -> None:
    result = subprocess.run([sys.executable, str(path), *arguments], check=False, capture_output=True,
                            text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]


def test_lj13_nfe_quick_run_writes_well_formed_rows(tmp_path):
    run_script(BENCHMARKS / "lj13_nfe.py", "--out", str(tmp_path), "--n", "8", "--quick", "--models", "lj13-dsm")
    rows = json.loads((tmp_path / "lj13_nfe.json").read_text())
    assert rows[0]["model"] == "reference" and len(rows) == 4
    for row in rows[1:]:
        assert row["nfe"] >= 1 and 0.0 <= row["distance_tvd"] <= 1.0 and 0.0 <= row["invalid_fraction"] <= 1.0


def test_lj13_nfe_counts_calls_per_structure_beyond_the_atom_cap(tmp_path):
    """640 LJ-13 samples are 8320 atoms, above sample()'s default batch_atoms: still one batch, so
    pc at 2 levels costs 3 network calls per structure (not 6)."""
    run_script(BENCHMARKS / "lj13_nfe.py", "--out", str(tmp_path), "--n", "640", "--settings", "pc:2",
               "--models", "lj13-dsm")
    rows = json.loads((tmp_path / "lj13_nfe.json").read_text())
    assert rows[1]["nfe"] == 3


def test_force_field_fit_trains_our_network_and_plots(tmp_path):
    pytest.importorskip("tblite")
    pytest.importorskip("rdkit")
    script = BENCHMARKS / "force_field_fit.py"
    run_script(script, "data", "--out", str(tmp_path), "--n-train", "20", "--n-held-out", "4", "--burn-in", "50")
    with np.load(tmp_path / "data.npz") as data:
        assert data["train_positions"].shape == (20, 21, 3) and data["held_out_forces"].shape == (4, 21, 3)
    run_script(script, "ours", "--out", str(tmp_path), "--cpu-seconds", "2", "--eval-every", "1")
    log = json.loads((tmp_path / "fit_ase-psm.json").read_text())["log"]
    assert len(log) >= 2 and all(0.0 < row["relative_force_rmse"] < 10.0 for row in log)
    run_script(script, "plot", "--out", str(tmp_path), "--plot", str(tmp_path / "fit.png"))
    assert (tmp_path / "fit.png").stat().st_size > 0


def test_ala2_reconstruction_scores_denoised_reference_frames(tmp_path):
    checkpoint = Path(__file__).resolve().parents[1] / "ase_psm" / "examples_data" / "ala2_psm.pt"
    out = tmp_path / "rows.json"
    run_script(PROBES / "ala2_reconstruction.py", str(checkpoint), "--size", "tiny", "--cache", str(tmp_path / "cache"),
               "--n", "6", "--sigmas", "0.02", "0.05", "--out", str(out), "--plot", str(tmp_path / "rows.png"))
    rows = json.loads(out.read_text())
    assert [row["sigma_s"] for row in rows] == [0.02, 0.05]
    assert all(0.0 <= row["ramachandran_tvd"] <= 1.0 and 0.0 <= row["mirrored"] <= 1.0 for row in rows)
    assert (tmp_path / "rows.png").stat().st_size > 0


def test_integrated_autocorrelation_time_of_an_ar1_process():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from psm_vs_md import integrated_autocorrelation_time
    finally:
        sys.path.remove(str(BENCHMARKS))
    rng = np.random.default_rng(0)
    phi, n = 0.9, 200_000
    noise = rng.standard_normal(n)
    series = np.empty(n)
    series[0] = noise[0]
    for k in range(1, n):
        series[k] = phi * series[k - 1] + noise[k]
    expected = (1 + phi) / (1 - phi)  # 19 frames
    assert integrated_autocorrelation_time(series) == pytest.approx(expected, rel=0.1)
    assert integrated_autocorrelation_time(rng.standard_normal(n)) == pytest.approx(1.0, abs=0.1)


def _import_probe(name: str):
    sys.path.insert(0, str(PROBES))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(PROBES))


def test_xh_bond_spread_is_the_robust_std_of_each_pool():
    xh_bond_spread = _import_probe("md17_diagnostics").xh_bond_spread
    rng = np.random.default_rng(0)
    numbers = np.array([6, 8, 1, 1])  # C-H (std 0.03) and O-H (std 0.01), heavy atoms 3 Å apart
    template = np.array([[0.0, 0, 0], [3.0, 0, 0], [-1.1, 0, 0], [3.97, 0, 0]])
    positions = np.repeat(template[None], 20_000, axis=0)
    positions[:, 2, 0] = -(1.1 + 0.03 * rng.standard_normal(20_000))
    positions[:, 3, 0] = 3.0 + 0.97 + 0.01 * rng.standard_normal(20_000)
    assert xh_bond_spread(numbers, positions, template) == pytest.approx(0.02, rel=0.03)  # mean of 0.03, 0.01
    # a broken structure (an H far away) is an outlier of its own pool, not a new pool
    positions[:100, 2] = [1.5, 2.0, 0.0]
    assert xh_bond_spread(numbers, positions, template) == pytest.approx(0.02, rel=0.05)


def test_hr_mae_by_range_plot_is_written(tmp_path):
    script = _import_probe("md17_diagnostics")
    parts = {"ethanol": {"training set": np.array([0.03, 0.02, 0.06, 0.05]), "dsm": np.array([0.04, 0.02, 0.06, 0.05])},
             "uracil": {"training set": np.array([0.03, 0.01, 0.03, 0.06])}}  # a molecule without samples
    path = script.plot_hr_mae_by_range(parts, tmp_path / "ranges.png")
    assert path.read_bytes().startswith(b"\x89PNG") and len(script.HR_RANGES) == len(script.HR_RANGE_NAMES) + 1


def test_shell_statistics_of_a_hand_made_cluster():
    shell_statistics = _import_probe("lj13_local_bias").shell_statistics
    triangle = np.array([[[0.0, 0, 0], [1.0, 0, 0], [0.0, 2.0, 0]]])  # distances 1, 2, sqrt(5)
    stats = shell_statistics(triangle)
    assert stats["first-shell fraction"] == pytest.approx(1 / 3) and stats["shell median"] == pytest.approx(1.0)
    assert stats["shell width"] == 0.0 and stats["mean distance"] == pytest.approx((3 + np.sqrt(5)) / 3)


def test_denoising_validity_is_one_at_vanishing_noise_and_falls_with_noise(tmp_path):
    from conftest import TINY_MODEL
    from test_model import ETHANOL_NUMBERS, ETHANOL_POSITIONS

    from ase_psm.chemistry.bonds import bond_graph
    from ase_psm.data import Frames
    from ase_psm.train import train

    denoising_validity = _import_probe("md17_diagnostics").denoising_validity
    numbers = ETHANOL_NUMBERS.numpy()
    rng = np.random.default_rng(0)
    frames = ETHANOL_POSITIONS.numpy() + 0.02 * rng.standard_normal((16, 9, 3))
    checkpoint = train(Frames(numbers, frames), tmp_path / "ethanol.pt", loss="dsm", steps=2, batch_size=4,
                       atom_types="graph", model=TINY_MODEL, device="cpu", progress=False)
    fractions = denoising_validity(checkpoint, numbers, frames, bond_graph(numbers, frames[0]), sigmas=(1e-4, 3.0))
    # at sigma -> 0 the estimate is the clean frame (the output scale vanishes); at 3 Å an
    # untrained model cannot restore the bonds
    assert fractions[1e-4] == 1.0 and fractions[3.0] < 0.5


def test_final_corrector_curve_on_a_tiny_bench_run(tmp_path):
    from ase_psm.cli.main import main

    cache, out = tmp_path / "cache", tmp_path / "bench"
    assert main(["--quiet", "bench", "lj13", "--size", "tiny", "--seeds", "1", "--models", "dsm",
                 "--protocols", "biased", "--cache", str(cache), "--out", str(out)]) == 0
    run = next((out / "runs").iterdir())
    rows_file = tmp_path / "curve.json"
    run_script(PROBES / "final_corrector.py", str(run), "--system", "lj13", "--size", "tiny", "--cache", str(cache),
               "--n", "4", "--steps", "2", "--marks", "0,2", "--out", str(rows_file),
               "--save-samples", str(tmp_path / "curve.npz"))
    rows = json.loads(rows_file.read_text())
    assert [row["steps"] for row in rows] == [0, 2]
    assert all(0.0 <= row["distance_tvd"] <= 1.0 and np.isfinite(row["energy_median"]) for row in rows)
    assert rows[0]["distance_tvd"] != rows[1]["distance_tvd"]  # the steps moved the samples
    with np.load(tmp_path / "curve.npz") as saved:
        assert sorted(saved) == [f"{run.name}/0", f"{run.name}/2"]
        assert saved[f"{run.name}/2"].shape == (4, 13, 3)
        assert not np.allclose(saved[f"{run.name}/0"], saved[f"{run.name}/2"])


def test_edge_chunk_ab_timing_writes_both_modes(tmp_path):
    run_script(PROBES / "edge_chunks.py", "--out", str(tmp_path), "--n", "4", "--calls", "5", "--sample-steps", "2",
               "--rounds", "1", "--chunk", "100", "--plot", str(tmp_path / "calls.png"))
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["edges"] == 4 * 22 * 21
    assert list(results["modes"]) == ["chunks of 100 edges", "whole batch"]
    for mode in results["modes"].values():
        assert len(mode["calls_s"]) == 1 and len(mode["calls_s"][0]) == 5 and min(mode["calls_s"][0]) > 0
        assert mode["steady_median_s"] > 0 and len(mode["sample_s"]) == 1
    assert results["sigmas"][0] > results["sigmas"][-1]
    assert (tmp_path / "calls.png").stat().st_size > 0


def test_molecule_scaling_quick_run_writes_finite_times_memory_and_exponents(tmp_path):
    pytest.importorskip("openmm")
    pytest.importorskip("rdkit")
    run_script(BENCHMARKS / "scaling.py", "--quick", "--out", str(tmp_path), "--plot", str(tmp_path / "scaling.png"))
    results = json.loads((tmp_path / "results.json").read_text())
    rows = results["timings"]
    assert [r["atoms"] for r in rows] == [22] * 4 + [42] * 4
    assert all(r["network"] == "graph-conditioned" and r["ms_per_structure"] > 0 for r in rows)
    assert all(0 < r["edges_per_atom"] < r["atoms"] for r in rows)
    assert all(np.isfinite(r["max_rss_MiB"]) and r["max_rss_MiB"] >= r["rss_before_MiB"] > 0 for r in rows[4:])
    assert len(results["exponents"]) == 4 and all(np.isfinite(f["all"]) for f in results["exponents"])
    assert (tmp_path / "tables.md").read_text().count("| peptide ") == 12
    assert (tmp_path / "scaling.png").stat().st_size > 0


def test_score_agreement_of_a_model_that_returns_the_target(monkeypatch):
    monkeypatch.syspath_prepend(str(PROBES))
    from ala2_score_probe import score_agreement

    target = np.random.default_rng(0).normal(size=(5, 4, 3))
    target -= target.mean(axis=1, keepdims=True)

    class Exact:  # f = sigma^2 * target: the score is the target
        config = type("Config", (), {"sigma_conditioned": True})

        def pseudo_forces(self, numbers, positions, sigma):
            return torch.tensor(target, dtype=torch.float32) * sigma[:, None, None] ** 2

    exact = score_agreement(Exact(), np.ones(4, dtype=int), target, target, 0.01)
    assert exact["relative_error"] < 1e-5 and exact["cosine"] == pytest.approx(1.0) and exact["norm_ratio"] == pytest.approx(1.0)
    halved = score_agreement(Exact(), np.ones(4, dtype=int), target, 2 * target, 0.01)
    assert halved["relative_error"] == pytest.approx(0.5) and halved["norm_ratio"] == pytest.approx(0.5)


def test_ala2_score_probe_on_a_tiny_bench_run(tmp_path):
    pytest.importorskip("openmm")
    pytest.importorskip("mdtraj")
    from ase_psm.cli.main import main

    out = tmp_path / "bench"
    assert main(["--quiet", "bench", "ala2", "--size", "tiny", "--seeds", "1", "--models", "dsm",
                 "--out", str(out)]) == 0
    run_script(PROBES / "ala2_score_probe.py", str(out), "--n", "5", "--sigmas", "0.01", "0.1")
    rows = json.loads((out / "score_probe_seed0.json").read_text())
    assert [(row["frames"], row["sigma"]) for row in rows] == [
        ("reference", 0.01), ("reference", 0.1), ("training", 0.01), ("training", 0.1)]
    assert all(row["model"] == "dsm" and row["relative_error"] > 0 and -1 <= row["cosine"] <= 1 for row in rows)


def test_scripts_do_not_import_each_other():
    scripts = {path.stem for path in BENCHMARKS.rglob("*.py")}
    for path in BENCHMARKS.rglob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
        assert not imported & scripts, f"{path.name} imports {imported & scripts}: move the shared piece into ase_psm"
