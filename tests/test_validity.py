"""Sampling output checks: hand-made bad structures, and what sample() does with them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ase.build import molecule

from ase_psm import sample
from ase_psm.chemistry.bonds import is_molecule
from ase_psm.cli.main import main
from ase_psm.metrics import bond_graph, structure_problems

pytestmark = pytest.mark.mindeps  # CI also runs these against the oldest declared dependencies


def ethanol_positions() -> tuple[np.ndarray, np.ndarray]:
    atoms = molecule("CH3CH2OH")
    return atoms.numbers, atoms.positions


def test_each_problem_is_found_on_hand_made_structures():
    numbers, good = ethanol_positions()
    reference = bond_graph(numbers, good)
    non_finite = good.copy()
    non_finite[2, 1] = np.nan
    exploded = good.copy()
    exploded[0] += 50.0
    clash = good.copy()
    clash[1] = clash[0] + 0.1
    rebonded = good.copy()  # move a hydrogen from a carbon to the oxygen: no clash, wrong graph
    carbons = np.flatnonzero(numbers == 6)
    hydrogen = int(next(h for h in np.flatnonzero(numbers == 1) if reference[h, carbons].any()))
    oxygen = int(np.flatnonzero(numbers == 8)[0])
    away = good[oxygen] - good[reference[oxygen]].mean(axis=0)
    rebonded[hydrogen] = good[oxygen] + 0.97 * away / np.linalg.norm(away)
    problems = structure_problems(
        np.stack([good, non_finite, exploded, clash, rebonded]),
        clash_distance=0.5, max_radius=10.0, numbers=numbers, reference_bonds=reference,
    )
    assert problems[0] == []
    assert problems[1] == ["non-finite"]
    assert "exploded" in problems[2]
    assert "clash" in problems[3]
    assert problems[4] == ["bonds"]


def test_without_reference_bonds_only_geometry_is_checked():
    numbers, good = ethanol_positions()
    shuffled = good[::-1].copy()
    assert structure_problems(shuffled[None], clash_distance=0.5, max_radius=10.0) == [[]]
    assert structure_problems(
        shuffled[None], clash_distance=0.5, max_radius=10.0, numbers=numbers,
        reference_bonds=bond_graph(numbers, good),
    ) == [["bonds"]]


def test_is_molecule():
    numbers, positions = ethanol_positions()
    assert is_molecule(numbers, positions)
    assert not is_molecule(np.full(5, 18), np.random.default_rng(0).normal(size=(5, 3)))
    apart = np.concatenate([positions, positions + 20.0])
    assert not is_molecule(np.concatenate([numbers, numbers]), apart)


def test_bad_check_arguments_are_refused():
    with pytest.raises(ValueError, match="shape"):
        structure_problems(np.zeros((4, 3)), clash_distance=0.5, max_radius=1.0)
    with pytest.raises(ValueError, match="max_radius"):
        structure_problems(np.zeros((1, 4, 3)), clash_distance=0.5, max_radius=0.0)


def _template(frames):
    atoms = frames.to_atoms(0)
    atoms.calc = None
    return atoms


def test_sample_drops_keeps_or_regenerates_invalid_structures(tiny_checkpoint, lj7_frames):
    template = _template(lj7_frames)
    options = {"n": 12, "steps": 4, "sampler": "heun", "seed": 3, "device": "cpu", "progress": False}
    with warnings.catch_warnings():  # a 100-step model explodes a few structures, which is flagged
        warnings.simplefilter("ignore", RuntimeWarning)
        kept = sample(tiny_checkpoint, template, on_invalid="keep", clash_distance=0.0, **options)
    report = kept.report
    assert len(kept) == 12 and report.rounds == 1 and "clash" not in report.problems
    assert report.invalid == sum("problems" in a.info for a in kept) < 12
    intact = [a for a in kept if "problems" not in a.info]
    closest = np.array([np.sort(a.get_all_distances(), axis=None)[7] for a in intact])  # 7 zeros on the diagonal
    threshold = float(np.median(closest))

    with pytest.warns(RuntimeWarning, match="invalid"):
        kept = sample(tiny_checkpoint, template, on_invalid="keep", clash_distance=threshold, **options)
    report = kept.report
    flagged = [a for a in kept if "problems" in a.info]
    assert len(kept) == 12 and len(flagged) == report.invalid and report.problems["clash"] >= 1

    with pytest.warns(RuntimeWarning, match="returned"):
        dropped = sample(tiny_checkpoint, template, on_invalid="drop", clash_distance=threshold, **options)
    report = dropped.report
    assert len(dropped) == 12 - report.invalid < 12

    filled = sample(
        tiny_checkpoint, template, on_invalid="regenerate", clash_distance=threshold, max_rounds=20, **options
    )
    report = filled.report
    assert len(filled) == 12 and report.generated > 12 and report.rounds > 1
    assert all(np.sort(a.get_all_distances(), axis=None)[7] >= threshold for a in filled)
    assert not any("problems" in a.info for a in filled)


def test_sample_returns_nothing_rather_than_garbage(tiny_checkpoint, lj7_frames):
    template = _template(lj7_frames)
    with pytest.warns(RuntimeWarning, match="returned 0 of 3"):
        structures = sample(tiny_checkpoint, template, n=3, steps=2, sampler="euler", device="cpu",
                            progress=False, clash_distance=1e3, max_rounds=2)
    assert structures == []
    with pytest.raises(ValueError, match="on_invalid"):
        sample(tiny_checkpoint, template, n=1, steps=2, on_invalid="ignore", device="cpu", progress=False)


def test_cli_sample_reports_checks_and_refuses_to_write_garbage(tiny_checkpoint, lj7_frames, tmp_path, capsys):
    template = tmp_path / "template.xyz"
    _template(lj7_frames).write(template)
    out = tmp_path / "samples.extxyz"
    common = [str(tiny_checkpoint), "--template", str(template), "--n", "3", "--steps", "10",
              "--sampler", "euler", "--device", "cpu", "--out", str(out)]
    assert main(["sample", *common]) == 0
    assert "checks: generated" in capsys.readouterr().out and out.exists()
    out.unlink()
    with pytest.warns(RuntimeWarning):
        assert main(["sample", *common, "--clash-distance", "1000", "--max-rounds", "1"]) == 2
    assert "failed the checks" in capsys.readouterr().err and not out.exists()


def dichlorodifluoroethane() -> tuple[np.ndarray, np.ndarray]:
    """CHFCl-CHFCl: two stereocentres, each with H, F, Cl and the other carbon (Å)."""
    tetrahedral = np.array([[-0.333, 0.943, 0.0], [-0.333, -0.471, 0.816], [-0.333, -0.471, -0.816]])
    numbers = np.array([6, 6, 1, 9, 17, 1, 9, 17])
    lengths = np.array([1.09, 1.35, 1.77])
    second = tetrahedral * np.array([-1.0, 1.0, 1.0])
    positions = np.concatenate([
        [[0.0, 0.0, 0.0], [1.54, 0.0, 0.0]],
        tetrahedral * lengths[:, None],
        np.array([1.54, 0.0, 0.0]) + second[[0, 2, 1]] * lengths[:, None],
    ])
    return numbers, positions


def test_enantiomers_are_mirrored_and_diastereomers_flagged():
    from ase_psm.chemistry.stereo import signed_volumes, stereocentres
    from ase_psm.generate.checks import mirror_enantiomers

    numbers, template = dichlorodifluoroethane()
    bonds = bond_graph(numbers, template)
    centres = stereocentres(numbers, np.argwhere(np.triu(bonds)))
    assert [centre for centre, _ in centres] == [0, 1]
    handedness = np.sign(signed_volumes(template, centres))
    rotation = np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))[0]
    rotation *= np.sign(np.linalg.det(rotation))  # proper
    rotated = template @ rotation.T
    mirror = template * np.array([1.0, 1.0, -1.0])
    one_inverted = template.copy()
    one_inverted[[3, 4]] = template[0] + (template[[4, 3]] - template[0]) * (np.array([1.35, 1.77]) / np.array([1.77, 1.35]))[:, None]
    positions = np.stack([rotated, mirror, one_inverted])
    checks = dict(clash_distance=0.5, max_radius=10.0, numbers=numbers, reference_bonds=bonds,
                  stereocentres=centres, reference_handedness=handedness)
    assert structure_problems(positions, **checks) == [[], ["chirality"], ["chirality"]]
    assert mirror_enantiomers(positions, centres, handedness) == 1  # only the full mirror image
    assert structure_problems(positions, **checks) == [[], [], ["chirality"]]
    np.testing.assert_allclose(signed_volumes(positions[1], centres), signed_volumes(template, centres))


def _malonaldehyde() -> tuple[np.ndarray, np.ndarray]:
    """O=CH-CH2-CH=O, planar-ish, atoms 0-4 heavy (O C C C O), 5-8 H; two equivalent halves."""
    numbers = np.array([8, 6, 6, 6, 8, 1, 1, 1, 1])
    positions = np.array([
        [-2.3, 0.6, 0.0], [-1.25, 0.0, 0.0], [0.0, 0.8, 0.0], [1.25, 0.0, 0.0], [2.3, 0.6, 0.0],
        [-1.25, -1.1, 0.0], [0.0, 1.45, 0.88], [0.0, 1.45, -0.88], [1.25, -1.1, 0.0],
    ])
    return numbers, positions


def test_match_to_template_renumbers_swapped_equivalent_atoms_only():
    from ase_psm.chemistry.bonds import match_to_template

    numbers, template = _malonaldehyde()
    reference = bond_graph(numbers, template)
    assert np.array_equal(match_to_template(numbers, reference, reference), np.arange(9))
    # the aldehyde H of the left half and the right O trade indices: same molecule, other numbering
    swapped = template.copy()
    swapped[[5, 8]] = template[[8, 5]]
    swapped[[0, 4]] = template[[4, 0]]
    bonds = bond_graph(numbers, swapped)
    assert (bonds != reference).any()
    order = match_to_template(numbers, bonds, reference)
    assert order is not None and np.array_equal(numbers[order], numbers)
    assert np.array_equal(bond_graph(numbers, swapped[order]), reference)
    # a different molecule of the same atoms (an aldehyde H moved from its carbon onto the oxygen): no match
    isomer = template.copy()
    isomer[5] = template[0] + np.array([-0.5, 0.8, 0.0])
    isomer_bonds = bond_graph(numbers, isomer)
    assert isomer_bonds.sum() == reference.sum() and isomer_bonds[0, 5] and not isomer_bonds[1, 5]
    assert match_to_template(numbers, isomer_bonds, reference) is None


def test_sample_renumbering_turns_swapped_halves_into_valid_structures():
    from ase_psm.generate.checks import renumber_onto_template

    numbers, template = _malonaldehyde()
    reference = bond_graph(numbers, template)
    swapped = template.copy()
    swapped[[5, 8]] = template[[8, 5]]
    positions = np.stack([template, swapped])
    checks = dict(clash_distance=0.5, max_radius=10.0, numbers=numbers, reference_bonds=reference)
    assert structure_problems(positions, **checks) == [[], ["bonds"]]
    assert renumber_onto_template(positions, numbers, reference) == 1
    assert structure_problems(positions, **checks) == [[], []]
    np.testing.assert_allclose(positions[0], template)  # a valid structure is left alone
