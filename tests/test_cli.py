"""The ``ase-psm`` command and the README's demo."""

from __future__ import annotations

import subprocess
import sys

import ase.io
import numpy as np
import pytest

from ase_psm.cli.main import main

pytestmark = pytest.mark.mindeps  # CI also runs these against the oldest declared dependencies


def test_train_sample_denoise_evaluate(lj7_file, tmp_path, capsys):
    model = tmp_path / "model.pt"
    assert main(["train", str(lj7_file), "--out", str(model), "--loss", "piecewise-weighted", "--kT", "1",
                 "--steps", "4", "--batch-size", "8", "--first", "50", "--sigma-max", "2", "--device", "cpu"]) == 0
    assert model.exists() and (tmp_path / "model.last.pt").exists() and (tmp_path / "model.csv").exists()

    template = tmp_path / "template.xyz"
    ase.io.write(template, ase.io.read(lj7_file, index=0))
    samples = tmp_path / "samples.extxyz"
    assert main(["sample", str(model), "--template", str(template), "--n", "4", "--steps", "3",
                 "--sampler", "heun", "--out", str(samples), "--device", "cpu"]) == 0
    generated = ase.io.read(samples, index=":")
    assert len(generated) == 4 and np.isfinite(generated[0].positions).all()
    polished = tmp_path / "polished.extxyz"
    assert main(["sample", str(model), "--template", str(template), "--n", "4", "--steps", "3",
                 "--final-corrector-steps", "2", "--out", str(polished), "--device", "cpu",
                 "--on-invalid", "keep"]) == 0
    assert len(ase.io.read(polished, index=":")) == 4
    assert main(["sample", str(model), "--template", str(template), "--sampler", "heun",
                 "--final-corrector-steps", "2", "--out", str(polished), "--device", "cpu"]) == 2
    assert "heun sampler has no option(s) final_corrector_steps" in capsys.readouterr().err

    denoised = tmp_path / "denoised.xyz"
    assert main(["denoise", str(model), str(template), "--steps", "3", "--out", str(denoised),
                 "--device", "cpu"]) == 0
    assert denoised.exists()

    plot = tmp_path / "d.svg"
    assert main(["evaluate", str(samples), "--reference", str(lj7_file), "--plot", str(plot)]) == 0
    assert "dist TVD" in capsys.readouterr().out
    for written in (plot, tmp_path / "d_hr.svg"):  # SVG, as the suffix asks
        assert written.read_bytes().lstrip().startswith((b"<?xml", b"<svg")), written


def test_errors_are_reported_without_traceback(tmp_path, capsys):
    assert main(["train", str(tmp_path / "missing.extxyz"), "--out", str(tmp_path / "m.pt")]) == 2
    assert "error" in capsys.readouterr().err


def test_demo_runs_on_shipped_checkpoints(tmp_path):
    """The README's main command, on a small sample count."""
    result = subprocess.run(
        [sys.executable, "-m", "ase_psm.cli.main", "demo", "--n", "40", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "distance TVD" in result.stdout and "PSM" in result.stdout
    assert (tmp_path / "lj13_distances.png").exists()


def test_demo_retrains_with_the_shipped_models_settings():
    """``ase-psm demo --train-steps`` trains with the noise levels and settings its shipped models had."""
    from ase_psm.checkpoint import load_checkpoint
    from ase_psm.demo import MODELS, demo_asset, demo_train_config

    for stem, model in MODELS.values():
        shipped = load_checkpoint(demo_asset(f"lj13_{stem}.pt"))["train_config"]
        config = demo_train_config(model, steps=shipped["steps"], seed=shipped["seed"]).to_dict()
        for name in ("loss", "schedule", "small_sigma_fraction", "batch_size", "learning_rate", "loss_weighting",
                     "force_crossover_t"):
            assert config[name] == shipped[name], (stem, name)


def test_quickstart_example_runs(tmp_path):
    from pathlib import Path

    script = Path(__file__).parent.parent / "examples" / "quickstart_lj13.py"
    result = subprocess.run(
        [sys.executable, str(script), "--steps", "3", "--samples", "8", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "checks: generated" in result.stdout
    # three training steps rarely give valid structures; whatever passed the checks is written
    assert ("distance TVD" in result.stdout) == (tmp_path / "samples.extxyz").exists()
