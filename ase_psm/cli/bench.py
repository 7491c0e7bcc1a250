"""``ase-psm bench SYSTEM``: generate data (cached), train the compared models, sample, evaluate,
write JSON results, a Markdown table and plots."""

from __future__ import annotations

import argparse
from pathlib import Path


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _setting(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE read as YAML (``0.1`` a number, ``thermal`` a string, ``{...}`` a mapping)."""
    import yaml

    key, separator, value = text.partition("=")
    if not separator or not key.strip():
        raise argparse.ArgumentTypeError(f"--set takes KEY=VALUE (e.g. sigma_min=0.1), got {text!r}")
    return key.strip().replace("-", "_"), yaml.safe_load(value)


def _bench(args: argparse.Namespace) -> None:
    from ..benchmarks import BenchConfig, run_benchmark, write_report, write_summary_plots

    if args.report_only:
        print(f"wrote {write_report(Path(args.out))}")
        for path in write_summary_plots(Path(args.out)):
            print(f"wrote {path}")
        return
    config = BenchConfig(
        system=args.system, size=args.size, seeds=args.seeds, first_seed=args.first_seed, device=args.device,
        out=Path(args.out), cache=Path(args.cache) if args.cache else None, models=args.models,
        protocols=args.protocols, threads=args.threads, progress=not args.quiet, resume=args.resume,
        rescore=args.rescore, molecules=args.molecules, overrides=dict(args.set or []),
    )
    results = run_benchmark(config)
    print(f"{len(results)} runs; results in {config.out / 'results'}, table in {config.out / 'results.md'}, "
          f"plots in {config.out / 'plots'}")
    print((config.out / "results.md").read_text())


def register(commands) -> None:
    """Add the ``bench`` command to the ``ase-psm`` subparsers `commands`."""
    from ..benchmarks.config import MODELS, SIZES, SYSTEMS

    bench = commands.add_parser("bench", help="benchmark suite: data, training, sampling and metrics of one system")
    bench.add_argument("system", choices=SYSTEMS, help="lj13, lj55, md17 (GFN2-xTB, needs [bench]), ala2 (OpenMM), "
                       "md22 (OpenMM: Ac-Ala3-NHMe, Ac-Ala10-NHMe, a 360-atom double-walled nanotube)")
    bench.add_argument("--size", choices=SIZES, default="cpu",
                       help="tiny: seconds (CI); cpu: CPU-hours budget; paper: paper-like budget (GPU)")
    bench.add_argument("--seeds", type=int, default=3, help="training/sampling seeds per model (data is shared)")
    bench.add_argument("--first-seed", type=int, default=0,
                       help="start the seeds here (e.g. --first-seed 2 --seeds 1 runs seed 2 alone)")
    bench.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, auto")
    bench.add_argument("--out", default="bench", help="directory for results/, runs/, plots/, results.md")
    bench.add_argument("--cache", help="data cache directory (default: <out>/cache)")
    bench.add_argument("--models", type=_csv, default=tuple(MODELS),
                       help=f"comma-separated subset of {','.join(MODELS)}")
    bench.add_argument("--protocols", type=_csv, help="comma-separated: table2,biased,cold (LJ), biased,early (md17) or biased (ala2, md22); "
                       "default: all")
    bench.add_argument("--molecules", type=_csv, help="md17 or md22 only: comma-separated subset, e.g. ethanol,uracil or dw-nanotube")
    bench.add_argument("--set", type=_setting, action="append", metavar="KEY=VALUE",
                       help="change one training (TrainConfig) or sampling setting of the size (repeatable), e.g. "
                            "--set steps=16000 --set sample_steps=400; the results JSON records the settings used")
    bench.add_argument("--threads", type=int, help="torch CPU threads")
    bench.add_argument("--resume", action="store_true",
                       help="skip runs whose results/<run>.json exists; continue interrupted training "
                            "(runs/<run>/model.last.pt)")
    bench.add_argument("--rescore", action="store_true",
                       help="neither train nor sample: evaluate each finished run's saved samples against the "
                            "current data (e.g. a longer reference) and rewrite its results/<run>.json")
    bench.add_argument("--report-only", action="store_true", help="only rebuild <out>/results.md from the JSON files")
    bench.set_defaults(run=_bench)
