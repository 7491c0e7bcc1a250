"""benchmarks/gpu_check.py: its tiny run on the CPU writes every part of the report, and a missing GPU is
a clear error."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def gpu_check(*arguments: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, timeout=timeout,
                          check=False)


def test_tiny_run_on_the_cpu_reports_tests_throughput_compile_and_ala2(tmp_path):
    result = gpu_check("--device", "cpu", "--tiny", "--threads", "1", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["machine"]["device"] == "cpu" and report["wall_s"] > 0
    tests = report["tests"]
    assert tests["status"] == "passed" and tests["passed"] >= 6 and tests["failed"] == tests["errors"] == 0
    (row,) = report["throughput"]["rows"]  # the device is the CPU: one row
    assert row["device"] == "cpu" and not [key for key in row if key.endswith("_error")]
    for key in ("single_ms", "calculate_batch_ms", "sample_per_s", "train_steps_per_s"):
        assert row[key] > 0
    assert row["sample_nfe"] == 2
    assert report["throughput"]["compile"]["status"] in ("done", "timed out", "failed")
    ala2 = report["ala2"]
    if importlib.util.find_spec("openmm") is None:
        assert ala2["status"] == "skipped" and "OpenMM" in ala2["reason"]
    elif importlib.util.find_spec("mdtraj") is not None:  # the metrics read dihedrals with mdtraj
        assert ala2["status"] == "done", ala2
        (run,) = ala2["runs"]
        assert run["steps"] == 3 and (tmp_path / run["checkpoint"]).is_file() and "distance_tvd" in run["metrics"]
    tables = (tmp_path / "tables.md").read_text()
    assert all(f"## {part}" in tables for part in ("Tests", "Throughput", "Alanine dipeptide"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_asking_for_cuda_without_it_names_the_fix(tmp_path):
    result = gpu_check("--out", str(tmp_path), timeout=120)
    assert result.returncode == 2
    assert "no CUDA device" in result.stderr and "--device cpu" in result.stderr
    assert not (tmp_path / "results.json").exists()
