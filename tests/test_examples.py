"""Every script in examples/ runs on a tiny budget (the quick start is in test_cli.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


def run(script: str, *arguments: str, cwd: Path) -> str:
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *arguments], capture_output=True, text=True,
                            timeout=900, check=False, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_every_example_is_covered():
    covered = {"quickstart_lj13.py", "edit_with_fixed_atoms.py", "evaluate_lj13.py", "seed_openmm_ala2.py",
               "conformers_from_smiles.py"}
    assert {path.name for path in EXAMPLES.glob("*.py")} == covered


def test_edit_with_fixed_atoms(tmp_path):
    out = run("edit_with_fixed_atoms.py", "--n", "2", "--steps", "6", "--relax-steps", "5", cwd=tmp_path)
    assert "after sampling: 0.00e+00" in out and "after relaxing: 0.00e+00" in out


def test_evaluate_lj13(tmp_path):
    out = run("evaluate_lj13.py", "--n", "8", "--steps", "5", "--out", str(tmp_path / "eval"), cwd=tmp_path)
    assert "dist TVD" in out
    for name in ("distances.png", "hr.png", "energies.png", "lj13.extxyz"):
        assert (tmp_path / "eval" / name).stat().st_size > 1000


def test_seed_openmm_ala2(tmp_path):
    pytest.importorskip("openmm")
    pytest.importorskip("mdtraj")
    out = run("seed_openmm_ala2.py", "--md-steps", "1000", "--train-steps", "5", "--n", "2", "--run-steps", "100",
              "--out", str(tmp_path / "ala2"), cwd=tmp_path)
    assert "generated 2, accepted" in out and (tmp_path / "ala2" / "samples.dcd").exists()


def test_conformers_from_smiles(tmp_path):
    pytest.importorskip("rdkit")
    out = run("conformers_from_smiles.py", "--n", "3", "--steps", "8", "--relax-steps", "20", "--out",
              str(tmp_path / "c.extxyz"), cwd=tmp_path)
    assert "CC(=O)Oc1ccccc1C(=O)O: 21 atoms, 21 bonds" in out and "same molecule" in out
    assert "wrote 4 structures" in out and (tmp_path / "c.extxyz").exists()
