"""Conformer benchmark: bond perception, multi-molecule GPFF training and the tiny run end to end."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("rdkit")

from ase.constraints import FixAtoms

from ase_psm import sample
from ase_psm.chemistry.molecules import embed, filter_smiles, match_smiles, molecule_template, perceive
from ase_psm.train.multi import train_molecules

pytestmark = pytest.mark.mindeps  # CI also runs these against the oldest declared dependencies

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "conformers.py"


def test_perceive_ethanol_from_etkdg():
    (atoms,) = embed("OCC", seed=1)
    assert len(atoms) == 9
    assert perceive(atoms) == (True, "CCO")
    assert atoms.info["reference_smiles"] == "CCO"


def test_perceive_stretched_bond_is_invalid():
    (atoms,) = embed("CCO")
    oxygen = int(np.flatnonzero(atoms.numbers == 8)[0])
    carbons = np.flatnonzero(atoms.numbers == 6)
    bonded = carbons[np.argmin(atoms.get_distances(oxygen, carbons))]
    direction = atoms.positions[oxygen] - atoms.positions[bonded]
    atoms.positions[oxygen] += 2.5 * direction / np.linalg.norm(direction)
    valid, smiles = perceive(atoms)
    assert not valid
    assert smiles != "CCO"


def test_perceive_mirror_image_flips_stereo():
    (atoms,) = embed("C[C@H](N)C(=O)O")
    valid, smiles = perceive(atoms)
    assert valid and smiles == "C[C@H](N)C(=O)O"
    mirrored = atoms.copy()
    mirrored.positions[:, 0] *= -1
    valid_mirror, smiles_mirror = perceive(mirrored)
    assert valid_mirror and smiles_mirror == "C[C@@H](N)C(=O)O"


def test_perceive_non_finite_and_clash():
    (atoms,) = embed("CCO")
    broken = atoms.copy()
    broken.positions[0] = np.nan
    assert perceive(broken) == (False, None)
    squashed = atoms.copy()
    squashed.positions *= 0.3
    assert not perceive(squashed)[0]


# drugs whose groups RDKit's bond-order perception reads as another tautomer or as charge-separated
TAUTOMER_AND_CHARGE_DRUGS = {
    "metformin (biguanide)": "CN(C)C(=N)N=C(N)N",
    "cimetidine (cyanoguanidine)": "CC1=C(N=CN1)CSCCNC(=NC)NC#N",
    "L-arginine (guanidine, carboxylic acid)": "N=C(N)NCCC[C@H](N)C(=O)O",
    "benzamidine (amidine)": "NC(=N)c1ccccc1",
    "valproate (carboxylate)": "CCCC(CCC)C(=O)[O-]",
    "metronidazole (nitro)": "Cc1ncc(n1CCO)[N+](=O)[O-]",
    "nifedipine (nitro)": "CC1=C(C(C(=C(N1)C)C(=O)OC)c2ccccc2[N+](=O)[O-])C(=O)OC",
}


@pytest.mark.parametrize("smiles", TAUTOMER_AND_CHARGE_DRUGS.values(), ids=TAUTOMER_AND_CHARGE_DRUGS.keys())
def test_templates_of_drugs_are_judged_by_their_graph_not_perceived_bond_orders(smiles):
    template = molecule_template(smiles)  # metformin raised "could not embed" when perception was the judge
    assert match_smiles(template, smiles) == (True, True)
    assert match_smiles(template, template.info["reference_smiles"]) == (True, True)
    shuffled = template[np.random.default_rng(0).permutation(len(template))]
    assert match_smiles(shuffled, smiles) == (True, True)  # any atom order
    hydrogen = int(np.flatnonzero(template.numbers == 1)[0])
    moved = template.copy()  # a hydrogen on another heavy atom: another tautomer, another graph
    heavy = np.flatnonzero(template.numbers > 1)
    farthest = heavy[np.argmax(template.get_distances(hydrogen, heavy))]
    moved.positions[hydrogen] = template.positions[farthest] + [0.0, 0.0, 1.05]
    assert match_smiles(moved, smiles)[0] is False


def test_match_smiles_checks_the_stereo_the_smiles_gives():
    menthol = "CC(C)[C@@H]1CC[C@@H](C)C[C@H]1O"
    mirrored = molecule_template(menthol)
    mirrored.positions[:, 0] *= -1
    assert match_smiles(mirrored, menthol) == (True, False)
    assert match_smiles(mirrored, "CC(C)C1CCC(C)CC1O") == (True, True)  # no stereo asked
    z_alkene = molecule_template("C/C=C\\c1ccccc1")
    assert match_smiles(z_alkene, "C/C=C/c1ccccc1") == (True, False)
    assert match_smiles(z_alkene, "C/C=C\\c1ccccc1") == (True, True)
    assert match_smiles(z_alkene, "CC=Cc1ccccc1N") == (False, False)  # another atom count
    with pytest.raises(ValueError, match="cannot read the SMILES"):
        match_smiles(z_alkene, "C1CC")


def test_filter_smiles():
    kept = filter_smiles(["CCO", "CCO", "[Na+].[Cl-]", "C[N+](=O)[O-]", "CBr", "C" * 20, "c1ccccc1", "xx"])
    assert kept == ["CCO", "c1ccccc1"]


def test_train_molecules_checkpoint_samples_held_out_molecule(tmp_path):
    train = [a for text in ("CCO", "CC(=O)N", "CCCl", "OCC(F)F") for a in embed(text)]
    checkpoint = train_molecules(
        train, tmp_path / "m.pt", steps=3, batch_size=2, progress=False,
        model=dict(hidden_irreps="4x0e + 2x1e", num_layers=1, num_radial=8, radial_hidden=8),
    )
    (template,) = embed("CC(=O)O")  # held out, lacks N, F and Cl
    structures = sample(
        checkpoint, template, 2, sampler="adaptive", steps=4, progress=False, on_invalid="keep",
        check_bonds=False, device="cpu",
    )
    report = structures.report
    assert len(structures) == 2 and report.generated == 2
    assert all(np.isfinite(s.positions).all() and s.get_chemical_formula() == "C2H4O2" for s in structures)
    template.set_constraint(FixAtoms(indices=[0, 1]))
    (edited,) = sample(
        checkpoint, template, 1, sampler="direct", steps=3, progress=False, on_invalid="keep",
        check_bonds=False, device="cpu",
    )
    np.testing.assert_allclose(edited.positions[:2], template.positions[:2])
    assert Path(checkpoint).with_suffix(".csv").exists()


def test_train_molecules_sigma_conditioned_network(tmp_path):
    train = [a for text in ("CCO", "CC(=O)N") for a in embed(text)]
    checkpoint = train_molecules(
        train, tmp_path / "s.pt", steps=3, batch_size=2, progress=False, loss_weighting="epsilon",
        model=dict(hidden_irreps="4x0e + 2x1e", num_layers=1, num_radial=8, radial_hidden=8, sigma_conditioned=True),
    )
    payload = torch.load(checkpoint, weights_only=True)
    assert payload["model_config"]["sigma_conditioned"] and payload["train_config"]["loss_weighting"] == "epsilon"
    structures = sample(checkpoint, train[0], 2, sampler="pc", steps=3, progress=False, on_invalid="keep",
                        check_bonds=False, device="cpu")
    assert all(np.isfinite(s.positions).all() for s in structures)


def test_embed_writes_the_molecular_graph():
    from ase_psm.chemistry.bonds import bond_graph, molecule_bonds

    (atoms,) = embed("CC(=O)O")
    bonds = {tuple(sorted(b)) for b in atoms.info["bonds"].tolist()}
    assert len(bonds) == 7
    assert bonds == {tuple(b) for b in np.argwhere(np.triu(bond_graph(atoms.numbers, atoms.positions))).tolist()}
    bare = atoms.copy()
    del bare.info["bonds"]
    assert {tuple(b) for b in molecule_bonds(bare).tolist()} == bonds  # perceived from a clean structure
    noised = atoms.copy()
    noised.positions += np.random.default_rng(0).normal(scale=1.0, size=noised.positions.shape)
    assert {tuple(sorted(b)) for b in molecule_bonds(noised).tolist()} == bonds  # the stated graph, not perceived
    noised.info["bonds"] = [[0, 99]]
    with pytest.raises(ValueError, match="distinct atom indices"):
        molecule_bonds(noised)


@pytest.mark.filterwarnings("ignore:sample:RuntimeWarning")
def test_graph_conditioned_molecule_model_trains_and_reads_bonds_from_info(tmp_path):
    from ase_psm import PSMCalculator

    train = [a for text in ("CCO", "CC(=O)O", "OCC(F)F") for a in embed(text)]
    model = dict(hidden_irreps="8x0e + 4x1e", num_layers=2, num_radial=16, radial_hidden=16, graph_conditioned=True)
    untrained = train_molecules(train, tmp_path / "u.pt", steps=1, time_limit=0.0, progress=False, model=model)
    trained = train_molecules(
        train, tmp_path / "g.pt", steps=150, batch_size=3, learning_rate=1e-2, warmup_steps=10,
        progress=False, model=model,
    )
    assert torch.load(trained, weights_only=True)["model_config"]["graph_conditioned"]
    with pytest.raises(ValueError, match="pair_noise swaps atoms"):
        train_molecules(train, tmp_path / "p.pt", steps=1, pair_noise=True, progress=False, model=model)
    force_errors = load_benchmark().force_errors  # relative pseudo-force error at each of its noise levels
    assert force_errors(trained, train, seed=5)["0.3"] < 0.8 * force_errors(untrained, train, seed=5)["0.3"]

    calc = PSMCalculator(trained, device="cpu")
    bare = train[0].copy()
    del bare.info["bonds"]
    bare.calc = calc
    with pytest.raises(ValueError, match=r"atoms.info\['bonds'\]"):
        bare.get_forces()
    images = [atoms.copy() for atoms in train]
    for atoms in images:
        atoms.positions += np.random.default_rng(1).normal(scale=0.3, size=atoms.positions.shape)
    batched = calc.calculate_batch(images, batch_size=2)
    for atoms, result in zip(images, batched):
        atoms.calc = calc
        np.testing.assert_allclose(result["forces"], atoms.get_forces(), atol=1e-5)
    structures = sample(trained, train[1], 2, sampler="adaptive", steps=8, progress=False, on_invalid="keep",
                        check_bonds=False, device="cpu")
    assert all(np.isfinite(s.positions).all() for s in structures)


def load_benchmark():
    """benchmarks/conformers.py as a module (it is a script, not part of the package)."""
    if "conformers_benchmark" not in sys.modules:
        spec = importlib.util.spec_from_file_location("conformers_benchmark", BENCHMARK)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["conformers_benchmark"] = module
        spec.loader.exec_module(module)
    return sys.modules["conformers_benchmark"]


def test_tiny_benchmark_end_to_end(tmp_path):
    module = load_benchmark()
    results = module.main(["--size", "tiny", "--out", str(tmp_path)])
    assert (tmp_path / "results.json").exists() and (tmp_path / "model.pt").exists()
    assert results["n_test"] >= 1 and results["n_train_molecules"] >= 2
    rows = results["rows"]
    assert [(r["sampler"], r["nfe"]) for r in rows[:-2]] == [
        (s, n) for s in ("adaptive", "direct") for n in (6, 16)
    ]
    assert rows[-2]["case"] == "structural prior" and rows[-1]["case"].startswith("edit")
    for row in rows:
        assert row["n"] == results["n_test"]
        assert 0.0 <= row["recovery"] <= row["graph_recovery"] <= row["validity"] <= 1.0
        assert 1.0 <= row["mean_nfe"] <= row["nfe"]
        assert math.isfinite(row["wall_s"])
    assert "| generate | gaussian, 4 | adaptive | 6 |" in module.markdown_table(rows)
    summary = module.seeds_table([results, results])
    assert summary.count("\n") == len(rows) + 1 and "| generate | adaptive | 6 | 6.0 / 6.0 | " in summary
    assert module.main(["--summarise", str(tmp_path), str(tmp_path)])["runs"][0]["rows"] == rows
    for split in ("train", "test"):
        errors = results["force_errors"][split]
        assert list(errors) == ["0.05", "0.1", "0.3", "1", "3"]
        assert all(math.isfinite(e) and e > 0 for e in errors.values())


def test_memorise_mode_generates_its_training_molecules(tmp_path):
    module = load_benchmark()
    results = module.main(
        ["--size", "tiny", "--memorise", "2", "--loss-weighting", "epsilon", "--pair-noise", "--no-graph",
         "--out", str(tmp_path)]
    )
    assert results["graph"] is False
    (row,) = results["rows"]
    assert row["case"] == "memorised" and row["n"] == 2 * 3
    assert results["test_smiles"] == [a.info["reference_smiles"] for a in module.prepare(
        dict(module.SIZES["tiny"], n_train=2, n_test=0, conformers=1), 0)[0]]
    train_config = torch.load(tmp_path / "model.pt", weights_only=True)["train_config"]
    assert train_config["loss_weighting"] == "epsilon" and train_config["pair_noise"] and results["pair_noise"]
    assert all(math.isfinite(e) and e > 0 for e in results["force_errors"]["train"].values())


def test_cis_trans_of_double_bonds_is_found_and_checked():
    from ase_psm.chemistry.stereo import cis_trans, stereo_double_bonds
    from ase_psm.generate import SampleConfig, template_checks

    (trans,) = embed("C/C=C/C")
    (cis,) = embed("C/C=C\\C")
    assert trans.info["bond_orders"].tolist().count(2.0) == 1
    (bond,) = stereo_double_bonds(trans.numbers, trans.info["bonds"], trans.info["bond_orders"])
    assert sorted(trans.numbers[list(bond)].tolist()) == [6, 6, 6, 6]  # C=C and its two methyl carbons
    assert cis_trans(trans.positions, [bond]).tolist() == [-1.0]
    assert cis_trans(cis.positions, [bond]).tolist() == [1.0]  # same atom order from the same SMILES graph
    assert cis_trans(np.stack([trans.positions, cis.positions]), [bond]).tolist() == [[-1.0], [1.0]]
    # no E/Z: equivalent substituents (isobutylene), a ring double bond (cyclohexene), aromatic bonds
    for smiles in ("C=C(C)C", "C1=CCCCC1", "c1ccccc1C"):
        (atoms,) = embed(smiles)
        assert stereo_double_bonds(atoms.numbers, atoms.info["bonds"], atoms.info["bond_orders"]) == []
    with pytest.raises(ValueError, match="one order per bond"):
        stereo_double_bonds(trans.numbers, trans.info["bonds"], [1.0])
    # sample's checks flag a structure whose double bond flipped, unless told to keep stereo alone
    class Config:
        length_scale, cutoff = 1.0, 10.0

    model = type("Model", (), {"config": Config})()
    checks = template_checks(trans, model.config, SampleConfig())
    assert checks.double_bonds == [bond]
    assert checks.problems(np.stack([trans.positions, cis.positions])) == [[], ["cis/trans"]]
    assert not template_checks(trans, model.config, SampleConfig(enantiomers="keep")).double_bonds
    del trans.info["bond_orders"]
    assert not template_checks(trans, model.config, SampleConfig()).double_bonds


def test_drug_set_is_judged_against_the_input_smiles(tmp_path):
    module = load_benchmark()
    results = module.main(["--set", "drugs", "--nfe", "16", "--samples", "2", "--out", str(tmp_path)])
    rows = results["rows"]
    assert [row["molecule"] for row in rows] == list(module.DRUGS)  # metformin included: it embeds
    assert all(row["n"] == 2 and row["recovered"] <= row["graph"] <= 2 for row in rows)
    assert sum(row["recovered"] for row in rows) >= 10, rows  # the shipped model, 16 NFE: most come back
    assert "| all |" in module.drugs_table(rows) and (tmp_path / "results.json").exists()

