"""Checks and measures ase-psm on an accelerator in one command, within a time budget.

    python benchmarks/gpu_check.py --out gpu-report
    python benchmarks/gpu_check.py --device cpu --tiny --out /tmp/gpu-check   # the same in seconds on a CPU

1. Tests: ``pytest -m device`` in a child process: the device-sensitive tests on the CPU and on CUDA
   (equivariance in float32 and float64, calculator, denoiser, every sampler, training on the device
   continued on the CPU and back, DDP on two or more GPUs); counts, failures and wall time.
2. Throughput on the device and on this machine's CPU, side by side in one process (random weights,
   random 22-atom molecules of H, C, N and O, the default network, 5 Å cutoff):
   ``PSMCalculator.calculate_batch`` at batch 256 against one structure at a time
   (``atoms.get_forces()``), ``sample`` (euler) structures/s, training steps/s (batch 64), and the
   peak GPU memory of each (``torch.cuda.max_memory_allocated``). ``compile=True`` for the calculator
   on the device, in a child process with a time limit: compile time, speed and difference from the
   eager forces, or the error.
3. With the rest of ``--budget-s``: ``ase-psm bench ala2 --size cpu --seeds 1 --models
   harmonic`` (the default loss) on the device with ``--set time_limit=<seconds left>``; results and checkpoints
   under ``<out>/ala2``. Its OpenMM data (about 5 million MD steps, one CPU thread, minutes) is generated
   in the background from the start, or read from ``--cache``; the part is skipped, and the report says
   why, when it does not fit.

``--tiny``: tiny networks and batches, only tests/test_model.py's device tests, the bench's tiny size.
Writes results.json and tables.md to --out after each part (a stopped run keeps what it measured),
the tests' JUnit XML and log (tests.xml, tests.log) and the compile log (compile.log).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import ase
import numpy as np
import torch

import ase_psm
from ase_psm import PSMCalculator, sample
from ase_psm.benchmarks.nfe import NFECounter
from ase_psm.checkpoint import load_checkpoint, resolve_device, save_checkpoint
from ase_psm.data import Frames
from ase_psm.model import ModelConfig, PseudoForceNet
from ase_psm.train import train
from ase_psm.train.loop import last_checkpoint_path

REPOSITORY = Path(__file__).resolve().parents[1]
PACKAGE_ROOT = Path(ase_psm.__file__).resolve().parents[1]
"""The folder that holds the imported ase_psm: child processes import the same one."""
SPECIES = [1, 6, 7, 8]
CUTOFF = 5.0
"""Å"""
DENSITY = 0.1
"""atoms / Å^3 of the random molecules"""
SIGMA = 0.5
"""Å: the calculator's fixed noise level, one network evaluation per call"""
ALA2_MODEL = "harmonic"


@dataclass(frozen=True)
class Plan:
    """The sizes of one check: full (an accelerator, minutes) or tiny (a CPU, seconds)."""

    network: dict = field(default_factory=dict)
    """ModelConfig overrides of the timed network ({}: the default network)."""
    atoms: int = 22
    batch: int = 256
    """Structures per calculate_batch and sample call."""
    single: int = 32
    """Structures timed one at a time."""
    sample_steps: int = 4
    train_batch: int = 64
    train_every: int = 20
    """Training is timed over steps train_every to 3 * train_every (the first ones warm up)."""
    test_paths: tuple[str, ...] = ("tests",)
    tests_timeout_s: float = 180.0
    compile_timeout_s: float = 120.0
    bench_size: str = "cpu"
    min_train_s: float = 60.0
    """The ala2 part runs only if it can train at least this long."""
    after_training_s: float = 75.0
    """Left for the bench's start, sampling, evaluation and plots besides training."""


FULL = Plan()
TINY = Plan(
    network=dict(hidden_irreps="8x0e + 4x1e", sh_lmax=1, num_layers=1, radial_hidden=16), atoms=8, batch=16,
    single=4, sample_steps=2, train_batch=8, train_every=2, test_paths=("tests/test_model.py",),
    tests_timeout_s=120.0, compile_timeout_s=5.0, bench_size="tiny", min_train_s=1.0, after_training_s=30.0,
)


# ---------------------------------------------------------------------------------------------- helpers


@dataclass
class ChildResult:
    """A finished (or stopped) child process."""

    status: str
    """One of "done", "failed" (non-zero exit) or "timed out"."""
    returncode: int | None
    stdout: str
    stderr: str
    wall_s: float


def start_child(command: list[str], cwd: Path | None = None) -> subprocess.Popen:
    """``command`` started in its own process group, importing this ase_psm, its output captured."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            env=environment, start_new_session=True)


def run_child(command: list[str], timeout_s: float, cwd: Path | None = None) -> ChildResult:
    """Run ``command`` (:func:`start_child`); after ``timeout_s`` seconds its whole process group is killed."""
    started = time.perf_counter()
    with start_child(command, cwd) as child:
        return _wait(child, timeout_s, started)


def _wait(child: subprocess.Popen, timeout_s: float, started: float) -> ChildResult:
    """Wait up to ``timeout_s`` for ``child`` (started at ``started``), killing its process group after that."""
    try:
        stdout, stderr = child.communicate(timeout=None if child.poll() is not None else max(timeout_s, 0.0))
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)  # the child and what it started (compile workers, OpenMM)
        stdout, stderr = child.communicate()
        return ChildResult("timed out", None, stdout, stderr, time.perf_counter() - started)
    status = "done" if child.returncode == 0 else "failed"
    return ChildResult(status, child.returncode, stdout, stderr, time.perf_counter() - started)


def last_line(text: str) -> str:
    """The last non-empty line of ``text`` (a traceback's exception), at most 500 characters."""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


def error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:500]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_of(function: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Shortest wall time (s) of ``repeats`` calls after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        function()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times)


def with_peak_memory(name: str, device: torch.device, function: Callable[[], dict]) -> dict:
    """``function()``'s results, with ``<name>_peak_gpu_MiB`` on CUDA, or ``<name>_error`` if it failed."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        results = function()
    except Exception as error:  # noqa: BLE001 (recorded: one failed measurement must not stop the others)
        return {f"{name}_error": error_text(error)}
    if device.type == "cuda":
        results[f"{name}_peak_gpu_MiB"] = torch.cuda.max_memory_allocated(device) / 2**20
    return results


def seconds_left(deadline: float) -> float:
    return deadline - time.perf_counter()


# ------------------------------------------------------------------------------------------ 1. the tests


def device_tests(plan: Plan, out: Path, deadline: float) -> dict:
    """``pytest -m device`` on ``plan.test_paths`` in a child process: status, counts, failures, wall time."""
    missing = [path for path in plan.test_paths if not (REPOSITORY / path).exists()]
    if missing:
        return {"status": "skipped", "reason": f"{', '.join(missing)} not found beside benchmarks/ ({REPOSITORY})"}
    report = out / "tests.xml"
    report.unlink(missing_ok=True)  # a report of an earlier run must not be read as this one's
    command = [sys.executable, "-m", "pytest", "-m", "device", "-p", "no:cacheprovider", "-q",
               f"--junitxml={report}", *plan.test_paths]
    result = run_child(command, min(plan.tests_timeout_s, seconds_left(deadline)), cwd=REPOSITORY)
    (out / "tests.log").write_text(result.stdout + result.stderr)
    summary = {"status": _pytest_status(result), "command": shlex.join(command), "wall_s": result.wall_s}
    if report.is_file():
        summary.update(junit_counts(report))
    return summary


def _pytest_status(result: ChildResult) -> str:
    """passed, failed (a test failed), timed out, or pytest's exit code (5: no device tests collected)."""
    if result.status == "timed out":
        return "timed out"
    return {0: "passed", 1: "failed"}.get(result.returncode or 0, f"pytest exit code {result.returncode}")


def junit_counts(path: Path) -> dict:
    """Test counts, failing test ids and pytest's own duration (s) from a JUnit XML report."""
    root = ElementTree.parse(path).getroot()
    suites = list(root.iter("testsuite"))
    counts = {key: sum(int(suite.get(key, 0)) for suite in suites) for key in ("tests", "failures", "errors", "skipped")}
    failing = [f"{case.get('classname')}::{case.get('name')}" for case in root.iter("testcase")
               if case.find("failure") is not None or case.find("error") is not None]
    return {"passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
            "failed": counts["failures"], "errors": counts["errors"], "skipped": counts["skipped"],
            "failing": failing, "pytest_s": sum(float(suite.get("time", 0.0)) for suite in suites)}


# ------------------------------------------------------------------------------------------ 2. throughput


def random_molecule(n_atoms: int, rng: np.random.Generator) -> ase.Atoms:
    """A cloud of n_atoms atoms (each of H, C, N and O when n_atoms >= 4) at about DENSITY atoms/Å^3, no two
    closer than 1 Å."""
    side = (n_atoms / DENSITY) ** (1 / 3)
    points: list[np.ndarray] = []
    while len(points) < n_atoms:
        candidate = rng.uniform(0.0, side, 3)
        if not points or np.min(np.linalg.norm(np.array(points) - candidate, axis=1)) >= 1.0:
            points.append(candidate)
    return ase.Atoms(numbers=rng.permutation(np.resize(SPECIES, n_atoms)), positions=np.array(points))


def molecules(plan: Plan) -> list[ase.Atoms]:
    rng = np.random.default_rng(0)
    return [random_molecule(plan.atoms, rng) for _ in range(plan.batch)]


def make_checkpoint(path: Path, plan: Plan) -> Path:
    """A random-weight sigma-conditioned network of ``plan`` for H, C, N and O (timing does not depend on
    the weights)."""
    torch.manual_seed(0)
    config = ModelConfig(species=SPECIES, cutoff=CUTOFF, **plan.network)
    save_checkpoint(path, {"model_config": config.to_dict(), "model_state": PseudoForceNet(config).state_dict(),
                           "schedule": {"sigma_min": 0.01, "sigma_max": 5.0}})
    return path


def calculator_rates(device: torch.device, checkpoint: Path, plan: Plan) -> dict:
    """ms per structure one at a time (``atoms.get_forces()``) and through ``calculate_batch``."""
    calc = PSMCalculator(checkpoint, device=str(device), sigma=SIGMA)
    images = molecules(plan)

    def one_at_a_time() -> None:
        for atoms in images[: plan.single]:
            atoms.calc = calc
            atoms.get_forces()
            calc.reset()

    single = best_of(one_at_a_time, 2, device) / plan.single
    batched = best_of(lambda: calc.calculate_batch(images, batch_size=plan.batch), 2, device) / plan.batch
    return {"single_ms": 1e3 * single, "calculate_batch_ms": 1e3 * batched,
            "calculate_batch_per_s": 1.0 / batched, "batch_speedup": single / batched}


def sample_rate(device: torch.device, checkpoint: Path, plan: Plan) -> dict:
    """Structures/s of ``sample`` (euler, ``plan.sample_steps``, one batch of ``plan.batch``)."""
    template = molecules(plan)[0]
    counter = NFECounter()
    try:
        with warnings.catch_warnings():  # a random network makes invalid structures; they are kept
            warnings.simplefilter("ignore", RuntimeWarning)
            seconds = best_of(lambda: sample(
                checkpoint, template, n=plan.batch, sampler="euler", steps=plan.sample_steps,
                batch_size=plan.batch, batch_atoms=plan.batch * len(template), device=str(device), progress=False,
                on_invalid="keep", check_bonds=False,
            ), 1, device)
    finally:
        counter.close()
    nfe = counter.count // 2  # the warm-up call and the timed one
    return {"sample_per_s": plan.batch / seconds, "sample_nfe": nfe, "sample_ms_per_nfe": 1e3 * seconds / (nfe * plan.batch)}


def train_rate(device: torch.device, plan: Plan, scratch: Path) -> dict:
    """Training steps/s (loss dsm, batch ``plan.train_batch``) between the logged steps train_every and
    3 * train_every, from the training log."""
    rng = np.random.default_rng(1)
    molecule = random_molecule(plan.atoms, rng)
    frames = Frames(molecule.numbers, molecule.positions + 0.05 * rng.standard_normal((64, plan.atoms, 3)))
    out = scratch / f"train-{device.type}.pt"
    train(frames, out, loss="dsm", steps=3 * plan.train_every, val_every=plan.train_every, val_fraction=0.0,
          batch_size=plan.train_batch, atom_types="element", model={**plan.network, "cutoff": CUTOFF},
          device=str(device), progress=False)
    with open(out.with_suffix(".csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    steps = int(rows[-1]["step"]) - int(rows[0]["step"])
    return {"train_steps_per_s": steps / (float(rows[-1]["elapsed_s"]) - float(rows[0]["elapsed_s"]))}


def measure(device: torch.device, plan: Plan, scratch: Path) -> dict:
    """Every throughput figure of one device; a failed one is recorded as its error."""
    checkpoint = make_checkpoint(scratch / "throughput.pt", plan)
    row = {"device": str(device)}
    row.update(with_peak_memory("calculator", device, lambda: calculator_rates(device, checkpoint, plan)))
    row.update(with_peak_memory("sample", device, lambda: sample_rate(device, checkpoint, plan)))
    row.update(with_peak_memory("train", device, lambda: train_rate(device, plan, scratch)))
    return row


def compile_child(device: torch.device, plan: Plan, scratch: Path) -> dict:
    """In a child process: ``PSMCalculator(compile=True)``'s first call (compiling), its steady speed and
    its largest force difference from the eager calculator (eV/Å)."""
    checkpoint = make_checkpoint(scratch / "compile.pt", plan)
    images = molecules(plan)
    compiled = PSMCalculator(checkpoint, device=str(device), sigma=SIGMA, compile=True)
    started = time.perf_counter()
    forces = [result["forces"] for result in compiled.calculate_batch(images, batch_size=plan.batch)]
    first_call_s = time.perf_counter() - started
    steady = best_of(lambda: compiled.calculate_batch(images, batch_size=plan.batch), 2, device) / plan.batch
    eager = PSMCalculator(checkpoint, device=str(device), sigma=SIGMA).calculate_batch(images, batch_size=plan.batch)
    difference = max(float(np.abs(f - e["forces"]).max()) for f, e in zip(forces, eager))
    return {"status": "done", "first_call_s": first_call_s, "calculate_batch_ms": 1e3 * steady,
            "max_force_difference": difference}


def compile_check(device: torch.device, plan: Plan, args: argparse.Namespace, scratch: Path, timeout_s: float) -> dict:
    """``compile_child`` in a child process, stopped after ``timeout_s``; the error's last line if it fails
    (the whole output in <out>/compile.log)."""
    command = [sys.executable, __file__, "--child", "compile", "--device", str(device), "--out", str(scratch),
               "--threads", str(args.threads), *(["--tiny"] if args.tiny else [])]
    result = run_child(command, timeout_s)
    (args.out / "compile.log").write_text(result.stdout + result.stderr)
    if result.status == "done":
        return json.loads(result.stdout.strip().splitlines()[-1])
    if result.status == "timed out":
        return {"status": "timed out", "timeout_s": timeout_s}
    return {"status": "failed", "error": last_line(result.stderr)}


def throughput(device: torch.device, plan: Plan, args: argparse.Namespace, deadline: float) -> dict:
    """The throughput rows of the device and (if that is not the CPU) of the CPU, and the compile check."""
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        devices = [device] if device.type == "cpu" else [device, torch.device("cpu")]
        rows = [measure(each, plan, scratch) for each in devices]
        timeout_s = min(plan.compile_timeout_s, max(seconds_left(deadline) - plan.min_train_s, 0.0))
        compiled = compile_check(device, plan, args, scratch, timeout_s)
    return {"network": plan.network, "atoms": plan.atoms, "batch": plan.batch,
            "single": plan.single, "sample_steps": plan.sample_steps, "train_batch": plan.train_batch,
            "cpu_threads": args.threads, "rows": rows, "compile": compiled}


# ------------------------------------------------------------------------------------- 3. ala2 training


def ala2_data_child(size: str, cache: Path) -> dict:
    """In a child process: the ala2 benchmark data of ``size``, generated into ``cache`` or read from it."""
    from ase_psm.benchmarks.data import load_system

    (data,) = load_system("ala2", size, cache)
    return data.cache


def start_ala2_data(plan: Plan, cache: Path) -> subprocess.Popen:
    """Generate (or find) the ala2 data in the background while the tests and timings run."""
    return start_child([sys.executable, __file__, "--child", "ala2-data", "--size", plan.bench_size,
                        "--cache", str(cache), "--device", "cpu"])


def finish_ala2_data(job: subprocess.Popen, timeout_s: float, started: float) -> dict:
    """The background data job's cache record (path, key, cached, generation_s) with status done, or why
    it has none."""
    result = _wait(job, timeout_s, started)
    if result.status == "done":
        return {"status": "done", **json.loads(result.stdout.strip().splitlines()[-1])}
    if result.status == "timed out":
        return {"status": "timed out", "wall_s": result.wall_s}
    return {"status": "failed", "error": last_line(result.stderr)}


def ala2_training(plan: Plan, device: torch.device, args: argparse.Namespace, data_job: subprocess.Popen,
                  data_started: float, deadline: float) -> dict:
    """The ala2 recipe trained on ``device`` for the seconds left, or why it was skipped."""
    cache = args.cache or args.out / "ala2" / "cache"
    data = finish_ala2_data(data_job, seconds_left(deadline) - plan.after_training_s - plan.min_train_s, data_started)
    if data["status"] != "done":
        reason = (f"the ala2 data ({plan.bench_size} size) was still being generated after {data['wall_s']:.0f} s, "
                  f"too late for {plan.min_train_s:.0f} s of training and {plan.after_training_s:.0f} s of sampling "
                  "and evaluation: generate it beforehand and pass its folder as --cache, or raise --budget-s"
                  if data["status"] == "timed out"
                  else f"the ala2 data could not be made: {data['error']}")
        return {"status": "skipped", "reason": reason, "data": data}
    time_limit = seconds_left(deadline) - plan.after_training_s
    if time_limit < plan.min_train_s:
        return {"status": "skipped", "data": data, "reason": f"{max(time_limit, 0.0):.0f} s left for training, "
                f"under the {plan.min_train_s:.0f} s worth running: raise --budget-s"}
    command = [sys.executable, "-m", "ase_psm.cli.main", "--quiet", "bench", "ala2", "--size", plan.bench_size,
               "--seeds", "1", "--models", ALA2_MODEL, "--device", str(device), "--out", str(args.out / "ala2"),
               "--cache", str(cache), "--threads", str(args.threads), "--set", f"time_limit={time_limit:.0f}"]
    result = run_child(command, seconds_left(deadline))
    (args.out / "ala2.log").write_text(result.stdout + result.stderr)
    record = {"status": result.status, "command": shlex.join(command), "time_limit_s": round(time_limit),
              "wall_s": result.wall_s, "data": data, "runs": ala2_runs(args.out)}
    if result.status == "failed":
        record["error"] = last_line(result.stderr)
    return record


def ala2_runs(out: Path) -> list[dict]:
    """What each ala2 run left: training steps, checkpoint (relative to ``out``), metrics if it finished."""
    runs = []
    for run in sorted((out / "ala2" / "runs").glob("*")):
        last = last_checkpoint_path(run / "model.pt")
        entry: dict = {"run": run.name, "checkpoint": str((run / "model.pt").relative_to(out))}
        if last.is_file():
            entry["steps"] = int(load_checkpoint(last)["step"])
        result = out / "ala2" / "results" / f"{run.name}.json"
        if result.is_file():
            saved = json.loads(result.read_text())
            entry.update(metrics=saved["metrics"]["values"], invalid=saved["invalid"],
                         n_samples=saved["n_samples"], wall_s=saved["wall_s"])
        runs.append(entry)
    return runs


# --------------------------------------------------------------------------------------------- report


def machine(device: torch.device, threads: int) -> dict:
    """The machine in words: accelerator, CPU, versions."""
    info = {"device": str(device), "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "cpu_threads": threads, "torch": torch.__version__, "cuda": torch.version.cuda,
            "python": platform.python_version(), "ase_psm": ase_psm.__version__}
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info.update(gpu=properties.name, gpu_memory_GiB=properties.total_memory / 2**30,
                    gpu_count=torch.cuda.device_count())
    return info


def _number(row: dict, key: str, digits: str = ".3g") -> str:
    return format(row[key], digits) if key in row else "–"


def tables(report: dict) -> str:
    """The report as Markdown."""
    info = report["machine"]
    gpu = f" ({info['gpu']}, {info['gpu_memory_GiB']:.0f} GiB)" if "gpu" in info else ""
    machine_line = (f"Device {info['device']}{gpu}; CPU {info['cpu']}, {info['cpu_count']} cores, {info['cpu_threads']} "
                    f"torch thread(s) for the CPU rows; torch {info['torch']}, CUDA {info['cuda']}; budget "
                    f"{report['budget_s']:.0f} s, wall {report.get('wall_s', 0.0):.0f} s.")
    lines = ["# ase-psm device check", "", machine_line, "", f"Command: `{report['command']}`", ""]
    lines += _tests_section(report.get("tests"))
    lines += _throughput_section(report.get("throughput"))
    lines += _ala2_section(report.get("ala2"))
    return "\n".join(lines) + "\n"


def _tests_section(tests: dict | None) -> list[str]:
    if tests is None:
        return []
    lines = ["## Tests", ""]
    if "passed" in tests:
        lines.append(f"`pytest -m device`: {tests['status']}: {tests['passed']} passed, {tests['failed']} failed, "
                     f"{tests['errors']} errors, {tests['skipped']} skipped in {tests['wall_s']:.0f} s.")
        lines += [f"- failed: `{name}`" for name in tests["failing"]]
    else:
        lines.append(f"`pytest -m device`: {tests['status']} {tests.get('reason', tests.get('error', ''))}".rstrip())
    return [*lines, ""]


def _throughput_section(results: dict | None) -> list[str]:
    if results is None:
        return []
    if "rows" not in results:
        return ["## Throughput", "", f"Failed: {results['error']}", ""]
    network = ", ".join(f"{key} {value}" for key, value in results["network"].items()) or "default"
    setting = (f"Network: {network}, random weights. Random molecules of {results['atoms']} atoms, batches of "
               f"{results['batch']}; `sample` euler {results['sample_steps']} steps; training batch "
               f"{results['train_batch']} (dsm).")
    header = ("| device | one at a time (ms/structure) | `calculate_batch` (ms/structure) | speed-up | `sample` "
              "(structures/s) | training (steps/s) | peak GPU memory: calculator / sample / training (MiB) |")
    lines = ["## Throughput", "", setting, "", header, "|---|---:|---:|---:|---:|---:|---|"]
    for row in results["rows"]:
        memory = " / ".join(_number(row, f"{name}_peak_gpu_MiB", ".0f") for name in ("calculator", "sample", "train"))
        lines.append(f"| {row['device']} | {_number(row, 'single_ms')} | {_number(row, 'calculate_batch_ms')} | "
                     f"{_number(row, 'batch_speedup', '.1f')} | {_number(row, 'sample_per_s')} | "
                     f"{_number(row, 'train_steps_per_s')} | {memory} |")
        lines += [f"- {row['device']} {key[:-6]}: {value}" for key, value in row.items() if key.endswith("_error")]
    compiled = results["compile"]
    if compiled["status"] == "done":
        text = (f"first call {compiled['first_call_s']:.0f} s, then {compiled['calculate_batch_ms']:.3g} ms/structure, "
                f"forces within {compiled['max_force_difference']:.2g} eV/Å of eager")
    elif compiled["status"] == "timed out":
        text = f"not done after {compiled['timeout_s']:.0f} s"
    else:
        text = f"failed: {compiled['error']}"
    return [*lines, "", f"`PSMCalculator(compile=True)` on the device: {text}.", ""]


def _ala2_section(ala2: dict | None) -> list[str]:
    if ala2 is None:
        return []
    lines = ["## Alanine dipeptide", ""]
    if ala2["status"] == "skipped":
        return [*lines, f"Skipped: {ala2['reason']}.", ""]
    if ala2["status"] == "error":
        return [*lines, f"Failed: {ala2['error']}", ""]
    data = ala2["data"]
    made = "read from the cache" if data["cached"] else f"generated in {data['generation_s']:.0f} s"
    lines.append(f"`{ala2['command']}`: {ala2['status']} in {ala2['wall_s']:.0f} s (training limit "
                 f"{ala2['time_limit_s']} s; data {made}). {ala2.get('error', '')}".rstrip())
    for run in ala2["runs"]:
        metrics = ", ".join(f"{name} {value:.3g}" for name, value in run.get("metrics", {}).items() if value is not None)
        lines.append(f"- {run['run']}: {run.get('steps', 0)} steps, `{run['checkpoint']}`; {metrics or 'no metrics'}")
    return [*lines, ""]


def guarded(function: Callable[[], dict]) -> dict:
    """``function()``, or its error (status error) if it raised: one broken part does not stop the others."""
    try:
        return function()
    except Exception as error:  # noqa: BLE001 (recorded in the report)
        return {"status": "error", "error": error_text(error)}


def write(report: dict, out: Path) -> None:
    (out / "results.json").write_text(json.dumps(report, indent=1))
    (out / "tables.md").write_text(tables(report))


# ----------------------------------------------------------------------------------------------- main


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-report"), help="report folder")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:1, cpu, ...")
    parser.add_argument("--budget-s", type=float, default=480.0, help="seconds for the whole check")
    parser.add_argument("--cache", type=Path, help="folder of the ala2 benchmark data (default: <out>/ala2/cache)")
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 1) - 1),
                        help="torch CPU threads (default: every core but one, which the ala2 data generation uses)")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: seconds on a CPU (for CI)")
    parser.add_argument("--child", choices=["compile", "ala2-data"], help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    args = parser.parse_args()
    try:
        args.device = resolve_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    return args


def main() -> None:
    args = parse_arguments()
    torch.set_num_threads(args.threads)
    plan = TINY if args.tiny else FULL
    if args.child == "compile":
        print(json.dumps(compile_child(args.device, plan, args.out)))
        return
    if args.child == "ala2-data":
        print(json.dumps(ala2_data_child(args.size, args.cache)))
        return
    started = time.perf_counter()
    deadline = started + args.budget_s
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict = {"command": shlex.join([sys.executable, *sys.argv]), "budget_s": args.budget_s, "tiny": args.tiny,
                    "machine": machine(args.device, args.threads)}
    data_job = start_ala2_data(plan, args.cache or args.out / "ala2" / "cache")
    try:
        report["tests"] = guarded(lambda: device_tests(plan, args.out, deadline))
        write(report, args.out)
        report["throughput"] = guarded(lambda: throughput(args.device, plan, args, deadline))
        write(report, args.out)
        report["ala2"] = guarded(lambda: ala2_training(plan, args.device, args, data_job, started, deadline))
    finally:
        if data_job.poll() is None:
            os.killpg(data_job.pid, signal.SIGKILL)
    report["wall_s"] = time.perf_counter() - started
    write(report, args.out)
    print(tables(report))


if __name__ == "__main__":
    main()
