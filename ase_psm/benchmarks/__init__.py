"""The benchmark suite (`ase-psm bench SYSTEM`): data generation with an on-disk cache, training of
the compared models, sampling, evaluation against our own reference sampling, JSON results,
Markdown tables and plots. See docs/benchmarks.md."""

from .cache import content_key, load_or_generate
from .config import DATA, MODELS, PROTOCOLS, SETTINGS, SIZES, SYSTEMS, BenchSettings, ModelSpec
from .data import BenchData, load_system
from .evaluate import MetricSet, evaluate, floor_metrics
from .report import PAPER, load_results, table, write_plots, write_report, write_summary_plots
from .runner import BenchConfig, RunResult, run_benchmark

__all__ = [
    "DATA",
    "MODELS",
    "PAPER",
    "PROTOCOLS",
    "SETTINGS",
    "SIZES",
    "SYSTEMS",
    "BenchConfig",
    "BenchData",
    "BenchSettings",
    "MetricSet",
    "ModelSpec",
    "RunResult",
    "content_key",
    "evaluate",
    "floor_metrics",
    "load_or_generate",
    "load_results",
    "load_system",
    "run_benchmark",
    "table",
    "write_plots",
    "write_report",
    "write_summary_plots",
]
