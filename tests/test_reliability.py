"""Reliability: safe checkpoints, kill-and-resume, clear errors for bad input, long-run stability.

Each failure mode of docs/reliability.md has a test here (or in test_fuzz.py).
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import ase
import ase.io
import numpy as np
import pytest
import torch
from ase import units
from ase.md.langevin import Langevin
from conftest import TINY_MODEL

from ase_psm import PseudoForceDenoiser, PSMCalculator, sample, train
from ase_psm import checkpoint as checkpoint_module
from ase_psm.checkpoint import (
    FORMAT_VERSION,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from ase_psm.cli.main import main
from ase_psm.data import read_frames, write_frames
from ase_psm.train import TrainConfig
from ase_psm.train.loop import last_checkpoint_path

REPOSITORY = Path(__file__).resolve().parent.parent
FAST = {"kT": 1.0, "batch_size": 8, "model": TINY_MODEL, "device": "cpu", "progress": False}


@pytest.fixture()
def lj7_file(lj7_frames, tmp_path):
    path = tmp_path / "lj7.extxyz"
    write_frames(path, lj7_frames.subset(range(40)))
    return path


@pytest.fixture()
def template(lj7_frames) -> ase.Atoms:
    return lj7_frames.to_atoms(0)


def hco_molecule() -> ase.Atoms:
    """Formaldehyde-like H2CO, in Å."""
    return ase.Atoms("CH2O", positions=[[0, 0, 0], [0.94, 0.58, 0], [-0.94, 0.58, 0], [0, -1.2, 0]])


def resave(source: Path, target: Path, **changes) -> Path:
    """Copy a checkpoint with some entries changed (written with plain torch.save)."""
    payload = {**load_checkpoint(source), **changes}
    torch.save(payload, target)
    return target


# --------------------------------------------------------------------------- checkpoints


def test_newer_checkpoint_format_names_the_file_and_the_fix(tiny_checkpoint, tmp_path):
    newer = resave(tiny_checkpoint, tmp_path / "newer.pt", format_version=FORMAT_VERSION + 1)
    with pytest.raises(ValueError, match=rf"newer.pt has checkpoint format {FORMAT_VERSION + 1}, newer .* upgrade ase-psm"):
        load_checkpoint(newer)
    unversioned = resave(tiny_checkpoint, tmp_path / "old.pt", format_version=None)
    with pytest.raises(ValueError, match=r"old.pt has checkpoint format None.*retrain"):
        load_checkpoint(unversioned)
    first_network = resave(tiny_checkpoint, tmp_path / "v1.pt", format_version=1)
    with pytest.raises(ValueError, match=r"v1.pt holds the network of ase-psm 0.1 .* retrain .*ase-psm<0.2"):
        load_checkpoint(first_network)


def _largest_tensor_offset(path) -> int:
    """Byte offset of the data of the largest tensor in a torch zip file."""
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    header = Path(path).read_bytes()[info.header_offset : info.header_offset + 30]
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_length + extra_length


def test_truncated_and_corrupt_checkpoints_are_named(tiny_checkpoint, tmp_path):
    data = Path(tiny_checkpoint).read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"truncated.pt is not a readable ase-psm checkpoint"):
        load_checkpoint(truncated)
    start = _largest_tensor_offset(tiny_checkpoint)  # damage tensor bytes, not zip padding
    flipped = bytearray(data)
    flipped[start : start + 64] = bytes(b ^ 0xFF for b in flipped[start : start + 64])
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match=r"corrupt.pt (is corrupt|is not a readable|was refused)"):
        load_checkpoint(corrupt)
    payload = load_checkpoint(tiny_checkpoint)
    next(iter(payload["model_state"].values())).view(-1)[0] += 1e-3  # one damaged weight, old checksum
    torch.save(payload, tmp_path / "damaged.pt")
    with pytest.raises(ValueError, match=r"damaged.pt is corrupt: its tensors do not match the checksum"):
        load_checkpoint(tmp_path / "damaged.pt")
    text = tmp_path / "notes.pt"
    text.write_text("these are not weights\n")
    with pytest.raises(ValueError, match=r"notes.pt (is not a readable|was refused)"):
        load_checkpoint(text)


class _TouchOnLoad:
    """A pickle payload that would create a file if unpickling ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_crafted_pickles_are_refused_without_running_code(tmp_path):
    marker = tmp_path / "code-ran"
    raw = tmp_path / "raw_pickle.pt"
    raw.write_bytes(pickle.dumps({"model_config": _TouchOnLoad(marker), "format_version": FORMAT_VERSION}))
    with pytest.raises(ValueError, match=r"raw_pickle.pt was refused"):
        load_checkpoint(raw)
    zipped = tmp_path / "torch_zip.pt"
    torch.save({"model_config": _TouchOnLoad(marker), "format_version": FORMAT_VERSION}, zipped)
    with pytest.raises(ValueError, match=r"torch_zip.pt was refused: loading it would import \S+, which could run code"):
        load_checkpoint(zipped)
    assert not marker.exists()


def test_torch_files_that_are_not_checkpoints(tiny_checkpoint, tmp_path):
    other = tmp_path / "weights.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, other)
    with pytest.raises(ValueError, match=r"weights.pt is a torch file but not an ase-psm checkpoint"):
        load_checkpoint(other)
    payload = load_checkpoint(tiny_checkpoint)
    del payload["model_state"]
    incomplete = tmp_path / "incomplete.pt"
    save_checkpoint(incomplete, payload)
    with pytest.raises(ValueError, match=r"incomplete.pt: the checkpoint's network cannot be rebuilt"):
        load_model(incomplete, device="cpu")


def test_failed_save_keeps_the_previous_checkpoint(tiny_checkpoint, tmp_path, monkeypatch):
    target = tmp_path / "model.pt"
    save_checkpoint(target, load_checkpoint(tiny_checkpoint))

    def crash_midway(payload, path):
        Path(path).write_bytes(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.torch, "save", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(target, {"model_config": {}, "step": 99})
    monkeypatch.undo()
    assert load_checkpoint(target)["step"] == load_checkpoint(tiny_checkpoint)["step"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


# --------------------------------------------------------------------------- kill and resume


def test_sigkill_mid_training_then_resume_to_completion(lj7_file, tmp_path):
    """kill -9 a CLI training run once <out>.last.pt exists; the checkpoint loads and --resume finishes."""
    out = tmp_path / "killed.pt"
    steps = 40
    argv = ["train", str(lj7_file), "--out", str(out), "--loss", "piecewise-weighted", "--kT", "1",
            "--steps", str(steps), "--batch-size", "4", "--val-every", "2", "--device", "cpu",
            "--sigma-max", "3", "--model", json.dumps(TINY_MODEL)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPOSITORY)}
    process = subprocess.Popen([sys.executable, "-m", "ase_psm.cli.main", *argv], env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = last_checkpoint_path(out)
    deadline = time.monotonic() + 240
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL, "training finished or failed before the kill"

    killed_at = load_checkpoint(last)["step"]
    assert 2 <= killed_at < steps and killed_at % 2 == 0
    assert main([*argv, "--resume"]) == 0
    final = load_checkpoint(last)
    assert final["step"] == steps and final["training_state"]["best_val"] < float("inf")
    assert load_checkpoint(out)["step"] <= steps
    logged = [int(line.split(",")[0]) for line in out.with_suffix(".csv").read_text().splitlines()[1:]]
    assert logged[-1] == steps and logged == sorted(logged)


# --------------------------------------------------------------------------- bad structures


def test_calculator_rejects_bad_structures_with_the_fix(tiny_checkpoint, template):
    calc = PSMCalculator(tiny_checkpoint, device="cpu")
    cases = {
        "NaN": (lambda a: a.positions.__setitem__((2, 0), np.nan), r"NaN or inf \(atoms \[2\]\)"),
        "inf": (lambda a: a.positions.__setitem__((0, 1), np.inf), r"NaN or inf \(atoms \[0\]\)"),
        "absurd": (lambda a: a.positions.__setitem__((1, 2), 2e4), r"\|x\| = 2e\+04 Å, beyond 10000 Å"),
        "periodic": (lambda a: a.set_pbc(True), r"non-periodic molecules.*atoms.pbc = False"),
        "element": (lambda a: a.set_chemical_symbols(["C", "O"] + ["Ar"] * 5),
                    r"does not know elements C \(6\), O \(8\) of the structure: it was trained on Ar \(18\)"),
    }
    for spoil, message in cases.values():
        atoms = template.copy()
        spoil(atoms)
        atoms.calc = calc
        with pytest.raises(ValueError, match=message):
            atoms.get_forces()
        with pytest.raises(ValueError, match=message):
            calc.calculate_batch([template, atoms])
    template.calc = calc
    assert np.isfinite(template.get_forces()).all()


def test_denoiser_rejects_bad_structures_before_any_step(tiny_checkpoint, template):
    periodic = template.copy()
    periodic.set_cell([20, 20, 20], scale_atoms=False)
    periodic.pbc = True
    with pytest.raises(ValueError, match="non-periodic.*atoms.pbc = False"):
        PseudoForceDenoiser(periodic, tiny_checkpoint, logfile=None, device="cpu")
    broken = template.copy()
    broken.positions[3] = np.nan
    broken.calc = PSMCalculator(tiny_checkpoint, device="cpu")
    with pytest.raises(ValueError, match=r"NaN or inf \(atoms \[3\]\)"):
        PseudoForceDenoiser(broken, logfile=None)


def test_sample_rejects_bad_templates_and_noise_ranges(tiny_checkpoint, hco_checkpoint, template):
    options = {"n": 1, "steps": 2, "device": "cpu", "progress": False}
    broken = template.copy()
    broken.positions[0, 0] = -np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        sample(tiny_checkpoint, broken, **options)
    periodic = template.copy()
    periodic.pbc = [True, False, False]
    with pytest.raises(ValueError, match=r"pbc=\[True, False, False\]: set atoms.pbc = False"):
        sample(tiny_checkpoint, periodic, **options)
    with pytest.raises(ValueError, match=r"does not know elements H \(1\), C \(6\), O \(8\) of the structure"):
        sample(tiny_checkpoint, hco_molecule(), **options)
    with pytest.raises(ValueError, match=r"template lacks elements O \(8\) of the molecule"):
        sample(hco_checkpoint, ase.Atoms("CH2", positions=[[0, 0, 0], [1, 0, 0], [0, 1, 0]]), **options)
    with pytest.raises(ValueError, match=r"need 0 < sigma_min < sigma_max \(Å\), got sigma_min=2.0, sigma_max=0.5"):
        sample(tiny_checkpoint, template, sigma_min=2.0, sigma_max=0.5, **options)
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        sample(tiny_checkpoint, template, sigma_max=-1.0, **options)
    with warnings.catch_warnings():  # the untrained network's samples fail the output checks; keep them
        warnings.simplefilter("ignore")
        assert len(sample(hco_checkpoint, hco_molecule(), on_invalid="keep", **options)) == 1


# --------------------------------------------------------------------------- bad training input


def test_bad_training_data_gets_clear_errors(lj7_frames, tmp_path):
    empty = tmp_path / "empty.extxyz"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty.extxyz is empty"):
        train(empty, tmp_path / "x.pt", steps=1, **FAST)
    with pytest.raises(ValueError, match="the list of structures is empty"):
        train([], tmp_path / "x.pt", steps=1, **FAST)
    with pytest.raises(ValueError, match=r"at least 2 frames, got 1.*val_fraction=0 \(CLI: --val-fraction 0\)"):
        train(lj7_frames.subset([0]), tmp_path / "x.pt", steps=1, **FAST)
    unlabelled = lj7_frames.subset(range(10))
    unlabelled.forces = None
    with pytest.raises(ValueError, match=r"needs force labels .*ase_psm.openmm.label_forces.*tblite.*ASE calculator"):
        train(unlabelled, tmp_path / "x.pt", loss="piecewise", steps=1, **FAST)


@pytest.mark.parametrize("settings, message", [
    ({"temperature": 0.0}, "temperature must be positive"),
    ({"temperature": -300.0}, "temperature must be positive"),
    ({"temperature": float("nan")}, "temperature must be positive"),
    ({"kT": 0.0}, "kT must be positive"),
    ({"schedule": {"sigma_min": 2.0, "sigma_max": 1.0}}, "need 0 < sigma_min < sigma_max"),
    ({"schedule": {"sigma_min": 0.5, "sigma_max": 0.5}}, "need 0 < sigma_min < sigma_max"),
])
def test_bad_training_settings(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**settings)


def test_mdtraj_atom_count_mismatch_names_both_counts(tmp_path):
    md = pytest.importorskip("mdtraj")

    def system(n_atoms: int) -> md.Trajectory:
        topology = md.Topology()
        residue = topology.add_residue("MOL", topology.add_chain())
        for i in range(n_atoms):
            topology.add_atom(f"O{i}", md.element.oxygen, residue)
        xyz = np.random.default_rng(0).uniform(0, 1, (2, n_atoms, 3)).astype(np.float32)
        return md.Trajectory(xyz, topology)

    pdb, dcd = tmp_path / "three.pdb", tmp_path / "four.dcd"
    system(3)[0].save_pdb(str(pdb))
    system(4).save_dcd(str(dcd))
    with pytest.raises(ValueError, match=r"four.dcd has 4 atoms per frame but its topology .*three.pdb has 3"):
        read_frames(dcd, topology=pdb)


# --------------------------------------------------------------------------- the CLI


def _cli_cases(tmp_path: Path, lj7_file: Path, tiny_checkpoint: Path, lj7_frames) -> dict[str, tuple[list, str]]:
    """Name -> (argv, expected part of the one-line error) for every failure mode of the CLI."""
    ckpt = str(tiny_checkpoint)
    good = tmp_path / "good.xyz"
    ase.io.write(good, lj7_frames.to_atoms(0))
    files = {
        "nan.xyz": lambda a: a.positions.__setitem__((0, 0), np.nan),
        "periodic.xyz": lambda a: (a.set_cell([9, 9, 9]), a.set_pbc(True)),
        "carbon.xyz": lambda a: a.set_chemical_symbols(["C"] * 7),
    }
    for name, spoil in files.items():
        atoms = lj7_frames.to_atoms(0)
        spoil(atoms)
        ase.io.write(tmp_path / name, atoms)
    (tmp_path / "garbage.pt").write_bytes(os.urandom(500))
    resave(tiny_checkpoint, tmp_path / "newer.pt", format_version=FORMAT_VERSION + 1)
    torch.save({"model_config": _TouchOnLoad(tmp_path / "ran")}, tmp_path / "evil.pt")
    (tmp_path / "empty.extxyz").write_text("")
    write_frames(tmp_path / "one.extxyz", lj7_frames.subset([0]))
    unlabelled = lj7_frames.subset(range(5))
    unlabelled.forces = None
    write_frames(tmp_path / "nolabels.extxyz", unlabelled)
    np.savez(tmp_path / "md17.npz", R=lj7_frames.positions[:5], z=lj7_frames.numbers, F=lj7_frames.forces[:5])
    train_args = ["--out", str(tmp_path / "m.pt"), "--steps", "1", "--device", "cpu", "--model", json.dumps(TINY_MODEL)]
    sample_args = ["--n", "1", "--steps", "2", "--device", "cpu", "--out", str(tmp_path / "s.xyz")]
    t = tmp_path
    return {
        "missing checkpoint": (["sample", str(t / "none.pt"), "--template", str(good)], "no checkpoint at"),
        "garbage checkpoint": (["sample", str(t / "garbage.pt"), "--template", str(good)], "garbage.pt"),
        "newer checkpoint": (["sample", str(t / "newer.pt"), "--template", str(good)], "upgrade ase-psm"),
        "crafted checkpoint": (["sample", str(t / "evil.pt"), "--template", str(good)], "could run code"),
        "missing template": (["sample", ckpt, "--template", str(t / "none.xyz")], "no structure file"),
        "garbage template": (["sample", ckpt, "--template", str(t / "garbage.pt")], "could not read a structure"),
        "NaN template": (["sample", ckpt, "--template", str(t / "nan.xyz"), *sample_args], "NaN or inf"),
        "periodic template": (["sample", ckpt, "--template", str(t / "periodic.xyz"), *sample_args],
                              "atoms.pbc = False"),
        "unknown element": (["sample", ckpt, "--template", str(t / "carbon.xyz"), *sample_args],
                            "does not know elements C (6)"),
        "inverted sigma": (["sample", ckpt, "--template", str(good), "--sigma-max", "0.001", *sample_args],
                           "sigma_min < sigma_max"),
        "periodic denoise": (["denoise", ckpt, str(t / "periodic.xyz"), "--device", "cpu"], "non-periodic"),
        "NaN denoise": (["denoise", ckpt, str(t / "nan.xyz"), "--device", "cpu"], "NaN or inf"),
        "empty data": (["train", str(t / "empty.extxyz"), *train_args], "is empty"),
        "one frame": (["train", str(t / "one.extxyz"), "--kT", "1", *train_args], "--val-fraction 0"),
        "no forces": (["train", str(t / "nolabels.extxyz"), "--kT", "1", *train_args], "label_forces"),
        "npz unit": (["train", str(t / "md17.npz"), "--kT", "1", *train_args], "--energy-unit kcal/mol"),
        "zero temperature": (["train", str(lj7_file), "--temperature", "0", *train_args], "temperature must be"),
        "negative kT": (["train", str(lj7_file), "--kT", "-1", *train_args], "kT must be positive"),
        "inverted schedule": (["train", str(lj7_file), "--kT", "1", "--sigma-min", "3", "--sigma-max", "1",
                               *train_args], "sigma_min < sigma_max"),
        "unknown model key": (["train", str(lj7_file), "--kT", "1", *train_args[:-1], '{"layers": 2}'], "unknown model settings ['layers']"),
        "evaluate garbage": (["evaluate", str(t / "garbage.pt"), "--reference", str(lj7_file)], "garbage.pt"),
        "evaluate missing": (["evaluate", str(lj7_file), "--reference", str(t / "none.xyz")], "not found"),
    }


def test_cli_reports_every_failure_in_one_line_without_traceback(
    tmp_path, lj7_file, tiny_checkpoint, lj7_frames, capsys
):
    for name, (argv, message) in _cli_cases(tmp_path, lj7_file, tiny_checkpoint, lj7_frames).items():
        assert main(argv) == 2, name
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"ase-psm {argv[0]}: error: ") and "\n" not in err, (name, err)
        assert message in err, (name, err)
        assert "Traceback" not in err, name
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("argv, message", [
    (["sample", "{garbage}", "--template", "{garbage}"], "garbage.pt"),
    (["train", "{data}", "--kT", "0"], "kT must be positive"),
])
def test_cli_subprocess_exits_2_with_one_line(tmp_path, lj7_file, argv, message):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(300))
    argv = [a.format(garbage=garbage, data=lj7_file) for a in argv]
    result = subprocess.run([sys.executable, "-m", "ase_psm.cli.main", *argv], capture_output=True, text=True,
                            check=False, timeout=300, env={**os.environ, "PYTHONPATH": str(REPOSITORY)}, cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("ase-psm")]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- long runs


STABILITY_STEPS = int(os.environ.get("ASE_PSM_STABILITY_STEPS", "10000"))
"""The target's 10,000 steps (about 5 ms per step on one free CPU core); the variable sets fewer or more."""


def _rss_mib() -> float:
    """Resident memory of this process (MiB), from /proc."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads resident memory from /proc")
def test_long_langevin_run_is_stable_and_memory_flat(tiny_checkpoint, template):
    """ASE Langevin MD on the pseudo-PES (k = 1 eV/Å², 20 K, 2 fs): finite, bounded, no memory growth."""
    atoms = template.copy()
    atoms.calc = PSMCalculator(tiny_checkpoint, device="cpu", dtype="float64", sigma=0.05)
    dynamics = Langevin(atoms, 2 * units.fs, temperature_K=20, friction=0.02 / units.fs, fixcm=False,
                        rng=np.random.default_rng(0))
    warm_up = STABILITY_STEPS // 5
    dynamics.run(warm_up)
    rss_start = _rss_mib()
    radii = []
    for _ in range(4):
        dynamics.run((STABILITY_STEPS - warm_up) // 4)
        positions = atoms.get_positions()
        assert np.isfinite(positions).all() and np.isfinite(atoms.get_forces()).all()
        radii.append(float(np.linalg.norm(positions - positions.mean(axis=0), axis=1).max()))
    growth = _rss_mib() - rss_start
    print(f"{STABILITY_STEPS} Langevin steps: max radius {max(radii):.3f} Å, RSS growth {growth:.2f} MiB")
    assert dynamics.nsteps == STABILITY_STEPS
    assert max(radii) < 5.0, radii  # the 7-atom cluster (radius ~1) neither explodes nor drifts apart
    assert growth < 50.0, f"resident memory grew by {growth:.1f} MiB from step {warm_up} to {STABILITY_STEPS}"
