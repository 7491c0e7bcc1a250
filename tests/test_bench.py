"""Smoke tests of `ase-psm bench SYSTEM --size tiny`: end to end, well-formed JSON, cached data reused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ase_psm.benchmarks import BenchConfig, content_key, load_or_generate
from ase_psm.benchmarks.report import comparison, mean_std, table, write_report, write_summary_plots
from ase_psm.checkpoint import load_model
from ase_psm.cli.main import main

MODELS = "dsm,piecewise-weighted"


def _check_metric_set(metrics: dict) -> None:
    assert set(metrics) == {"values", "null_reasons"}
    for name, value in metrics["values"].items():
        if value is None:
            assert metrics["null_reasons"].get(name), f"{name} is null without a reason"
        else:
            assert isinstance(value, float) and math.isfinite(value), (name, value)


def _check_result(path: Path, system: str) -> dict:
    result = json.loads(path.read_text())
    for key in ("system", "dataset", "protocol", "model", "seed", "metrics", "training_set", "floor",
                "debias_ratio", "device", "wall_s", "command", "data_cache"):
        assert key in result, key
    assert result["system"] == system and result["size"] == "tiny"
    for key in ("metrics", "training_set", "floor"):
        _check_metric_set(result[key])
    assert all(v is None or math.isfinite(v) for v in result["debias_ratio"].values())
    assert result["wall_s"]["train_s"] > 0 and result["wall_s"]["sample_s"] > 0
    assert result["n_samples"] > 0
    return result


def _run_twice(system: str, tmp_path: Path, protocols: str = "biased", datasets: int = 1) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out"
    argv = ["--quiet", "bench", system, "--size", "tiny", "--seeds", "1", "--models", MODELS,
            "--protocols", protocols, "--cache", str(cache), "--out", str(out)]
    assert main(argv) == 0
    results = sorted((out / "results").glob("*.json"))
    assert len(results) == len(MODELS.split(",")) * len(protocols.split(",")) * datasets
    for path in results:
        result = _check_result(path, system)
        assert result["data_cache"]["cached"] is False
        if result["protocol"] == "cold":  # trained on its own cache entry, recorded beside the reference's
            assert Path(result["data_cache"]["training"]["path"]).name.startswith(f"{system}-cold-")
        else:
            assert "training" not in result["data_cache"]
    assert (out / "results.md").read_text().count("| dsm |") == len(protocols.split(",")) * datasets
    if system in ("md17", "ala2"):  # molecule networks are graph-conditioned and carry their bonds
        for checkpoint in (out / "runs").glob("*/model.pt"):
            model, _ = load_model(checkpoint, device="cpu")
            assert model.config.graph_conditioned and model.config.site_bonds
            assert not model.needs_topology
    assert any((out / "plots").glob("*_hr.png"))
    stored = {path: path.stat().st_mtime_ns for path in cache.glob("*.npz")}
    assert stored

    # second call: the data comes from the cache (files untouched), finished runs are skipped
    assert main([*argv, "--resume"]) == 0
    assert {path: path.stat().st_mtime_ns for path in cache.glob("*.npz")} == stored
    manifest = json.loads((out / f"manifest-{system}-tiny.json").read_text())
    assert manifest["data"] and all(entry["cached"] for entry in manifest["data"].values())
    assert all(own["cached"] for entry in manifest["data"].values() for own in entry["protocols"].values())


def test_bench_lj13_tiny(tmp_path):
    _run_twice("lj13", tmp_path, protocols="table2,biased")


def test_bench_lj55_tiny(tmp_path):
    _run_twice("lj55", tmp_path, protocols="cold")


def test_bench_md17_tiny(tmp_path):
    pytest.importorskip("rdkit")
    pytest.importorskip("tblite")
    _run_twice("md17", tmp_path, protocols="biased,early")
    results = [json.loads(path.read_text()) for path in (tmp_path / "out" / "results").glob("*_dsm_*.json")]
    n_training = {result["protocol"]: result["n_training"] for result in results}
    assert n_training == {"biased": 200, "early": 40}  # tiny: the first 200 MD steps and their first fifth


def test_bench_ala2_tiny(tmp_path):
    pytest.importorskip("openmm")
    pytest.importorskip("mdtraj")
    _run_twice("ala2", tmp_path)


def test_bench_md22_tiny(tmp_path):
    pytest.importorskip("openmm")
    pytest.importorskip("mdtraj")
    pytest.importorskip("rdkit")
    _run_twice("md22", tmp_path, datasets=2)
    results = {r["dataset"]: r for r in (json.loads(p.read_text()) for p in (tmp_path / "out" / "results").glob("*_dsm_*.json"))}
    assert results["md22-ac-ala3-nhme"]["metrics"]["values"]["ramachandran_tvd"] is not None  # over 3 residues
    assert set(results["md22-dw-nanotube"]["metrics"]["values"]) == {"hr_mae", "distance_tvd"}  # atoms interchange
    assert any((tmp_path / "out" / "plots").glob("md22-ac-ala3-nhme_biased_ramachandran.png"))


def test_md22_data_has_a_112_atom_peptide_with_ten_residues(tmp_path):
    pytest.importorskip("openmm")
    pytest.importorskip("mdtraj")
    pytest.importorskip("rdkit")
    from ase_psm.benchmarks.data import md22_data
    from ase_psm.metrics.structure import backbone_dihedrals

    (data,) = md22_data("tiny", tmp_path, molecules=("ac-ala10-nhme",))
    assert data.name == "md22-ac-ala10-nhme" and data.numbers.shape == (112,)
    frames, forces = data.training["biased"]
    assert frames.shape == forces.shape == (50, 112, 3) and np.isfinite(forces).all()
    assert backbone_dihedrals(data.reference, data.topology).shape == (60, 10, 2)


@pytest.mark.mindeps
def test_ala2_data_generation_is_reproducible():
    """The same seed gives bit-identical frames on every run (the cache key promises it)."""
    pytest.importorskip("openmm")
    from ase_psm.benchmarks.data import _ala2_run

    first, second = (_ala2_run(20, 50, 0, seed=0, progress=False, label="test") for _ in range(2))
    assert (first.positions == second.positions).all() and (first.forces == second.forces).all()
    assert not (first.positions[0] == first.positions[-1]).all()  # it did move


@pytest.mark.mindeps
def test_md17_data_generation_is_reproducible():
    """RDKit embedding and single-threaded xTB MD repeat bit for bit with the same seed."""
    pytest.importorskip("tblite")
    pytest.importorskip("rdkit")
    from ase_psm.benchmarks.data import molecule_from_smiles, xtb_langevin

    first, second = (xtb_langevin(molecule_from_smiles("CCO", seed=0), 100, 10, seed=0) for _ in range(2))
    assert all((a == b).all() for a, b in zip(first, second))
    assert not (first[0][0] == first[0][-1]).all()


def test_ala2_data_has_free_xh_bonds():
    """No constraints: X-H bonds vibrate, so the recorded F/kT is the score of the sampled distribution
    (with H-bond constraints their lengths are fixed and the force labels along them are not)."""
    pytest.importorskip("openmm")
    from ase_psm.benchmarks.data import _ala2_run
    from ase_psm.chemistry.bonds import bond_graph

    frames = _ala2_run(20, 20, 0, seed=0, progress=False, label="test")
    bonds = np.argwhere(np.triu(bond_graph(frames.numbers, frames.positions[0])))
    xh = [(i, j) for i, j in bonds if (frames.numbers[i] == 1) != (frames.numbers[j] == 1)]
    lengths = np.stack([np.linalg.norm(frames.positions[:, i] - frames.positions[:, j], axis=-1) for i, j in xh])
    assert len(xh) == 12
    # Å; a constrained bond holds its length to ~1e-6 Å, a free one over 20 frames spreads by 0.005-0.05 Å
    assert lengths.std(axis=1).min() > 1e-3


def test_cache_key_and_reuse(tmp_path):
    calls = []

    def generate():
        calls.append(1)
        return {"x": __import__("numpy").arange(3.0)}

    first = load_or_generate(tmp_path, "toy", {"n": 3}, generate)
    second = load_or_generate(tmp_path, "toy", {"n": 3}, generate)
    assert not first.cached and second.cached and len(calls) == 1
    assert content_key({"n": 3}) != content_key({"n": 4})
    assert (second.arrays["x"] == first.arrays["x"]).all()


def test_time_step_free_models_train_with_gpff_weighting_unless_set():
    from ase_psm.benchmarks.config import MODELS

    config = BenchConfig("lj13", size="cpu")
    assert config.train_config(MODELS["piecewise-weighted"]).loss_weighting == "score"
    assert config.train_config(MODELS["gpff"]).loss_weighting == "gpff"
    assert config.train_config(MODELS["tsf-psm"]).loss_weighting == "gpff"
    chosen = BenchConfig("lj13", size="cpu", overrides={"loss_weighting": "epsilon", "steps": 7})
    assert chosen.train_config(MODELS["tsf-psm"]).loss_weighting == "epsilon"
    assert chosen.train_config(MODELS["dsm"]).steps == 7 and config.train_config(MODELS["dsm"]).steps == 2000


def test_a_dict_setting_updates_the_sizes_dict_key_by_key():
    from ase_psm.benchmarks.config import MODELS

    chosen = BenchConfig("lj13", size="cpu", overrides={"schedule": {"kind": "log-uniform"}})
    schedule = chosen.train_config(MODELS["dsm"]).resolved_schedule
    assert (schedule.kind, schedule.sigma_min, schedule.sigma_max) == ("log-uniform", 0.01, 3.0)
    assert BenchConfig("lj13", size="cpu").train_config(MODELS["dsm"]).resolved_schedule.kind == "log-normal"


def test_the_training_set_is_scored_at_the_samples_count(tmp_path):
    """The debias ratio compares equal numbers of structures: the training set's metrics are the mean over
    disjoint subsets of as many frames as the samples."""
    from ase_psm.benchmarks import evaluate, load_system
    from ase_psm.benchmarks.evaluate import disjoint_subsets, training_metrics

    (data,) = load_system("lj13", "tiny", tmp_path, progress=False)
    frames = data.training["biased"][0]
    assert training_metrics(frames, data, len(frames)).values == evaluate(frames, data).values
    halves = disjoint_subsets(frames, len(frames) // 2)
    assert len(halves) == 2 and np.allclose(np.sort(np.concatenate(halves), axis=None), np.sort(frames, axis=None))
    half = training_metrics(frames, data, len(frames) // 2).values["distance_tvd"]
    assert half == pytest.approx(np.mean([evaluate(subset, data).values["distance_tvd"] for subset in halves]))
    assert half > evaluate(frames, data).values["distance_tvd"]  # fewer structures: further by chance alone


def test_bad_settings_give_clear_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown model"):
        BenchConfig("lj13", models=("nope",))
    with pytest.raises(ValueError, match="protocols"):
        BenchConfig("md17", protocols=("table2",))
    assert main(["bench", "lj13", "--models", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown model" in capsys.readouterr().err
    with pytest.raises(ValueError, match="md17 or md22 molecules; lj13 has none"):
        BenchConfig("lj13", molecules=("ethanol",))
    with pytest.raises(ValueError, match=r"unknown md17 molecule\(s\) \['benzene'\]"):
        BenchConfig("md17", molecules=("benzene",))
    with pytest.raises(ValueError, match=r"\['sigma_mn'\] are not training or sampling settings; known: .*schedule"):
        BenchConfig("lj13", overrides={"sigma_mn": 0.1})
    with pytest.raises(ValueError, match="final_corrector_steps applies to the pc sampler only"):
        BenchConfig("lj13", overrides={"sampler": "heun", "final_corrector_steps": 100})
    with pytest.raises(SystemExit):
        main(["bench", "lj13", "--set", "steps", "--out", str(tmp_path)])
    assert "--set takes KEY=VALUE" in capsys.readouterr().err


def test_set_changes_the_training_settings_of_the_runs(tmp_path):
    out = tmp_path / "out"
    argv = ["--quiet", "bench", "lj13", "--size", "tiny", "--seeds", "1", "--models", "piecewise-weighted",
            "--protocols", "biased", "--out", str(out), "--set", "steps=2", "--set", "force-crossover-t=0.3",
            "--set", "sampler=euler"]
    assert main(argv) == 0
    result = json.loads(next((out / "results").glob("*.json")).read_text())
    assert result["settings"]["steps"] == 2 and result["settings"]["force_crossover_t"] == 0.3
    assert result["settings"]["sampler"] == "euler"
    checkpoint = torch.load(next((out / "runs").glob("*/model.pt")), weights_only=True)
    assert checkpoint["step"] == 2 and checkpoint["force_crossover_t"] == 0.3


def test_table_mean_std():
    assert mean_std([1.0, 3.0]) == "2 ± 1.4"
    assert mean_std([None]) == "n/a"
    assert mean_std([1.0, None]) == "1 (1 null)"
    row = {"dataset": "lj13", "protocol": "biased", "size": "tiny", "n_samples": 2, "n_training": 3, "n_reference": 4,
           "model": "dsm", "metrics": {"values": {"distance_tvd": 0.1}, "null_reasons": {}},
           "training_set": {"values": {"distance_tvd": 0.05}, "null_reasons": {}}, "debias_ratio": {"distance_tvd": 2.0},
           "floor": {"values": {"distance_tvd": 0.01}, "null_reasons": {}}, "wall_s": {"train_s": 1.0, "sample_s": 1.0}}
    text = table([row], "lj13", "biased")
    assert "| dsm | 1 | 0.1 | 2 |" in text and "training set" in text


def test_comparison_counts_wins_and_mean_reduction(tmp_path):
    def result(dataset, model, seed, value):
        values = {"values": {"hr_mae": value}, "null_reasons": {}}
        return {"dataset": dataset, "protocol": "biased", "model": model, "seed": seed, "metrics": values,
                "training_set": values, "floor": values, "debias_ratio": {"hr_mae": 1.0}, "size": "tiny",
                "n_samples": 1, "n_training": 1, "n_reference": 1, "wall_s": {"train_s": 1.0, "sample_s": 1.0}}

    results = [result("a", "dsm", 0, 0.2), result("a", "dsm", 1, 0.4), result("a", "piecewise-weighted", 0, 0.15),
               result("b", "dsm", 0, 0.1), result("b", "piecewise-weighted", 0, 0.11),
               result("c", "piecewise-weighted", 0, 0.1)]  # c has no DSM run: left out
    text = comparison(results, "biased", "hr_mae", model="piecewise-weighted")
    # a: 1 - 0.15 / 0.3 = +50 %; b: 1 - 0.11 / 0.1 = -10 %; mean +20 %
    assert "| a | 0.3 | 0.15 | +50.0 % |" in text and "| b | 0.1 | 0.11 | -10.0 % |" in text
    assert "lower on 1 of 2" in text and "mean +20.0 %" in text and "| c |" not in text
    assert comparison(results[:3], "biased", "hr_mae", model="piecewise-weighted") == ""  # one data set
    assert comparison(results, "biased", "hr_mae") == ""  # no run of the default loss, harmonic

    (tmp_path / "results").mkdir()
    for k, row in enumerate(results):
        (tmp_path / "results" / f"{k}.json").write_text(json.dumps(row))
    report = write_report(tmp_path).read_text()
    assert "piecewise-weighted against dsm" in report and "harmonic against dsm" not in report
    assert write_summary_plots(tmp_path) == [tmp_path / "plots" / "biased_hr_mae.png"]
    assert (tmp_path / "plots" / "biased_hr_mae.png").stat().st_size > 0


def test_bench_resume_reuses_finished_training(tmp_path, capsys):
    """--resume with a trained model but no result JSON samples again without retraining; a run
    trained for another number of steps is refused, not silently extended."""
    argv = ["--quiet", "bench", "lj13", "--size", "tiny", "--seeds", "1", "--models", "dsm",
            "--protocols", "biased", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    (result_path,) = (tmp_path / "out" / "results").glob("*.json")
    assert json.loads(result_path.read_text())["resumed_from_step"] == 0
    model = tmp_path / "out" / "runs" / "lj13_biased_dsm_seed0" / "model.pt"
    trained = model.stat().st_mtime_ns
    result_path.unlink()
    assert main([*argv, "--resume", "--set", "sample_steps=4"]) == 0
    result = json.loads(result_path.read_text())
    assert result["resumed_from_step"] == 3 and result["settings"]["sample_steps"] == 4
    assert model.stat().st_mtime_ns == trained
    result_path.unlink()
    assert main([*argv, "--resume", "--set", "steps=6"]) != 0
    assert "trained with steps=3, now steps=6" in capsys.readouterr().err


def test_bench_first_seed_runs_only_its_seeds(tmp_path, capsys):
    argv = ["--quiet", "bench", "lj13", "--size", "tiny", "--models", "dsm", "--protocols", "biased",
            "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    assert main([*argv, "--first-seed", "2", "--seeds", "1"]) == 0
    assert [p.name for p in (tmp_path / "out" / "results").glob("*.json")] == ["lj13_biased_dsm_seed2.json"]
    assert json.loads((tmp_path / "out" / "results" / "lj13_biased_dsm_seed2.json").read_text())["seed"] == 2
    assert main([*argv, "--first-seed", "-1"]) != 0
    assert "--first-seed must be >= 0" in capsys.readouterr().err


def test_bench_rescore_evaluates_saved_samples_again(tmp_path, capsys):
    """--rescore neither trains nor samples: it scores runs/<run>/samples.npy against the current data."""
    argv = ["--quiet", "bench", "lj13", "--size", "tiny", "--seeds", "1", "--models", "dsm",
            "--protocols", "biased", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    (result_path,) = (tmp_path / "out" / "results").glob("*.json")
    before = json.loads(result_path.read_text())
    run_dir = tmp_path / "out" / "runs" / "lj13_biased_dsm_seed0"
    trained = (run_dir / "model.pt").stat().st_mtime_ns
    np.save(run_dir / "samples.npy", 1.5 * np.load(run_dir / "samples.npy"))  # swollen clusters: a worse h(r)
    assert main([*argv, "--rescore"]) == 0
    after = json.loads(result_path.read_text())
    assert after["metrics"]["values"]["hr_mae"] > before["metrics"]["values"]["hr_mae"]
    assert after["settings"] == before["settings"] and after["wall_s"]["train_s"] == before["wall_s"]["train_s"]
    assert after["rescored_command"] and before["rescored_command"] == ""  # the command line (here pytest's)
    assert (run_dir / "model.pt").stat().st_mtime_ns == trained
    assert main([*argv, "--rescore", "--set", "sample_steps=4"]) == 2
    assert "--set changes nothing" in capsys.readouterr().err
    (run_dir / "samples.npy").unlink()
    assert main([*argv, "--rescore"]) != 0
    assert "run it without --rescore first" in capsys.readouterr().err
