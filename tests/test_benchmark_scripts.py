"""Smoke runs of the stand-alone benchmark scripts and a check of their statistics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(name: str, *arguments: str) -> None:
    result = subprocess.run([sys.executable, str(BENCHMARKS / name), *arguments], check=False, capture_output=True,
                            text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]


def test_lj13_nfe_quick_run_writes_well_formed_rows(tmp_path):
    run_script("lj13_nfe.py", "--out", str(tmp_path), "--n", "8", "--quick", "--models", "lj13-dsm")
    rows = json.loads((tmp_path / "lj13_nfe.json").read_text())
    assert rows[0]["model"] == "reference" and len(rows) == 4
    for row in rows[1:]:
        assert row["nfe"] >= 1 and 0.0 <= row["distance_tvd"] <= 1.0 and 0.0 <= row["invalid_fraction"] <= 1.0


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
