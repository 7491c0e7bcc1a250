"""sample()'s settings (SampleConfig), its one return type, and the ase-psm sample flags built from them."""

from __future__ import annotations

import argparse
import dataclasses
import warnings
from typing import Literal

import numpy as np
import pytest

from ase_psm import SampleConfig, sample
from ase_psm.cli.flags import add_config_flags, config_from_flags, field_docs
from ase_psm.cli.main import build_parser
from ase_psm.generate import Structures
from ase_psm.metrics.validity import SampleReport


def test_every_sample_config_field_has_a_flag_with_the_same_default():
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    sample_command = commands.choices["sample"]
    flags = {action.dest: action for action in sample_command._actions}
    for field in dataclasses.fields(SampleConfig):
        assert field.name in flags, f"ase-psm sample has no flag for SampleConfig.{field.name}"
        assert flags[field.name].default == field.default, field.name
    docs = field_docs(SampleConfig)
    assert set(docs) == {field.name for field in dataclasses.fields(SampleConfig)}  # every field documented
    assert flags["sampler"].choices == ("pc", "euler", "heun", "ancestral", "adaptive", "direct")
    assert flags["check_bonds"].option_strings == ["--no-bond-check"] and flags["renumber"].option_strings == [
        "--no-renumber"]


@dataclasses.dataclass
class Settings:
    steps: int = 3
    """Steps."""
    scale: float | None = None
    """A length (Å), 5 % of it."""
    mode: Literal["gaussian", "structure"] = "gaussian"
    crossover: float | str = 0.05
    model: dict = dataclasses.field(default_factory=dict)
    quiet: bool = False
    check: bool = True


def test_config_flags_parse_types_choices_and_switches():
    parser = argparse.ArgumentParser()
    add_config_flags(parser, Settings)
    args = parser.parse_args(["--steps", "4", "--scale", "0.5", "--mode", "structure", "--crossover", "thermal",
                              "--model", '{"num_layers": 2}', "--quiet", "--no-check"])
    assert vars(args) == dict(steps=4, scale=0.5, mode="structure", crossover="thermal", model={"num_layers": 2},
                              quiet=True, check=False)
    assert vars(parser.parse_args([])) == dict(steps=3, scale=None, mode="gaussian", crossover=0.05, model={},
                                               quiet=False, check=True)
    with pytest.raises(SystemExit):
        parser.parse_args(["--mode", "noise"])
    assert "5 %" in parser.format_help() and config_from_flags(Settings, parser.parse_args([])) == Settings()


def test_sample_config_checks_its_settings():
    with pytest.raises(ValueError, match="unknown on_invalid 'ignore'; choose one of regenerate, drop, keep"):
        SampleConfig(on_invalid="ignore")
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        SampleConfig(batch_size=0)
    with pytest.raises(ValueError, match="the adaptive sampler has no option.* noise_scale; its options: sigma_stop, kappa"):
        SampleConfig(sampler="adaptive", noise_scale=0.5)
    assert SampleConfig(sampler="adaptive", kappa=0.5).sampler_options() == {"kappa": 0.5}
    assert SampleConfig().sampler_options() == {}


def test_sample_batches_are_capped_by_atoms(tiny_checkpoint, lj7_frames, monkeypatch):
    from ase_psm.diffusion import samplers

    sizes: list[int] = []
    euler = samplers.SAMPLERS["euler"]
    monkeypatch.setitem(samplers.SAMPLERS, "euler", lambda d, x, s, **kw: sizes.append(len(x)) or euler(d, x, s, **kw))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sample(tiny_checkpoint, lj7_frames.to_atoms(0), 5, steps=2, sampler="euler", device="cpu", on_invalid="keep",
               batch_atoms=15, progress=False)  # 15 // 7 atoms = 2 structures per batch
        sample(tiny_checkpoint, lj7_frames.to_atoms(0), 3, steps=2, sampler="euler", device="cpu", on_invalid="keep",
               batch_atoms=3, progress=False)  # fewer atoms than one structure: one at a time
    assert sizes == [2, 2, 1, 1, 1, 1]


def test_sample_returns_a_list_with_its_report(tiny_checkpoint, lj7_frames):
    template = lj7_frames.to_atoms(0)
    options = dict(steps=2, sampler="euler", device="cpu", on_invalid="keep")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        structures = sample(tiny_checkpoint, template, 3, progress=False, **options)
        again = sample(tiny_checkpoint, template, 3, config=SampleConfig(**options), progress=False)
    assert isinstance(structures, list) and isinstance(structures, Structures) and len(structures) == 3
    assert isinstance(structures.report, SampleReport) and structures.report.returned == 3
    np.testing.assert_array_equal(structures[0].positions, again[0].positions)
    with pytest.raises(TypeError, match="either config"):
        sample(tiny_checkpoint, template, 1, config=SampleConfig(), steps=2)
    with pytest.raises(TypeError, match=r"no setting\(s\) return_report \(the returned list carries the SampleReport"):
        sample(tiny_checkpoint, template, 1, return_report=True)
