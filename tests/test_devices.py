"""Device errors a user can act on: every public entry point that takes ``device`` names the problem
and the fix when the device is not on this machine."""

from __future__ import annotations

import ase
import ase.io
import pytest
import torch

from ase_psm import PseudoForceDenoiser, PSMCalculator, sample, train
from ase_psm.checkpoint import resolve_device
from ase_psm.cli.main import main

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the errors of a machine without CUDA")
CUDA_MESSAGE = r"device 'cuda' asked for, but this machine has no CUDA device .* use device='cpu' or 'auto'"


@NO_CUDA
def test_resolve_device_names_the_devices_and_the_fix():
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match=CUDA_MESSAGE):
        resolve_device("cuda")
    with pytest.raises(ValueError, match=r"'cuda:1' asked for, but this machine has no CUDA device"):
        resolve_device("cuda:1")
    with pytest.raises(ValueError, match=r"unknown device 'gpu': use 'auto', 'cpu' or 'cuda'"):
        resolve_device("gpu")


@NO_CUDA
def test_every_entry_point_gives_the_device_error(tiny_checkpoint, lj7_frames, tmp_path, capsys):
    atoms = ase.Atoms(numbers=[18] * 7, positions=lj7_frames.positions[0])
    with pytest.raises(ValueError, match=CUDA_MESSAGE):
        PSMCalculator(tiny_checkpoint, device="cuda")
    with pytest.raises(ValueError, match=CUDA_MESSAGE):
        PseudoForceDenoiser(atoms.copy(), tiny_checkpoint, device="cuda")
    with pytest.raises(ValueError, match=CUDA_MESSAGE):
        sample(tiny_checkpoint, atoms, n=1, device="cuda", progress=False)
    with pytest.raises(ValueError, match=CUDA_MESSAGE):
        train(lj7_frames, tmp_path / "m.pt", loss="dsm", steps=1, device="cuda", progress=False)
    template = tmp_path / "t.xyz"
    ase.io.write(template, atoms)
    assert main(["sample", str(tiny_checkpoint), "--template", str(template), "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


@pytest.mark.device
@pytest.mark.skipif(not torch.cuda.is_available(), reason="checks a machine with CUDA")
def test_resolve_device_finds_the_gpus():
    count = torch.cuda.device_count()
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device(f"cuda:{count - 1}") == torch.device("cuda", count - 1)
    with pytest.raises(ValueError, match=rf"'cuda:{count}' asked for, but this machine has {count} CUDA device"):
        resolve_device(f"cuda:{count}")
