"""Markdown tables (mean ± std over seeds, beside the papers' numbers) and plots of benchmark results."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from .data import BenchData
from .evaluate import metric_names

#: Published numbers: (dataset, protocol, model) -> {metric: value}. LJ: PSM paper Table 2 (iDEM's
#: reference); MD17 and MD22: PSM paper h(r) MAE (Tables 3 and 4; "best PSM" as piecewise-weighted). Their
#: references and data are not ours (we simulate our own).
PAPER: dict[tuple[str, str, str], dict[str, float]] = {
    ("lj13", "table2", "iDEM"): {"distance_tvd": 0.044, "x_w2": 4.26},
    ("lj13", "table2", "piecewise"): {"distance_tvd": 0.0582, "x_w2": 4.287},
    ("lj13", "table2", "piecewise-weighted"): {"distance_tvd": 0.0585, "x_w2": 4.278},
    ("lj55", "table2", "piecewise-weighted"): {"distance_tvd": 0.023, "x_w2": 16.054},
    **{
        (f"md17-{molecule}", "biased", model): {"hr_mae": value}
        for molecule, (dsm, psm) in {
            "aspirin": (0.124, 0.051), "ethanol": (0.119, 0.085), "malonaldehyde": (0.100, 0.063),
            "naphthalene": (0.126, 0.070), "salicylic_acid": (0.080, 0.055), "toluene": (0.097, 0.077),
            "uracil": (0.075, 0.056),
        }.items()
        for model, value in (("dsm", dsm), ("piecewise-weighted", psm))
    },
    ("md22-ac-ala3-nhme", "biased", "dsm"): {"hr_mae": 0.087},
    ("md22-ac-ala3-nhme", "biased", "piecewise-weighted"): {"hr_mae": 0.049},
    ("md22-dw-nanotube", "biased", "dsm"): {"hr_mae": 0.153},
    ("md22-dw-nanotube", "biased", "piecewise-weighted"): {"hr_mae": 0.048},
}
MODEL_ORDER = ("dsm", "piecewise", "piecewise-weighted", "harmonic", "gpff", "tsf-psm")
#: The PSM models that results.md compares with DSM, the default loss first.
COMPARED_MODELS = ("harmonic", "piecewise-weighted")


def load_results(out: str | Path) -> list[dict]:
    """Every ``<out>/results/*.json``."""
    return [json.loads(path.read_text()) for path in sorted(Path(out).glob("results/*.json"))]


def mean_std(values: list[float | None]) -> str:
    """'mean ± std' (sample std) of the non-null values, 'n/a' if none; the count of nulls if any."""
    finite = [v for v in values if v is not None]
    if not finite:
        return "n/a"
    text = f"{np.mean(finite):.4g}" + (f" ± {np.std(finite, ddof=1):.2g}" if len(finite) > 1 else "")
    return text + (f" ({len(values) - len(finite)} null)" if len(finite) < len(values) else "")


def _value(metrics: dict, name: str) -> str:
    value = metrics["values"].get(name)
    return "n/a" if value is None else f"{value:.4g}"


def table(results: list[dict], dataset: str, protocol: str) -> str:
    """A Markdown table for one (dataset, protocol): rows per model, the training set and the floor."""
    rows = [r for r in results if r["dataset"] == dataset and r["protocol"] == protocol]
    if not rows:
        return ""
    names = list(rows[0]["metrics"]["values"])
    header = ("| model | seeds | " + " | ".join(names) + f" | {names[0]} / training set's | paper "
              "| train + sample (s) |")
    title = (f"**{dataset}, protocol {protocol}** ({rows[0]['size']} size, {rows[0]['n_samples']} samples, "
             f"{rows[0]['n_training']} training structures, {rows[0]['n_reference']} reference)")
    lines = [title, "",
             header, "|" + "---|" * (header.count("|") - 1)]
    by_model: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_model[row["model"]].append(row)
    for model in sorted(by_model, key=lambda m: MODEL_ORDER.index(m) if m in MODEL_ORDER else 99):
        group = by_model[model]
        cells = [mean_std([r["metrics"]["values"].get(n) for r in group]) for n in names]
        paper = PAPER.get((dataset, protocol, model), {})
        wall = mean_std([r["wall_s"]["train_s"] + r["wall_s"]["sample_s"] for r in group])
        ratio = mean_std([r["debias_ratio"].get(names[0]) for r in group])
        lines.append(f"| {model} | {len(group)} | " + " | ".join(cells) + f" | {ratio} | {_paper_text(paper)} | {wall} |")
    baselines = (("training set (at most as many frames as samples)", "training_set"), ("floor (reference subset)", "floor"))
    for label, key in baselines:
        cells = [_value(rows[0][key], n) for n in names]
        lines.append(f"| {label} | – | " + " | ".join(cells) + " | | | |")
    for (name, proto, model), paper in PAPER.items():
        if name == dataset and proto == protocol and model not in by_model:
            lines.append(f"| {model} (paper only) | – | " + " | ".join("" for _ in names) + f" | | {_paper_text(paper)} | |")
    return "\n".join(lines) + "\n"


def dataset_means(results: list[dict], protocol: str, metric: str) -> dict[str, dict[str, float]]:
    """{data set: {model: mean of `metric` over seeds, "training set": ..., "floor": ...}} of one protocol."""
    means: dict[str, dict[str, float]] = defaultdict(dict)
    rows = [r for r in results if r["protocol"] == protocol]
    for dataset in sorted({r["dataset"] for r in rows}):
        group = [r for r in rows if r["dataset"] == dataset]
        for model in sorted({r["model"] for r in group}, key=lambda m: MODEL_ORDER.index(m) if m in MODEL_ORDER else 99):
            finite = [v for r in group if r["model"] == model and (v := r["metrics"]["values"].get(metric)) is not None]
            if finite:
                means[dataset][model] = float(np.mean(finite))
        for label, key in (("training set", "training_set"), ("floor", "floor")):
            value = group[0].get(key, {}).get("values", {}).get(metric)
            if value is not None:
                means[dataset][label] = float(value)
    return dict(means)


def comparison(results: list[dict], protocol: str, metric: str, baseline: str = "dsm",
               model: str = "harmonic") -> str:
    """A Markdown table of `model` against `baseline` over the data sets of one protocol (md17: the
    molecules), by the mean of `metric` over seeds: the relative reduction per data set, how many
    data sets `model` wins and the mean reduction. Empty when fewer than two data sets have both."""
    rows = {d: m for d, m in dataset_means(results, protocol, metric).items() if baseline in m and model in m}
    if len(rows) < 2:
        return ""
    reductions = {d: 1.0 - m[model] / m[baseline] for d, m in rows.items()}
    lines = [f"**{model} against {baseline}, protocol {protocol}, {metric}** (mean over seeds)", "",
             f"| data set | {baseline} | {model} | reduction |", "|---|---|---|---|"]
    lines += [f"| {d} | {m[baseline]:.4g} | {m[model]:.4g} | {100 * reductions[d]:+.1f} % |" for d, m in rows.items()]
    wins = sum(r > 0 for r in reductions.values())
    lines.append(f"| **{model} lower on {wins} of {len(rows)}** | | | **mean {100 * np.mean(list(reductions.values())):+.1f} %** |")
    return "\n".join(lines) + "\n"


def _primary_metric(results: list[dict], protocol: str) -> str:
    return next(iter(next(r for r in results if r["protocol"] == protocol)["metrics"]["values"]))


def _paper_text(paper: dict[str, float]) -> str:
    return ", ".join(f"{k} {v}" for k, v in paper.items())


def write_report(out: str | Path) -> Path:
    """``<out>/results.md``: one table per (dataset, protocol) of every result in ``<out>/results``."""
    results = load_results(out)
    keys = sorted({(r["dataset"], r["protocol"]) for r in results})
    text = "# Benchmark results\n\nMean ± sample std over seeds. Reference: our own sampling.\n\n"
    text += "\n".join(table(results, dataset, protocol) for dataset, protocol in keys)
    for protocol in sorted({r["protocol"] for r in results}):
        metric = _primary_metric(results, protocol)
        for model in COMPARED_MODELS:
            summary = comparison(results, protocol, metric, model=model)
            text += "\n" + summary if summary else ""
    path = Path(out) / "results.md"
    path.write_text(text)
    return path


def seed_samples(out: str | Path, dataset: str, protocol: str, seed: int = 0) -> dict[str, np.ndarray]:
    """model -> the finite samples (n, n_atoms, 3) of its `seed` run in ``<out>/runs``; models whose
    samples are all non-finite are left out."""
    prefix, suffix = f"{dataset}_{protocol}_", f"_seed{seed}"
    named = {}
    for path in sorted(Path(out).glob(f"runs/{prefix}*{suffix}/samples.npy")):
        samples = np.load(path)
        samples = samples[np.isfinite(samples).all(axis=(1, 2))]
        if len(samples):
            named[path.parent.name.removeprefix(prefix).removesuffix(suffix)] = samples
    return named


def write_plots(data: BenchData, protocol: str, out: str | Path) -> list[Path]:
    """h(r) overlays (and LJ energy histograms, peptide Ramachandran maps with every residue's angles) of the
    seed-0 samples of every model beside the training set, in ``<out>/plots``."""
    from ..metrics import backbone_dihedrals, plot_energy_histograms, plot_hr, plot_ramachandran
    from ..systems import lj_energy

    out = Path(out)
    named = {"training set": data.training[protocol][0], **seed_samples(out, data.name, protocol)}
    stem = out / "plots" / f"{data.name}_{protocol}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    lennard_jones = data.name.startswith("lj")
    written = [plot_hr(named, data.reference, f"{stem}_hr.png", unit="r_m" if lennard_jones else "Å")]
    if lennard_jones:
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            energies = {name: lj_energy(x) for name, x in named.items()}
            energies = {name: e[np.isfinite(e)] for name, e in energies.items()}
        written.append(plot_energy_histograms(energies, lj_energy(data.reference), f"{stem}_energy.png",
                                              unit="ε"))
    if "ramachandran_tvd" in metric_names(data):
        angles = {name: backbone_dihedrals(x, data.topology).reshape(-1, 2) for name, x in named.items()}
        reference = backbone_dihedrals(data.reference, data.topology).reshape(-1, 2)
        written.append(plot_ramachandran(angles, reference, f"{stem}_ramachandran.png"))
    return written


def write_summary_plots(out: str | Path) -> list[Path]:
    """``<out>/plots/<protocol>_<metric>.png``: bars of each model's mean primary metric beside the
    training set and the floor, one group per data set, for protocols with several data sets (md17)."""
    from ..metrics import plot_grouped_bars

    results = load_results(out)
    written = []
    for protocol in sorted({r["protocol"] for r in results}):
        metric = _primary_metric(results, protocol)
        means = dataset_means(results, protocol, metric)
        if len(means) >= 2:
            path = Path(out) / "plots" / f"{protocol}_{metric}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            written.append(plot_grouped_bars(means, path, ylabel=f"{metric} (mean over seeds)"))
    return written
