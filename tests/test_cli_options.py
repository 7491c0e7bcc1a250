"""Global CLI options (--quiet, --verbose, --log-file), YAML configs, plots from train and evaluate."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

from ase_psm.cli.main import build_parser, config_arguments, main
from ase_psm.data import Frames, write_frames


def test_yaml_config_mirrors_flags_and_the_command_line_wins(lj7_file, tmp_path, capsys):
    config = tmp_path / "train.yaml"
    model = tmp_path / "model.pt"
    config.write_text(
        f"data: {lj7_file}\nout: {model}\nloss: dsm\nsteps: 50\nbatch_size: 8\nval-every: 2\n"
        "sigma_max: 2.0\ndevice: cpu\nmodel: {hidden_irreps: 4x0e + 2x1e, num_layers: 1, sh_lmax: 1}\n"
    )
    assert main(["--quiet", "train", "--config", str(config), "--steps", "4"]) == 0
    out = capsys.readouterr()
    assert "best checkpoint" in out.out and "train dsm" not in out.err  # quiet: no progress bar
    rows = (tmp_path / "model.csv").read_text().splitlines()
    assert rows[-1].startswith("4,")  # --steps 4 on the command line beat steps: 50 in the file
    assert (tmp_path / "model_loss.png").stat().st_size > 1000


def test_config_arguments_translate_settings(tmp_path):
    config = tmp_path / "sample.yaml"
    config.write_text("checkpoint: m.pt\nn: 5\nno-bond-check: true\nddp: false\non_invalid: drop\nsigma_max: null\n")
    arguments = config_arguments(build_parser(), "sample", str(config))
    assert arguments == ["m.pt", "--n", "5", "--no-bond-check", "--on-invalid", "drop"]
    model = tmp_path / "train.yaml"
    model.write_text("model: {num_layers: 2}\n")
    assert config_arguments(build_parser(), "train", str(model)) == ["--model", '{"num_layers": 2}']
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--config", str(tmp_path / "nonexistent.yaml")])
    assert exit_info.value.code == 2


def test_bad_config_files_are_named(tmp_path, capsys):
    bad_key = tmp_path / "bad.yaml"
    bad_key.write_text("data: x.extxyz\nepochs: 3\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--config", str(bad_key)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "'epochs' is not a setting of `ase-psm train`" in err and "batch-size" in err
    not_mapping = tmp_path / "list.yaml"
    not_mapping.write_text("- 1\n- 2\n")
    with pytest.raises(SystemExit):
        main(["sample", "m.pt", "--config", str(not_mapping)])
    assert "must hold a mapping" in capsys.readouterr().err


def test_log_file_and_verbose(tmp_path, capsys):
    log = tmp_path / "run.log"
    assert main(["--log-file", str(log), "train", str(tmp_path / "missing.extxyz")]) == 2
    assert "error" in capsys.readouterr().err and "missing.extxyz" in log.read_text()
    with pytest.raises(FileNotFoundError):
        main(["--verbose", "train", str(tmp_path / "missing.extxyz")])


def test_evaluate_writes_hr_energy_and_ramachandran_plots(tmp_path, capsys):
    mdtraj = pytest.importorskip("mdtraj")
    pdb = str(resources.files("ase_psm") / "examples_data" / "ala2.pdb")
    structure = mdtraj.load(pdb)
    rng = np.random.default_rng(0)
    base = structure.xyz[0] * 10.0
    numbers = np.array([atom.element.atomic_number for atom in structure.topology.atoms])

    def frames(noise: float, n: int) -> Frames:
        return Frames(numbers, base + noise * rng.normal(size=(n, len(base), 3)), energies=rng.normal(size=n))

    write_frames(tmp_path / "reference.extxyz", frames(0.05, 60))
    write_frames(tmp_path / "samples.extxyz", frames(0.1, 30))
    plot = tmp_path / "eval.png"
    assert main(["evaluate", str(tmp_path / "samples.extxyz"), "--reference", str(tmp_path / "reference.extxyz"),
                 "--topology", pdb, "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "rama TVD" in out and "plots:" in out
    for name in ("eval.png", "eval_hr.png", "eval_energy.png", "eval_ramachandran.png"):
        assert (tmp_path / name).stat().st_size > 1000, name


def test_every_option_of_every_command_has_help(capsys):
    from ase_psm.cli.main import _subparsers

    for name, command in _subparsers(build_parser()).choices.items():
        undocumented = [a.dest for a in command._actions if not a.help]
        assert not undocumented, f"ase-psm {name}: {undocumented} have no help"
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and "ase-psm" in capsys.readouterr().out


def test_train_schedule_is_the_same_from_the_cli_and_the_api(lj7_file, tmp_path):
    """A partial sigma range keeps the rest of the loss's default schedule (GPFF: log-normal from 0.05 Å)."""
    from ase_psm.checkpoint import load_checkpoint
    from ase_psm.diffusion import NoiseSchedule
    from ase_psm.train import TrainConfig

    expected = NoiseSchedule(0.05, 30.0, kind="log-normal")
    assert TrainConfig(loss="gpff", schedule={"sigma_max": 30.0}).resolved_schedule == expected
    dsm = NoiseSchedule(0.1, 5.0, kind="log-normal")  # sigma-conditioned: log-normal by default
    assert TrainConfig(loss="dsm", schedule={"sigma_min": 0.1}).resolved_schedule == dsm
    out = tmp_path / "gpff.pt"
    assert main(["--quiet", "train", str(lj7_file), "--out", str(out), "--loss", "gpff", "--sigma-max", "30",
                 "--steps", "1", "--batch-size", "4", "--device", "cpu",
                 "--model", '{"hidden_irreps": "4x0e + 2x1e", "num_layers": 1, "sh_lmax": 1}']) == 0
    assert load_checkpoint(out)["schedule"] == expected.to_dict()


def test_quiet_silences_every_progress_bar(tmp_path, capfd):
    """Each command shows progress bars, and none with --quiet (tqdm bars end in '%|...' and redraw with '\\r')."""
    import ase
    import ase.io

    from ase_psm.demo import load_lj13_data

    template = tmp_path / "lj13.xyz"
    ase.io.write(template, ase.Atoms("Ar13", positions=load_lj13_data()["reference"][0]))
    commands = [
        ["demo", "--n", "4", "--sample-steps", "10", "--out", str(tmp_path / "demo")],
        ["sample", "lj13", "--template", str(template), "--n", "2", "--steps", "2", "--device", "cpu",
         "--on-invalid", "keep", "--out", str(tmp_path / "samples.extxyz")],
        ["denoise", "lj13", str(template), "--steps", "2", "--device", "cpu", "--out", str(tmp_path / "d.xyz")],
    ]
    for command in commands:
        for quiet in (False, True):
            assert main(["--quiet", *command] if quiet else command) == 0
            out, err = capfd.readouterr()
            shown = "%|" in out + err or "\r" in out + err or "Step" in out  # bars, or the denoiser's step log
            assert shown != quiet, f"ase-psm {'--quiet ' if quiet else ''}{command[0]}: {(out + err)[-300:]!r}"
