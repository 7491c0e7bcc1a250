"""Shipped models load by name and carry model cards."""

from __future__ import annotations

import ase
import ase.io
import numpy as np
import pytest

from ase_psm import PSMCalculator, sample
from ase_psm.cli.main import main
from ase_psm.demo import load_lj13_data
from ase_psm.pretrained import PRETRAINED, model_card, resolve_checkpoint

pytestmark = pytest.mark.mindeps  # CI also runs these against the oldest declared dependencies


def lj13_template() -> ase.Atoms:
    return ase.Atoms(numbers=[18] * 13, positions=load_lj13_data()["reference"][0])


def test_every_shipped_model_loads_by_name_and_has_a_card():
    for name in PRETRAINED:
        assert resolve_checkpoint(name).is_file()
        card = model_card(name)
        assert card.startswith("# ") and "**Metrics**" in card and "**Loss**" in card
    with pytest.raises(FileNotFoundError, match="lj13-dsm"):
        resolve_checkpoint("ala3")
    with pytest.raises(ValueError, match="no shipped model"):
        model_card("ala3")


def test_calculator_and_sampler_take_a_name():
    atoms = lj13_template()
    atoms.calc = PSMCalculator("lj13", device="cpu", sigma=0.05)
    assert atoms.calc.checkpoint["loss"] == "piecewise-weighted"
    assert np.isfinite(atoms.get_forces()).all()
    structures = sample("lj13-dsm", lj13_template(), n=4, sampler="heun", steps=10, device="cpu", progress=False)
    assert len(structures) == 4


def test_cli_lists_models_and_samples_by_name(tmp_path, capsys):
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in PRETRAINED)
    template = tmp_path / "t.xyz"
    ase.io.write(template, lj13_template())
    out = tmp_path / "s.extxyz"
    assert main(["--quiet", "sample", "lj13", "--template", str(template), "-n", "3", "--sampler", "heun",
                 "--steps", "8", "--device", "cpu", "--out", str(out)]) == 0
    assert len(ase.io.read(out, index=":")) == 3
    assert main(["--quiet", "sample", "--checkpoint", "lj13-dsm", "--template", str(template), "-n", "2",
                 "--sampler", "heun", "--steps", "4", "--device", "cpu", "--out", str(out)]) == 0
    assert len(ase.io.read(out, index=":")) == 2
    assert main(["--quiet", "sample", "--template", str(template), "--out", str(out)]) == 2
    assert "no checkpoint" in capsys.readouterr().err


@pytest.fixture
def ala2_template_and_checker(ala2_pdb):
    """The shipped alanine dipeptide PDB as Atoms, and a StructureChecker against its topology."""
    from ase_psm.openmm import StructureChecker, atoms_from_openmm

    template = atoms_from_openmm(ala2_pdb.topology, ala2_pdb.positions)
    return template, StructureChecker.from_topology(template.positions, ala2_pdb.topology)


def test_shipped_ala2_model_gives_valid_l_alanine_dipeptide(ala2_template_and_checker):
    """The ala2 model (trained on L-alanine dipeptide MD) samples L structures that pass the OpenMM checks."""
    template, checker = ala2_template_and_checker
    structures = sample("ala2", template, n=32, steps=100, seed=0, device="cpu", progress=False,
                        on_invalid="keep")  # invalid ones, if any, are kept and counted (with a warning)
    report = structures.report
    positions = np.stack([atoms.positions for atoms in structures])
    assert checker.same_chirality(positions).mean() >= 0.99  # D samples come back mirrored (exact symmetry)
    assert report.mirrored > 0  # the network itself does not always pick L
    passed = sum(checker.check(x) is None for x in positions)
    assert passed >= 6, f"only {passed}/32 samples pass the OpenMM structure checks"
    template.calc = PSMCalculator("ala2", device="cpu")
    assert template.get_forces().shape == (22, 3) and np.isfinite(template.calc.results["sigma"])


def test_shipped_graph_conditioned_ala2_model_is_valid_in_few_calls(ala2_template_and_checker):
    """ala2-gpff (time-step-free, graph-conditioned) gives structures that pass the OpenMM checks from 16 calls."""
    template, checker = ala2_template_and_checker
    structures = sample("ala2-gpff", template, n=32, sampler="direct", steps=16, seed=0, device="cpu",
                        progress=False, on_invalid="keep")
    passed = sum(checker.check(atoms.positions) is None for atoms in structures)
    assert passed >= 16, f"only {passed}/32 samples pass the OpenMM structure checks"
    template.calc = PSMCalculator("ala2-gpff", device="cpu")  # no atoms.info["bonds"]: the model carries them
    assert template.get_forces().shape == (22, 3)


HELD_OUT_MOLECULES = ("CC(=O)Oc1ccccc1C(=O)O", "CCOC(C)=O", "N#Cc1ccccc1")
"""Aspirin, ethyl acetate, benzonitrile: none is in RDKit's NCI/first_5K.smi, the conformer model's data."""


def test_shipped_conformer_model_generates_molecules_it_never_saw():
    pytest.importorskip("rdkit")
    from ase_psm.chemistry.molecules import match_smiles, molecule_template

    for smiles in HELD_OUT_MOLECULES:
        template = molecule_template(smiles)
        structures = sample("conformers", template, n=4, sampler="direct", steps=16, seed=1, device="cpu",
                            progress=False, on_invalid="keep")
        matches = [match_smiles(atoms, smiles) for atoms in structures]
        same = sum(graph for graph, _ in matches)
        assert same >= 3, f"{smiles}: {same}/4 conformers have the input's bond graph ({matches})"


def test_cli_samples_conformers_from_smiles(tmp_path, capsys):
    pytest.importorskip("rdkit")
    out = tmp_path / "aspirin.extxyz"
    assert main(["--quiet", "sample", "conformers", "--smiles", HELD_OUT_MOLECULES[0], "-n", "3", "--sampler",
                 "direct", "--steps", "16", "--device", "cpu", "--out", str(out)]) == 0
    structures = ase.io.read(out, index=":")
    assert len(structures) == 3 and all(atoms.get_chemical_formula() == "C9H8O4" for atoms in structures)
    assert main(["--quiet", "sample", "conformers", "--smiles", "C1CC", "--out", str(out)]) == 2
    assert "cannot read the SMILES" in capsys.readouterr().err
    template = tmp_path / "t.xyz"
    ase.io.write(template, lj13_template())
    with pytest.raises(SystemExit):  # --template and --smiles exclude each other
        main(["sample", "conformers", "--smiles", "CCO", "--template", str(template)])
