"""Run one benchmark system end to end: data (cached), training, sampling, evaluation, JSON results."""

from __future__ import annotations

import json
import platform
import shlex
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..train import TrainConfig
from .config import (
    MD17_MOLECULES,
    MD22_MOLECULES,
    MODELS,
    PROTOCOLS,
    SETTINGS,
    SIZES,
    SYSTEMS,
    BenchSettings,
    ModelSpec,
)
from .data import BenchData, load_system
from .evaluate import evaluate, floor_metrics, training_metrics


@dataclass
class BenchConfig:
    """What `ase-psm bench` runs."""

    system: str
    size: str = "cpu"
    seeds: int = 3
    first_seed: int = 0
    """Run seeds ``first_seed .. first_seed + seeds - 1`` (to split one grid across processes or machines)."""
    device: str = "cpu"
    out: Path = Path("bench")
    cache: Path | None = None
    """Data cache directory (default: <out>/cache)."""
    models: tuple[str, ...] = tuple(MODELS)
    protocols: tuple[str, ...] | None = None
    """Default: every protocol of the system."""
    threads: int | None = None
    """torch CPU threads (None: torch's default)."""
    molecules: tuple[str, ...] | None = None
    """md17 and md22 only: the molecules to run, any of ``MD17_MOLECULES`` or ``MD22_MOLECULES`` (default: the
    size's list)."""
    overrides: dict = field(default_factory=dict)
    """Training (TrainConfig) or sampling (BenchSettings) fields to change from the size's settings
    (ablations, ``--set``), e.g. {"steps": 16000, "sample_steps": 400}; they beat the model's own."""
    progress: bool = True
    resume: bool = False
    """Skip runs whose result JSON already exists (and load it); continue an interrupted run's training
    from its ``model.last.pt`` (a finished one is not retrained: only sampled and evaluated again)."""
    rescore: bool = False
    """Neither train nor sample: evaluate each finished run's saved ``samples.npy`` against the current
    data (e.g. a longer reference) and rewrite its result JSON, which keeps its training and sampling record."""
    command: str = field(default_factory=lambda: shlex.join(["ase-psm", *sys.argv[1:]]))

    def __post_init__(self) -> None:
        if self.system not in SYSTEMS:
            raise ValueError(f"unknown system {self.system!r}; choose from {', '.join(SYSTEMS)}")
        if self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r}; choose from {', '.join(SIZES)}")
        unknown = [m for m in self.models if m not in MODELS]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
        if self.seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {self.seeds}")
        if self.first_seed < 0:
            raise ValueError(f"--first-seed must be >= 0, got {self.first_seed}")
        self.protocols = tuple(self.protocols or PROTOCOLS[self.system])
        bad = [p for p in self.protocols if p not in PROTOCOLS[self.system]]
        if bad:
            raise ValueError(f"{self.system} has protocols {PROTOCOLS[self.system]}, not {bad}")
        if self.molecules is not None:
            known = {"md17": MD17_MOLECULES, "md22": MD22_MOLECULES}.get(self.system)
            if known is None:
                raise ValueError(f"--molecules selects md17 or md22 molecules; {self.system} has none: leave it out")
            unknown = [m for m in self.molecules if m not in known]
            if unknown:
                raise ValueError(f"unknown {self.system} molecule(s) {unknown}; choose from {', '.join(known)}")
        self.settings  # noqa: B018 (checks the overrides)
        if self.rescore and self.overrides:
            raise ValueError("--rescore evaluates saved samples as they were made; --set changes nothing: leave it out")
        self.out = Path(self.out)
        self.cache = Path(self.cache) if self.cache is not None else self.out / "cache"

    @property
    def settings(self) -> BenchSettings:
        """The size's training and sampling budget with the sampling ``overrides`` applied."""
        return SETTINGS[self.system][self.size].with_overrides(self.overrides)

    def train_config(self, spec: ModelSpec, **fixed) -> TrainConfig:
        """The TrainConfig of one model's runs: the size's settings, the model's, ``--set``, then ``fixed``."""
        return self.settings.train_config(spec, self.overrides, **fixed)


@dataclass
class RunResult:
    """One (data set, protocol, model, seed) run; written as JSON."""

    system: str
    dataset: str
    protocol: str
    model: str
    loss: str
    sigma_conditioned: bool | None
    seed: int
    size: str
    metrics: dict
    training_set: dict
    """The training set's own metrics against the reference (DESIGN "debias ratio"), at the samples' count:
    the mean over disjoint random subsets of ``n_samples`` frames."""
    floor: dict
    """Metrics of as many reference structures against the rest (finite-sample floor)."""
    debias_ratio: dict
    """metric(samples) / metric(training set) per metric; < 1: closer to the reference than the data."""
    n_samples: int
    n_training: int
    n_reference: int
    sample_report: str
    invalid: int
    settings: dict
    data_cache: dict
    wall_s: dict
    device: dict
    command: str
    resumed_from_step: int = 0
    """Training step this run's training continued from (``--resume``); 0: trained from scratch."""
    rescored_command: str = ""
    """The ``--rescore`` command that last evaluated this run's samples again ("": never)."""


def device_info(device: str) -> dict:
    """The machine a run used, in words."""
    import os

    import torch

    info = {"requested": device, "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version()}
    if device != "cpu" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


#: Metrics where smaller is closer to the reference; the debias ratio is reported for these.
DISTANCE_METRICS = ("distance_tvd", "x_w2", "energy_w2", "hr_mae", "ramachandran_tvd")


def _ratio(samples: dict, training: dict) -> dict:
    out = {}
    for name, value in samples.items():
        if name not in DISTANCE_METRICS:
            continue
        base = training.get(name)
        out[name] = value / base if value is not None and base not in (None, 0.0) else None
    return out


def train_and_sample(data: BenchData, protocol: str, train_config: TrainConfig, settings: BenchSettings,
                     config: BenchConfig, run_dir: Path) -> tuple[np.ndarray, str, int, dict, int]:
    """Train one model and draw its samples: (positions, report text, invalid count, wall times in s,
    the step training continued from)."""
    import ase

    from ..data import Frames
    from ..generate import sample
    from ..train import train

    positions, forces = data.training[protocol]
    frames = Frames(data.numbers, positions, forces=forces)
    checkpoint = run_dir / "model.pt"
    resumed_from_step = _saved_step(checkpoint, train_config.steps) if config.resume else 0
    started = time.perf_counter()
    train(frames, checkpoint, config=train_config, progress=config.progress, resume=config.resume)
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    sampler_options: dict[str, Any] = {}
    if settings.final_corrector_steps:  # BenchConfig checked that the sampler is pc
        sampler_options["final_corrector_steps"] = settings.final_corrector_steps
    with warnings.catch_warnings():  # invalid structures are kept, counted and reported in the JSON
        warnings.simplefilter("ignore", RuntimeWarning)
        structures = sample(
            checkpoint, ase.Atoms(numbers=data.numbers, positions=data.reference[0]), n=settings.n_samples,
            sampler=settings.sampler, steps=settings.sample_steps, seed=train_config.seed, device=config.device,
            progress=config.progress, on_invalid="keep", check_bonds=not data.name.startswith("lj"),
            **sampler_options,
        )
    sample_s = time.perf_counter() - started
    samples = np.stack([atoms.positions for atoms in structures])
    np.save(run_dir / "samples.npy", samples)
    return samples, str(structures.report), structures.report.invalid, {"train_s": train_s, "sample_s": sample_s}, resumed_from_step


def _saved_step(checkpoint: Path, steps: int) -> int:
    """The step of ``checkpoint``'s saved training state (0 if none); an error if it was trained for a
    different number of steps (its learning-rate schedule would not match a fresh run's)."""
    from ..checkpoint import load_checkpoint
    from ..train.loop import last_checkpoint_path

    last = last_checkpoint_path(checkpoint)
    if not last.exists():
        return 0
    state = load_checkpoint(last)
    if state["train_config"]["steps"] != steps:
        raise ValueError(f"{last} was trained with steps={state['train_config']['steps']}, now steps={steps}; "
                         "use another --out (or delete the run directory) to train afresh")
    return int(state["step"])


def run_one(data: BenchData, protocol: str, model: str, seed: int, config: BenchConfig,
            baselines: dict[str, dict]) -> RunResult:
    """Train, sample, evaluate and write ``<out>/results/<dataset>_<protocol>_<model>_seed<seed>.json``."""
    spec = MODELS[model]
    settings = config.settings
    run_dir = config.out / "runs" / f"{data.name}_{protocol}_{model}_seed{seed}"
    path = config.out / "results" / f"{run_dir.name}.json"
    if config.rescore:
        return _rescore(path, run_dir / "samples.npy", data, protocol, config, baselines)
    if config.resume and path.is_file():
        return RunResult(**json.loads(path.read_text()))
    run_dir.mkdir(parents=True, exist_ok=True)
    positions = data.training[protocol][0]
    train_config = config.train_config(spec, kT=data.kT, temperature=data.temperature, seed=seed,
                                       device=config.device)
    batch_size = min(train_config.batch_size, len(positions))
    if settings.max_batch_atoms:
        batch_size = min(batch_size, max(1, settings.max_batch_atoms // positions.shape[1]))
    train_config = replace(train_config, batch_size=batch_size)
    samples, report, invalid, wall, resumed_from_step = train_and_sample(data, protocol, train_config, settings,
                                                                         config, run_dir)
    started = time.perf_counter()
    metrics = evaluate(samples, data).as_dict()
    wall["eval_s"] = time.perf_counter() - started
    data_cache = data.cache_for(protocol)
    wall["data_generation_s"] = data_cache.get("generation_s", 0.0) + data_cache.get("training", {}).get("generation_s", 0.0)
    result = RunResult(
        system=config.system, dataset=data.name, protocol=protocol, model=model, loss=train_config.loss,
        sigma_conditioned=train_config.sigma_conditioned, seed=seed, size=config.size, metrics=metrics,
        training_set=baselines["training"], floor=baselines["floor"],
        debias_ratio=_ratio(metrics["values"], baselines["training"]["values"]), n_samples=len(samples),
        n_training=len(data.training[protocol][0]), n_reference=len(data.reference), sample_report=report,
        invalid=invalid, settings=settings.record(train_config), data_cache=data_cache, wall_s=wall,
        device=device_info(config.device), command=config.command, resumed_from_step=resumed_from_step,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(result), indent=2))
    return result


def _rescore(path: Path, samples_path: Path, data: BenchData, protocol: str, config: BenchConfig,
             baselines: dict[str, dict]) -> RunResult:
    """Evaluate a finished run's saved samples against `data` and rewrite its result JSON at `path`."""
    if not path.is_file() or not samples_path.is_file():
        raise FileNotFoundError(f"--rescore needs a finished run with {path} and {samples_path}; "
                                "run it without --rescore first")
    result = RunResult(**json.loads(path.read_text()))
    samples = np.load(samples_path)
    started = time.perf_counter()
    metrics = evaluate(samples, data).as_dict()
    result.wall_s["eval_s"] = time.perf_counter() - started
    result.metrics, result.training_set, result.floor = metrics, baselines["training"], baselines["floor"]
    result.debias_ratio = _ratio(metrics["values"], baselines["training"]["values"])
    result.n_reference, result.data_cache = len(data.reference), data.cache_for(protocol)
    result.rescored_command = config.command
    path.write_text(json.dumps(asdict(result), indent=2))
    return result


def run_benchmark(config: BenchConfig) -> list[RunResult]:
    """Every (data set, protocol, model, seed) of `config`; returns the results (also written as JSON)
    and writes the plots and ``<out>/results.md``."""
    import torch

    from .report import write_plots, write_report, write_summary_plots

    if config.threads:
        torch.set_num_threads(config.threads)
    started = time.perf_counter()
    assert config.cache is not None  # set by __post_init__
    datasets = load_system(config.system, config.size, config.cache, progress=config.progress,
                           molecules=config.molecules)
    data_s = time.perf_counter() - started
    settings = config.settings
    assert config.protocols is not None
    jobs = [(d, p, m, s) for d in datasets for p in config.protocols for m in config.models
            for s in range(config.first_seed, config.first_seed + config.seeds)]
    baselines: dict[tuple[str, str], dict] = {}
    results = []
    for data, protocol, model, seed in tqdm(jobs, desc=f"bench {config.system}", disable=not config.progress):
        key = (data.name, protocol)
        if key not in baselines:
            training = training_metrics(data.training[protocol][0], data, settings.n_samples)
            baselines[key] = {"training": training.as_dict(),
                              "floor": floor_metrics(data, settings.n_samples).as_dict()}
        results.append(run_one(data, protocol, model, seed, config, baselines[key]))
    for data in datasets:
        for protocol in config.protocols:
            write_plots(data, protocol, config.out)
    write_report(config.out)
    write_summary_plots(config.out)
    manifest = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
                "data": {d.name: {**d.cache, "protocols": d.protocol_caches} for d in datasets}, "data_s": data_s,
                "total_s": time.perf_counter() - started, "runs": len(results), "device": device_info(config.device)}
    (config.out / f"manifest-{config.system}-{config.size}.json").write_text(json.dumps(manifest, indent=2))
    return results
