"""Data-parallel training and sharded sampling with torchrun: 2 CPU processes (gloo), and one process per
GPU (nccl) on a machine with several."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys

import ase.io
import numpy as np
import pytest
import torch

from ase_psm import sample
from ase_psm.checkpoint import load_model
from ase_psm.data import write_frames
from ase_psm.distributed import rank_seed

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]


def torchrun(*args: str, processes: int = 2) -> str:
    """stdout of ``torchrun -m ase_psm.cli.main *args`` on ``processes`` processes; the whole job is killed
    after 180 s."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with subprocess.Popen([*TORCHRUN, str(processes), "-m", "ase_psm.cli.main", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env, start_new_session=True) as job:
        try:
            stdout, stderr = job.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            os.killpg(job.pid, signal.SIGKILL)  # torchrun and its workers
            raise
    assert job.returncode == 0, stdout + stderr
    return stdout


def ddp_train(frames, folder, device: str, processes: int) -> str:
    """10 data-parallel training steps of ``processes`` processes on ``device``, written to ``folder``;
    torchrun's stdout."""
    write_frames(folder / "lj7.extxyz", frames.subset(range(60)))
    return torchrun(
        "train", str(folder / "lj7.extxyz"), "--out", str(folder / "model.pt"), "--kT", "1", "--steps", "10",
        "--batch-size", "4", "--val-every", "5", "--sigma-max", "2", "--device", device, "--ddp",
        processes=processes,
    )


@pytest.fixture(scope="module")
def ddp_run(lj7_frames, tmp_path_factory):
    """10 data-parallel training steps on 2 CPU processes; the output folder and torchrun's stdout."""
    folder = tmp_path_factory.mktemp("ddp")
    return folder, ddp_train(lj7_frames, folder, "cpu", 2)


def test_ddp_training_writes_one_checkpoint_and_log(ddp_run):
    assert_one_checkpoint_and_log(*ddp_run)


@pytest.mark.device
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="data-parallel training on GPUs needs 2 or more")
def test_ddp_training_on_every_gpu(lj7_frames, tmp_path):
    stdout = ddp_train(lj7_frames, tmp_path, "cuda", torch.cuda.device_count())
    assert_one_checkpoint_and_log(tmp_path, stdout)


def assert_one_checkpoint_and_log(folder, stdout: str) -> None:
    """Rank 0 alone reported, and wrote the checkpoint, its training state and a log of steps 5 and 10."""
    assert stdout.count("best checkpoint") == 1
    _, checkpoint = load_model(folder / "model.pt", "cpu")
    assert checkpoint["step"] in (5, 10) and (folder / "model.last.pt").exists()
    with open(folder / "model.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["step"]) for row in rows] == [5, 10]


def test_sharded_sampling_merges_ranks_in_order(ddp_run, lj7_frames):
    folder, _ = ddp_run
    template, out = folder / "template.xyz", folder / "samples.extxyz"
    ase.io.write(template, lj7_frames.to_atoms(0))
    torchrun("sample", str(folder / "model.pt"), "--template", str(template), "-n", "5", "--sampler", "heun",
             "--steps", "3", "--device", "cpu", "--on-invalid", "keep", "--out", str(out), "--ddp")
    generated = np.stack([atoms.positions for atoms in ase.io.read(out, index=":")])
    # rank 0 makes 3 structures, rank 1 makes 2, each with its own seed, merged in rank order
    expected = [
        sample(folder / "model.pt", ase.io.read(template), share, seed=rank_seed(0, rank), sampler="heun",
               steps=3, device="cpu", progress=False, on_invalid="keep")
        for rank, share in enumerate((3, 2))
    ]
    expected = np.stack([atoms.positions for part in expected for atoms in part])
    np.testing.assert_allclose(generated, expected, atol=1e-5)


def test_ddp_without_torchrun_is_a_clear_error(lj7_frames, tmp_path):
    from ase_psm.train import train

    if "RANK" in os.environ:
        pytest.skip("running inside a torchrun job")
    with pytest.raises(ValueError, match="torchrun"):
        train(lj7_frames, tmp_path / "m.pt", kT=1.0, steps=1, device="cpu", progress=False, ddp=True)
